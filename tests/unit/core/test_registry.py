"""Config loading: the real config loads; each kind of mistake is reported with file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from huiju.registry import load_registry
from tests.support.config import CONFIG, copy_config, edit, problems_of


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


def test_mapping_to_an_unknown_field_names_file_key_and_suggestion(config: Path) -> None:
    edit(config / "departments/swj.yaml", "处罚日期: decision_date", "处罚日期: decison_date")
    problems = problems_of(config)
    assert any(p.startswith("config/departments/swj.yaml: sources[0].columns.处罚日期: maps to 'decison_date'")
               and "did you mean 'decision_date'" in p for p in problems), problems


def test_unmapped_required_field_is_reported(config: Path) -> None:
    edit(config / "departments/swj.yaml", "      处罚决定书文号: decision_no\n", "")
    problems = problems_of(config)
    assert any("required field 'decision_no' (行政处罚决定书文号) is not mapped" in p for p in problems), problems


def test_misspelt_key_is_reported_with_suggestion(config: Path) -> None:
    edit(config / "departments/swj.yaml", "tolerance: 0.05", "toleranse: 0.05")
    problems = problems_of(config)
    assert any("sources[0].toleranse: unknown key (did you mean 'tolerance'?)" in p for p in problems), problems


def test_out_of_range_and_wrong_type_values(config: Path) -> None:
    edit(config / "departments/swj.yaml", "tolerance: 0.05", "tolerance: 5")
    edit(config / "departments/scjgj.yaml", "cadence: daily", "cadence: sometimes")
    problems = problems_of(config)
    assert any("swj.yaml: sources[0].tolerance:" in p and "1" in p for p in problems), problems
    assert any("scjgj.yaml: sources[0].cadence: cadence must be one of daily, weekly, monthly" in p
               for p in problems), problems


def test_unknown_dataset_and_duplicate_source_id(config: Path) -> None:
    edit(config / "departments/sthjj.yaml", "dataset: admin_penalty", "dataset: admin_penalties")
    edit(config / "departments/swj.yaml", "id: swj_penalty", "id: scjgj_penalty")
    problems = problems_of(config)
    assert any("sthjj.yaml: sources[0].dataset: no dataset 'admin_penalties'" in p
               and "did you mean 'admin_penalty'" in p for p in problems), problems
    assert any("swj.yaml: sources[0].id: 'scjgj_penalty' is already used" in p for p in problems), problems


def test_broken_yaml_names_the_line(config: Path) -> None:
    (config / "departments/swj.yaml").write_text("department:\n  code: [swj\n", encoding="utf-8")
    problems = problems_of(config)
    assert problems[0].startswith("config/departments/swj.yaml: not valid YAML (line"), problems


def test_missing_key_and_bad_identifier(config: Path) -> None:
    edit(config / "departments/swj.yaml", "  name: 税务局\n", "")
    edit(config / "departments/scjgj.yaml", "code: scjgj", "code: SCJ-GJ")
    problems = problems_of(config)
    assert any(p == "config/departments/swj.yaml: department.name: is required but missing" for p in problems), problems
    assert any("scjgj.yaml: department.code: 'SCJ-GJ' is not a valid name" in p for p in problems), problems


def test_dataset_natural_key_must_be_a_field(config: Path) -> None:
    edit(config / "datasets/admin_penalty.yaml", "natural_key: [decision_no]", "natural_key: [decision_number]")
    problems = problems_of(config)
    assert any("admin_penalty.yaml: natural_key: 'decision_number' is not a field (did you mean 'decision_no'?)" in p
               for p in problems), problems


def test_channel_blocks_are_checked_against_the_channel(config: Path) -> None:
    edit(config / "departments/swj.yaml", "    channel: inbox\n", "    channel: inbox\n    sftp: {directory: /out}\n")
    edit(config / "departments/scjgj.yaml", "    channel: inbox\n", "    channel: inbox\n    inbox: {folder: x}\n")
    problems = problems_of(config)
    assert any("swj.yaml: sources[0]: settings block(s) sftp do not belong to channel 'inbox'" in p
               for p in problems), problems
    assert any("scjgj.yaml: sources[0].inbox.folder: unknown key" in p for p in problems), problems


def test_file_channels_need_a_format(config: Path) -> None:
    edit(config / "departments/swj.yaml", "    format: csv\n", "")
    problems = problems_of(config)
    assert any("swj.yaml: sources[0]: format (csv or xlsx) is required for a file channel (inbox)" in p
               for p in problems), problems
