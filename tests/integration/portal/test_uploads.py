"""Excel upload through the portal: the template, a filled-in template landed and validated, and what is refused.

Every refusal must say in Chinese what is wrong and leave nothing behind: no ledger row, no
raw row, no archived copy, no temporary file — only the audit trail's note of the refusal.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import openpyxl
import psycopg
import pytest
from fastapi.testclient import TestClient
from huiju_demo.bulk import penalty_row
from huiju_demo.ports import free_port

from huiju.registry import Registry
from huiju_portal.app import create_app
from huiju_portal.uploads import accept_upload
from huiju_portal.workbook import GUIDE_SHEET, OPTIONS_SHEET, template_workbook
from tests.support.portal import filled_template, login, macro_workbook, portal_settings

SOURCE = "sthjj_penalty"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def test_the_template_has_the_departments_headers_marks_and_dropdowns(portal_env) -> None:
    registry: Registry = portal_env.registry
    source = registry.source(SOURCE)
    workbook = openpyxl.load_workbook(io.BytesIO(template_workbook(registry, source)))
    assert workbook.sheetnames == ["行政处罚", GUIDE_SHEET, OPTIONS_SHEET]
    assert workbook[OPTIONS_SHEET].sheet_state == "hidden"
    sheet = workbook.worksheets[0]
    assert "环境行政处罚" in sheet["A1"].value  # the title row, merged across the columns
    assert [r.coord for r in sheet.merged_cells.ranges] == ["A1:M1"]
    header = [cell.value for cell in sheet[source.header_row]]
    assert header == list(source.columns)
    dataset = registry.dataset_of(source)
    for cell in sheet[source.header_row]:
        required = dataset.field(source.columns[cell.value]).required
        assert (cell.font.color is not None and cell.font.color.rgb == "FFC00000") == required, cell.value
        assert cell.comment.text.startswith("必填" if required else "选填")
    column = {h: openpyxl.utils.get_column_letter(i) for i, h in enumerate(header, start=1)}
    first = source.header_row + 1
    # Dates, codes and ID numbers are text cells; the fine is a number.
    for name in ("处罚决定日期", "统一社会信用代码", "法定代表人证件号码"):
        assert sheet[f"{column[name]}{first}"].number_format == "@", name
    assert sheet[f"{column['罚款金额（万元）']}{first}"].number_format == "General"
    validations = {str(v.sqref).split(":")[0][:-len(str(first))]: v for v in sheet.data_validations.dataValidation}
    party_type = validations[column["行政相对人类别"]]
    assert party_type.type == "list" and OPTIONS_SHEET in party_type.formula1 and party_type.showErrorMessage
    options = [c.value for c in workbook[OPTIONS_SHEET][party_type.formula1.split("$")[1]][1:] if c.value]
    assert options == list(dataset.field("party_type").enum)
    assert validations[column["处罚类别"]].type == "list" and not validations[column["处罚类别"]].showErrorMessage
    fine = validations[column["罚款金额（万元）"]]
    assert (fine.type, fine.formula1, fine.formula2) == ("decimal", "0", "10000")
    assert "2026-03-05" in validations[column["处罚决定日期"]].prompt
    guide = "\n".join(str(c.value) for row in workbook[GUIDE_SHEET].iter_rows() for c in row if c.value)
    assert "含宏" in guide and "统一社会信用代码" in guide and "必填" in guide


def test_a_filled_template_lands_through_the_core_with_its_verdict_and_feedback(portal_env, tmp_path: Path) -> None:
    registry = portal_env.registry
    source = registry.source(SOURCE)
    uscc = penalty_row(source, 1, "V")["统一社会信用代码"]
    path = filled_template(registry, source, tmp_path / "环境处罚202611.xlsx", 20, tag="V", overrides={
        1: {"统一社会信用代码": uscc[:-1] + ("0" if uscc[-1] != "0" else "1")},  # a check digit wrong
        4: {"处罚决定日期": "2026-02-30"},
    })
    with psycopg.connect(portal_env.url, autocommit=True) as conn:
        from huiju_portal.accounts import find_account

        account = find_account(conn, "sthjj_submitter")
        result = accept_upload(conn, registry, source, account, path, path.name, client_addr="10.1.1.1")
        assert result.outcome == "landed" and result.verdict is not None
        assert (result.verdict.status, result.verdict.rows_received, result.verdict.rows_quarantined) == (
            "validated", 20, 2)
        load = conn.execute("select channel, department, reference, archive_path from ops.loads where load_id = %s",
                            (result.load_id,)).fetchone()
        assert load[:3] == ("portal", "sthjj", "环境处罚202611.xlsx")
        assert (portal_env.var / "archive" / load[3]).is_file()
        quarantined = dict(conn.execute("select row_no, reasons from quarantine.rows where load_id = %s",
                                        (result.load_id,)).fetchall())
        # The template's title row makes the first record row 3: rows as the department sees them.
        assert set(quarantined) == {4, 7} and "校验码" in quarantined[4] and "不是有效日期" in quarantined[7]
        submitted = conn.execute("select a.username, s.kind from portal.submissions s join portal.accounts a"
                                 " using (account_id) where s.load_id = %s", (result.load_id,)).fetchone()
        assert submitted == ("sthjj_submitter", "upload")
        feedback = conn.execute("select channel, rows from ops.feedback where load_id = %s",
                                (result.load_id,)).fetchone()
        assert feedback == ("portal", 2)
        notice = conn.execute("select body from ops.notices where dedupe_key = %s",
                              (f"feedback:{result.load_id}",)).fetchone()[0]
        assert "部门门户" in notice


def _snapshot(portal_env) -> dict[str, object]:
    """What an upload could leave behind: ledger, raw, quarantine, submitters, archive and work files."""
    with psycopg.connect(portal_env.url) as conn:
        counts = {table: conn.execute(f"select count(*) from {table}").fetchone()[0]
                  for table in ("ops.loads", "quarantine.rows", "portal.submissions", "ops.repeats")}
        raw = conn.execute("select to_regclass('raw.admin_penalty') is not null").fetchone()[0]
        counts["raw"] = conn.execute("select count(*) from raw.admin_penalty").fetchone()[0] if raw else 0
    archive = portal_env.var / "archive"
    counts["archived"] = sorted(p.name for p in archive.rglob("*") if p.is_file()) if archive.exists() else []
    work = portal_env.var / "work" / "portal"
    counts["work"] = sorted(p.name for p in work.iterdir()) if work.exists() else []
    return counts


def _upload(client, content: bytes, name: str = "upload.xlsx"):
    page = client.get(f"/submit/{SOURCE}/upload")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post(f"/submit/{SOURCE}/upload", data={"csrf_token": token}, files={"file": (name, content, XLSX)})


def test_uploading_through_the_page_shows_the_verdict_and_serves_the_feedback(client_for, portal_env,
                                                                              tmp_path: Path) -> None:
    registry = portal_env.registry
    source = registry.source(SOURCE)
    path = filled_template(registry, source, tmp_path / "十一月处罚.xlsx", 12, tag="H", overrides={
        2: {"行政相对人类别": "企业"}})
    client = client_for("sthjj_submitter")
    response = _upload(client, path.read_bytes(), path.name)
    assert response.status_code == 200 and re.match(r"/history/sthjj_penalty-[0-9a-f]{16}$", response.url.path)
    assert "文件已接收并完成校验" in response.text and "校验通过，待入库" in response.text
    assert "「行政相对人类别」的值不在规定范围内" in response.text
    workbook = client.get(response.url.path + "/feedback.xlsx")
    assert workbook.status_code == 200 and workbook.headers["content-type"] == XLSX
    rows = list(openpyxl.load_workbook(io.BytesIO(workbook.content))["问题数据"].values)
    assert rows[0][0] == "原文件行号" and rows[1][0] == 5 and "行政相对人类别" in rows[1][-1]

    before = _snapshot(portal_env)
    again = _upload(client, path.read_bytes(), "十一月处罚（再次上传）.xlsx")
    assert again.url.path == response.url.path and "未重复入库" in again.text
    after = _snapshot(portal_env)
    assert {k: after[k] for k in ("ops.loads", "raw", "portal.submissions")} == {
        k: before[k] for k in ("ops.loads", "raw", "portal.submissions")}


def test_a_validated_upload_asks_for_its_ingest_run_and_airflow_out_of_reach_loses_nothing(portal_env,
                                                                                           tmp_path: Path) -> None:
    # Nothing listens on the port: the request for the run fails for real (refused connection), after the page.
    settings = portal_settings(portal_env.var, airflow_url=f"http://127.0.0.1:{free_port()}",
                               airflow_user="huiju_portal", airflow_password="not-needed")
    app = create_app(settings, registry=portal_env.registry, warehouse_url=portal_env.url)
    path = filled_template(portal_env.registry, portal_env.registry.source(SOURCE), tmp_path / "急报.xlsx", 3, tag="AF")
    with TestClient(app, base_url="http://portal.test", follow_redirects=True) as client:
        login(client, "sthjj_submitter", portal_env.passwords["sthjj_submitter"])
        response = _upload(client, path.read_bytes(), path.name)  # the test client runs background tasks too
    assert response.status_code == 200 and "校验通过，待入库" in response.text
    load_id = response.url.path.rsplit("/", 1)[-1]
    with psycopg.connect(portal_env.url) as conn:
        status = conn.execute("select status from ops.loads where load_id = %s", (load_id,)).fetchone()[0]
        events = conn.execute("select kind, username, detail from portal.events where detail->>'load_id' = %s"
                              " and kind like 'ingest_run%%'", (load_id,)).fetchall()
    assert status == "validated"  # the source's next scheduled run publishes it
    ((kind, username, detail),) = events
    assert (kind, username, detail["dag_id"], detail["run_id"]) == (
        "ingest_run_failed", "sthjj_submitter", "ingest__sthjj_penalty", f"portal__{load_id}")
    assert "connect" in detail["error"].lower()


def _license_headers_workbook(portal_env, path: Path) -> bytes:
    """A workbook with another dataset's headers (行政许可): the wrong template."""
    workbook = openpyxl.Workbook()
    workbook.active.append(list(portal_env.registry.source("scjgj_license").columns))
    workbook.active.append(["某公司"] * len(portal_env.registry.source("scjgj_license").columns))
    workbook.save(path)
    return path.read_bytes()


