"""A source's fields as a department meets them: its own column header, what to type, how to pick it.

The template workbook (:mod:`huiju_portal.workbook`) and the manual-entry form
(:mod:`huiju_portal.entry`) are both generated from this, which is generated from the dataset
(``config/datasets/``) and the source's column mapping: the same headers, the same hints,
the same allowed values everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from huiju.registry import DatasetField, Registry, Source

RULE_HINTS = {
    "uscc": "18位统一社会信用代码（数字或大写字母，不使用I、O、Z、S、V）",
    "id_number": "18位公民身份号码（末位可为X）",
    "org_code": "9位组织机构代码（8位本体代码和1位校验码）",
    "mobile": "11位手机号码",
}


@dataclass(frozen=True)
class SourceField:
    """One column of a source's template, one input of its form."""

    name: str  # the dataset field
    header: str  # the department's own column header
    label: str  # the national data item's name
    required: bool
    input: Literal["text", "number", "date", "select", "multiselect"]
    options: tuple[str, ...]
    separator: str | None
    hint: str  # what to type, beyond whether it is required ("" for plain text)
    is_code: bool  # a check-digit code or a phone number: text, never a number
    field: DatasetField

    @property
    def as_text(self) -> bool:
        """Whether a spreadsheet must keep the column as text (codes, dates, free text; not numbers)."""
        return self.input != "number"


def _hint(field: DatasetField) -> str:
    parts: list[str] = []
    if field.enum:
        listed = "、".join(field.enum)
        parts.append(f"可填多项，以“{field.enum_separator}”分隔：{listed}" if field.enum_separator
                     else f"从下列值中选择：{listed}")
    parts += [RULE_HINTS[rule] for rule in field.rules]
    if field.type == "date":
        parts.append("日期，如2026-03-05")
    if field.type == "number":
        bounds = ""
        if field.min is not None and field.max is not None:
            bounds = f"，{field.min:g}至{field.max:g}之间"
        elif field.min is not None:
            bounds = f"，不小于{field.min:g}"
        elif field.max is not None:
            bounds = f"，不大于{field.max:g}"
        parts.append(f"数字{bounds}")
    return "；".join(parts)


def source_fields(registry: Registry, source: Source) -> list[SourceField]:
    """The source's mapped fields in the order of its column mapping (its template's column order)."""
    dataset = registry.dataset_of(source)
    out = []
    for header, name in source.columns.items():
        field = dataset.field(name)
        if field.enum:
            kind: Literal["text", "number", "date", "select", "multiselect"] = (
                "multiselect" if field.enum_separator else "select")
        elif field.type in ("number", "date"):
            kind = field.type
        else:
            kind = "text"
        out.append(SourceField(name=name, header=header, label=field.label, required=field.required, input=kind,
                               options=field.enum or (), separator=field.enum_separator, hint=_hint(field),
                               is_code=bool(field.rules), field=field))
    return out
