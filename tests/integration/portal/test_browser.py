"""The portal in a real browser (headless chromium, network cut): what a department's clerk does and sees.

Few and meaningful (each drives the real pages end to end, screenshots kept under
``var/test-artifacts/``): an upload from the downloaded template to the verdict and the feedback
workbook, then the workbook of a record the credit platform rejected, listed in the history; a manual
entry checked as it is typed, then saved as its own batch; and the refusals a clerk can meet — a wrong
template, a workbook with macros, a file over the cap,
another department's batch, an expired session, too many wrong passwords.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import psycopg
import pytest
from huiju_demo.bulk import penalty_row

from huiju.push.feedback import send_rejections
from huiju.push.targets import load_targets
from huiju.warehouse import role_url
from huiju_portal.accounts import find_account
from huiju_portal.app import create_app
from huiju_portal.entry import save_entry
from tests.support.browser import BrowserSession, serve_asgi
from tests.support.portal import macro_workbook, portal_settings, records

pytestmark = pytest.mark.browser  # besides integration, from the folder


@pytest.fixture(scope="module")
def portal_url(portal_env) -> Iterator[str]:
    """The portal served on a loopback port for the browser."""
    app = create_app(portal_settings(portal_env.var), registry=portal_env.registry, warehouse_url=portal_env.url)
    with serve_asgi(app) as url:
        yield url


def _log_in(browser: BrowserSession, url: str, username: str, password: str) -> None:
    page = browser.page
    if "/login" not in page.url:
        page.goto(f"{url}/")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


def test_a_clerk_uploads_the_filled_template_and_gets_the_verdict_and_feedback(
        browser_page: BrowserSession, portal_url: str, portal_env, tmp_path: Path) -> None:
    page = browser_page.page
    page.goto(f"{portal_url}/history")
    assert page.url.startswith(f"{portal_url}/login")
    browser_page.screenshot("login")
    _log_in(browser_page, portal_url, "sthjj_submitter", portal_env.passwords["sthjj_submitter"])
    assert page.url == f"{portal_url}/history"
    page.click("text=数据报送")
    with page.expect_download() as download:
        page.click("a[href='/submit/sthjj_penalty/template.xlsx']")
    template = tmp_path / "template.xlsx"
    download.value.save_as(template)
    assert download.value.suggested_filename == "环境行政处罚_报送模板.xlsx"

    # The clerk fills the downloaded template in: 30 penalties, one of them with a wrong check digit.
    source = portal_env.registry.source("sthjj_penalty")
    workbook = openpyxl.load_workbook(template)
    sheet = workbook.worksheets[0]
    for index in range(30):
        values = penalty_row(source, index, "B")
        if index == 7:
            values["统一社会信用代码"] = values["统一社会信用代码"][:-1] + (
                "0" if values["统一社会信用代码"][-1] != "0" else "1")
        for column, header in enumerate(source.columns, start=1):
            sheet.cell(row=source.header_row + 1 + index, column=column, value=values[header] or None)
    filled = tmp_path / "十一月环境处罚.xlsx"
    workbook.save(filled)

    page.click("a[href='/submit/sthjj_penalty/upload']")
    page.set_input_files("#file", str(filled))
    browser_page.screenshot("upload-form")
    page.click("#upload-button")
    page.wait_for_url(f"{portal_url}/history/sthjj_penalty-*")
    assert page.inner_text("#status") == "校验通过，待入库"
    assert (page.inner_text("#rows-received"), page.inner_text("#rows-accepted"),
            page.inner_text("#rows-quarantined")) == ("30", "29", "1")
    assert "第18位校验码错误" in page.inner_text("table.problems")
    assert page.inner_text("table.problems tbody td.num") == str(source.header_row + 1 + 7)
    browser_page.screenshot("verdict")
    with page.expect_download() as download:
        page.click("#feedback-link")
    feedback = openpyxl.load_workbook(io.BytesIO(Path(download.value.path()).read_bytes()))
    rows = list(feedback["问题数据"].values)
    assert rows[1][0] == 10 and "统一社会信用代码" in rows[1][-1]

    page.click("text=报送记录")
    row = page.locator("tr[data-load-id^='sthjj_penalty-']").first
    assert "十一月环境处罚.xlsx" in row.inner_text() and "文件上传" in row.inner_text()
    browser_page.screenshot("history")

    # The city credit platform rejects one of the batch's records: the workbook sent back through the
    # feedback path is listed in the history too, and downloads with the platform's reason.
    load_id = row.get_attribute("data-load-id")
    _rejected_by_the_credit_platform(portal_env, load_id, source.header_row + 1 + 3, "文书号不符合省级编码规范")
    page.reload()
    rejection = page.locator(f"#rejections tr[data-load-id='{load_id}']")
    assert "市公共信用信息平台" in rejection.inner_text() and "十一月环境处罚.xlsx" in rejection.inner_text()
    browser_page.screenshot("history-rejections")
    with page.expect_download() as download:
        rejection.locator("a.rejection-link").click()
    rejected = list(openpyxl.load_workbook(io.BytesIO(Path(download.value.path()).read_bytes()))["问题数据"].values)
    assert rejected[1][0] == source.header_row + 1 + 3 and "文书号不符合省级编码规范" in rejected[1][-1]


def _rejected_by_the_credit_platform(portal_env, load_id: str, row_no: int, reason: str) -> None:
    """A receipt of city_credit rejecting row ``row_no`` of ``load_id``, sent back as a push run does."""
    with psycopg.connect(role_url("validation", portal_env.url)) as conn:
        conn.execute("insert into ops.push_outbox (target, record_key, relation, action, content_hash,"
                     " department, load_id, source_row_no, state, reason) values ('city_credit', 'CF:退回测试',"
                     " 'credit_legal_person_penalty', 'upsert', 'x', 'sthjj', %s, %s, 'rejected', %s)",
                     (load_id, row_no, reason))
        conn.commit()
        assert send_rejections(conn, portal_env.registry, load_targets(portal_env.registry))


def test_a_clerk_enters_records_checked_as_typed_and_saves_them_as_a_batch(
        browser_page: BrowserSession, portal_url: str, portal_env) -> None:
    page = browser_page.page
    _log_in(browser_page, portal_url, "mzj_submitter", portal_env.passwords["mzj_submitter"])
    page.goto(f"{portal_url}/submit/mzj_penalty/entry")
    source = portal_env.registry.source("mzj_penalty")
    good = {source.columns[h]: v for h, v in penalty_row(source, 1, "W").items()}

    def fill(index: int, values: dict[str, str]) -> None:
        for name, value in values.items():
            selector = f"[name='r{index}__{name}']"
            kind = page.get_attribute(selector, "data-field") and page.eval_on_selector(
                selector, "e => e.tagName + (e.multiple ? '*' : '')")
            if kind == "SELECT*":
                page.select_option(selector, value.split(";"))
            elif kind == "SELECT":
                page.select_option(selector, value)
            elif value:
                page.fill(selector, value)

    wrong = good["uscc"][:-1] + ("0" if good["uscc"][-1] != "0" else "1")
    fill(0, {**good, "uscc": wrong})
    problem = page.locator("[data-field='uscc'] .problem").first
    problem.wait_for(state="visible")
    page.wait_for_function("() => document.querySelector(\"[data-problem-for='uscc']\").textContent.length > 0")
    assert problem.inner_text() == "「统一社会信用代码」第18位校验码错误，请核对代码是否抄错"
    browser_page.screenshot("entry-live-check")
    page.fill("[name='r0__uscc']", good["uscc"])
    page.wait_for_function("() => document.getElementById('check-status').textContent === '已校验，未发现问题'")
    assert problem.inner_text() == ""

    page.click("#add-record")
    second = {source.columns[h]: v for h, v in penalty_row(source, 2, "W").items()}
    fill(1, second)
    page.wait_for_function("() => document.getElementById('check-status').textContent === '已校验，未发现问题'")
    browser_page.screenshot("entry-two-records")
    page.click("#save-entry")
    page.wait_for_url(f"{portal_url}/history/mzj_penalty-*")
    assert page.inner_text("#arrival").startswith("录入的记录已保存为一个报送批次")
    assert page.inner_text("#status") == "校验通过，待入库" and page.inner_text("#rows-received") == "2"
    assert "人工录入" in page.inner_text("#verdict")
    browser_page.screenshot("entry-saved")
    with psycopg.connect(portal_env.url) as conn:
        saved = conn.execute("select count(*) from raw.admin_penalty r join portal.submissions s"
                             " on s.load_id = r._load_id where s.kind = 'entry' and r.decision_no = any(%s)",
                             ([good["decision_no"], second["decision_no"]],)).fetchone()[0]
    assert saved == 2


def test_refusals_a_clerk_can_meet_are_clear_and_in_chinese(browser_page: BrowserSession, portal_url: str,
                                                            portal_env, tmp_path: Path) -> None:
    page = browser_page.page
    _log_in(browser_page, portal_url, "sthjj_submitter", portal_env.passwords["sthjj_submitter"])
    page.goto(f"{portal_url}/submit/sthjj_penalty/upload")

    wrong = openpyxl.Workbook()
    wrong.active.append(list(portal_env.registry.source("scjgj_license").columns))
    wrong.active.append(["某某公司"] * 5)
    wrong.save(tmp_path / "许可.xlsx")
    page.set_input_files("#file", str(tmp_path / "许可.xlsx"))
    page.click("#upload-button")
    message = page.inner_text("#upload-error")
    assert "不是「环境行政处罚」的报送模板" in message and "行政许可数据" in message
    browser_page.screenshot("wrong-template")

    page.set_input_files("#file", str(macro_workbook(tmp_path / "宏.xlsx")))
    page.click("#upload-button")
    assert "启用宏的工作簿" in page.inner_text("#upload-error")
    browser_page.screenshot("macro-workbook")

    # Over the cap: the page says so before sending a byte (and the server would refuse it too).
    large = tmp_path / "大文件.xlsx"
    with large.open("wb") as handle:
        handle.truncate(21 * 1024 * 1024)  # a sparse file: the browser reads it from disk
    page.set_input_files("#file", str(large))
    assert "超过上传大小上限（20 MB）" in page.inner_text("#size-error")
    page.click("#upload-button")
    assert page.url.endswith("/submit/sthjj_penalty/upload")
    browser_page.screenshot("oversized")

    with psycopg.connect(portal_env.url, autocommit=True) as conn:
        mzj = portal_env.registry.source("mzj_penalty")
        other = save_entry(conn, portal_env.registry, mzj, find_account(conn, "mzj_submitter"),
                           records(mzj, 1, tag="G"), "browser-guessing-test-1").load_id
        page.goto(f"{portal_url}/history/{other}")
        assert "页面不存在，或您无权查看" in page.inner_text("main") and other not in page.content()
        browser_page.screenshot("another-departments-batch")
        conn.execute("update portal.sessions set last_seen_at = now() - interval '2 hours'")
    page.goto(f"{portal_url}/history")
    assert page.url.startswith(f"{portal_url}/login") and "会话已过期" in page.inner_text("main")
    browser_page.screenshot("session-expired")

    for _ in range(5):
        _log_in(browser_page, portal_url, "sthjj_approver", "not-the-password")
        assert "用户名或密码错误" in page.inner_text("#login-error")
    _log_in(browser_page, portal_url, "sthjj_approver", portal_env.passwords["sthjj_approver"])
    assert "该账号已被暂时锁定" in page.inner_text("#login-error")
    browser_page.screenshot("throttled")
