"""Write the demo departments' daily submissions (行政处罚, registers, licences, lists) into their inboxes.

Each ``channel: inbox`` source gets one file, ``<inbox>/<source_id>/<source_id>_<YYYYMMDD>.<ext>``,
written the way that department really sends it: the column headers of its own system
(``Source.columns``), its own date format and encoding, and for the Excel template a merged
title row above the header. The rows look real (Faker ``zh_CN``; USCCs and ID numbers with
correct check characters; real dates) except for a known few: exactly
``round(rows_per_source * 0.04)`` rows per source carry one deliberate defect each, and the
returned :class:`DemoManifest` says which row (as the department sees it in its own file)
breaks which rule, so that tests and the demo can check the quarantine to the row.

Everything is derived from ``seed``, the source id and ``day``: the same inputs give
byte-identical files (the workbook included: its document properties and zip timestamps
are pinned).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

from huiju_demo.identifiers import org_code_check_char
from huiju_demo.manifest import BadRow, DemoManifest, SourceSubmission
from huiju_demo.penalties import DATASET, DEFECTS, RULES, generate_penalty_file, generate_records
from huiju_demo.registers import generate_register_file

from huiju.channels import FILE_CHANNELS
from huiju.registry import Registry

__all__ = ["DATASET", "DEFECTS", "RULES", "BadRow", "DemoManifest", "SourceSubmission", "generate_records",
           "generate_submissions", "org_code_check_char"]


def generate_submissions(registry: Registry, inbox_dir: Path, day: date, *, rows_per_source: int = 200,
                         seed: int = 20261120, sources: Iterable[str] | None = None) -> DemoManifest:
    """Write one submission file per inbox source for ``day`` and say which rows are bad.

    Files go to ``inbox_dir/<source_id>/<source_id>_<YYYYMMDD>.<csv|xlsx>`` (replacing one
    already there). Exactly ``round(rows_per_source * 0.04)`` rows of each file carry one
    defect each, from :data:`DEFECTS` in turn; every other row passes all of :data:`RULES`.
    Sources of the other datasets (registers, licences, lists) get CSVs drawn from one demo city
    (see ``_city``), with the same share of defects, one per rule their dataset declares in turn;
    for them ``BadRow.decision_no`` holds the row's natural key (fields joined by ``/``).

    ``sources`` names the file-channel sources to write (e.g. an FTP source's file, into the
    folder its simulated server serves); by default every inbox source.
    """
    if rows_per_source < 0:
        raise ValueError("rows_per_source must not be negative")
    if sources is None:
        sources = [sid for sid in sorted(registry.sources) if registry.sources[sid].channel == "inbox"]
    selected = [registry.source(sid) for sid in sources]
    for source in selected:
        if source.channel not in FILE_CHANNELS:
            raise ValueError(f"source {source.id!r} delivers records through {source.channel}, not files; "
                             "use generate_records")
        if source.dataset != DATASET and source.format != "csv":
            raise ValueError(f"the demo writes {source.dataset} as CSV only; "
                             f"source {source.id!r} wants {source.format}")
    submissions = tuple(
        generate_penalty_file(registry, source, inbox_dir, day, rows_per_source, seed) if source.dataset == DATASET
        else generate_register_file(registry, source, inbox_dir, day, rows_per_source, seed)
        for source in selected)
    return DemoManifest(day=day, seed=seed, rows_per_source=rows_per_source, submissions=submissions)
