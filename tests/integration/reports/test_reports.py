"""Scheduled reports on a real warehouse: the workbook's numbers are plain SQL's, it holds native charts,
the PNGs set their Chinese in Noto Sans CJK, a past period rebuilt later gives the same numbers, the
e-mail goes once per report and period, the archive is private and indexed, no ID or phone number leaks.

One database for the module: a month's penalties (market regulation and tax, one natural person) and
the demo's registers landed and published, the dbt project built, the monthly report run.
"""

from __future__ import annotations

import csv
import json
import re
import stat
import subprocess
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import psycopg
import pytest
from huiju_demo.bulk import valid_id_number, valid_uscc, write_penalty_csv
from huiju_demo.generate import generate_submissions
from huiju_demo.mail_sink import mails_with_subject

from huiju.notices import deliver_pending
from huiju.registry import load_registry
from huiju.reports.charts import cjk_font, missing_glyphs
from huiju.reports.config import load_reports
from huiju.reports.delivery import run_report
from huiju.reports.statistics import BEIJING, parse_period, period_containing
from huiju.settings import get_settings
from huiju.transform import run_dbt
from huiju.warehouse import role_url
from tests.dbt.helpers import land_and_publish, land_validate_publish, register_sources

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
ID_OR_MOBILE = re.compile(r"(?<!\d)(\d{17}[\dXx]|1[3-9]\d{9})(?!\d)")


def _sheet(path: Path, title: str) -> list[tuple]:
    book = openpyxl.load_workbook(path, read_only=True)
    return [row for row in book[title].iter_rows(min_row=4, values_only=True) if row and row[0] is not None]


@pytest.fixture(scope="module")
def built(make_database, tmp_path_factory: pytest.TempPathFactory) -> dict:
    subprocess.run(["bash", str(ROOT / "scripts" / "install_cjk_font.sh")], check=True)
    url = make_database("reports")
    from huiju import warehouse

    warehouse.migrate(url)
    work = tmp_path_factory.mktemp("reports")
    registry = load_registry()
    today = datetime.now(BEIJING).date()
    month_day = today.replace(day=min(today.day, 5)).isoformat()
    market, tax = registry.source("scjgj_penalty"), registry.source("swj_penalty")

    def decided(source, rows: int, tag: str, fine: str) -> dict[int, dict[str, str]]:
        headers = source.header_for_field
        out = {i: {headers["decision_date"]: month_day, headers["fine_amount_wan"]: fine} for i in range(rows)}
        out[0] = {**out[0], headers["decision_date"]: "2025-01-15"}  # an older decision: outside the month
        return out

    land_and_publish(url, "scjgj_penalty", write_penalty_csv(work / "m.csv", market, 60, tag="RM",
                                                             overrides=decided(market, 60, "RM", "2.5")), registry)
    natural = decided(tax, 30, "RT", "0.4")
    natural[3] = {**natural[3], tax.header_for_field["party_type"]: "自然人", tax.header_for_field["uscc"]: "",
                  tax.header_for_field["legal_rep_id_no"]: valid_id_number(4242)}
    land_and_publish(url, "swj_penalty", write_penalty_csv(work / "t.csv", tax, 30, tag="RT", encoding="utf-8-sig",
                                                           overrides=natural), registry)
    # The market regulator's register names the industry of three of the penalised companies (2 制造业, 1 批发和零售业).
    land_and_publish(url, "scjgj_registration", _registrations(work / "r.csv", registry.source("scjgj_registration"),
                                                               {1: "C3511", 2: "C1391", 3: "F5261"}), registry)
    manifest = generate_submissions(registry, work / "inbox", today - timedelta(days=1), rows_per_source=30,
                                    sources=register_sources(registry))
    for sub in manifest.submissions:
        land_validate_publish(url, sub.source_id, sub.path, registry)
    run_dbt(["build", "--exclude-resource-type", "unit_test"], url, target_path=work / "target")
    return {"url": url, "work": work, "registry": registry, "market": market, "month": f"{today:%Y-%m}"}


