"""National code lists: declared once in config/item_sets/codes/, decoded to names, and the dbt seeds made from them."""

from __future__ import annotations

import pytest

from huiju.codes import Decoded, decode, seed_csv, seed_path
from huiju.landing.codes import coded_fields
from huiju.registry import load_registry
from tests.support.config import CONFIG

REGISTRY = load_registry(CONFIG)


@pytest.mark.parametrize(("field", "value", "separator", "expected"), [
    ("party_type", "1", None, Decoded("法人及非法人组织")),
    ("party_type", "01", None, Decoded("法人及非法人组织")),  # the same code, zero-padded
    ("party_type", " 2 ", None, Decoded("自然人")),
    ("penalty_type", "3", ";", Decoded("罚款")),
    ("penalty_type", "01;03", ";", Decoded("警告;罚款")),
    ("penalty_type", "罚款;01", ";", Decoded("罚款;警告")),  # names stay, codes are decoded
    ("penalty_type", "03;77", ";", Decoded("罚款;77", ("77",))),  # an unknown code stays as sent, named
    ("license_category", "9", None, Decoded("其他")),
    ("license_category", "6", None, Decoded("6", ("6",))),
    ("party_type", "法人及非法人组织", None, None),  # a name: nothing to decode
    ("party_type", "", None, None),
    ("party_type", "１", None, None),  # a full-width digit is no code (and no name either: validation says so)
])
def test_a_value_sent_as_a_code_becomes_its_name(field: str, value: str, separator: str | None,
                                                  expected: Decoded | None) -> None:
    assert decode(REGISTRY.code_lists[field], value, separator) == expected


def test_each_seed_is_written_from_its_code_list() -> None:
    # The credit models map names back to codes with these seeds: run `python -m huiju.codes` after an edit.
    assert set(REGISTRY.code_lists) == {"party_type", "penalty_type", "license_category"}
    for code_list in REGISTRY.code_lists.values():
        assert seed_path(code_list).read_text(encoding="utf-8") == seed_csv(code_list), code_list.code_list
    assert seed_csv(REGISTRY.code_lists["party_type"]).splitlines()[:2] == ["party_type_code,party_type",
                                                                          "1,法人及非法人组织"]


def test_only_the_provinces_backflow_under_an_item_set_is_decoded() -> None:
    backflow = coded_fields(REGISTRY, REGISTRY.source("province_penalty_backflow"))
    assert [(f.name, f.header, f.separator) for f in backflow] == [("party_type", "CF_XDR_LB", None),
                                                                  ("penalty_type", "CF_CFLB", ";")]
    assert coded_fields(REGISTRY, REGISTRY.source("jtj_penalty")) == ()  # a city source under sgs_v1: names
    assert coded_fields(REGISTRY, REGISTRY.source("swj_penalty")) == ()  # its own headers: names only
