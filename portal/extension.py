"""The portal's part in ``huiju up`` / ``down`` (entry point ``huiju.extensions``: ``PORTAL``)."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import psycopg

from huiju.airflow_env import PORTAL_USER, account_password, ui_port
from huiju.registry import Registry, load_registry
from huiju.warehouse import role_url
from huiju_portal.accounts import demo_usernames, ensure_demo_accounts
from huiju_portal.config import get_portal_settings
from huiju_portal.roles import Role
from huiju_portal.service import start, stop

log = logging.getLogger(__name__)


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
    """Starts and stops the departments' portal."""

    name = "portal"

    def up(self) -> list[str]:
        """Start the portal; on a fresh install, create the demo accounts so there is a login to print.

        Unless configured otherwise, the portal asks the Airflow ``up`` started for ingest runs, with
        that instance's portal account.
        """
        settings = get_portal_settings()
        if settings.airflow_url is None:
            settings = dataclasses.replace(settings, airflow_url=f"http://127.0.0.1:{ui_port()}",
                                           airflow_user=PORTAL_USER, airflow_password=account_password(PORTAL_USER))
        registry = load_registry()
        with psycopg.connect(role_url("portal"), autocommit=True) as conn:
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
        pid = stop(get_portal_settings())
        return [f"stopped portal (pid {pid})"] if pid is not None else []


PORTAL = PortalExtension()
