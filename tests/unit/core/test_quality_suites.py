"""Suites in expectations/ are reviewed files generated from the dataset YAML; rules declared there are checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from huiju_connectors.files import workbook_epoch

from huiju.checks import checks_for
from huiju.feedback import neutralise
from huiju.quality.gx import render_suite, suite_path
from huiju.registry import ConfigError, load_registry

ROOT = Path(__file__).resolve().parents[3]


def test_every_dataset_has_its_reviewed_suite_and_it_matches_the_yaml() -> None:
    registry = load_registry()
    for dataset in registry.datasets.values():
        path = suite_path(dataset.dataset)
        assert path.name == f"{dataset.dataset}.{dataset.dataset}.critical.json"
        assert path.read_text(encoding="utf-8") == render_suite(dataset), (
            f"{path.name} is out of date with config/datasets/{dataset.dataset}.yaml: "
            "run `python -m huiju.quality.gx write` and review the diff")


def test_the_penalty_suite_has_at_least_twelve_rules_with_both_check_digits_and_no_values() -> None:
    doc = json.loads(suite_path("admin_penalty").read_text(encoding="utf-8"))
    rules = {(e["kwargs"]["rule"], e["kwargs"]["column"]) for e in doc["expectations"]}
    assert len(rules) >= 12
    assert {("uscc", "uscc"), ("id_number", "legal_rep_id_no"), ("date_order", "publish_until"),
            ("range", "fine_amount_wan"), ("enum", "penalty_type"), ("duplicate", "decision_no"),
            ("published", "decision_no")} <= rules
    for expectation in doc["expectations"]:
        assert "{batch}" in expectation["kwargs"]["unexpected_rows_query"]
    sensitive = {e["kwargs"]["column"] for e in doc["expectations"] if e["meta"]["sensitive"]}
    assert sensitive == {"legal_rep_id_no"}


def test_importing_the_core_does_not_import_great_expectations() -> None:
    code = ("import sys, huiju.validation, huiju.feedback, huiju.pipeline, huiju.quality.gx;"
            " print('great_expectations' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(("value", "expected"), [
    ("=1+1", "'=1+1"), ("+86 138", "'+86 138"), ("-5", "'-5"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=cmd", "'\t=cmd"), ("正常文本", "正常文本"), (12, 12), (None, None), ("a=b", "a=b"),
])
def test_formulas_are_neutralised(value: object, expected: object) -> None:
    assert neutralise(value) == expected


def test_the_workbook_epoch_is_read_from_the_file(tmp_path: Path) -> None:
    from openpyxl.utils.datetime import CALENDAR_MAC_1904

    path = tmp_path / "mac.xlsx"
    workbook = openpyxl.Workbook()
    workbook.epoch = CALENDAR_MAC_1904
    workbook.save(path)
    assert str(workbook_epoch(path)) == "1904-01-01"
    openpyxl.Workbook().save(path)
    assert str(workbook_epoch(path)) == "1899-12-30"


def _config(tmp_path: Path, extra: str) -> Path:
    (tmp_path / "config" / "datasets").mkdir(parents=True)
    (tmp_path / "config" / "departments").mkdir()
    (tmp_path / "config" / "datasets" / "licence.yaml").write_text(f"""
dataset: licence
title: 行政许可
natural_key: [licence_no]
fields:
  - {{name: licence_no, label: 许可文书号, required: true}}
  - {{name: org_code, label: 组织机构代码, rules: [org_code]}}
  - {{name: contact_mobile, label: 联系电话, rules: [mobile], sensitive: true}}
  - {{name: valid_from, label: 有效期自, type: date}}
  - {{name: valid_to, label: 有效期至, type: date}}
{extra}
""", encoding="utf-8")
    return tmp_path / "config"


def test_dataset_checks_and_new_rules_are_declared_in_yaml(tmp_path: Path) -> None:
    registry = load_registry(_config(tmp_path, "checks:\n  - {rule: date_order, before: valid_from, after: valid_to}"))
    dataset = registry.datasets["licence"]
    rules = [(c.rule, c.field.name) for c in checks_for(dataset)]
    assert ("org_code", "org_code") in rules and ("mobile", "contact_mobile") in rules
    assert ("date_order", "valid_to") in rules and ("duplicate", "licence_no") in rules
    assert ("published", "licence_no") not in rules  # unique_published defaults to off


def test_a_date_order_check_on_a_text_field_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_registry(_config(tmp_path, "checks:\n  - {rule: date_order, before: licence_no, after: valid_to}"))
    assert "checks[0].before: 'licence_no' is not a date field" in str(caught.value)
