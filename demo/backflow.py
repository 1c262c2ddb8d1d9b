"""The province's backflow batch (省回流) for the demo day, as the simulated provincial platform serves it.

Records in the province source's own item codes (config/item_sets/, e.g. 双公示 v2 ``CF_WSH``): the
province's own decisions of the day (generated like any department's, the same share of deliberate
defects, listed in the manifest), followed by a few decisions a city department already sends the
same day (the city gateway's, :data:`CITY_SOURCE`) handed back by the province — the same decision,
which the warehouse keeps as one record of origin 本地.
"""

from __future__ import annotations

from datetime import date

from huiju_demo.generate import generate_records
from huiju_demo.manifest import SourceSubmission

from huiju.registry import Registry, Source

#: The city source whose decisions of the day the province hands back too (a REST source: its records
#: are generated, the same every run, and its defective rows known).
CITY_SOURCE = "jtj_penalty"
#: One record in this many of the backflow is a city decision handed back.
CITY_SHARE = 20


def backflow_batch(registry: Registry, source: Source, day: date, rows: int) -> tuple[list[dict], SourceSubmission]:
    """The province's records for ``day`` keyed by ``source``'s item codes, and what the manifest says of them."""
    records, described = generate_records(registry, source, day, rows=rows)
    city = registry.source(CITY_SOURCE)
    city_records, city_described = generate_records(registry, city, day, rows=rows)
    defective = {bad.row - 1 for bad in city_described.bad_rows}
    good = [record for index, record in enumerate(city_records) if index not in defective]
    handed_back = [{source.header_for_field[city.columns[code]]: value for code, value in record.items()}
                   for record in good[: max(1, rows // CITY_SHARE)]] if rows else []
    records += handed_back
    return records, SourceSubmission(
        source_id=source.id, path=None, format="records", rows_written=len(records), first_data_row=1,
        expected_quarantined=described.expected_quarantined, bad_rows=described.bad_rows)
