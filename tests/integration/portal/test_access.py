"""Who may do what in the portal, and nothing more: roles, departments (URL guessing included), sessions, throttling.

Each department's accounts see exactly its own batches, feedback and notices — whatever the
channel the batches came through — and an id of another department's (a load id, a
feedback workbook, a notice, a source's template or forms) answers 404 as if it did not
exist. Sessions end when idle, when old, at logout, when the account is disabled or its
password changes. Failed logins lock the account name and the client address, and a
restart does not forget them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from io import BytesIO
from urllib.parse import urlsplit

import openpyxl
import psycopg
import pytest
from fastapi.testclient import TestClient
from huiju_demo.bulk import write_penalty_csv

from huiju.feedback import build_feedback
from huiju.landing import land_file
from huiju.notices import Recipient, queue_notice
from huiju.validation import validate_load
from huiju_portal.accounts import find_account
from huiju_portal.app import create_app
from huiju_portal.entry import save_entry
from huiju_portal.sessions import COOKIE
from huiju_portal.uploads import accept_upload
from tests.support.portal import csrf_of, filled_template, login, portal_settings, records


@dataclass(frozen=True)
class Batches:
    """The module's submissions: a portal upload (sthjj), a manual entry (mzj), an inbox file (scjgj), notices."""

    sthjj: str
    mzj: str
    scjgj: str
    sthjj_notice: int
    mzj_notice: int


@pytest.fixture(scope="module")
def batches(portal_env, tmp_path_factory: pytest.TempPathFactory) -> Batches:
    registry = portal_env.registry
    folder = tmp_path_factory.mktemp("files")
    with psycopg.connect(portal_env.url, autocommit=True) as conn:
        sthjj = registry.source("sthjj_penalty")
        path = filled_template(registry, sthjj, folder / "sthjj.xlsx", 20, tag="A", overrides={
            0: {"行政相对人类别": "企业"}})
        upload = accept_upload(conn, registry, sthjj, find_account(conn, "sthjj_submitter"), path, path.name)
        mzj = registry.source("mzj_penalty")
        entry = save_entry(conn, registry, mzj, find_account(conn, "mzj_submitter"), records(mzj, 1, tag="A"),
                           "access-test-submission-1")
        scjgj = registry.source("scjgj_penalty")
        landed = land_file(conn, registry, scjgj, write_penalty_csv(folder / "scjgj.csv", scjgj, 5, tag="AC"))
        validate_load(conn, registry, landed.load_id, run_gx=False)
        sthjj_notice = conn.execute("select notice_id from ops.notices where load_id = %s",
                                    (upload.load_id,)).fetchone()[0]
        mzj_notice = queue_notice(conn, dedupe_key="reminder:mzj:test", kind="reminder", department="mzj",
                                  source_id="mzj_penalty", subject="【催报】民政局《民政行政处罚》本月尚未报送",
                                  body="民政局：请于5个工作日内报送。",
                                  recipients=[Recipient("email", "mzj@example.gov.cn")])
    return Batches(upload.load_id, entry.load_id, landed.load_id, sthjj_notice, mzj_notice)


def _listed(page_text: str) -> set[str]:
    return set(re.findall(r'<tr data-load-id="([^"]+)"', page_text))


def test_history_shows_exactly_the_departments_batches_whatever_their_channel(client_for, batches: Batches,
                                                                               portal_env) -> None:
    with psycopg.connect(portal_env.url) as conn:
        by_department = {}
        for department, load_id in conn.execute("select department, load_id from ops.loads").fetchall():
            by_department.setdefault(department, set()).add(load_id)
    for department in ("sthjj", "mzj", "scjgj"):
        for role in ("submitter", "approver"):
            page = client_for(f"{department}_{role}").get("/history")
            assert page.status_code == 200
            assert _listed(page.text) == by_department[department], (department, role)
    steward = client_for("steward")
    assert _listed(steward.get("/history").text) == set().union(*by_department.values())
    assert _listed(steward.get("/history?department=mzj").text) == by_department["mzj"]
    sthjj = client_for("sthjj_submitter").get("/history").text
    assert "【问题数据反馈】" in sthjj and "【催报】" not in sthjj
    assert "报送考核" in sthjj and 'id="scorecard"' in sthjj and 'data-placeholder="scorecard"' not in sthjj
    assert "【催报】" in client_for("mzj_submitter").get("/notices").text


