"""How a file's header maps onto a dataset's fields, in the department's own column names."""

from __future__ import annotations

from dataclasses import dataclass

from huiju_connectors.files import normalise_header

from huiju.landing.results import LandingError
from huiju.masking import mask_text
from huiju.registry import Dataset, Source


@dataclass(frozen=True)
class ColumnMap:
    """How a file's columns map onto the dataset's fields."""

    fields_by_index: dict[int, str]  # file column index → dataset field
    extras: dict[int, str]  # unmapped file columns, kept in _extra under their header
    width: int

    @property
    def is_exact(self) -> bool:
        """Every column maps to a field in order: the file can be copied without touching rows."""
        return not self.extras and len(self.fields_by_index) == self.width


def masked_header(cell: object) -> str:
    """An unrecognised header cell as an error may show it: its first character, the rest hidden.

    When the header row is wrong (a headerless file, a wrong ``header_row``) the "header" is a
    row of data (names, ID and mobile numbers), so what was found is never echoed whole.
    """
    text = str(cell if cell is not None else "").strip()
    if not text:
        return "（空）"
    return f"「{mask_text(text)[:1]}{'*' * min(len(text) - 1, 8)}」"


def map_columns(source: Source, dataset: Dataset, header: list[str], reference: str) -> tuple[ColumnMap, list[str]]:
    """Match the file's header against the source's configured column headers.

    Headers are compared after NFKC normalisation without spaces, so ``罚款金额(万元)`` and
    ``罚款金额（万元）`` are the same column. Raises :class:`LandingError` when a required
    field's column is missing; returns warnings for optional columns that are missing.
    """
    wanted = {normalise_header(h): f for h, f in source.columns.items()}
    fields_by_index: dict[int, str] = {}
    extras: dict[int, str] = {}
    seen: dict[str, int] = {}
    for index, cell in enumerate(header):
        key = normalise_header(cell)
        field_name = wanted.get(key)
        if field_name is None:
            if key:
                extras[index] = str(cell).strip()
            elif index < len(header) - 1 or key:
                extras[index] = f"第{index + 1}列"
            continue
        if field_name in seen:
            raise LandingError(f"{source.id}: {reference}: column {cell!r} appears twice in the header "
                               f"(columns {seen[field_name] + 1} and {index + 1})")
        seen[field_name] = index
        fields_by_index[index] = field_name
    # A trailing empty header cell (a trailing delimiter) is not a column anyone filled in.
    width = len(header)
    if header and not normalise_header(header[-1]) and (width - 1) not in extras:
        width -= 1
    missing = [f for f in dataset.fields if f.name not in seen and f.name in source.columns.values()]
    required_missing = [f for f in missing if f.required]
    if required_missing:
        names = "、".join(f"{source.header_for_field[f.name]}（{f.label}）" for f in required_missing)
        found = "、".join(f"第{i + 1}列{source.header_for_field[fields_by_index[i]]}" if i in fields_by_index
                         else f"第{i + 1}列{masked_header(header[i])}" for i in range(width))
        raise LandingError(f"{source.id}: {reference}: header row {source.header_row}: required column(s) missing "
                           f"from the header: {names}; the header row has {width} column(s): {found or '（空）'}")
    warnings = [f"column {source.header_for_field[f.name]!r} ({f.label}) is missing; the field stays empty"
                for f in missing]
    if extras:
        # Named in full: required columns were all found, so this row is a real header, not data
        # (the warnings are masked like every ledger text all the same).
        warnings.append("columns not in the configuration were kept in _extra: " + ", ".join(extras.values()))
    return ColumnMap(fields_by_index, extras, width), warnings
