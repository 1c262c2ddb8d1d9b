"""The demo province's backflow batches: its own decisions (every other one with national codes) and a few
of the city's handed back, for penalties and licences alike."""

from __future__ import annotations

from datetime import date

import pytest
from huiju_demo.backflow import CITY_SHARE, CITY_SOURCES, as_codes, backflow_batch

from huiju.codes import decode
from huiju.registry import load_registry

REGISTRY = load_registry()
DAY = date(2026, 11, 20)


@pytest.mark.parametrize("source_id", ["province_penalty_backflow", "province_license_backflow"])
def test_a_backflow_batch_is_the_provinces_own_then_the_citys_handed_back(source_id: str) -> None:
    source = REGISTRY.source(source_id)
    records, described = backflow_batch(REGISTRY, source, DAY, 40)
    assert len(records) == described.rows_written == 40 + 40 // CITY_SHARE
    assert all(set(record) == set(source.columns) for record in records)  # the province's item codes
    kind = source.header_for_field["party_type"]
    assert not any(record[kind].isdigit() for record in records[:40:2])  # names …
    assert all(record[kind].isdigit() or record[kind] == "其他类型" for record in records[1:40:2])  # … and codes
    # the city's decisions of the day (the gateway's penalties, the market regulator's licences)
    abbreviation = {"jtj_penalty": "示交", "scjgj_license": "示市"}[CITY_SOURCES[source.dataset]]
    decision = source.header_for_field["decision_no"]
    assert all(record[decision].startswith(abbreviation) for record in records[40:]), records[40:]


def test_codes_go_out_as_the_code_lists_say_and_come_back_as_names() -> None:
    source = REGISTRY.source("province_penalty_backflow")
    coded = as_codes(REGISTRY, source, {"CF_XDR_LB": "自然人", "CF_CFLB": "警告;罚款", "CF_NR": "罚款"})
    assert coded == {"CF_XDR_LB": "2", "CF_CFLB": "01;03", "CF_NR": "罚款"}
    assert decode(REGISTRY.code_lists["penalty_type"], coded["CF_CFLB"], ";").value == "警告;罚款"
