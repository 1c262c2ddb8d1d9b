"""人工录入: the form's check is batch validation's rules and reasons; an entry is one batch, saved once, or nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import openpyxl
import psycopg
from huiju_demo.bulk import penalty_row

from huiju.landing import land_file
from huiju.validation import check_records, validate_load
from tests.support.portal import records

SOURCE = "sthjj_penalty"

# Values that break each kind of rule, as a clerk might type them (field → value).
BROKEN = [
    {"uscc": "91110105MA01ABCD1X"},                       # the organisation code's check character
    {"legal_rep_id_no": "11010519600305001X"},           # the ID number's last check digit
    {"decision_date": "2026-02-30"},                     # no such day
    {"decision_date": "3/5/2026"},                       # day and month cannot be told apart
    {"party_type": "企业"},                               # not one of the enumeration
    {"penalty_type": "罚款;打板子"},                       # one of several values unknown
    {"fine_amount_wan": "约5万"},                          # not a number
    {"fine_amount_wan": "50000"},                        # in 元, not 万元
    {"party_name": None},                                # required
    {"publish_until": "2020-01-01"},                     # before the decision
    {"authority_uscc": "91110105MA01ABCD1"},             # 17 characters
]


def test_the_forms_check_gives_exactly_the_reasons_batch_validation_gives(portal_env, tmp_path: Path) -> None:
    registry = portal_env.registry
    source = registry.source(SOURCE)
    dataset = registry.dataset_of(source)
    typed = []
    for index, broken in enumerate(BROKEN):
        record = {source.columns[h]: v for h, v in penalty_row(source, index, "C").items()}
        record.update(broken)
        typed.append(record)
    # The same records as a workbook in the template's layout, landed and validated as any batch is.
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["标题"])
    sheet.append(list(source.columns))
    for record in typed:
        sheet.append([record[name] for name in source.columns.values()])
    path = tmp_path / "same_records.xlsx"
    workbook.save(path)
    with psycopg.connect(portal_env.url, autocommit=True) as conn:
        checked = check_records(conn, dataset, source, typed)
        loaded = land_file(conn, registry, source, path)
        validate_load(conn, registry, loaded.load_id, run_gx=False)
        quarantined = {row_no: [(v["field"], v["reason"]) for v in violations] for row_no, violations in conn.execute(
            "select row_no, violations from quarantine.rows where load_id = %s", (loaded.load_id,)).fetchall()}
    assert all(checked), "every record breaks a rule"
    for index, violations in enumerate(checked):
        assert [(v.field, v.reason) for v in violations] == quarantined[index + 3], BROKEN[index]
    assert "第18位校验码错误" not in str(checked[0]) and "组织机构代码的校验码错误" in checked[0][0].reason


def _form(client, source_id: str = SOURCE) -> tuple[str, str]:
    page = client.get(f"/submit/{source_id}/entry")
    assert page.status_code == 200
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    submission = re.search(r'name="submission_id" value="([^"]+)"', page.text).group(1)
    return csrf, submission


def _fields(typed: list[dict], csrf: str, submission: str) -> dict[str, str]:
    data = {"csrf_token": csrf, "submission_id": submission}
    for index, record in enumerate(typed):
        data.update({f"r{index}__{name}": value or "" for name, value in record.items()})
    return data


def _counts(portal_env) -> tuple[int, ...]:
    with psycopg.connect(portal_env.url) as conn:
        return tuple(conn.execute(f"select count(*) from {table}").fetchone()[0]
                     for table in ("ops.loads", "portal.submissions", "quarantine.rows"))


def test_an_entry_is_a_batch_of_its_own_and_a_repeated_request_is_not_a_second(client_for, portal_env) -> None:
    source = portal_env.registry.source("mzj_penalty")
    client = client_for("mzj_submitter")
    csrf, submission = _form(client, source.id)
    typed = records(source, 2, tag="M")
    before = _counts(portal_env)
    response = client.post(f"/submit/{source.id}/entry", data=_fields(typed, csrf, submission))
    assert response.status_code == 200 and "录入的记录已保存为一个报送批次" in response.text
    load_id = response.url.path.rsplit("/", 1)[-1]
    with psycopg.connect(portal_env.url) as conn:
        load = conn.execute("select channel, department, reference, status, rows_received, rows_quarantined,"
                            " archive_path from ops.loads where load_id = %s", (load_id,)).fetchone()
        kind = conn.execute("select kind from portal.submissions where load_id = %s", (load_id,)).fetchone()[0]
        raw = conn.execute("select decision_no, _row_no from raw.admin_penalty where _load_id = %s order by _row_no",
                           (load_id,)).fetchall()
    assert load[:2] == ("portal", "mzj") and load[2].startswith("人工录入_")
    assert load[3:6] == ("validated", 2, 0) and kind == "entry"
    assert raw == [(typed[0]["decision_no"], 1), (typed[1]["decision_no"], 2)]
    archived = json.loads((portal_env.var / "archive" / load[6]).read_text(encoding="utf-8"))
    assert archived["submission_id"] == submission
    assert archived["records"][0]["行政处罚决定书文号"] == typed[0]["decision_no"]  # as sent: the department's headers
    assert _counts(portal_env)[:2] == (before[0] + 1, before[1] + 1)

    # A double click (the same form sent again) finds the batch already saved.
    again = client.post(f"/submit/{source.id}/entry", data=_fields(typed, csrf, submission))
    assert again.url.path.endswith(load_id) and "未重复入库" in again.text
    assert _counts(portal_env)[:2] == (before[0] + 1, before[1] + 1)


def test_invalid_check_digits_refuse_the_whole_entry_with_the_reason_under_the_field(client_for, portal_env) -> None:
    source = portal_env.registry.source("mzj_penalty")
    client = client_for("mzj_submitter")
    csrf, submission = _form(client, source.id)
    typed = records(source, 2, tag="X")
    typed[1]["uscc"] = typed[1]["uscc"][:-1] + ("0" if typed[1]["uscc"][-1] != "0" else "1")
    before = _counts(portal_env)
    response = client.post(f"/submit/{source.id}/entry", data=_fields(typed, csrf, submission))
    assert response.status_code == 400
    assert "有1条记录不符合数据规范" in response.text and "本次未保存任何记录" in response.text
    problem = re.search(r'name="r1__uscc".*?data-problem-for="uscc">(.*?)</p>', response.text, re.S).group(1)
    assert problem == "「统一社会信用代码」第18位校验码错误，请核对代码是否抄错"
    assert f'value="{typed[1]["uscc"]}"' in response.text  # what was typed is kept for correcting
    assert _counts(portal_env) == before


def test_the_live_check_runs_the_core_rules_for_the_own_department_only(client_for, portal_env) -> None:
    source = portal_env.registry.source("mzj_penalty")
    client = client_for("mzj_submitter")
    csrf, _ = _form(client, source.id)
    first, second = records(source, 2, tag="L")
    second["decision_no"] = first["decision_no"]
    second["legal_rep_id_no"] = second["legal_rep_id_no"][:-1] + ("1" if second["legal_rep_id_no"][-1] != "1" else "2")
    url = f"/submit/{source.id}/entry/check"
    response = client.post(url, json={"records": [first, second]}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200
    assert response.json() == {"problems": [{}, {
        "legal_rep_id_no": ["「法定代表人身份证号」最后一位校验码错误，请核对号码是否抄错"],
        "decision_no": ["「行政处罚决定书文号」与本批次第1行重复"]}]}
    assert client.post(url, json={"records": [first]}).status_code == 403  # no CSRF token
    assert client.post("/submit/sthjj_penalty/entry/check", json={"records": [first]},
                       headers={"X-CSRF-Token": csrf}).status_code == 404  # another department's source
    approver = client_for("mzj_approver")
    assert approver.post(url, json={"records": [first]}, headers={"X-CSRF-Token": csrf}).status_code == 403
