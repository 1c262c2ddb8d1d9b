"""The wheel a production install gets holds every module of every package and their data files.

The editable install used for development finds modules wherever they are, so a package left
out of the build would only show in production: build the wheel and compare it with the tree.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_package_folders() -> dict[str, str]:
    """setup.py's ``PACKAGE_FOLDERS`` (importable name → folder), read rather than imported: importing
    setup.py would run ``setup()``."""
    for node in ast.parse((ROOT / "setup.py").read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["PACKAGE_FOLDERS"]:
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py no longer assigns PACKAGE_FOLDERS")


#: Importable name → the folder holding it, as setup.py maps them.
PACKAGE_FOLDERS = setup_package_folders()
#: Data files that must ship beside the modules, as globs relative to the repository.
DATA_FILES = ("huiju/sql/*.sql", "portal/templates/*.html", "portal/static/*")
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md")


def expected_members() -> set[str]:
    """Every module and data file of the tree, as the path it has inside the wheel."""
    members = set()
    for name, folder in PACKAGE_FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            members.add(f"{name}/{path.relative_to(ROOT / folder).as_posix()}")
    for pattern in DATA_FILES:
        folder, _, glob = pattern.rpartition("/")
        owner = next(name for name, root in PACKAGE_FOLDERS.items() if folder.startswith(root))
        inside = folder.removeprefix(PACKAGE_FOLDERS[owner]).strip("/")
        members |= {f"{owner}/{inside}/{path.name}" for path in (ROOT / folder).glob(glob)}
    return members


def test_the_wheel_holds_every_module_and_data_file(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    for folder in PACKAGE_FOLDERS.values():
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in BUILD_INPUTS:
        shutil.copy2(ROOT / name, source / name)
    uv = Path(sys.executable).with_name("uv")
    built = subprocess.run([str(uv), "build", "--wheel", "--quiet", "--out-dir", str(tmp_path / "dist"), str(source)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    missing = sorted(expected_members() - shipped)
    assert not missing, f"not in the wheel: {missing}"
    # One file of each package, so a package left out of setup.py's PACKAGE_FOLDERS fails here too.
    assert {"huiju/sql/001_platform.sql", "huiju_connectors/rest/paging.py", "huiju_demo/generate.py",
            "huiju_airflow/plugin.py", "huiju_portal/templates/base.html", "huiju_portal/static/portal.css"} <= shipped