def test_one_department_cannot_reach_anothers_batches_feedback_notices_or_sources(client_for,
                                                                                  batches: Batches) -> None:
    own = client_for("sthjj_submitter")
    assert own.get(f"/history/{batches.sthjj}").status_code == 200
    assert own.get(f"/history/{batches.sthjj}/feedback.xlsx").status_code == 200
    assert own.get(f"/notices/{batches.sthjj_notice}").status_code == 200
    other = client_for("mzj_submitter")
    csrf = csrf_of(other)
    guesses = [f"/history/{batches.sthjj}", f"/history/{batches.sthjj}/feedback.xlsx", f"/history/{batches.scjgj}",
               f"/notices/{batches.sthjj_notice}", "/submit/sthjj_penalty/template.xlsx",
               "/submit/sthjj_penalty/upload", "/submit/sthjj_penalty/entry", "/submit/scjgj_penalty/upload",
               "/history/sthjj_penalty-0000000000000000", f"/history/{batches.sthjj}/../{batches.sthjj}"]
    for path in guesses:
        response = other.get(path)
        assert response.status_code == 404, path
        assert batches.sthjj not in response.text and "sthjj" not in response.text, path
    assert other.post("/submit/sthjj_penalty/entry/check", json={"records": [{}]},
                      headers={"X-CSRF-Token": csrf}).status_code == 404
    # A department's own notice and batch stay its own for the other way round too.
    assert own.get(f"/history/{batches.mzj}").status_code == 404
    assert own.get(f"/notices/{batches.mzj_notice}").status_code == 404
    # The history's filter cannot widen the scope either: another department's source id is ignored.
    assert _listed(other.get("/history?source=sthjj_penalty&department=sthjj").text) == {batches.mzj}
    steward = client_for("steward")
    assert steward.get(f"/history/{batches.sthjj}/feedback.xlsx").status_code == 200


def test_a_feedback_notice_links_to_the_batch_page_where_only_its_department_downloads_it(
        client_for, portal_app, portal_env, tmp_path) -> None:
    """Feedback by e-mail is a link, never the workbook: an FTP batch's notice opens its page on the portal."""
    registry = portal_env.registry
    source = registry.source("cgj_penalty")  # FTP: before issue 15 its workbook went as an e-mail attachment
    party = source.header_for_field["party_name"]
    path = write_penalty_csv(tmp_path / "cgj_link.csv", source, 5, tag="LK", overrides={0: {party: ""}})
    with psycopg.connect(portal_env.url, autocommit=True) as conn:
        load_id = land_file(conn, registry, source, path).load_id
        validate_load(conn, registry, load_id, run_gx=False)
        feedback = build_feedback(conn, registry, load_id)
        body, attachment = conn.execute("select body, attachment from ops.notices where dedupe_key = %s",
                                        (f"feedback:{load_id}",)).fetchone()
    assert feedback is not None and feedback.channel == "portal" and attachment is None
    link = urlsplit(re.search(r"https?://\S+/history/\S+", body).group(0)).path
    assert link == f"/history/{load_id}"
    anonymous = TestClient(portal_app, base_url="http://portal.test", follow_redirects=False).get(link)
    assert anonymous.status_code in (302, 303) and "/login" in anonymous.headers["location"]
    own = client_for("cgj_submitter")
    assert own.get(link).status_code == 200
    download = own.get(f"{link}/feedback.xlsx")
    assert download.status_code == 200
    assert openpyxl.load_workbook(BytesIO(download.content))["问题数据"].max_row == 2  # header and the problem row
    assert client_for("mzj_submitter").get(f"{link}/feedback.xlsx").status_code == 404


ROUTES = [  # (method, path): the permission each needs is in what the roles below may reach
    ("GET", "/"), ("GET", "/submit"), ("GET", "/submit/sthjj_penalty/template.xlsx"),
    ("GET", "/submit/sthjj_penalty/upload"), ("GET", "/submit/sthjj_penalty/entry"), ("GET", "/history"),
    ("GET", "/notices"), ("GET", "/admin/accounts"),
]
ALLOWED = {
    "sthjj_submitter": {"/", "/submit", "/submit/sthjj_penalty/template.xlsx", "/submit/sthjj_penalty/upload",
                        "/submit/sthjj_penalty/entry", "/history", "/notices"},
    "sthjj_approver": {"/", "/history", "/notices"},
    "steward": {"/", "/history", "/notices", "/admin/accounts"},
}


@pytest.mark.parametrize("username", sorted(ALLOWED))
def test_each_role_can_do_exactly_what_it_may(username: str, client_for, batches: Batches) -> None:
    client = client_for(username)
    for method, path in ROUTES:
        status = client.request(method, path).status_code
        assert status == (200 if path in ALLOWED[username] else 403), (username, path, status)


