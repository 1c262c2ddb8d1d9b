"""A copy of ``config/`` to break on purpose, and the problems the registry then reports."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from huiju.registry import ConfigError, load_registry

CONFIG = Path(__file__).resolve().parents[2] / "config"


def copy_config(target: Path, departments: tuple[str, ...] | None = None) -> Path:
    """``config/`` copied to ``target``: every department file, or only ``departments`` (file names)."""
    if departments is None:
        shutil.copytree(CONFIG, target)
        return target
    shutil.copytree(CONFIG / "datasets", target / "datasets")
    shutil.copytree(CONFIG / "wsdl", target / "wsdl")
    shutil.copytree(CONFIG / "item_sets", target / "item_sets")
    (target / "departments").mkdir()
    for name in departments:
        shutil.copy(CONFIG / "departments" / name, target / "departments" / name)
    return target


def edit(path: Path, old: str, new: str) -> None:
    """Replace the first ``old`` in the file with ``new`` (``old`` must be there)."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def problems_of(config: Path) -> list[str]:
    """The problems loading ``config`` reports (it must fail)."""
    with pytest.raises(ConfigError) as caught:
        load_registry(config)
    return caught.value.problems


# One change to a config copy: (file under config/, the text replaced, its replacement).
Edit = tuple[str, str, str]


def assert_reported(config: Path, edits: list[Edit], expected: list[tuple[str, ...]]) -> None:
    """Make ``edits`` to the copy ``config``; loading it must fail and, for each of ``expected``, report
    one problem naming every one of its parts (file and key first, then the reason)."""
    for file, old, new in edits:
        edit(config / file, old, new)
    problems = problems_of(config)
    for parts in expected:
        assert any(all(part in problem for part in parts) for problem in problems), (parts, problems)
