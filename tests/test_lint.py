"""The tree stays ruff clean (rules in pyproject.toml) and the dbt SQL sqlfluff clean (dbt_project/.sqlfluff)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean() -> None:
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)], capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr



def test_dbt_models_are_sqlfluff_clean() -> None:
    # The jinja templater with dbt's builtins (dbt_project/.sqlfluff): no profile, no database.
    done = subprocess.run([sys.executable, "-m", "sqlfluff", "lint", "models", "--processes", "2",
                           "--disable-progress-bar"], capture_output=True, text=True, cwd=ROOT / "dbt_project")
    assert done.returncode == 0, done.stdout + done.stderr