def test_anonymous_visitors_are_sent_to_login_for_every_page(portal_app, batches: Batches) -> None:
    with TestClient(portal_app, base_url="http://portal.test", follow_redirects=False) as client:
        for _, path in [*ROUTES, ("GET", f"/history/{batches.sthjj}/feedback.xlsx")]:
            response = client.get(path)
            assert response.status_code == 303 and response.headers["location"].startswith("/login?next="), path
        assert client.post("/submit/sthjj_penalty/entry/check", json={"records": []}).status_code == 303
        assert client.get("/static/portal.css").status_code == 200  # assets are public, data is not


def test_the_session_cookie_and_pages_carry_the_security_settings(portal_app, portal_env) -> None:
    with TestClient(portal_app, base_url="http://portal.test", follow_redirects=False) as client:
        response = login(client, "sthjj_submitter", portal_env.passwords["sthjj_submitter"])
        cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith(COOKIE))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        page = client.get("/")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
        # Every script, style and image the pages use is the portal's own.
        assert not re.findall(r'(?:src|href)="(?:https?:)?//', page.text)
        # POSTs need the session's CSRF token, and must come from the portal's own pages.
        assert client.post("/logout").status_code == 403
        assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
        token = csrf_of(client)
        assert client.post("/logout", data={"csrf_token": token},
                           headers={"Origin": "http://evil.example"}).status_code == 403
        assert client.post("/logout", data={"csrf_token": token}).status_code == 303


def _session_ends(portal_app, portal_env, username: str, end) -> None:
    with TestClient(portal_app, base_url="http://portal.test", follow_redirects=False) as client:
        login(client, username, portal_env.passwords[username])
        assert client.get("/history").status_code == 200
        with psycopg.connect(portal_env.url, autocommit=True) as conn:
            end(conn, client)
        response = client.get("/history")
        assert response.status_code == 303 and response.headers["location"] == "/login?next=/history&expired=1"
        assert "会话已过期" in client.get(response.headers["location"]).text


@pytest.mark.parametrize("how", ["idle", "too_old", "logout", "disabled"])
def test_sessions_end(how: str, portal_app, portal_env) -> None:
    def end(conn: psycopg.Connection, client: TestClient) -> None:
        if how == "idle":  # 30 minutes without a request
            conn.execute("update portal.sessions set last_seen_at = now() - interval '31 minutes'")
        elif how == "too_old":  # 12 hours after login, however active
            conn.execute("update portal.sessions set expires_at = now() - interval '1 second'")
        elif how == "logout":  # the cookie of a logged-out session is worth nothing afterwards
            cookie = client.cookies.get(COOKIE)
            client.post("/logout", data={"csrf_token": csrf_of(client)})
            client.cookies.set(COOKIE, cookie)
        else:
            conn.execute("update portal.accounts set disabled_at = now() where username = 'zjj_approver'")

    _session_ends(portal_app, portal_env, "zjj_approver" if how == "disabled" else "swj_approver", end)


def test_a_password_change_ends_the_accounts_other_sessions(portal_app, portal_env) -> None:
    password = portal_env.passwords["fgw_approver"]
    with TestClient(portal_app, base_url="http://portal.test") as first, \
            TestClient(portal_app, base_url="http://portal.test") as second:
        login(first, "fgw_approver", password)
        login(second, "fgw_approver", password)
        changed = first.post("/account/password", data={
            "csrf_token": csrf_of(first), "current": password, "new": "Neu-Passwort-2026",
            "confirm": "Neu-Passwort-2026"})
        assert "密码已修改" in changed.text
        assert first.get("/history").url.path == "/history"
        assert second.get("/history").url.path == "/login"


def _failed(client: TestClient, username: str, addr: str, password: str = "wrong-password"):
    return login(client, username, password, client_addr=addr)


def test_failed_logins_lock_the_account_and_a_restart_does_not_forget(portal_env, batches: Batches) -> None:
    settings = portal_settings(portal_env.var)
    app = create_app(settings, registry=portal_env.registry, warehouse_url=portal_env.url)
    password = portal_env.passwords["cgj_approver"]
    with TestClient(app, base_url="http://portal.test") as client:
        for attempt in range(settings.max_failures_per_account):
            response = _failed(client, "cgj_approver", f"10.9.0.{attempt}")
            assert response.status_code == 401 and "用户名或密码错误" in response.text
        locked = _failed(client, "cgj_approver", "10.9.1.1", password)  # the right password, another address
        assert locked.status_code == 429 and "该账号已被暂时锁定" in locked.text
        # A name that does not exist locks the same way: the answer tells nothing about which names exist.
        for _ in range(settings.max_failures_per_account):
            _failed(client, "no_such_user", "10.9.2.1")
        assert "该账号已被暂时锁定" in _failed(client, "no_such_user", "10.9.2.2").text
    restarted = create_app(settings, registry=portal_env.registry, warehouse_url=portal_env.url)
    with TestClient(restarted, base_url="http://portal.test") as client:
        assert _failed(client, "cgj_approver", "10.9.3.1", password).status_code == 429
        steward = TestClient(restarted, base_url="http://portal.test")
        with steward:
            login(steward, "steward", portal_env.passwords["steward"], client_addr="10.9.4.1")
            account = find_account_id(portal_env, "cgj_approver")
            steward.post(f"/admin/accounts/{account}/unlock", data={"csrf_token": csrf_of(steward)})
        assert _failed(client, "cgj_approver", "10.9.3.1", password).url.path == "/"


