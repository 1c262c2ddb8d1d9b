"""The province's backflow batches (省回流) for the demo day, as the simulated provincial platform serves them.

One batch per backflow source (行政处罚, 行政许可), in the source's own item codes (config/item_sets/, e.g.
双公示 v2 ``CF_WSH``, ``XK_WSH``): the province's own decisions of the day (generated like any
department's, the same share of deliberate defects, listed in the manifest), followed by a few
decisions a city department already sends the same day (:data:`CITY_SOURCES`) handed back by the
province — the same decision, which the warehouse keeps as one record of origin 本地. Like a province
that exchanges national codes, every other record carries its 类别 items (行政相对人类别, 处罚类别, 许可类别)
as codes (config/item_sets/codes/), which landing turns back into names.
"""

from __future__ import annotations

from datetime import date

from huiju_demo.generate import generate_records
from huiju_demo.manifest import SourceSubmission
from huiju_demo.registers import generate_register_records

from huiju.registry import Registry, Source

#: Per dataset, the city source whose decisions of the day the province hands back too (records the demo
#: generates the same every run, their defective rows known): the city gateway's penalties (REST), the
#: market regulator's licences (its inbox CSV).
CITY_SOURCES = {"admin_penalty": "jtj_penalty", "admin_license": "scjgj_license"}
#: One record in this many of the backflow is a city decision handed back.
CITY_SHARE = 20


def _records(registry: Registry, source: Source, day: date, rows: int) -> tuple[list[dict], SourceSubmission]:
    if source.dataset == "admin_penalty":
        return generate_records(registry, source, day, rows=rows)
    return generate_register_records(registry, source, day, rows=rows)


def as_codes(registry: Registry, source: Source, record: dict[str, str]) -> dict[str, str]:
    """``record`` with each 类别 item that has a national code list sent as its code (names it lacks stay)."""
    dataset = registry.dataset_of(source)
    coded = dict(record)
    for header, field in source.columns.items():
        code_list = registry.code_lists.get(field)
        if code_list is None or not record.get(header):
            continue
        codes = {name: code for code, name in code_list.codes.items()}
        separator = dataset.field(field).enum_separator
        parts = record[header].split(separator) if separator else [record[header]]
        coded[header] = (separator or "").join(codes.get(part, part) for part in parts)
    return coded


def backflow_batch(registry: Registry, source: Source, day: date, rows: int) -> tuple[list[dict], SourceSubmission]:
    """The province's records for ``day`` keyed by ``source``'s item codes, and what the manifest says of them."""
    records, described = _records(registry, source, day, rows)
    records = [as_codes(registry, source, record) if index % 2 else record for index, record in enumerate(records)]
    city = registry.source(CITY_SOURCES[source.dataset])
    city_records, city_described = _records(registry, city, day, rows)
    # The city file's row numbers count its header rows; records count from 1.
    defective = {bad.row - city_described.first_data_row for bad in city_described.bad_rows}
    good = [record for index, record in enumerate(city_records) if index not in defective]
    handed_back = [{source.header_for_field[city.columns[header]]: value for header, value in record.items()}
                   for record in good[: max(1, rows // CITY_SHARE)]] if rows else []
    records += handed_back
    return records, SourceSubmission(
        source_id=source.id, path=None, format="records", rows_written=len(records), first_data_row=1,
        expected_quarantined=described.expected_quarantined, bad_rows=described.bad_rows)