def _registrations(path: Path, source, industries: dict[int, str]) -> Path:
    """企业登记 rows for the companies of penalty_row's serials, each with the industry code given."""
    rows = [{"uscc": valid_uscc(serial), "enterprise_name": f"测试企业{serial}有限公司",
             "enterprise_type": "有限责任公司", "legal_rep": "张三", "registered_capital_wan": "100",
             "established_date": "2020-01-02", "status": "存续",
             "region_code": valid_uscc(serial)[2:8], "authority": "测试市市场监督管理局", "industry_code": code}
            for serial, code in industries.items()]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(source.columns))
        for row in rows:
            writer.writerow([row.get(field, "") for field in source.columns.values()])
    return path


@pytest.fixture
def report_var(built: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HUIJU_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("HUIJU_STEWARD_EMAILS", "steward@example.gov.cn")
    get_settings.cache_clear()
    yield tmp_path / "var"
    get_settings.cache_clear()


def _run(built: dict, now: datetime | None = None):
    report = load_reports()["monthly_bulletin"]
    with psycopg.connect(role_url("transformation", built["url"])) as conn:
        return run_report(conn, built["registry"], report, parse_period("month", built["month"]), now=now)


def test_the_report_configurations_load() -> None:
    reports = load_reports()
    assert {"monthly_bulletin", "weekly_summary"} <= set(reports)
    assert reports["monthly_bulletin"].period == "month" and reports["weekly_summary"].period == "week"


def test_workbook_numbers_equal_plain_sql(built: dict, report_var: Path) -> None:
    run = _run(built)
    start = parse_period("month", built["month"])
    with psycopg.connect(built["url"]) as conn:
        count, fines, natural = conn.execute(
            "select count(*), sum(fine_amount_wan), count(*) filter (where party_type = '自然人')"
            " from credit.credit_admin_penalty where decision_date >= %s and decision_date < %s",
            (start.start, start.end)).fetchone()
        by_district = dict(conn.execute(
            "select coalesce(division.full_name, '未知地区'), count(*) from credit.credit_admin_penalty as p"
            " left join basic.basic_spatial_division as division"
            "   on division.division_code = coalesce(case when p.uscc is not null then substr(p.uscc, 3, 6) end,"
            "                                        substr(p.legal_rep_id_no, 1, 6))"
            " where decision_date >= %s and decision_date < %s group by 1", (start.start, start.end)).fetchall())
    assert count == 88 and natural == 1  # 59 + 29 in the month (each file's first row decided in 2025)
    rows = _sheet(run.workbook, "行政处罚·分区县")
    assert {row[0]: row[1] for row in rows} == by_district
    assert sum(row[1] for row in rows) == count
    assert Decimal(str(round(sum(row[2] for row in rows), 2))) == fines
    assert sum(row[4] for row in rows) == natural
    summary = {row[0]: row[1] for row in openpyxl.load_workbook(run.workbook)["摘要"].iter_rows(values_only=True)
               if row[0]}
    assert summary["本月行政处罚（件）"] == count
    assert Decimal(str(summary["本月罚款金额（万元）"])) == fines
    by_department = {row[0]: row[1] for row in _sheet(run.workbook, "行政处罚·分报送部门")}
    assert by_department == {"市场监督管理局": 59, "税务局": 29}


def test_penalties_by_industry_follow_the_party_registration_not_the_reporting_department(
        built: dict, report_var: Path) -> None:
    run = _run(built)
    period = parse_period("month", built["month"])
    with psycopg.connect(built["url"]) as conn:  # plain SQL: the party's latest registration, its industry's section
        expected = dict(conn.execute(
            "select case when p.party_type = '自然人' then '自然人'"
            "            else coalesce(s.industry_section_name, '未知行业') end, count(*)::integer"
            "  from credit.credit_admin_penalty as p"
            "  left join lateral (select r.industry_code from staging.stg_landing__enterprise_registrations as r"
            "                      where r.uscc = p.uscc order by r.published_at desc, r.load_id desc,"
            "                            r.source_row_no desc limit 1) as r on p.party_type <> '自然人'"
            "  left join basic.code_industry_section as s on s.industry_section = left(r.industry_code, 1)"
            " where p.decision_date >= %s and p.decision_date < %s group by 1", (period.start, period.end)).fetchall())
    by_industry = {row[0]: row[1] for row in _sheet(run.workbook, "行政处罚·分行业")}
    assert by_industry == expected
    assert by_industry["制造业"] >= 2 and by_industry["批发和零售业"] >= 1 and by_industry["自然人"] == 1
    assert not {"市场监督管理局", "税务局"} & set(by_industry)  # departments are not industries


def test_the_workbook_holds_native_charts_and_the_pngs_set_chinese_in_a_cjk_font(built: dict,
                                                                                   report_var: Path) -> None:
    run = _run(built)
    book = openpyxl.load_workbook(run.workbook)
    assert book.sheetnames[0] == "摘要"
    with zipfile.ZipFile(run.workbook) as archive:
        charts = [name for name in archive.namelist() if name.startswith("xl/charts/chart")]
        titles = "".join(archive.read(name).decode() for name in charts)
    assert len(charts) >= 8 and "各区县行政处罚件数" in titles
    font = cjk_font()
    assert font.family.startswith("Noto Sans CJK") and font.path.is_file()
    report = load_reports()["monthly_bulletin"]
    labels = [t.chart.title for t in report.tables if t.chart] + [m.label for t in report.tables for m in t.measures]
    labels += [row[0] for row in _sheet(run.workbook, "行政处罚·分区县")]
    assert missing_glyphs(labels, font) == set()
    assert run.charts and all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in run.charts)


