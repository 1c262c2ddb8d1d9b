"""What the demo generated: every source's submission and which of its rows must be quarantined, for which rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BadRow:
    """One deliberately broken row: where it is in the department's file and what is wrong."""

    row: int  # 1-based spreadsheet row number in the department's own file
    decision_no: str
    defects: frozenset[tuple[str, str]]  # (field, rule)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {
            "row": self.row,
            "decision_no": self.decision_no,
            "defects": [{"field": f, "rule": r} for f, r in sorted(self.defects)],
        }


@dataclass(frozen=True)
class SourceSubmission:
    """The file written for one source and what must happen to its rows."""

    source_id: str
    path: Path | None  # None when the rows are served by a simulated department system, not a file
    format: str
    rows_written: int
    first_data_row: int  # spreadsheet row of the first data row (header_row + 1)
    expected_quarantined: int
    bad_rows: tuple[BadRow, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {
            "source_id": self.source_id,
            "path": str(self.path) if self.path is not None else None,
            "format": self.format,
            "rows_written": self.rows_written,
            "first_data_row": self.first_data_row,
            "expected_quarantined": self.expected_quarantined,
            "bad_rows": [bad.to_dict() for bad in self.bad_rows],
        }


@dataclass(frozen=True)
class DemoManifest:
    """What :func:`generate_submissions` wrote, per source, in source-id order."""

    day: date
    seed: int
    rows_per_source: int
    submissions: tuple[SourceSubmission, ...]

    def submission(self, source_id: str) -> SourceSubmission:
        """The submission of ``source_id``."""
        for sub in self.submissions:
            if sub.source_id == source_id:
                return sub
        raise KeyError(f"no submission for source {source_id!r} in the manifest")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (``json.dumps(manifest.to_dict())``)."""
        return {
            "day": self.day.isoformat(),
            "seed": self.seed,
            "rows_per_source": self.rows_per_source,
            "sources": {sub.source_id: sub.to_dict() for sub in self.submissions},
        }
