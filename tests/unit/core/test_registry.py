"""Config loading: the real config loads; each kind of mistake is reported with file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from huiju.registry import ORIGIN_BACKFLOW, ORIGIN_LOCAL, item_set_columns, load_registry
from tests.support.config import CONFIG, Edit, assert_reported, copy_config, problems_of


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return copy_config(tmp_path / "config")


def test_the_shipped_config_loads() -> None:
    registry = load_registry(CONFIG)
    assert {"scjgj", "sthjj", "swj"} <= set(registry.departments)
    source = registry.source("swj_penalty")
    assert source.department == "swj"
    assert registry.dataset_of(source).title == "行政处罚"
    assert source.header_for_field["decision_no"] == "处罚决定书文号"


SWJ = "departments/swj.yaml"
SCJGJ = "departments/scjgj.yaml"
PROVINCE = "departments/province.yaml"


def test_the_province_backflow_is_mapped_by_its_item_set_and_lands_with_its_origin() -> None:
    registry = load_registry(CONFIG)
    backflow = registry.source("province_penalty_backflow")
    # 双公示 v2 item codes, declared once in config/item_sets/sgs_v2.yaml
    assert backflow.columns == registry.item_sets["sgs_v2"].datasets["admin_penalty"]
    assert backflow.header_for_field["decision_no"] == "CF_WSH"
    assert (backflow.origin, backflow.channel_settings.signature) == (ORIGIN_BACKFLOW, "sm3")
    # the city's own sources are 本地; the city gateway's v1 codes come from the same place
    gateway = registry.source("jtj_penalty")
    assert gateway.origin == ORIGIN_LOCAL
    assert gateway.columns == registry.item_sets["sgs_v1"].datasets["admin_penalty"]
    assert {s.origin for s in registry.sources.values() if s.department != "province"} == {ORIGIN_LOCAL}


def test_a_source_can_replace_an_item_code_of_its_set() -> None:
    # A province that codes one item its own way: the set's code for that field gives way to it.
    codes = {"CF_WSH": "decision_no", "CF_XDR_MC": "party_name"}
    assert item_set_columns(codes, {"XK_XKWS": "decision_no"}) == {"CF_XDR_MC": "party_name",
                                                                    "XK_XKWS": "decision_no"}
    assert item_set_columns(codes, {"SJLY": "authority"}) == {**codes, "SJLY": "authority"}

# Each mistake: the edits made to a copy of config/, and what loading it must report (the parts one
# problem names).
MISTAKES = [
    pytest.param(
        [(SWJ, "处罚日期: decision_date", "处罚日期: decison_date")],
        [("config/departments/swj.yaml: sources[0].columns.处罚日期: maps to 'decison_date'",
          "did you mean 'decision_date'")],
        id="mapping to an unknown field names file, key and suggestion"),
    pytest.param(
        [(SWJ, "      处罚决定书文号: decision_no\n", "")],
        [("required field 'decision_no' (行政处罚决定书文号) is not mapped",)],
        id="an unmapped required field"),
    pytest.param(
        [(SWJ, "tolerance: 0.05", "toleranse: 0.05")],
        [("sources[0].toleranse: unknown key (did you mean 'tolerance'?)",)],
        id="a misspelt key, with a suggestion"),
    pytest.param(
        [(SWJ, "tolerance: 0.05", "tolerance: 5"), (SCJGJ, "cadence: daily", "cadence: sometimes")],
        [("swj.yaml: sources[0].tolerance:", "1"),
         ("scjgj.yaml: sources[0].cadence: cadence must be one of daily, weekly, monthly",)],
        id="out of range and wrong type values"),
    pytest.param(
        [("departments/sthjj.yaml", "dataset: admin_penalty", "dataset: admin_penalties"),
         (SWJ, "id: swj_penalty", "id: scjgj_penalty")],
        [("sthjj.yaml: sources[0].dataset: no dataset 'admin_penalties'", "did you mean 'admin_penalty'"),
         ("swj.yaml: sources[0].id: 'scjgj_penalty' is already used",)],
        id="an unknown dataset and a duplicate source id"),
    pytest.param(
        [(SWJ, "  name: 税务局\n", ""), (SCJGJ, "code: scjgj", "code: SCJ-GJ")],
        [("config/departments/swj.yaml: department.name: is required but missing",),
         ("scjgj.yaml: department.code: 'SCJ-GJ' is not a valid name",)],
        id="a missing key and a bad identifier"),
    pytest.param(
        [("datasets/admin_penalty.yaml", "natural_key: [decision_no]", "natural_key: [decision_number]")],
        [("admin_penalty.yaml: natural_key: 'decision_number' is not a field (did you mean 'decision_no'?)",)],
        id="a dataset's natural key must be a field"),
    pytest.param(
        [(SWJ, "    channel: inbox\n", "    channel: inbox\n    sftp: {directory: /out}\n"),
         (SCJGJ, "    channel: inbox\n", "    channel: inbox\n    inbox: {folder: x}\n")],
        [("swj.yaml: sources[0]: settings block(s) sftp do not belong to channel 'inbox'",),
         ("scjgj.yaml: sources[0].inbox.folder: unknown key",)],
        id="channel blocks are checked against the channel"),
    pytest.param(
        [(SWJ, "    format: csv\n", "")],
        [("swj.yaml: sources[0]: format (csv or xlsx) is required for a file channel (inbox)",)],
        id="file channels need a format"),
    pytest.param(
        [(PROVINCE, "item_set: sgs_v2", "item_set: sgs_v3"),
         ("item_sets/sgs_v1.yaml", "CF_FKJE: fine_amount_wan", "CF_FKJE: fine_amount")],
        [("province.yaml: sources[0].item_set: no item set 'sgs_v3' for dataset admin_penalty",
          "did you mean 'sgs_v2'"),
         ("item_sets/sgs_v1.yaml: datasets.admin_penalty.CF_FKJE: 'fine_amount' is not a field",
          "did you mean 'fine_amount_wan'")],
        id="an unknown item set, and an item code carrying no field of the dataset"),
    pytest.param(
        [("item_sets/codes/penalty_type.yaml", '"03": 罚款', '"03": 罚金'),
         ("item_sets/codes/party_type.yaml", '"3": 个体工商户', '"03": 个体工商户\n  "x1": 其他'),
         ("item_sets/codes/license_category.yaml", "code_list: license_category", "code_list: licence_category")],
        [("item_sets/codes/penalty_type.yaml: codes.03: '罚金' is not a value the field penalty_type of dataset "
          "admin_penalty allows",),
         ("item_sets/codes/party_type.yaml: codes:", "code 'x1' must be digits"),
         ("item_sets/codes/license_category.yaml: code_list: 'licence_category' is not a field of any dataset",
          "did you mean 'license_category'")],
        id="a code list names a field, its codes are numbers, its names are the field's values"),
    pytest.param(
        [("item_sets/codes/party_type.yaml", '"3": 个体工商户', '"3": 个体工商户\n  "01": 个体户')],
        [("item_sets/codes/party_type.yaml: codes:", "codes '1' and '01' are the same number")],
        id="two codes of one number"),
    pytest.param(
        [(PROVINCE, "  origin: 省回流", "  origin: 省里")],
        [("province.yaml: department.origin:", "本地", "省回流")],
        id="an origin is 本地 or 省回流"),
]


@pytest.mark.parametrize(("edits", "expected"), MISTAKES)
def test_a_mistake_is_reported_with_file_key_and_reason(
    config: Path, edits: list[Edit], expected: list[tuple[str, ...]]
) -> None:
    assert_reported(config, edits, expected)


def test_broken_yaml_names_the_line(config: Path) -> None:
    (config / "departments/swj.yaml").write_text("department:\n  code: [swj\n", encoding="utf-8")
    problems = problems_of(config)
    assert problems[0].startswith("config/departments/swj.yaml: not valid YAML (line"), problems
