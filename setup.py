"""Package discovery for setuptools; the project's metadata is in ``pyproject.toml``.

Each importable package lives in a folder of its own (``connectors/`` is ``huiju_connectors``,
``plugins/huiju_airflow/`` is ``huiju_airflow``), which ``[tool.setuptools.packages.find]`` cannot
map, so every sub-package below each folder is found here: a new module or sub-package is in
the wheel without anyone listing it (``tests/test_packaging.py`` builds one and checks).
"""

from setuptools import find_packages, setup

#: Importable name → the folder holding it.
PACKAGE_FOLDERS = {
    "huiju": "huiju",
    "huiju_connectors": "connectors",
    "huiju_airflow": "plugins/huiju_airflow",
    "huiju_demo": "demo",
}


def discover() -> list[str]:
    """Every package below each folder of :data:`PACKAGE_FOLDERS`, by its importable name."""
    packages = []
    for name, folder in PACKAGE_FOLDERS.items():
        packages += [name, *(f"{name}.{sub}" for sub in find_packages(where=folder))]
    return packages


setup(packages=discover(), package_dir=PACKAGE_FOLDERS)
