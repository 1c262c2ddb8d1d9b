"""One vocabulary in every channel block: a key that was renamed is answered with its new name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.config import copy_config, edit, problems_of

RENAMED = [  # (department file, channel block, old key, new key)
    ("cgj.yaml", "ftp", "timeout_seconds", "timeout"),
    ("cgj.yaml", "ftp", "batch_size", "max_files"),
    ("cgj.yaml", "ftp", "encoding", "name_encoding"),
    ("zjj.yaml", "sftp", "timeout_seconds", "timeout"),
    ("jtj.yaml", "rest", "max_attempts", "attempts"),
    ("jtj.yaml", "rest", "read_timeout", "timeout"),
    ("gaj.yaml", "soap", "ca_bundle", "ca_file"),
]


@pytest.mark.parametrize(("file", "block", "old", "new"), RENAMED)
def test_an_old_key_is_answered_with_its_new_name(tmp_path: Path, file: str, block: str, old: str, new: str) -> None:
    config = copy_config(tmp_path / "config")
    edit(config / "departments" / file, f"    {block}:\n", f"    {block}:\n      {old}: x\n")
    assert f"config/departments/{file}: sources[0].{block}.{old}: renamed to {new!r}" in problems_of(config)