def _title_row_removed(portal_env, path: Path) -> bytes:
    source = portal_env.registry.source(SOURCE)
    filled_template(portal_env.registry, source, path, 2, tag="R")
    workbook = openpyxl.load_workbook(path)
    workbook.worksheets[0].delete_rows(1)
    workbook.save(path)
    return path.read_bytes()


def _empty_template(portal_env, path: Path) -> bytes:
    return template_workbook(portal_env.registry, portal_env.registry.source(SOURCE))


BAD_UPLOADS = {
    "wrong_template": (_license_headers_workbook, 400,
                       ["不是「环境行政处罚」的报送模板", "缺少必填列", "「行政处罚决定书文号」", "行政许可数据"]),
    "header_on_wrong_row": (_title_row_removed, 400, ["表头在第1行", "应在第2行", "标题行"]),
    "macro_workbook": (lambda env, path: macro_workbook(path).read_bytes(), 400, ["启用宏的工作簿", ".xlsx"]),
    "legacy_xls": (lambda env, path: bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 4096, 400, ["旧版Excel"]),
    "html_page": (lambda env, path: "<html><body><table><tr><td>处罚</td></tr></table></body></html>".encode(), 400,
                  ["网页（HTML）"]),
    "empty_template": (_empty_template, 400, ["没有数据"]),
    "empty_file": (lambda env, path: b"", 400, ["文件为空"]),
    "oversized": (lambda env, path: b"\x00" * (21 * 1024 * 1024), 413, ["超过上传大小上限（20 MB）"]),
}


@pytest.mark.parametrize("case", sorted(BAD_UPLOADS))
def test_a_bad_upload_is_refused_with_a_clear_reason_and_nothing_stored(case: str, client_for, portal_env,
                                                                        tmp_path: Path) -> None:
    make, status, phrases = BAD_UPLOADS[case]
    client = client_for("sthjj_submitter")
    content = make(portal_env, tmp_path / f"{case}.xlsx")
    before = _snapshot(portal_env)
    response = _upload(client, content, f"{case}.xlsx")
    assert response.status_code == status, response.text[-2000:]
    message = re.search(r'id="upload-error">(.*?)</p>', response.text, re.S).group(1)
    for phrase in phrases:
        assert phrase in message, message
    assert _snapshot(portal_env) == before
    with psycopg.connect(portal_env.url) as conn:
        reason = conn.execute("select detail->>'reason' from portal.events where kind = 'upload_refused'"
                              " order by event_id desc limit 1").fetchone()[0]
    assert phrases[0] in reason