def test_a_past_period_rebuilt_later_gives_the_same_numbers(built: dict, report_var: Path) -> None:
    first = _run(built)
    before = _sheet(first.workbook, "行政处罚·分区县")
    coverage_before = _sheet(first.workbook, "社会保险覆盖·分区县")
    industry_before = _sheet(first.workbook, "行政处罚·分行业")
    assert coverage_before and sum(row[1] for row in coverage_before) > 0
    # Later: a correction of a decision of the month and new decisions of the month arrive.
    market = built["market"]
    headers = market.header_for_field
    correction = write_penalty_csv(built["work"] / "later.csv", market, 5, tag="RM", overrides={
        i: {headers["decision_date"]: f"{built['month']}-01", headers["fine_amount_wan"]: "99"} for i in range(5)})
    land_and_publish(built["url"], "scjgj_penalty", correction, built["registry"])
    extra = write_penalty_csv(built["work"] / "extra.csv", market, 7, tag="RX", overrides={
        i: {headers["decision_date"]: f"{built['month']}-01"} for i in range(7)})
    land_and_publish(built["url"], "scjgj_penalty", extra, built["registry"])
    # … and the next day's 户籍 and 参保 batches (more residents, more contributors).
    registry = built["registry"]
    people = sorted(sid for sid in register_sources(registry)
                    if registry.source(sid).dataset in ("household_registration", "social_insurance"))
    assert len(people) == 2, people
    manifest = generate_submissions(registry, built["work"] / "later-inbox", datetime.now(BEIJING).date(),
                                    rows_per_source=40, sources=people)
    for sub in manifest.submissions:
        land_validate_publish(built["url"], sub.source_id, sub.path, registry)
    run_dbt(["build", "--exclude-resource-type", "unit_test"], built["url"], target_path=built["work"] / "target")
    again = _run(built, now=datetime.now(UTC) + timedelta(days=40))
    assert again.as_of == first.as_of
    assert _sheet(again.workbook, "行政处罚·分区县") == before
    assert _sheet(again.workbook, "社会保险覆盖·分区县") == coverage_before
    assert _sheet(again.workbook, "行政处罚·分行业") == industry_before
    with psycopg.connect(built["url"]) as conn:  # read now, the coverage counts the later residents
        residents_now = conn.execute(
            "select sum(working_age_residents) from analysis.analysis_social_insurance_coverage").fetchone()[0]
    assert residents_now > sum(row[1] for row in coverage_before)
    with psycopg.connect(built["url"]) as conn:  # read now, the layer shows the later data
        now_count = conn.execute("select sum(decision_count) from analysis.analysis_credit_statistics"
                                 " where record_kind = '行政处罚' and stat_month = %s",
                                 (parse_period("month", built["month"]).start,)).fetchone()[0]
    assert now_count == sum(row[1] for row in before) + 7 + 1  # 7 new, and RM0 moved into the month


