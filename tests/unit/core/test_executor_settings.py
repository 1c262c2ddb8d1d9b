"""The executor is chosen by configuration: LocalExecutor by default, CeleryExecutor with a broker and the
metadata database as result backend; secrets may come from files (``<NAME>_FILE``)."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from huiju.settings import get_settings, secret_setting

pytestmark = pytest.mark.unit


def rendered_config(monkeypatch: pytest.MonkeyPatch) -> configparser.ConfigParser:
    from huiju import airflow_env

    monkeypatch.setattr(airflow_env, "warehouse_url", lambda: "postgresql://u:p@127.0.0.1:5432/huiju")
    monkeypatch.setattr(airflow_env, "_metadata_db_url", lambda warehouse: "postgresql://af:pw@127.0.0.1:5432/af")
    config = configparser.ConfigParser(interpolation=None)
    config.read(airflow_env.write_airflow_config())
    return config


def test_local_executor_is_the_default(scratch_var: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUIJU_EXECUTOR", raising=False)
    config = rendered_config(monkeypatch)
    # Airflow's LocalExecutor, its workers forked with the tasks' modules imported (huiju_airflow.executors).
    assert config["core"]["executor"] == "huiju_airflow.executors.PreloadingLocalExecutor"
    assert not config.has_section("celery")


def test_the_local_executor_is_airflows_with_the_task_modules_imported_before_its_workers_fork(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.executors.local_executor import LocalExecutor
    from huiju_airflow import executors

    imported: list[str] = []
    monkeypatch.setattr(executors.importlib, "import_module", imported.append)
    monkeypatch.setattr(LocalExecutor, "start", lambda self: imported.append("workers started"))
    executors.PreloadingLocalExecutor().start()
    assert imported == [*executors.TASK_MODULES, "workers started"]
    assert "great_expectations" in executors.TASK_MODULES and "huiju.pipeline" in executors.TASK_MODULES


def test_celery_executor_gets_its_broker_and_the_metadata_database_as_result_backend(
        scratch_var: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUIJU_EXECUTOR", "CeleryExecutor")
    monkeypatch.setenv("HUIJU_CELERY_BROKER_URL", "redis://127.0.0.1:6379/5")
    config = rendered_config(monkeypatch)
    assert config["core"]["executor"] == "CeleryExecutor"
    assert config["celery"]["broker_url"] == "redis://127.0.0.1:6379/5"
    assert config["celery"]["result_backend"] == "db+postgresql+psycopg2://af:pw@127.0.0.1:5432/af"
    assert int(config["celery_broker_transport_options"]["visibility_timeout"]) >= 3600


def test_an_unknown_executor_is_refused_by_name(scratch_var: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUIJU_EXECUTOR", "KubernetesExecutor")
    with pytest.raises(ValueError, match="HUIJU_EXECUTOR='KubernetesExecutor'"):
        get_settings()


def test_a_secret_setting_may_name_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "warehouse_url"
    secret.write_text("postgresql://huiju:s3cret@db/huiju\n")
    monkeypatch.delenv("HUIJU_TEST_SECRET", raising=False)
    assert secret_setting("HUIJU_TEST_SECRET") is None
    monkeypatch.setenv("HUIJU_TEST_SECRET_FILE", str(secret))
    assert secret_setting("HUIJU_TEST_SECRET") == "postgresql://huiju:s3cret@db/huiju"
    monkeypatch.setenv("HUIJU_TEST_SECRET", "direct")
    assert secret_setting("HUIJU_TEST_SECRET") == "direct"
    monkeypatch.delenv("HUIJU_TEST_SECRET")
    monkeypatch.setenv("HUIJU_TEST_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=r"HUIJU_TEST_SECRET_FILE=.*missing"):
        secret_setting("HUIJU_TEST_SECRET")
