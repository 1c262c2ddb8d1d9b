"""``huiju-portal`` (or ``python -m huiju_portal``): serve the portal, manage its accounts from the shell."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import psycopg

from huiju.private_files import private_dir, restrict_umask
from huiju.registry import load_registry
from huiju.settings import get_settings
from huiju.warehouse import role_url
from huiju_portal.accounts import AccountError, create_account, find_account, list_accounts, reset_password
from huiju_portal.config import get_portal_settings
from huiju_portal.roles import Role
from huiju_portal.throttle import clear_failures


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the portal (in the foreground; ``huiju up`` runs this in the background)."""
    # why: the web stack (uvicorn, FastAPI, the routers) is for serving only; the account commands start without it
    import uvicorn

    from huiju_portal.app import create_app

    settings = get_portal_settings()
    # X-Forwarded-For is read by the portal itself, only from HUIJU_PORTAL_TRUSTED_PROXIES.
    uvicorn.run(create_app(settings), host=args.host or settings.host, port=args.port or settings.port,
                proxy_headers=False, server_header=False, log_level="info")
    return 0


def _connect() -> psycopg.Connection:
    return psycopg.connect(role_url("portal"), autocommit=True)


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def cmd_create(args: argparse.Namespace) -> int:
    """Create an account and print its temporary password (shown once)."""
    with _connect() as conn:
        try:
            account, password = create_account(conn, load_registry(), username=args.username,
                                               display_name=args.name or args.username, department=args.department,
                                               roles={Role(r) for r in args.role}, created_by="cli")
        except AccountError as exc:
            return _error(str(exc))
    print(f"created {account.username} ({account.role_labels}); temporary password: {password}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """List the accounts."""
    with _connect() as conn:
        for account in list_accounts(conn):
            state = "disabled" if account.disabled else ("must change password" if account.must_change_password
                                                         else "active")
            print(f"{account.username:24} {account.department or '(bureau)':10} {account.role_labels:16} {state}")
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    """Give an account a new temporary password."""
    with _connect() as conn:
        account = find_account(conn, args.username)
        if account is None:
            return _error(f"no account {args.username}")
        print(f"temporary password for {account.username}: {reset_password(conn, account.account_id)}")
    return 0


def cmd_unlock(args: argparse.Namespace) -> int:
    """Clear an account name's failed logins (the throttle's lock)."""
    with _connect() as conn:
        clear_failures(conn, args.username)
    print(f"unlocked {args.username}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``huiju-portal``."""
    logging.basicConfig(level=os.environ.get("HUIJU_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="huiju-portal", description="Huiju departments' portal 部门门户")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help=cmd_serve.__doc__)
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(func=cmd_serve)
    account = sub.add_parser("account", help="manage accounts").add_subparsers(dest="action", required=True)
    create = account.add_parser("create", help=cmd_create.__doc__)
    create.add_argument("username")
    create.add_argument("--name", help="display name (姓名)")
    create.add_argument("--department", help="department code (config/departments/<code>.yaml); none for stewards")
    create.add_argument("--role", action="append", required=True, choices=[r.value for r in Role])
    create.set_defaults(func=cmd_create)
    account.add_parser("list", help=cmd_list.__doc__).set_defaults(func=cmd_list)
    reset = account.add_parser("reset-password", help=cmd_reset.__doc__)
    reset.add_argument("username")
    reset.set_defaults(func=cmd_reset)
    unlock = account.add_parser("unlock", help=cmd_unlock.__doc__)
    unlock.add_argument("username")
    unlock.set_defaults(func=cmd_unlock)
    args = parser.parse_args(argv)
    restrict_umask()  # uploads, logs and feedback copies are the platform's alone
    private_dir(get_settings().var)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
