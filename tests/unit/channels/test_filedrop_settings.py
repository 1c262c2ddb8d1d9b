"""Config mistakes in the `ftp:` / `sftp:` blocks are reported with the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from huiju.cli import main
from huiju.registry import load_registry
from tests.support.config import CONFIG, copy_config, edit, problems_of


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return copy_config(tmp_path / "config")


def test_the_file_drop_sources_load_with_their_settings() -> None:
    registry = load_registry(CONFIG)
    ftp = registry.source("cgj_penalty").channel_settings
    sftp = registry.source("zjj_penalty").channel_settings
    assert (ftp.completeness, ftp.after_success, ftp.marker_suffixes) == ("marker", "move", (".done", ".ok"))
    assert (sftp.completeness, sftp.after_success, sftp.directory) == ("rename", "leave", "upload")


def test_misspelt_ftp_key_names_file_key_and_suggestion(config: Path) -> None:
    edit(config / "departments/cgj.yaml", "completeness: marker", "completness: marker")
    problems = problems_of(config)
    assert any(p.startswith("config/departments/cgj.yaml: sources[0].ftp.completness: unknown key")
               and "did you mean 'completeness'" in p for p in problems), problems


def test_wrong_values_in_the_ftp_block(config: Path) -> None:
    edit(config / "departments/cgj.yaml", "after_success: move", "after_success: delete")
    edit(config / "departments/cgj.yaml", "name_encoding: utf-8 ", "name_encoding: gbk2 ")
    edit(config / "departments/cgj.yaml", "processed_dir: processed", "processed_dir: ../elsewhere")
    problems = problems_of(config)
    assert any(p.startswith("config/departments/cgj.yaml: sources[0].ftp.after_success:") and "'move'" in p
               for p in problems), problems
    assert any("sources[0].ftp.name_encoding: unknown encoding 'gbk2'" in p for p in problems), problems
    assert any("sources[0].ftp.processed_dir:" in p and "'..'" in p for p in problems), problems


def test_ca_file_without_tls_is_reported(config: Path) -> None:
    edit(config / "departments/cgj.yaml", "max_files: 50", "max_files: 50\n      ca_file: /etc/ca.pem")
    problems = problems_of(config)
    assert any(p.startswith("config/departments/cgj.yaml: sources[0].ftp:") and "ca_file is only used with tls"
               in p for p in problems), problems


def test_sftp_block_mistakes(config: Path) -> None:
    edit(config / "departments/zjj.yaml", "completeness: rename", "completeness: size_stable")
    edit(config / "departments/zjj.yaml", "max_files: 50", "max_files: 0\n      host_keys: [not-a-key]")
    problems = problems_of(config)
    assert any(p.startswith("config/departments/zjj.yaml: sources[0].sftp.completeness:") and "'marker'" in p
               for p in problems), problems
    assert any("zjj.yaml: sources[0].sftp.max_files:" in p for p in problems), problems
    assert any("zjj.yaml: sources[0].sftp.host_keys:" in p and "not an OpenSSH public key" in p
               for p in problems), problems


def test_a_block_of_the_other_file_channel_is_reported(config: Path) -> None:
    edit(config / "departments/zjj.yaml", "    sftp:\n", "    ftp:\n")
    problems = problems_of(config)
    assert any("zjj.yaml: sources[0]:" in p and "do not belong to channel 'sftp'" in p for p in problems), problems


def test_plain_ftp_and_unencrypted_frontdb_must_be_written_out_and_are_warned_about(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = load_registry(CONFIG)
    assert registry.source("cgj_penalty").channel_settings.tls is False  # the demo's loopback server, said out loud
    assert main(["check-config", "--config", str(config)]) == 0
    err = capsys.readouterr().err
    assert "warning: cgj_penalty: ftp.tls is false" in err and "warning: rsj_penalty: frontdb.tls.enabled" in err
    # Without the explicit setting, FTPS (verified) is what a source gets.
    edit(config / "departments/cgj.yaml", "      tls: false", "      ")
    assert load_registry(config).source("cgj_penalty").channel_settings.tls is True
    assert main(["check-config", "--config", str(config)]) == 0
    assert "cgj_penalty: ftp.tls" not in capsys.readouterr().err
