"""The sharing pages and the data service API through the portal app: who may do what, each path, tokens.

Requester (zjj_submitter), the owning department's approver (scjgj_approver), another department's approver
(swj_approver) and the bureau's steward each can do exactly what they may; the API serves a grant's approved
fields and rows page by page and refuses its token the moment the grant is revoked.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import psycopg
import pytest
from fastapi.testclient import TestClient

from huiju.sharing.config import ApiPolicy
from huiju_portal.data_api import create_data_api
from tests.support.portal import csrf_of
from tests.support.sharing import SHARE_RELATIONS

PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.fixture(scope="module", autouse=True)
def share_relations(portal_env) -> None:
    """The share stand-ins in the module's warehouse."""
    with psycopg.connect(portal_env.url) as conn:
        conn.execute(SHARE_RELATIONS)


def _file(client: TestClient, resource: str, fields: list[str], **extra: str) -> tuple[int, str]:
    response = client.post(f"/catalogue/{resource}/request",
                           data={"csrf_token": csrf_of(client), "fields": fields, "purpose": "联合惩戒核查",
                                 "duration_days": "30", **extra})
    match = re.search(r"/sharing/(\d+)", str(response.url))
    return (int(match.group(1)) if match else 0), response.text


def _decide(client: TestClient, request_id: int, verdict: str = "approve", document: bytes | None = None,
            reason: str = "") -> object:
    files = {"document": ("审批件.pdf", document, "application/pdf")} if document is not None else None
    return client.post(f"/sharing/{request_id}/decide", files=files,
                       data={"csrf_token": csrf_of(client), "verdict": verdict, "reason": reason})


def _token(client: TestClient, request_id: int) -> str:
    page = client.post(f"/sharing/{request_id}/credentials", data={"csrf_token": csrf_of(client)})
    return re.search(r'id="api-token">([^<]+)<', page.text).group(1)


def test_anonymous_visitors_get_neither_pages_nor_data(portal_app) -> None:
    with TestClient(portal_app, base_url="http://portal.test") as client:
        assert client.get("/catalogue", follow_redirects=False).headers["location"].startswith("/login")
        assert client.get("/sharing/1", follow_redirects=False).status_code == 303
        refused = client.get("/api/share/v1/data")
        assert refused.status_code == 401 and "缺少令牌" in refused.json()["detail"]
        assert client.get("/api/share/v1/data", headers={"Authorization": "Bearer hj_nothing"}).status_code == 401
        spec = client.get("/api/share/v1/openapi.json").json()
        assert {"/data", "/grant"} <= set(spec["paths"]) and spec["info"]["title"].startswith("汇聚平台")


def test_catalogue_pages_and_exports(client_for: Callable[[str], TestClient]) -> None:
    client = client_for("swj_approver")
    page = client.get("/catalogue")
    assert "法人基础信息" in page.text and "不予共享" in page.text
    detail = client.get("/catalogue/population")
    assert "不予共享依据" in detail.text and "申请共享" not in detail.text  # an approver does not file requests
    workbook = client.get("/catalogue/export.xlsx")
    assert workbook.status_code == 200 and workbook.content[:2] == b"PK"
    assert client.get("/catalogue/export.json").json()["catalogue"]
    assert client.get("/catalogue/no_such").status_code == 404


