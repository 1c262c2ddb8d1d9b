"""The production deployment under docker/: a linted image and a compose file valid against the Compose
Specification, with every Airflow component, a worker per queue and secrets only as files.

No Docker engine runs on the development machines, so neither is built or started here (docker/README.md
says what was and was not run); these checks are what can be proven without one.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from huiju.settings import QUEUES
from tests.test_packaging import PACKAGE_FOLDERS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"
#: compose-spec/compose-spec schema/compose-spec.json at commit 170098ba (2026-06-23), Apache-2.0.
COMPOSE_SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec.json"
AIRFLOW_COMPONENTS = {"api-server", "scheduler", "dag-processor", "triggerer"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    linted = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_image_is_multi_stage_non_root_and_installs_the_built_wheel() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) >= 2
    (user,) = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert not user.startswith(("0", "root")), user
    assert "uv build --wheel" in text and "pip install --no-cache-dir --no-deps /tmp/dist/*.whl" in text
    assert "-r /tmp/requirements.txt" in text, "the image installs the pinned requirements"
    copied = set(re.findall(r"^COPY (\S+) \1$", text, re.MULTILINE))
    assert set(PACKAGE_FOLDERS.values()) - {"plugins/huiju_airflow"} | {"plugins"} <= copied, (
        "the build stage copies every package folder setup.py maps")


def test_the_compose_file_is_valid_against_the_compose_specification(compose: dict) -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator(schema).validate(compose)


def test_every_airflow_component_and_a_worker_per_queue(compose: dict) -> None:
    services = compose["services"]
    assert set(services) >= AIRFLOW_COMPONENTS
    assert {"redis", "postgres", "init", "portal"} <= set(services)
    served = set()
    for service in services.values():
        command = service.get("command") or []
        if command[:2] == ["celery", "worker"]:
            served |= set(command[command.index("--queues") + 1].split(","))
    assert served == set(QUEUES)


def test_secrets_are_files_and_every_component_shares_one_jwt_secret(compose: dict) -> None:
    jwt_sources = set()
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        for key, value in environment.items():
            if re.search(r"PASSWORD|SECRET|KEY|_URL", key) and not key.endswith(("_FILE", "_CMD")):
                assert not re.search(r"://[^/@]*:[^/@]*@", str(value)), f"{name}: {key} holds a credential"
            assert not re.search(r"PASSWORD$|SECRET$|_KEY$", key), f"{name}: {key} is a secret in the environment"
        if name in AIRFLOW_COMPONENTS or name.startswith("worker-"):
            jwt_sources.add(environment["AIRFLOW__API_AUTH__JWT_SECRET_CMD"])
            assert "airflow_jwt_secret" in service["secrets"]
            assert environment["HUIJU_EXECUTOR"] == "CeleryExecutor"
    assert jwt_sources == {"cat /run/secrets/airflow_jwt_secret"}
    declared = set(compose["secrets"])
    for name, service in compose["services"].items():
        for secret in service.get("secrets", []):
            assert (secret if isinstance(secret, str) else secret["source"]) in declared, (name, secret)
