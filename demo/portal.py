"""The demo departments in their portal: accounts, the workbook 生态环境局 uploads, the records 民政局 types in.

``huiju demo`` calls :func:`submit_through_portal` before the day's DAG runs: it makes sure the
demo accounts exist (a 报送员 and an 审批人 per department and a steward, passwords kept in
``var/portal/demo_passwords.json``), then does what each ``channel: portal`` source's department
does, through the portal's own code path (the one its pages call): a source taking uploads gets
its filled-in template written under ``folder`` (``var/demo/portal/<source>/``: a department's
own disk, never an inbox the platform collects) and uploaded by its 报送员; a source taking
only manual entry gets a few records entered by hand. Both land, validate and feed back at
once, as in the portal; the ingest DAG then publishes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import psycopg
from huiju_demo.generate import generate_submissions
from huiju_demo.manifest import SourceSubmission
from huiju_demo.penalties import generate_records

from huiju.registry import Registry, Source
from huiju.warehouse import role_url
from huiju_portal.accounts import Account, demo_usernames, ensure_demo_accounts, find_account
from huiju_portal.entry import save_entry
from huiju_portal.extension import demo_passwords_file, login_line
from huiju_portal.roles import Role
from huiju_portal.uploads import accept_upload

ENTRY_RECORDS = 3  # records the demo enters by hand per manual-entry source


@dataclass(frozen=True)
class PortalDemo:
    """What went through the portal on the demo day: the submissions (for the manifest) and lines to print."""

    submissions: tuple[SourceSubmission, ...] = ()
    lines: list[str] = field(default_factory=list)


def submit_through_portal(url: str, registry: Registry, day: date, folder: Path, *,
                          rows_per_source: int = 200) -> PortalDemo:
    """The demo accounts, then every portal source's submission for ``day`` into the warehouse at ``url``.

    See the module docstring. Each upload and entry commits on its own, as in the portal.
    """
    with psycopg.connect(role_url("portal", url), autocommit=True) as conn:  # as the portal itself connects
        return _submit(conn, registry, day, folder, rows_per_source)


def _submit(conn: psycopg.Connection, registry: Registry, day: date, folder: Path, rows_per_source: int) -> PortalDemo:
    passwords = ensure_demo_accounts(conn, registry, demo_passwords_file())
    lines = [f"portal: demo accounts for {len(registry.departments)} departments and a steward "
             f"(passwords in {demo_passwords_file()})"]
    portal = [source for source in registry.sources.values() if source.channel == "portal"]
    uploads = [source.id for source in portal if source.channel_settings.upload]
    written = generate_submissions(registry, folder, day, rows_per_source=rows_per_source, sources=uploads) \
        if uploads else None
    submissions: list[SourceSubmission] = []
    for submission in written.submissions if written else ():
        lines.append(_upload(conn, registry, registry.source(submission.source_id), submission, day))
        submissions.append(submission)
    for source in portal:
        if not source.channel_settings.upload:
            line, entered = _enter(conn, registry, source, day)
            lines.append(line)
            submissions.append(entered)
    login = login_line(registry, passwords)
    if login:
        lines.append(f"portal {login}")
    return PortalDemo(tuple(submissions), lines)


def _submitter(conn: psycopg.Connection, department: str) -> Account:
    account = find_account(conn, demo_usernames(department)[Role.SUBMITTER])
    if account is None:
        raise LookupError(f"no demo submitter for {department}: ensure_demo_accounts runs first")
    return account


def _upload(conn: psycopg.Connection, registry: Registry, source: Source, submission: SourceSubmission,
            day: date) -> str:
    assert submission.path is not None  # generate_submissions writes a file per source
    account = _submitter(conn, source.department)
    result = accept_upload(conn, registry, source, account, submission.path, submission.path.name,
                           client_addr="demo", data_date=day)
    verdict = f"{result.verdict.status}, {result.verdict.rows_quarantined} quarantined" if result.verdict else \
        result.outcome
    return f"portal: {account.username} uploaded {submission.path.name} for {source.id} → {result.load_id} ({verdict})"


def _enter(conn: psycopg.Connection, registry: Registry, source: Source, day: date) -> tuple[str, SourceSubmission]:
    account = _submitter(conn, source.department)
    typed, described = generate_records(registry, source, day, rows=ENTRY_RECORDS)  # too few rows for a defect
    records = [{source.columns[header]: (value or None) for header, value in record.items()} for record in typed]
    # A fixed submission id per source and day: the demo run twice saves the entry once.
    result = save_entry(conn, registry, source, account, records, f"demo-{source.id}-{day:%Y%m%d}",
                        client_addr="demo", data_date=day)
    return (f"portal: {account.username} entered {len(records)} records by hand for {source.id} → "
            f"{result.load_id}"), replace(described, format="entry")
