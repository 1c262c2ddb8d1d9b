"""config/reports/: each report is schema-checked, and a mistake is named by file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from huiju.registry import ConfigError
from huiju.reports.config import load_reports

GOOD = """
report:
  id: {id}
  title: 测试报告
  period: month
  cron: "0 9 2 * *"
  summary: [{{label: 件数, table: t, measure: decision_count}}]
  tables:
    - id: t
      title: 测试
      relation: analysis_credit_statistics
      group_by: [region_name]
      measures: [{{column: decision_count, label: 件数}}]
      chart: {{kind: bar, title: 件数, measures: [decision_count]}}
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / "reports").mkdir(exist_ok=True)
    (tmp_path / "reports" / f"{name}.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_the_shipped_reports_load() -> None:
    reports = load_reports()
    assert reports["monthly_bulletin"].scorecards and reports["monthly_bulletin"].cron == "0 9 2 * *"


def test_a_good_report_loads(tmp_path: Path) -> None:
    assert load_reports(_write(tmp_path, "mine", GOOD.format(id="mine")))["mine"].tables[0].chart.kind == "bar"


@pytest.mark.parametrize(("edit", "said"), [
    (("cron: \"0 9 2 * *\"", "cron: \"every month\""), "report.cron"),
    (("group_by: [region_name]", "group_by: [\"region_name; drop table x\"]"), "not a plain column"),
    (("relation: analysis_credit_statistics", "relation: analysis.credit"), "not a plain column"),
    (("measure: decision_count}]", "measure: fines}]"), "not a measure of table"),
    (("period: month", "period: quarter"), "report.period"),
    (("  title: 测试报告", "  titel: 测试报告"), "titel"),
])
def test_mistakes_are_named(tmp_path: Path, edit: tuple[str, str], said: str) -> None:
    text = GOOD.format(id="mine").replace(*edit)
    with pytest.raises(ConfigError) as raised:
        load_reports(_write(tmp_path, "mine", text))
    assert any("reports/mine.yaml" in p and said in p for p in raised.value.problems), raised.value.problems


def test_the_id_must_match_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must match the file name"):
        load_reports(_write(tmp_path, "other", GOOD.format(id="mine")))
