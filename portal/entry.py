"""人工录入: records typed into a form generated from the dataset, saved as a batch of their own.

The form (:func:`huiju_portal.fields.source_fields`) has an input per mapped field: required
marked, enumerations as selects, dates as date inputs, codes as text. As the department
types, the page asks :func:`check` — the core's rules themselves
(:func:`huiju.validation.check_records`: the same SQL and the same Chinese reasons as batch
validation, check digits included) — and shows each problem under its field; saving checks
again on the server and refuses the whole entry while any record breaks a rule, so nothing is
half-stored and nothing typed by hand ends in quarantine.

A saved entry is one batch in the ledger, landed by :func:`huiju.landing.land_records`: its
load id derives from the form's submission id (a random id the form carries) and the records'
content, so a double-click or a retried request finds the batch already landed instead of
making a second one. The records are archived as JSON, like any channel's payload.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import psycopg

from huiju.landing import ensure_raw_table, land_records
from huiju.ledger import make_content_id, make_load_id
from huiju.registry import Registry, Source
from huiju.settings import TIMEZONE
from huiju.validation import ValidationResult, check_records
from huiju_portal import audit
from huiju_portal.accounts import Account
from huiju_portal.fields import SourceField, source_fields
from huiju_portal.uploads import validate_and_feed_back

# Input names are r<record>__<field>: one record block per index, cloned by the page's script.
_INPUT = re.compile(r"^r(\d{1,3})__([a-z][a-z0-9_]{0,62})$")
SUBMISSION_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MAX_VALUE_LENGTH = 2000

Record = dict[str, str | None]


class EntryRefused(ValueError):
    """An entry that cannot be saved as it is; the message (Chinese) says why."""


@dataclass(frozen=True)
class EntryResult:
    """A saved entry: its batch and verdict (``outcome`` landed, or already_landed for a repeated request)."""

    outcome: str
    load_id: str
    records: int
    verdict: ValidationResult | None


def parse_records(items: Iterable[tuple[str, str]], fields: list[SourceField], max_records: int) -> list[Record]:
    """The records of a submitted form (``r<i>__<field>`` inputs), in record order, blank records dropped.

    Values are trimmed (blank becomes None); a multi-valued enumeration's choices are joined
    with its separator. Raises :class:`EntryRefused` for too many records or an oversized value.
    """
    by_name = {f.name: f for f in fields}
    collected: dict[int, dict[str, list[str]]] = {}
    for key, value in items:
        match = _INPUT.match(key)
        if match is None or match.group(2) not in by_name:
            continue
        if len(value) > MAX_VALUE_LENGTH:
            raise EntryRefused(f"「{by_name[match.group(2)].header}」的内容过长（超过{MAX_VALUE_LENGTH}字）")
        collected.setdefault(int(match.group(1)), {}).setdefault(match.group(2), []).append(value)
    records: list[Record] = []
    for index in sorted(collected):
        values = collected[index]
        record: Record = {}
        for f in fields:
            parts = [v.strip() for v in values.get(f.name, []) if v.strip()]
            joined = (f.separator or "").join(parts) if f.input == "multiselect" else (parts[0] if parts else "")
            record[f.name] = joined or None
        if any(record.values()):
            records.append(record)
    if len(records) > max_records:
        raise EntryRefused(f"一次最多录入{max_records}条记录，请分批保存")
    return records


def check(conn: psycopg.Connection, registry: Registry, source: Source,
          records: list[Mapping[str, str | None]]) -> list[dict[str, list[str]]]:
    """For each record, the reasons (Chinese) each field breaks a rule, by field; empty dicts when all pass."""
    found = check_records(conn, registry.dataset_of(source), source, records)
    out: list[dict[str, list[str]]] = []
    for violations in found:
        by_field: dict[str, list[str]] = {}
        for violation in violations:
            by_field.setdefault(violation.field, []).append(violation.reason)
        out.append(by_field)
    return out


def entry_load_id(source: Source, submission_id: str, records: list[Record]) -> tuple[str, str]:
    """The content id and load id of an entry: the same submission with the same records is the same batch."""
    content = make_content_id("portal-entry", source.id, submission_id,
                              json.dumps(records, ensure_ascii=False, sort_keys=True))
    return content, make_load_id(source.id, content)


def save_entry(conn: psycopg.Connection, registry: Registry, source: Source, account: Account,
               records: list[Record], submission_id: str, *, client_addr: str | None = None,
               data_date: date | None = None) -> EntryResult:
    """Check the records with the core's rules and save them as one batch; validated at once.

    Raises :class:`EntryRefused` when there is nothing to save or the submission id is malformed,
    and ``EntryProblems`` (a subclass, with ``problems`` per record) when a record breaks a rule:
    then nothing is stored.
    """
    if not SUBMISSION_ID.match(submission_id or ""):
        raise EntryRefused("表单已失效，请刷新页面后重新填写")
    if not records:
        raise EntryRefused("没有填写任何内容")
    problems = check(conn, registry, source, records)
    if any(problems):
        raise EntryProblems(problems)
    content_id, load_id = entry_load_id(source, submission_id, records)
    headers = source.header_for_field
    as_sent = [{headers[name]: value for name, value in record.items()} for record in records]
    payload = json.dumps({"submission_id": submission_id, "records": as_sent}, ensure_ascii=False,
                         sort_keys=True).encode("utf-8")
    now = datetime.now(ZoneInfo(TIMEZONE))
    ensure_raw_table(conn, registry.dataset_of(source))  # commits: before the transaction below
    with conn.transaction():
        result = land_records(conn, registry, source, reference=f"人工录入_{now:%Y%m%d_%H%M%S}",
                              content_id=content_id, records=as_sent, payload=payload,
                              data_date=data_date or now.date())
        assert result.load_id == load_id
        if result.outcome == "landed":
            conn.execute("insert into portal.submissions (load_id, account_id, kind, client_addr)"
                         " values (%s, %s, 'entry', %s) on conflict (load_id) do nothing",
                         (load_id, account.account_id, client_addr))
        audit.record(conn, "entry", account_id=account.account_id, username=account.username,
                     department=account.department, client_addr=client_addr, source_id=source.id,
                     load_id=load_id, outcome=result.outcome, records=len(records))
    verdict = validate_and_feed_back(conn, registry, load_id) if result.outcome == "landed" else None
    return EntryResult(result.outcome, load_id, len(records), verdict)


class EntryProblems(EntryRefused):
    """Records that break rules: ``problems[i]`` maps each field of record ``i`` to its reasons."""

    def __init__(self, problems: list[dict[str, list[str]]]):
        self.problems = problems
        count = sum(1 for p in problems if p)
        super().__init__(f"有{count}条记录不符合数据规范，请按提示修改后再保存；本次未保存任何记录")


def form_fields(registry: Registry, source: Source) -> list[SourceField]:
    """The form's fields (those of the source's template, in its order)."""
    return source_fields(registry, source)
