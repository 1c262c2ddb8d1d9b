"""The portal's part in ``huiju up`` / ``down`` / ``demo`` (entry point ``huiju.extensions``: ``PORTAL``)."""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from huiju.extensions import DemoContribution
from huiju_portal.accounts import demo_usernames, ensure_demo_accounts, find_account
from huiju_portal.config import get_portal_settings
from huiju_portal.roles import Role

if TYPE_CHECKING:
    from huiju.demo.generate import DemoManifest, SourceSubmission
    from huiju.registry import Registry

log = logging.getLogger(__name__)

ENTRY_RECORDS = 3  # records the demo enters by hand per manual-entry source


def demo_passwords_file() -> Path:
    """Where the demo accounts' passwords are kept (mode 0600)."""
    return get_portal_settings().state_dir / "demo_passwords.json"


def _showcase_department(registry: Registry) -> str:
    """The department whose login is printed: the first with a portal source taking uploads."""
    for source in registry.sources.values():
        if source.channel == "portal" and source.channel_settings.upload:
            return source.department
    return next(iter(registry.departments))


def login_line(registry: Registry, passwords: dict[str, str]) -> str | None:
    """``login: sthjj_submitter / … (生态环境局 报送员)`` for the showcase department, if its password is known."""
    department = _showcase_department(registry)
    username = demo_usernames(department)[Role.SUBMITTER]
    if username not in passwords:
        return None
    return f"login: {username} / {passwords[username]} ({registry.departments[department].name} {Role.SUBMITTER.label})"


class PortalExtension:
    """Starts, stops and demonstrates the departments' portal."""

    name = "portal"

    def up(self) -> list[str]:
        """Start the portal; on a fresh install, create the demo accounts so there is a login to print."""
        from huiju.registry import load_registry
        from huiju.warehouse import warehouse_url
        from huiju_portal.service import start

        settings = get_portal_settings()
        registry = load_registry()
        with psycopg.connect(warehouse_url(), autocommit=True) as conn:
            empty = conn.execute("select not exists (select 1 from portal.accounts)").fetchone()[0]
            if empty:
                ensure_demo_accounts(conn, registry, demo_passwords_file())
        pid = start(settings)
        path = demo_passwords_file()
        passwords = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        login = login_line(registry, passwords) or "create accounts with `huiju-portal account create`"
        return [f"Departments' portal 部门门户: {settings.address}  {login}  (pid {pid})"]

    def down(self) -> list[str]:
        """Stop the portal if it runs."""
        from huiju_portal.service import stop

        pid = stop(get_portal_settings())
        return [f"stopped portal (pid {pid})"] if pid is not None else []

    def demo(self, registry: Registry, day: date, manifest: DemoManifest) -> DemoContribution:
        """Demo accounts; the demo's portal workbooks uploaded and a few records entered by hand."""
        from huiju.warehouse import warehouse_url

        lines: list[str] = []
        submissions: list[SourceSubmission] = []
        with psycopg.connect(warehouse_url(), autocommit=True) as conn:
            passwords = ensure_demo_accounts(conn, registry, demo_passwords_file())
            lines.append(f"portal: demo accounts for {len(registry.departments)} departments and a steward "
                         f"(passwords in {demo_passwords_file()})")
            uploaded = set()
            for submission in manifest.submissions:
                source = registry.sources.get(submission.source_id)
                if source is None or source.channel != "portal" or submission.path is None:
                    continue
                lines.append(self._upload(conn, registry, source, submission.path, day))
                uploaded.add(source.id)
            for source in registry.sources.values():
                if source.channel == "portal" and source.channel_settings.manual_entry and source.id not in uploaded \
                        and not source.channel_settings.upload:
                    line, submission = self._enter(conn, registry, source, day)
                    lines.append(line)
                    submissions.append(submission)
        login = login_line(registry, passwords)
        if login:
            lines.append(f"portal {login}")
        return DemoContribution(tuple(submissions), lines)

    @staticmethod
    def _submitter(conn: psycopg.Connection, department: str):
        account = find_account(conn, demo_usernames(department)[Role.SUBMITTER])
        assert account is not None, "demo accounts are created first"
        return account

    def _upload(self, conn: psycopg.Connection, registry: Registry, source, path: Path, day: date) -> str:
        from huiju_portal.uploads import accept_upload

        account = self._submitter(conn, source.department)
        result = accept_upload(conn, registry, source, account, path, path.name, client_addr="demo", data_date=day)
        verdict = f"{result.verdict.status}, {result.verdict.rows_quarantined} quarantined" if result.verdict else \
            result.outcome
        return f"portal: {account.username} uploaded {path.name} for {source.id} → {result.load_id} ({verdict})"

    def _enter(self, conn: psycopg.Connection, registry: Registry, source, day: date):
        from huiju.demo.generate import SourceSubmission, generate_records
        from huiju_portal.entry import save_entry

        account = self._submitter(conn, source.department)
        typed, _ = generate_records(registry, source, day, rows=ENTRY_RECORDS)
        records = [{source.columns[header]: (value or None) for header, value in record.items()} for record in typed]
        # A fixed submission id per source and day: the demo run twice saves the entry once.
        result = save_entry(conn, registry, source, account, records, f"demo-{source.id}-{day:%Y%m%d}",
                            client_addr="demo", data_date=day)
        submission = SourceSubmission(source_id=source.id, path=None, format="entry", rows_written=len(records),
                                      first_data_row=1, expected_quarantined=0, bad_rows=())
        return (f"portal: {account.username} entered {len(records)} records by hand for {source.id} → "
                f"{result.load_id}"), submission


PORTAL = PortalExtension()
