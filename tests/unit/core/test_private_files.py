"""Archive, outbox, logs and secrets: 0600 (originals 0400) in 0700 folders from the moment they exist.

Each test runs with the most permissive umask (000), so a writer that relied on the umask, or that
created a file and chmod-ed it afterwards, shows a group/other bit here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from huiju.archive import archive_bytes, archive_file, archive_pack
from huiju.private_files import open_private, private_output, restrict_umask, write_private
from huiju.settings import get_settings


def mode(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def assert_private_tree(root: Path) -> None:
    """Every folder under ``root`` (itself included) is 0700 and every file 0600 or 0400."""
    assert mode(root) == 0o700, root
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            assert mode(Path(folder, name)) == 0o700, Path(folder, name)
        for name in files:
            assert mode(Path(folder, name)) in (0o600, 0o400), Path(folder, name)


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_private_helpers_create_0600_files_in_0700_folders_whatever_the_umask(tmp_path: Path, open_umask: None) -> None:
    written = write_private(tmp_path / "a" / "b" / "secret", "s3cret")
    assert written.read_text() == "s3cret"
    with open_private(tmp_path / "logs" / "x.log") as log:
        log.write("line\n")
    with private_output(tmp_path / "out" / "book.xlsx") as out:
        out.write(b"PK")
    assert_private_tree(tmp_path / "a")
    assert_private_tree(tmp_path / "logs")
    assert_private_tree(tmp_path / "out")
    assert not list((tmp_path / "out").glob(".*"))  # no temporary left behind


def test_an_existing_loose_file_or_folder_is_narrowed(tmp_path: Path, open_umask: None) -> None:
    loose_dir = tmp_path / "old"
    loose_dir.mkdir(mode=0o755)
    loose = loose_dir / "service.log"
    loose.write_text("old\n")
    loose.chmod(0o644)
    with open_private(loose) as log:
        log.write("new\n")
    assert mode(loose) == 0o600 and mode(loose_dir) == 0o700
    assert loose.read_text() == "old\nnew\n"


def test_a_file_is_never_visible_with_a_wider_mode_while_it_is_written(tmp_path: Path, open_umask: None) -> None:
    """Watch the folder while a large file is written: every name seen is already 0600."""
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for entry in os.scandir(tmp_path / "w") if (tmp_path / "w").exists() else ():
                with contextlib.suppress(FileNotFoundError):  # renamed away meanwhile
                    seen.add(stat.S_IMODE(entry.stat().st_mode))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for n in range(20):
            write_private(tmp_path / "w" / f"f{n}", b"x" * 200_000)
    finally:
        done.set()
        watcher.join()
    assert seen <= {0o600, 0o700}


def test_archived_originals_are_owner_read_only_in_private_folders(tmp_path: Path, open_umask: None) -> None:
    content = b"id,name\n1,x\n"
    sha = hashlib.sha256(content).hexdigest()
    archive_bytes(content, sha, root=tmp_path / "a")
    source = tmp_path / "in.csv"
    source.write_bytes(content)
    archive_file(source, sha, root=tmp_path / "b")
    archive_pack([b"p1", b"p2"], [hashlib.sha256(b"p1").hexdigest(), hashlib.sha256(b"p2").hexdigest()],
                 root=tmp_path / "c")
    for root in ("a", "b", "c"):
        assert_private_tree(tmp_path / root)
        assert {mode(p) for p in (tmp_path / root).rglob("*") if p.is_file()} == {0o400}


@pytest.fixture
def scratch_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("HUIJU_VAR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield tmp_path / "var"
    get_settings.cache_clear()


def test_airflow_secrets_and_config_are_private_from_creation(scratch_var: Path, open_umask: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """airflow.cfg (Fernet key, JWT secret, metadata DB URL), the key files and the passwords file."""
    from huiju import airflow_env

    # No database is needed to render the configuration: the metadata URL is derived, not created.
    monkeypatch.setattr(airflow_env, "warehouse_url", lambda: "postgresql://u:p@127.0.0.1:5432/huiju")
    monkeypatch.setattr(airflow_env, "_metadata_db_url", lambda warehouse: "postgresql://u:p@127.0.0.1:5432/af")
    config = airflow_env.write_airflow_config()
    home = scratch_var / "airflow"
    for name in ("airflow.cfg", ".fernet_key", ".jwt_secret", "simple_auth_manager_passwords.json"):
        assert mode(home / name) == 0o600, name
    assert mode(home) == 0o700
    text = config.read_text()
    assert "file_task_handler_new_file_permissions = 0o600" in text
    assert "file_task_handler_new_folder_permissions = 0o700" in text
    airflow_env.write_airflow_config()  # rewritten: still 0600, same secrets
    assert mode(config) == 0o600 and config.read_text() == text


def test_the_cli_runs_with_umask_077_and_a_private_var(scratch_var: Path, open_umask: None) -> None:
    from huiju.cli import main

    assert main(["check-config"]) == 0
    try:
        assert os.umask(0o077) == 0o077
        assert mode(scratch_var) == 0o711  # passable to the embedded server's OS user, not listable
    finally:
        os.umask(0)


def test_restrict_umask_returns_the_previous_one(open_umask: None) -> None:
    assert restrict_umask() == 0
    assert os.umask(0) == 0o077