def test_one_email_per_report_and_period_under_reruns(built: dict, report_var: Path, sink,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from huiju_airflow.tasks import email_sender

    for key, value in sink.airflow_env().items():
        monkeypatch.setenv(key, value)
    run = _run(built)
    _run(built)
    with psycopg.connect(role_url("validation", built["url"])) as conn:
        deliver_pending(conn, {"email": email_sender()})
        deliver_pending(conn, {"email": email_sender()})
        queued = conn.execute("select count(*) from ops.notices where dedupe_key = %s",
                              (f"report:monthly_bulletin:{built['month']}",)).fetchone()[0]
    assert queued == 1
    mails = mails_with_subject(sink.folder, "信用信息月度通报")
    assert sorted(m["To"] for _, m in mails) == ["steward@example.gov.cn", "xyb-leaders@example.gov.cn"]
    for _, mail in mails:  # the charts in the body (multipart/related, cid:), the workbook attached
        assert mail.get_content_type() == "multipart/related"
        html = next(part for part in mail.walk() if part.get_content_type() == "text/html").get_content()
        images = {part["Content-ID"].strip("<>"): part for part in mail.walk()
                  if part.get_content_type() == "image/png" and part.get_content_disposition() == "inline"}
        shown = set(re.findall(r'src="cid:([^"]+)"', html))
        assert shown and shown == set(images) == {path.name for path in run.charts}
        assert all(part.get_payload(decode=True)[:8] == b"\x89PNG\r\n\x1a\n" for part in images.values())
        assert any((part.get_filename() or "").endswith(".xlsx") for part in mail.walk())


def test_the_archive_is_private_indexed_and_free_of_id_and_phone_numbers(built: dict, report_var: Path) -> None:
    run = _run(built)
    files = [run.workbook, *run.charts, report_var / "reports" / "index.json"]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(run.workbook.parent.stat().st_mode) == 0o700
    index = json.loads((report_var / "reports" / "index.json").read_text(encoding="utf-8"))
    assert any(e["report"] == "monthly_bulletin" and e["period"] == built["month"] for e in index)
    with zipfile.ZipFile(run.workbook) as archive:
        text = "".join(archive.read(n).decode("utf-8", "replace") for n in archive.namelist() if n.endswith(".xml"))
    assert not ID_OR_MOBILE.search(text)
    assert valid_id_number(4242) not in text


def test_periods() -> None:
    week = parse_period("week", "2026-W47")
    assert (week.start.isoformat(), week.end.isoformat(), week.month.isoformat()) == \
        ("2026-11-16", "2026-11-23", "2026-11-01")
    assert period_containing("month", week.start).key == "2026-11"
    with pytest.raises(ValueError):
        parse_period("month", "2026-13-01")


def test_a_cjk_font_missing_from_matplotlibs_font_cache_is_found_through_fontconfig(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # matplotlib's font list is cached the first time it runs: a font installed afterwards is not in it.
    from matplotlib import font_manager

    subprocess.run(["bash", str(ROOT / "scripts" / "install_cjk_font.sh")], check=True)

    def not_in_cache(*args, **kwargs):
        raise ValueError("not in matplotlib's font list")

    monkeypatch.setattr(font_manager, "findfont", not_in_cache)
    cjk_font.cache_clear()
    try:
        font = cjk_font()
    finally:
        cjk_font.cache_clear()
    assert font.family.startswith("Noto Sans CJK") and font.path.is_file()
    assert missing_glyphs(["各区县行政处罚件数"], font) == set()