def test_conditional_request_decided_only_by_the_owning_department_then_served_and_revoked(
        client_for: Callable[[str], TestClient], portal_app) -> None:
    requester, owner, stranger, steward = (client_for(name) for name in
                                           ("zjj_submitter", "scjgj_approver", "swj_approver", "steward"))
    request_id, _ = _file(requester, "natural_person_penalty", ["decision_no", "party_name"])
    assert request_id and "待审批" in requester.get(f"/sharing/{request_id}").text
    # The requester cannot decide its own request; another department's approver cannot even see it.
    assert _decide(requester, request_id).status_code == 403
    assert stranger.get(f"/sharing/{request_id}").status_code == 404
    assert _decide(stranger, request_id).status_code == 404
    assert f"/sharing/{request_id}" not in stranger.get("/sharing").text
    # The owning department's approver sees it awaiting its decision, and approves.
    assert f"/sharing/{request_id}" in owner.get("/sharing").text
    assert 'id="decide"' in owner.get(f"/sharing/{request_id}").text
    approved = _decide(owner, request_id)
    assert "已批准并开通" in approved.text and "提供部门审批" in approved.text
    token = _token(requester, request_id)
    with TestClient(portal_app, base_url="http://portal.test") as api:
        headers = {"Authorization": f"Bearer {token}"}
        first = api.get("/api/share/v1/data", params={"page_size": 1}, headers=headers).json()
        assert first["fields"] == ["decision_no", "party_name"] and first["next_page"] == 2
        assert first["rows"] == [{"decision_no": "杭市监罚〔2026〕1号", "party_name": "赵*"}]
        second = api.get("/api/share/v1/data", params={"page_size": 1, "page": 2}, headers=headers).json()
        assert second["rows"] == [{"decision_no": "杭税罚〔2026〕7号", "party_name": "钱*"}]
        assert second["next_page"] is None
        assert api.get("/api/share/v1/grant", headers=headers).json()["resource"] == "natural_person_penalty"
        revoked = steward.post(f"/sharing/{request_id}/revoke", data={"csrf_token": csrf_of(steward),
                                                                       "reason": "核查工作结束"})
        assert "授权已撤销" in revoked.text and "已撤销" in revoked.text
        refused = api.get("/api/share/v1/data", headers=headers)
        assert refused.status_code == 401 and "已撤销" in refused.json()["detail"]
    trail = requester.get(f"/sharing/{request_id}").text
    assert trail.count('data-kind="api_read">接口读取') == 2 and 'data-kind="revoked">撤销授权' in trail


def test_the_bureau_approves_with_a_document_and_bad_documents_are_refused(
        client_for: Callable[[str], TestClient]) -> None:
    requester, steward, owner = client_for("zjj_submitter"), client_for("steward"), client_for("scjgj_approver")
    request_id, _ = _file(requester, "natural_person_penalty", ["decision_no"], scope_source_department="scjgj")
    page = steward.get(f"/sharing/{request_id}").text
    assert "数据局代为审批" in page and 'name="document"' in page
    assert 'name="document"' not in owner.get(f"/sharing/{request_id}").text  # the department needs no document
    for content, message in ((None, "须上传提供部门的审批件"), (b"MZ" + b"\0" * 64, "可执行程序"),
                             (b"%PDF-" + b"0" * (10 * 1024 * 1024), "超过上限")):
        refused = _decide(steward, request_id, document=content)
        assert refused.status_code == 400 and message in refused.text
    approved = _decide(steward, request_id, document=PDF)
    assert "数据局代为审批（附审批件）" in approved.text and "SHA-256" in approved.text


def test_bad_requests_get_a_clear_message(client_for: Callable[[str], TestClient]) -> None:
    requester = client_for("zjj_submitter")
    _, page = _file(requester, "legal_person", ["uscc"], scope_region_code="999999")
    assert "在信息资源「法人基础信息」中没有任何数据" in page
    _, page = _file(requester, "legal_person", ["uscc", "secret_column"])
    assert "信息项 &#39;secret_column&#39; 不属于信息资源「法人基础信息」" in page
    request_id, page = _file(requester, "population", ["person_key"])
    assert request_id and "不予共享：涉及公民个人信息" in requester.get(f"/sharing/{request_id}").text


def _calls(sharing_url: str, token: str, calls: int) -> list[int]:
    """``calls`` calls of the data API from a process of its own (its own app: nothing shared in memory)."""
    with TestClient(create_data_api(lambda: sharing_url, ApiPolicy(requests_per_minute=4))) as api:
        return [api.get("/data", headers={"Authorization": f"Bearer {token}"}).status_code for _ in range(calls)]


