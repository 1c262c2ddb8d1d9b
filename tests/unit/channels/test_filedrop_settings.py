"""Config mistakes in the `ftp:` / `sftp:` blocks are reported with the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from huiju.cli import main
from huiju.registry import load_registry
from tests.support.config import CONFIG, Edit, assert_reported, copy_config, edit


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return copy_config(tmp_path / "config")


def test_the_file_drop_sources_load_with_their_settings() -> None:
    registry = load_registry(CONFIG)
    ftp = registry.source("cgj_penalty").channel_settings
    sftp = registry.source("zjj_penalty").channel_settings
    assert (ftp.completeness, ftp.after_success, ftp.marker_suffixes) == ("marker", "move", (".done", ".ok"))
    assert (sftp.completeness, sftp.after_success, sftp.directory) == ("rename", "leave", "upload")


CGJ = "departments/cgj.yaml"
ZJJ = "departments/zjj.yaml"

# Each mistake: the edits made to a copy of config/, and what loading it must report (the parts one
# problem names).
MISTAKES = [
    pytest.param(
        [(CGJ, "completeness: marker", "completness: marker")],
        [("config/departments/cgj.yaml: sources[0].ftp.completness: unknown key", "did you mean 'completeness'")],
        id="a misspelt ftp key names file, key and suggestion"),
    pytest.param(
        [(CGJ, "after_success: move", "after_success: delete"),
         (CGJ, "name_encoding: utf-8 ", "name_encoding: gbk2 "),
         (CGJ, "processed_dir: processed", "processed_dir: ../elsewhere")],
        [("config/departments/cgj.yaml: sources[0].ftp.after_success:", "'move'"),
         ("sources[0].ftp.name_encoding: unknown encoding 'gbk2'",),
         ("sources[0].ftp.processed_dir:", "'..'")],
        id="wrong values in the ftp block"),
    pytest.param(
        [(CGJ, "max_files: 50", "max_files: 50\n      ca_file: /etc/ca.pem")],
        [("config/departments/cgj.yaml: sources[0].ftp:", "ca_file is only used with tls")],
        id="ca_file without tls"),
    pytest.param(
        [(ZJJ, "completeness: rename", "completeness: size_stable"),
         (ZJJ, "max_files: 50", "max_files: 0\n      host_keys: [not-a-key]")],
        [("config/departments/zjj.yaml: sources[0].sftp.completeness:", "'marker'"),
         ("zjj.yaml: sources[0].sftp.max_files:",),
         ("zjj.yaml: sources[0].sftp.host_keys:", "not an OpenSSH public key")],
        id="sftp block mistakes"),
    pytest.param(
        [(ZJJ, "    sftp:\n", "    ftp:\n")],
        [("zjj.yaml: sources[0]:", "do not belong to channel 'sftp'")],
        id="a block of the other file channel"),
]


@pytest.mark.parametrize(("edits", "expected"), MISTAKES)
def test_a_mistake_is_reported_with_file_key_and_reason(
    config: Path, edits: list[Edit], expected: list[tuple[str, ...]]
) -> None:
    assert_reported(config, edits, expected)


def test_plain_ftp_and_unencrypted_frontdb_must_be_written_out_and_are_warned_about(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = load_registry(CONFIG)
    assert registry.source("cgj_penalty").channel_settings.tls is False  # the demo's loopback server, said out loud
    assert main(["check-config", "--config", str(config)]) == 0
    err = capsys.readouterr().err
    assert "WARNING (security): cgj_penalty: ftp.tls is false" in err
    assert "WARNING (security): rsj_penalty: frontdb.tls.enabled is false" in err
    # Without the explicit setting, FTPS (verified) is what a source gets.
    edit(config / "departments/cgj.yaml", "      tls: false", "      ")
    assert load_registry(config).source("cgj_penalty").channel_settings.tls is True
    assert main(["check-config", "--config", str(config)]) == 0
    assert "cgj_penalty: ftp.tls" not in capsys.readouterr().err
