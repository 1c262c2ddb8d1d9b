"""The portal's pure pieces: roles, password rules, upload names, form parsing."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from huiju.registry import load_registry
from huiju_portal.entry import EntryRefused, form_fields, parse_records
from huiju_portal.passwords import generate_password, hash_password, password_problem, verify_password
from huiju_portal.roles import Permission, Role, permissions_of
from huiju_portal.uploads import clean_filename


def run_coroutine(coroutine: Any) -> Any:
    """``asyncio.run`` in a thread of its own: a browser test earlier in the same worker leaves Playwright's
    event loop running in this thread, where ``asyncio.run`` refuses to start another."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def test_roles_grant_exactly_their_permissions() -> None:
    assert permissions_of({Role.SUBMITTER}) == {Permission.SUBMIT, Permission.VIEW_SUBMISSIONS,
                                                Permission.VIEW_CATALOGUE, Permission.REQUEST_SHARING}
    assert permissions_of({Role.APPROVER}) == {Permission.VIEW_SUBMISSIONS, Permission.APPROVE_REQUESTS,
                                               Permission.VIEW_CATALOGUE}
    assert Permission.SUBMIT not in permissions_of({Role.STEWARD})
    assert Permission.REQUEST_SHARING not in permissions_of({Role.STEWARD})  # the bureau decides, it does not ask
    assert Permission.MANAGE_SHARING in permissions_of({Role.STEWARD})
    assert Permission.MANAGE_ACCOUNTS in permissions_of({Role.STEWARD})
    assert [role.label for role in Role] == ["报送员", "审批人", "数据管理员"]


def test_passwords_are_argon2id_and_must_be_strong() -> None:
    stored = hash_password("Hui-Ju-2026")
    assert stored.startswith("$argon2id$") and verify_password(stored, "Hui-Ju-2026")
    assert not verify_password(stored, "hui-ju-2026") and not verify_password(None, "Hui-Ju-2026")
    assert password_problem("short1A", "li") == "密码至少10位"
    assert password_problem("alllowercaseletters", "li") is not None
    assert password_problem("Zhang-San-2026", "zhang-san") == "密码不能包含用户名"
    assert password_problem(generate_password(), "anyone") is None


@pytest.mark.parametrize(("given", "kept"), [
    ("C:\\fakepath\\十一月处罚.xlsx", "十一月处罚.xlsx"),
    ("../../etc/passwd", "passwd"),
    ("a\x00b\nc.xlsx", "a_b_c.xlsx"),
    ("", "upload.xlsx"),
])
def test_upload_names_keep_the_departments_name_and_nothing_else(given: str, kept: str) -> None:
    assert clean_filename(given) == kept


def test_a_form_becomes_records_in_order_blank_ones_dropped() -> None:
    registry = load_registry()
    fields = form_fields(registry, registry.source("sthjj_penalty"))
    items = [("csrf_token", "x"), ("r1__party_name", " 乙公司 "), ("r0__party_name", "甲公司"),
             ("r0__penalty_type", "罚款"), ("r0__penalty_type", "警告"), ("r2__party_name", "  "),
             ("r0__not_a_field", "ignored")]
    records = parse_records(items, fields, max_records=5)
    assert [r["party_name"] for r in records] == ["甲公司", "乙公司"]
    assert records[0]["penalty_type"] == "罚款;警告" and records[1]["penalty_type"] is None
    with pytest.raises(EntryRefused, match="一次最多录入1条记录"):
        parse_records(items, fields, max_records=1)


def _request(headers: dict[str, str], chunks: list[bytes], pulled: list[int]) -> Any:
    """A Starlette request whose body arrives in ``chunks``; ``pulled`` counts the chunks the app asked for."""
    from starlette.requests import Request

    async def receive() -> dict[str, Any]:
        index = len(pulled)
        pulled.append(index)
        return {"type": "http.request", "body": chunks[index], "more_body": index + 1 < len(chunks)}

    return Request({"type": "http", "method": "POST", "path": "/", "query_string": b"",
                    "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}, receive)


def test_a_body_over_its_cap_is_refused_before_it_is_read_whole() -> None:

    from huiju_portal.bodies import BodyTooLarge, read_body

    chunk = b"x" * 65536
    pulled: list[int] = []
    with pytest.raises(BodyTooLarge) as declared:  # by its Content-Length: not a byte read
        run_coroutine(read_body(_request({"content-length": str(50 << 20)}, [chunk] * 800, pulled), 200_000))
    assert declared.value.declared and pulled == []
    with pytest.raises(BodyTooLarge) as streamed:  # chunked (no length): read only until it passes the cap
        run_coroutine(read_body(_request({}, [chunk] * 800, pulled), 200_000))
    assert not streamed.value.declared and len(pulled) == 4
    pulled.clear()
    with pytest.raises(BodyTooLarge):  # a Content-Length that lies is no way past the cap either
        run_coroutine(read_body(_request({"content-length": "100"}, [chunk] * 800, pulled), 200_000))
    assert len(pulled) == 4


def test_a_form_within_its_cap_is_parsed_in_memory() -> None:

    from starlette.datastructures import UploadFile

    from huiju_portal.bodies import FormRefused, read_form

    document = b"%PDF-1.4\n" + b"0" * (3 << 20)  # over Starlette's 1 MB spool: would have gone to disk
    body = (b"--b\r\nContent-Disposition: form-data; name=\"verdict\"\r\n\r\napprove\r\n"
            b"--b\r\nContent-Disposition: form-data; name=\"document\"; filename=\"a.pdf\"\r\n"
            b"Content-Type: application/pdf\r\n\r\n" + document + b"\r\n--b--\r\n")
    headers = {"content-type": "multipart/form-data; boundary=b", "content-length": str(len(body))}
    form = run_coroutine(read_form(_request(headers, [body], []), 4 << 20))
    upload = form["document"]
    assert form["verdict"] == "approve" and isinstance(upload, UploadFile)
    assert not upload.file._rolled  # still in memory: nothing written to a temporary file
    assert run_coroutine(upload.read()) == document
    with pytest.raises(FormRefused):
        run_coroutine(read_form(_request({"content-type": "text/plain"}, [b"hello"], []), 1024))
