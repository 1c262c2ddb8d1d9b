"""The dbt docs on Airflow's API server are behind Airflow's login (huiju_airflow.auth).

Real Airflow: its simple auth manager, tokens issued by its JWT signer, the plugin mounted by its own
``init_plugins`` (:mod:`tests.support.airflow_login`, in a process of its own because Airflow's
configuration is process-wide). Anonymous visitors and bad tokens are refused, a browser is sent to the
login page, a logged-in user (Bearer token or the UI's cookie) gets the page, and nothing outside the
site is served.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from huiju_airflow.plugin import DBT_DOCS_PREFIX

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    tmp = tmp_path_factory.mktemp("airflow_login")
    var = tmp / "var"
    (var / "dbt" / "docs").mkdir(parents=True)
    (var / "dbt" / "docs" / "index.html").write_text("<html>dbt docs</html>", encoding="utf-8")
    (tmp / "airflow").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "HUIJU_VAR": str(var),
        "AIRFLOW_HOME": str(tmp / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp / 'airflow' / 'airflow.db'}",
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(tmp / "airflow" / "passwords.json"),
        "AIRFLOW__API_AUTH__JWT_SECRET": "test-jwt-secret-of-this-test-only-0123456789",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    })
    done = subprocess.run([sys.executable, "-m", "tests.support.airflow_login", f"{DBT_DOCS_PREFIX}/"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("prefix", "page"), [(DBT_DOCS_PREFIX, "dbt docs")])
def test_the_docs_sites_are_served_to_logged_in_users_only(probed: dict[str, list], prefix: str, page: str) -> None:
    def case(name: str) -> list:
        return probed[f"{prefix}/ {name}"]

    assert case("anonymous")[0] == 401 and page not in case("anonymous")[2]
    status, location, _ = case("anonymous_browser")
    assert status == 303 and location.startswith("/auth/login?next=")  # Airflow's login page, then back here
    assert prefix.lstrip("/") in location
    assert case("garbage_token")[0] in (401, 403) and page not in case("garbage_token")[2]
    assert case("revoked_token")[0] in (401, 403) and page not in case("revoked_token")[2]
    assert case("bearer")[:1] == [200] and page in case("bearer")[2]
    assert case("cookie")[:1] == [200] and page in case("cookie")[2]  # the UI's session cookie
    assert case("escape")[0] == 404  # nothing outside the site, even logged in