def find_account_id(portal_env, username: str) -> int:
    with psycopg.connect(portal_env.url) as conn:
        return find_account(conn, username).account_id


def test_many_failures_from_one_address_lock_that_address(portal_env) -> None:
    settings = portal_settings(portal_env.var, max_failures_per_client=6)
    app = create_app(settings, registry=portal_env.registry, warehouse_url=portal_env.url)
    with TestClient(app, base_url="http://portal.test") as client:
        for index in range(6):  # a different name each time: no single account reaches its limit
            assert _failed(client, f"guess{index}", "10.8.0.1").status_code == 401
        locked = _failed(client, "zjj_submitter", "10.8.0.1", portal_env.passwords["zjj_submitter"])
        assert locked.status_code == 429 and "您所在的网络地址已被暂时锁定" in locked.text
        assert _failed(client, "zjj_submitter", "10.8.0.2", portal_env.passwords["zjj_submitter"]).url.path == "/"


def test_a_steward_opens_an_account_whose_temporary_password_must_be_changed(client_for, portal_app,
                                                                             portal_env) -> None:
    steward = client_for("steward")
    created = steward.post("/admin/accounts", data={
        "csrf_token": csrf_of(steward), "username": "swj_li", "display_name": "李四", "department": "swj",
        "roles": ["submitter"]})
    password = re.search(r"临时密码：<code>([^<]+)</code>", created.text).group(1)
    refused = steward.post("/admin/accounts", data={
        "csrf_token": csrf_of(steward), "username": "bureau_x", "display_name": "X", "department": "",
        "roles": ["submitter"]})
    assert refused.status_code == 400 and "报送员和审批人必须属于某个部门" in refused.text
    with TestClient(portal_app, base_url="http://portal.test") as client:
        assert login(client, "swj_li", password).url.path == "/account/password"
        assert client.get("/history").url.path == "/account/password"  # nothing else until it is changed
        client.post("/account/password", data={"csrf_token": csrf_of(client), "current": password,
                                               "new": "Shui-Wu-2026!", "confirm": "Shui-Wu-2026!"})
        assert client.get("/submit").status_code == 200
        with psycopg.connect(portal_env.url) as conn:
            stored = conn.execute("select password_hash from portal.accounts where username = 'swj_li'").fetchone()[0]
        assert stored.startswith("$argon2id$") and "Shui-Wu-2026!" not in stored


def test_a_spoofed_forwarded_for_does_not_escape_the_address_lock(portal_env) -> None:
    # No proxy is trusted here: X-Forwarded-For is the client's own claim and is ignored.
    settings = portal_settings(portal_env.var, max_failures_per_client=4, trusted_proxies=())
    app = create_app(settings, registry=portal_env.registry, warehouse_url=portal_env.url)
    with TestClient(app, base_url="http://portal.test") as client:
        for index in range(4):
            _failed(client, f"spoof{index}", f"192.0.2.{index}")
        locked = _failed(client, "rsj_submitter", "192.0.2.99", portal_env.passwords["rsj_submitter"])
        assert locked.status_code == 429 and "您所在的网络地址已被暂时锁定" in locked.text


def test_login_needs_its_page_token_and_only_returns_to_this_site(portal_app, portal_env) -> None:
    password = portal_env.passwords["gaj_submitter"]
    with TestClient(portal_app, base_url="http://portal.test", follow_redirects=False) as client:
        forged = client.post("/login", data={"username": "gaj_submitter", "password": password,
                                             "login_token": "made-up", "next": "/"})
        assert forged.status_code == 400 and "登录页面已过期" in forged.text and COOKIE not in forged.cookies
        page = client.get("/login?next=//evil.example/steal")
        token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
        response = client.post("/login", data={"username": "gaj_submitter", "password": password,
                                               "login_token": token, "next": "//evil.example/steal"})
        assert response.status_code == 303 and response.headers["location"] == "/"
