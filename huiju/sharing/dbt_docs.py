"""The dbt project's documented models (``models/**/*.yml``), read as YAML: the catalogue's 信息项 come from here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from huiju.schema import load_yaml
from huiju.settings import get_settings


@dataclass(frozen=True)
class DbtColumn:
    """A column of a dbt model, as its YAML documents it."""

    name: str
    description: str
    data_type: str
    sensitive: bool


@dataclass(frozen=True)
class DbtModel:
    """A dbt model: its name, its schema (the folder under ``models/``: each folder's ``+schema`` is its name)."""

    name: str
    schema_name: str
    description: str
    columns: tuple[DbtColumn, ...]


def dbt_models(project_dir: Path | None = None) -> dict[str, DbtModel]:
    """The documented models of the dbt project, by name (read from its YAML; dbt itself is not run)."""
    models_dir = (project_dir or get_settings().dbt_project_dir) / "models"
    found: dict[str, DbtModel] = {}
    for path in sorted(models_dir.rglob("*.yml")):
        doc = load_yaml(path.read_text(encoding="utf-8")) or {}  # dbt's parser: what dbt reads, this reads
        schema_name = path.relative_to(models_dir).parts[0]
        for model in doc.get("models") or ():
            columns = tuple(
                DbtColumn(name=column["name"], description=" ".join(str(column.get("description") or "").split()),
                          data_type=str(column.get("data_type") or "text"),
                          sensitive=bool((column.get("meta") or {}).get("sensitive")))
                for column in model.get("columns") or ())
            found[model["name"]] = DbtModel(name=model["name"], schema_name=schema_name,
                                            description=" ".join(str(model.get("description") or "").split()),
                                            columns=columns)
    return found