def test_the_api_rate_limit_holds_across_processes(portal_env, client_for: Callable[[str], TestClient]) -> None:
    import multiprocessing

    from huiju import warehouse

    requester = client_for("zjj_submitter")
    request_id, _ = _file(requester, "legal_person", ["uscc"])
    token = _token(requester, request_id)
    sharing_url = warehouse.role_url("sharing", portal_env.url)
    # Two portal processes, three calls each, one limit of four a minute for the token between them.
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        statuses = sorted(code for codes in pool.starmap(_calls, [(sharing_url, token, 3)] * 2) for code in codes)
    assert statuses == [200, 200, 200, 200, 429, 429]
    with TestClient(create_data_api(lambda: sharing_url, ApiPolicy(requests_per_minute=4))) as api:
        refused = api.get("/data", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 429 and "每分钟最多 4 次" in refused.json()["detail"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 61
    with psycopg.connect(portal_env.url) as conn:  # refused calls are not counted; each is audited
        assert conn.execute("select sum(calls) from sharing.api_calls a join sharing.grants g"
                            " on g.token_sha256 = a.token_sha256 where g.request_id = %s",
                            (request_id,)).fetchone() == (4,)
        assert conn.execute("select count(*) from sharing.audit where request_id = %s and kind = 'api_throttled'",
                            (request_id,)).fetchone() == (3,)


def test_an_oversized_approval_document_is_refused_before_it_is_read(
        portal_env, client_for: Callable[[str], TestClient]) -> None:
    requester, steward = client_for("zjj_submitter"), client_for("steward")
    request_id, _ = _file(requester, "natural_person_penalty", ["decision_no"])
    archive = portal_env.var / "archive"
    archived = sorted(archive.rglob("*"))
    # Over the cap by its Content-Length: refused with the reason, nothing read into the form, nothing stored.
    refused = _decide(steward, request_id, document=b"%PDF-" + b"0" * (10 * 1024 * 1024 + 128 * 1024))
    assert refused.status_code == 413
    assert "审批件大小 10.1 MB，超过上限 10 MB，平台未接收" in refused.text and 'name="document"' in refused.text
    page = steward.get(f"/sharing/{request_id}").text
    assert "待审批" in page and 'id="delivery">批准后每日推送至申请部门登记的接收系统' in page
    assert sorted(archive.rglob("*")) == archived
    with psycopg.connect(portal_env.url) as conn:
        assert conn.execute("select status, document_sha256 from sharing.requests where request_id = %s",
                            (request_id,)).fetchone() == ("pending", None)
        assert conn.execute("select array_agg(kind order by seq) from sharing.audit where request_id = %s",
                            (request_id,)).fetchone() == (["filed"],)
    # Without its CSRF token the capped form is still refused as before; with it, a document within the cap passes.
    forged = steward.post(f"/sharing/{request_id}/decide", files={"document": ("审批件.pdf", PDF, "application/pdf")},
                          data={"verdict": "approve"})
    assert forged.status_code == 403
    assert "数据局代为审批（附审批件）" in _decide(steward, request_id, document=PDF).text


def test_a_department_without_a_receiver_downloads_each_period_s_file_until_revoked(
        portal_env, client_for: Callable[[str], TestClient]) -> None:
    from datetime import date

    from huiju.sharing.delivery import run_share_deliveries

    requester, owner, other = client_for("swj_submitter"), client_for("scjgj_approver"), client_for("zjj_submitter")
    request_id, _ = _file(requester, "natural_person_penalty", ["decision_no", "party_name"],
                          scope_source_department="swj")
    assert 'id="delivery">批准后每日导出数据文件' in requester.get(f"/sharing/{request_id}").text
    _decide(owner, request_id)

    def unreachable(conn_id: str) -> None:
        raise AssertionError(f"no push expected ({conn_id})")

    run_share_deliveries(unreachable, period=date(2026, 12, 7), url=portal_env.url, receivers={})
    page = requester.get(f"/sharing/{request_id}").text
    link = f"/sharing/{request_id}/files/2026-12-07"
    assert 'id="files"' in page and link in page
    assert link not in owner.get(f"/sharing/{request_id}").text  # the file is the requester's
    downloaded = requester.get(link)
    assert downloaded.status_code == 200 and "attachment" in downloaded.headers["content-disposition"]
    assert downloaded.content.decode("utf-8") == "\ufeffdecision_no,party_name\r\n杭税罚〔2026〕7号,钱*\r\n"
    assert owner.get(link).status_code in (403, 404) and other.get(link).status_code in (403, 404)
    assert 'data-kind="file_downloaded">下载数据文件' in requester.get(f"/sharing/{request_id}").text
    owner.post(f"/sharing/{request_id}/revoke", data={"csrf_token": csrf_of(owner), "reason": "核查结束"})
    assert requester.get(link).status_code == 404 and 'id="files"' not in requester.get(f"/sharing/{request_id}").text
