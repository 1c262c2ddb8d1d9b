"""A newcomer's model and test with dbt's own configuration behave as dbt's docs say.

The project's departures from stock dbt (dbt_project/README.md) act only where they are named:
materialized='view_if_changed' / 'incremental_when_published', and `where: __changed_by_this_build__`
for the generic tests it can narrow. A copy of the project gets a
view and an incremental model configured as dbt documents them, in folders whose own defaults are
the named ones, and a test of a kind the marker does not narrow: built twice, each model is built
again, and the test reads its whole relation.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest

from huiju import transform
from huiju.settings import get_settings

NEWCOMER_MODELS = {
    "credit/newcomer_view.sql": "{{ config(materialized='view') }}\nselect 1 as newcomer_id\n",
    # Nothing is published between the two builds: incremental_when_published would leave it as it is.
    "staging/newcomer_incremental.sql": (
        "{{ config(materialized='incremental', unique_key='newcomer_id') }}\n"
        "select decision_no as newcomer_id, published_at from {{ ref('stg_landing__admin_penalties') }}\n"),
}
NEWCOMER_YAML = """version: 2
models:
  - name: newcomer_incremental
    columns:
      - name: newcomer_id
        data_tests: [not_null, newcomer_not_blank]
      - name: published_at
"""
NEWCOMER_TEST = """{% test newcomer_not_blank(model, column_name) %}
select * from {{ model }} where {{ column_name }} = ''
{% endtest %}
"""


@pytest.fixture
def project_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The dbt project copied under a HUIJU_HOME of its own, with the newcomer's files."""
    home = tmp_path / "home"
    shutil.copytree(get_settings().dbt_project_dir, home / "dbt_project",
                    ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    for path, sql in NEWCOMER_MODELS.items():
        (home / "dbt_project" / "models" / path).write_text(sql, encoding="utf-8")
    (home / "dbt_project" / "models" / "staging" / "_newcomer.yml").write_text(NEWCOMER_YAML, encoding="utf-8")
    (home / "dbt_project" / "tests" / "generic" / "newcomer_not_blank.sql").write_text(NEWCOMER_TEST, encoding="utf-8")
    monkeypatch.setenv("HUIJU_HOME", str(home))
    monkeypatch.setenv("HUIJU_VAR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def test_stock_configuration_means_stock_behaviour(project_copy: Path, make_database, tmp_path: Path) -> None:
    url = make_database("newcomer", migrated=True)
    target = tmp_path / "target"
    transform.scheduled_build(url, "--select", "newcomer_view", "+newcomer_incremental", target_path=target)
    with psycopg.connect(url) as conn:  # as after a daily build: the tests under the marker are narrowed
        conn.execute("update dbt_state.test_watermark set published_after = now() - interval '1 day'")
    transform.scheduled_build(url, "--select", "newcomer_view", "newcomer_incremental", target_path=target)
    run_results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))["results"]
    results = {result["unique_id"]: result for result in run_results}
    assert results["model.huiju.newcomer_view"]["message"] == "CREATE VIEW"  # built again, as dbt does
    assert results["model.huiju.newcomer_incremental"]["message"].startswith("INSERT")
    compiled = {path.stem: path.read_text(encoding="utf-8") for path in (target / "run").rglob("*.sql")}
    narrowed = next(sql for name, sql in compiled.items() if name.startswith("not_null_newcomer_incremental"))
    whole = next(sql for name, sql in compiled.items() if name.startswith("newcomer_not_blank_newcomer_incremental"))
    assert "published_at >" in narrowed  # a not_null test under the marker checks the changed rows
    assert "published_at" not in whole  # a test the marker cannot narrow checks every row
