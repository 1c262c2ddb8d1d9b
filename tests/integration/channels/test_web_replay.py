"""Replay (重放) of web (网络爬虫) pages: the list pages a run landed, replayed from their packs and their group's
manifest, give the same rows, row numbers, warnings, verdicts and ledger as the first delivery — into the
warehouse that holds them (nothing changes) and into an emptied one (restored from the archive alone), by load
id (``huiju replay --load``), by source and days (the replay DAG's task, its Params validated as Airflow does)
and everything since a day. The department's site (the demo's 卫生健康委员会, a real HTTP server on loopback)
is stopped before the replay: nothing is fetched again."""

from __future__ import annotations

import copy
from datetime import date

import psycopg
import pytest
from huiju_demo.generate import generate_records
from huiju_demo.simulators.web import connection_for, site_for

from huiju.cli import main
from huiju.pipeline import collect, publish_validated, validate_pending
from huiju.registry import load_registry
from huiju.replay import ReplayError, delivery_day, replay, select_manifests
from tests.support.warehouse_state import differences, empty_warehouse, landed_state
from tests.support.webservice import DAY, connection_info, variant

pytestmark = [pytest.mark.timeout(300)]

BASE = "wjw_penalty"
LIST = "/xxgk/xzcf/"
SINCE = date(2000, 1, 1)


@pytest.fixture
def platform(webservice_replay_platform: str) -> str:
    """The test's own warehouse, archive and web-service config (tests/integration/conftest.py)."""
    return webservice_replay_platform


def _delivered(url: str) -> tuple:
    """The site's list (45 records over 5 pages, some bad, a footer under page 2) collected, validated, published."""
    registry, source = variant(load_registry(), BASE, BASE, rate_limit=None)  # its id: the Params name it
    records, submission = generate_records(registry, source, DAY, rows=45)
    assert submission.bad_rows  # some rows are quarantined: their verdicts are replayed too
    site = site_for(source, records, page_size=10)
    kind, body = site.files[f"{LIST}index_1.html"]
    footer = f'<tr><td colspan="{len(source.columns)}">备注：以上信息自公示之日起公示三年</td></tr></tbody>'
    site.files[f"{LIST}index_1.html"] = (kind, body.decode("gb18030").replace("</tbody>", footer).encode("gb18030"))
    with site.running():
        results = collect(source.id, DAY, registry, connection_info(source.connection or "", connection_for(site)))
    assert [r.outcome for r in results] == ["landed"] * 5
    assert any("footer row(s)" in w for w in results[1].warnings)
    validate_pending(source.id, registry)
    publish_validated(source.id)
    with psycopg.connect(url) as conn:
        original = landed_state(conn, ["admin_penalty"])
    assert len(original["raw.admin_penalty"]) == 45 and original["quarantine.rows"]
    assert all(load[8].startswith("packs/") for load in original["ops.loads"])  # archive_path: a page of a pack
    return registry, results, original


def test_web_pages_replay_like_any_other_load(platform: str, capsys: pytest.CaptureFixture[str]) -> None:
    registry, results, original = _delivered(platform)
    manifests = select_manifests(since=SINCE)
    assert sorted(m["load_id"] for m in manifests) == sorted(r.load_id for r in results)
    assert [m["first_row_no"] for m in manifests] == [1, 11, 21, 31, 41]  # numbered through the list
    assert {(m["kind"], m["channel"]) for m in manifests} == {("page", "web")}
    again = replay(manifests, registry)
    assert {r.outcome for r in again} == {"already_landed"}
    with psycopg.connect(platform) as conn:
        assert differences(original, landed_state(conn, ["admin_penalty"])) == []
        empty_warehouse(conn, ["admin_penalty"])

    # One load by its id, as `huiju replay --load` does.
    assert main(["replay", "--load", results[2].load_id]) == 0
    assert f"landed: {results[2].load_id}" in capsys.readouterr().out
    # The source over a range of days, as the replay DAG's task does with the Params Airflow validated.
    from huiju_airflow.dag_factory import replay_dag
    from huiju_airflow.tasks import replay_archived

    delivered = delivery_day(manifests[0]).isoformat()  # the day (Asia/Shanghai) the run delivered them
    params = copy.deepcopy(replay_dag().params)
    params.update({"source_id": BASE, "since": delivered, "until": delivered})
    restored = replay_archived(params=params.validate())
    assert restored["outcomes"] == {"landed": 4, "already_landed": 1}
    # Everything since a day: all of it is there again.
    assert {r.outcome for r in replay(select_manifests(since=SINCE), registry)} == {"already_landed"}
    with psycopg.connect(platform) as conn:
        assert differences(original, landed_state(conn, ["admin_penalty"])) == []


def test_a_page_that_no_longer_reads_as_it_landed_is_refused_by_name(platform: str) -> None:
    registry, results, _ = _delivered(platform)
    with psycopg.connect(platform) as conn:
        empty_warehouse(conn, ["admin_penalty"])
    # The footer rule switched off since: the second page's table would read with its 备注 line as a record.
    source = registry.source(BASE)
    unfooted = source.model_copy(update={"footer": source.footer.model_copy(update={"enabled": False})})
    changed = registry.model_copy(update={"sources": {**registry.sources, BASE: unfooted}})
    [manifest] = select_manifests(load_id=results[1].load_id)
    with pytest.raises(ReplayError, match=f"{results[1].load_id}: .*no longer reads as it did"):
        replay([manifest], changed)
    with psycopg.connect(platform) as conn:
        assert conn.execute("select count(*) from ops.loads").fetchone()[0] == 0
