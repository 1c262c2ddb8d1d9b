"""The sharing pages in a real browser (headless chromium, network cut), screenshots kept under var/test-artifacts/.

A department's clerk finds a conditional resource in the catalogue and files a request; another department's
approver finds nothing to see; the owning department's approver approves it; the clerk fetches the grant's
credentials; the bureau's steward sees every request and revokes the grant; a bureau decision without the
approval document, or with a program instead, is refused with a message.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from huiju_portal.app import create_app
from tests.support.browser import BrowserSession, serve_asgi
from tests.support.portal import portal_settings
from tests.support.sharing import SHARE_RELATIONS

pytestmark = pytest.mark.browser  # besides integration, from the folder


@pytest.fixture(scope="module")
def portal_url(portal_env) -> Iterator[str]:
    """The portal served on a loopback port, its warehouse holding the share stand-ins."""
    with psycopg.connect(portal_env.url) as conn:
        conn.execute(SHARE_RELATIONS)
    app = create_app(portal_settings(portal_env.var), registry=portal_env.registry, warehouse_url=portal_env.url)
    with serve_asgi(app) as url:
        yield url


def _as(browser: BrowserSession, url: str, username: str, password: str) -> None:
    page = browser.page
    page.context.clear_cookies()
    page.goto(f"{url}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def test_a_request_from_the_catalogue_to_approval_credentials_and_revocation(
        browser_page: BrowserSession, portal_url: str, portal_env, tmp_path: Path) -> None:
    page, passwords = browser_page.page, portal_env.passwords
    page.goto(f"{portal_url}/catalogue")
    assert "/login" in page.url  # anonymous visitors are sent to log in
    _as(browser_page, portal_url, "zjj_submitter", passwords["zjj_submitter"])
    page.click("text=资源目录")
    assert page.locator("#catalogue tbody tr").count() == 5
    browser_page.screenshot("catalogue")
    page.click("text=自然人行政处罚信息（公示期内）")
    page.check("input[name=fields][value=decision_no]")
    page.check("input[name=fields][value=fine_amount_wan]")
    page.fill("#purpose", "联合惩戒对象核查")
    browser_page.screenshot("request-form")
    page.click("#file-request")
    page.wait_for_url(f"{portal_url}/sharing/*")
    request_path = page.url.split(portal_url, 1)[1].split("?")[0]
    assert page.inner_text("#status") == "待审批"
    browser_page.screenshot("request-filed")

    _as(browser_page, portal_url, "swj_approver", passwords["swj_approver"])
    page.goto(f"{portal_url}{request_path}")
    assert "页面不存在，或您无权查看" in page.content()  # another department's approver: nothing to see
    browser_page.screenshot("other-approver-refused")

    _as(browser_page, portal_url, "scjgj_approver", passwords["scjgj_approver"])
    page.click("text=共享申请")
    page.click(f"a[href='{request_path}']")
    browser_page.screenshot("approver-decides")
    page.click("#decide-button")
    page.wait_for_url(f"{portal_url}{request_path}?from=decided")
    assert page.inner_text("#status") == "已批准并开通" and page.inner_text("#decided-as") == "提供部门审批"

    _as(browser_page, portal_url, "zjj_submitter", passwords["zjj_submitter"])
    page.goto(f"{portal_url}{request_path}")
    page.click("#fetch-credentials")
    assert page.inner_text("#api-token").startswith("hj_") and page.inner_text("#db-view").startswith("granted.")
    browser_page.screenshot("credentials")

    _as(browser_page, portal_url, "steward", passwords["steward"])
    page.click("text=共享申请")
    assert page.locator(f"#all a[href='{request_path}']").count() == 1
    browser_page.screenshot("steward-overview")
    page.goto(f"{portal_url}{request_path}")
    page.fill("#revoke-reason", "核查工作结束")
    page.click("#revoke-button")
    assert page.inner_text("#status") == "已撤销"
    browser_page.screenshot("revoked")


def test_the_bureau_needs_a_real_approval_document(browser_page: BrowserSession, portal_url: str, portal_env,
                                                   tmp_path: Path) -> None:
    page, passwords = browser_page.page, portal_env.passwords
    _as(browser_page, portal_url, "zjj_submitter", passwords["zjj_submitter"])
    page.goto(f"{portal_url}/catalogue/natural_person_license")
    page.check("input[name=fields][value=decision_no]")
    page.fill("#purpose", "资格核验")
    page.click("#file-request")
    page.wait_for_url(f"{portal_url}/sharing/*")
    request_path = page.url.split(portal_url, 1)[1].split("?")[0]
    _as(browser_page, portal_url, "steward", passwords["steward"])
    page.goto(f"{portal_url}{request_path}")
    page.click("#decide-button")
    assert "须上传提供部门的审批件" in page.inner_text("#error")
    program = tmp_path / "审批件.pdf"
    program.write_bytes(b"MZ\x90\x00" + b"\x00" * 256)  # a Windows program named .pdf
    page.set_input_files("#document", str(program))
    page.click("#decide-button")
    assert "可执行程序" in page.inner_text("#error") and page.inner_text("#status") == "待审批"
    browser_page.screenshot("document-refused")
    document = tmp_path / "住建局审批件.pdf"
    document.write_bytes(b"%PDF-1.4\n%%EOF\n")
    page.set_input_files("#document", str(document))
    page.click("#decide-button")
    page.wait_for_load_state()
    browser_page.screenshot("after-decision")
    assert page.inner_text("#decided-as") == "数据局代为审批（附审批件）"
    browser_page.screenshot("bureau-approved")
