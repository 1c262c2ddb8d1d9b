"""Probe Huiju's pages on Airflow's API server with real Airflow tokens (run as a process of its own).

``python -m tests.support.airflow_login`` builds the part of Airflow's API server that matters here,
the way Airflow builds it: the configured auth manager (``init_auth_manager``) and every plugin's
FastAPI app mounted by Airflow's own ``init_plugins``; then it asks for each Huiju page as an
anonymous script, an anonymous browser, with a garbage token, with a token Airflow's JWT signer
issued (as a ``Bearer`` header and as the UI's cookie), and with that token once revoked.
It prints one JSON object: ``{case: [status, location header]}``. ``… serve <port>`` serves the same app on
loopback instead, for a browser, after printing an admin's token (``tests/support/dashboard.py``).

Its own process because Airflow's configuration and auth manager are process-wide: the caller
sets ``AIRFLOW_HOME``, a SQLite metadata database (only the revoked-token table is created: the
one table token validation reads), the simple auth manager and a JWT secret (see
``tests/unit/plugins/test_auth.py``).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from airflow import settings
from airflow.api_fastapi.app import init_auth_manager, init_plugins
from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from airflow.models.revoked_token import RevokedToken
from fastapi import FastAPI
from starlette.testclient import TestClient

from tests.support.dashboard import TOKEN_LINE


def airflow_app() -> tuple[FastAPI, Any]:
    """An app with Airflow's configured auth manager and every plugin's FastAPI app, as the API server mounts them."""
    RevokedToken.metadata.create_all(settings.engine, tables=[RevokedToken.__table__])
    app = FastAPI()
    manager = init_auth_manager(app)
    init_plugins(app)
    return app, manager


def serve(port: int) -> None:
    """Serve :func:`airflow_app` on loopback ``port``, first printing ``{"token": …}``: an admin's JWT (UI cookie)."""
    import uvicorn  # why: only the serving mode needs a server

    app, manager = airflow_app()
    token = manager.generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
    print(TOKEN_LINE + json.dumps({"token": token}), flush=True)  # Airflow logs to stdout too: the line is marked
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def probe(paths: list[str]) -> dict[str, list]:
    """Status and Location of each case for each of ``paths``."""
    app, manager = airflow_app()
    token = manager.generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
    revoked = manager.generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
    manager.revoke_token(revoked)
    html = {"Accept": "text/html,application/xhtml+xml"}
    results: dict[str, list] = {}
    with TestClient(app, follow_redirects=False) as client:
        for path in paths:
            cases = {
                "anonymous": client.get(path),
                "anonymous_browser": client.get(path, headers=html),
                "garbage_token": client.get(path, headers={"Authorization": "Bearer not-a-jwt"}),
                "revoked_token": client.get(path, headers={"Authorization": f"Bearer {revoked}"}),
                "bearer": client.get(path, headers={"Authorization": f"Bearer {token}"}),
                "cookie": client.get(path, headers=html, cookies={COOKIE_NAME_JWT_TOKEN: token}),
                "escape": client.get(path + "..%2f..%2fairflow.cfg", headers={"Authorization": f"Bearer {token}"}),
            }
            for case, response in cases.items():
                results[f"{path} {case}"] = [response.status_code, response.headers.get("location"),
                                             response.text[:200]]
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]))
    else:
        print(json.dumps(probe(sys.argv[1:])))
