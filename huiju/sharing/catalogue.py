"""The resource catalogue (政务信息资源目录): GB/T 21063 core metadata, from ``config/sharing/`` and the dbt project.

Each catalogued resource (:class:`huiju.sharing.config.Resource`) is described by the metadata provinces keep
for it — 信息资源名称, 代码, 提供方 and its code, 摘要, 分类, 格式, 信息项 (name, type, whether sensitive),
共享类型, 共享条件, 共享方式, 更新周期, 发布日期. The 信息项 are the columns the dbt project documents for the
resource's model (``models/**/_*.yml``: description, ``data_type``, ``meta.sensitive``), so the catalogue
never drifts from what the warehouse publishes. Exported as the Excel workbook departments exchange
(:func:`write_workbook`) and as JSON (:func:`catalogue_json`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from huiju.registry import load_registry
from huiju.sharing.config import (
    SHARE_METHOD_LABELS,
    SHARE_TYPE_LABELS,
    Resource,
    SharingPolicy,
    load_policy,
    load_resources,
)
from huiju.sharing.dbt_docs import DbtModel, dbt_models

#: 数据类型 in the catalogue's words.
_TYPE_LABELS = {"text": "字符型", "numeric": "数值型", "integer": "整数型", "bigint": "整数型", "date": "日期型",
                "boolean": "布尔型", "timestamp with time zone": "日期时间型", "text[]": "字符型数组"}


@dataclass(frozen=True)
class InformationItem:
    """信息项: one column of a resource."""

    name: str  # 信息项名称 (Chinese)
    column: str  # 字段名 in the warehouse
    data_type: str
    sensitive: bool


@dataclass(frozen=True)
class CatalogueEntry:
    """One resource's core metadata (GB/T 21063)."""

    id: str
    name: str
    code: str
    provider: str
    provider_code: str
    abstract: str
    category: str
    format: str
    items: tuple[InformationItem, ...]
    share_type: str  # unconditional / conditional / not_shared
    share_type_label: str
    condition: str
    share_methods: tuple[str, ...]
    update_cycle: str
    published: str
    relation: str  # schema.model in the warehouse
    approver: str  # the department deciding conditional requests
    bureau_check: bool  # unconditional: the bureau checks each request before it is provisioned
    scope_fields: tuple[str, ...]

    def offers(self, method: str) -> bool:
        """Whether the resource is shared by ``method`` (``database``, ``api`` or ``push``)."""
        return SHARE_METHOD_LABELS[method] in self.share_methods

    def item(self, column: str) -> InformationItem | None:
        """The 信息项 stored in ``column``, if the resource has one."""
        return next((item for item in self.items if item.column == column), None)


def _entry(resource: Resource, model: DbtModel, provider_names: dict[str, str]) -> CatalogueEntry:
    items = tuple(InformationItem(name=column.description or column.name, column=column.name,
                                  data_type=_TYPE_LABELS.get(column.data_type, column.data_type),
                                  sensitive=column.sensitive) for column in model.columns)
    return CatalogueEntry(
        id=resource.id, name=resource.name, code=resource.code, provider=provider_names[resource.provider],
        provider_code=resource.provider, abstract=resource.abstract, category=resource.category,
        format=resource.format, items=items, share_type=resource.share_type,
        share_type_label=SHARE_TYPE_LABELS[resource.share_type], condition=resource.condition or "",
        share_methods=tuple(SHARE_METHOD_LABELS[method] for method in resource.share_methods),
        update_cycle=resource.update_cycle, published=resource.published.isoformat(),
        relation=f"{model.schema_name}.{model.name}", approver=resource.deciding_department,
        bureau_check=resource.bureau_check,
        scope_fields=resource.scope_fields)


def load_catalogue(config_dir: Path | None = None, project_dir: Path | None = None) -> dict[str, CatalogueEntry]:
    """The catalogue: each resource of ``config/sharing/catalogue/`` with its metadata, by id, in code order."""
    models = dbt_models(project_dir)
    resources = load_resources(config_dir, models)
    policy: SharingPolicy = load_policy(config_dir)
    provider_names = {code: department.name for code, department in load_registry(config_dir).departments.items()}
    provider_names[policy.bureau.code] = policy.bureau.name
    entries = [_entry(resource, models[resource.model], provider_names) for resource in resources.values()]
    return {entry.id: entry for entry in sorted(entries, key=lambda entry: entry.code)}


def catalogue_json(catalogue: dict[str, CatalogueEntry]) -> str:
    """The catalogue as JSON (UTF-8 text, Chinese kept readable): a list of resources with their 信息项."""
    def as_dict(entry: CatalogueEntry) -> dict[str, Any]:
        data = asdict(entry)
        data["items"] = [asdict(item) for item in entry.items]
        return data

    return json.dumps({"catalogue": [as_dict(entry) for entry in catalogue.values()]}, ensure_ascii=False, indent=2)


#: The columns of the 信息资源目录 sheet, in the order the provinces' exchange template has them.
RESOURCE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("信息资源名称", "name"), ("信息资源代码", "code"), ("信息资源提供方", "provider"), ("提供方代码", "provider_code"),
    ("信息资源摘要", "abstract"), ("信息资源分类", "category"), ("信息资源格式", "format"),
    ("共享类型", "share_type_label"), ("共享条件", "condition"),
    ("共享方式", "share_methods"), ("更新周期", "update_cycle"), ("发布日期", "published"),
)
ITEM_COLUMNS = ("信息资源代码", "信息资源名称", "信息项名称", "字段名", "数据类型", "是否敏感")


def write_workbook(catalogue: dict[str, CatalogueEntry], path: Path) -> Path:
    """The catalogue as the Excel workbook departments exchange: 信息资源目录 (one row a resource) and 信息项."""
    import xlsxwriter  # why: only the export writes workbooks

    path.parent.mkdir(parents=True, exist_ok=True)
    with xlsxwriter.Workbook(str(path)) as book:
        header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
        wrap = book.add_format({"text_wrap": True, "valign": "top"})
        sheet = book.add_worksheet("信息资源目录")
        for col, (label, _) in enumerate(RESOURCE_COLUMNS):
            sheet.write(0, col, label, header)
            sheet.set_column(col, col, 40 if label in ("信息资源摘要", "共享条件") else 18)
        for row, entry in enumerate(catalogue.values(), start=1):
            for col, (_, key) in enumerate(RESOURCE_COLUMNS):
                value = getattr(entry, key)
                sheet.write_string(row, col, "、".join(value) if isinstance(value, tuple) else str(value), wrap)
        sheet.freeze_panes(1, 1)
        items = book.add_worksheet("信息项")
        for col, label in enumerate(ITEM_COLUMNS):
            items.write(0, col, label, header)
            items.set_column(col, col, 22)
        row = 1
        for entry in catalogue.values():
            for item in entry.items:
                for col, value in enumerate((entry.code, entry.name, item.name, item.column, item.data_type,
                                             "是" if item.sensitive else "否")):
                    items.write_string(row, col, value)
                row += 1
        items.freeze_panes(1, 0)
    return path
