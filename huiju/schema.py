"""The base of every configuration model, and how a mistake in one is put into words.

Every block a person writes in ``config/`` — a dataset, a department, a source, a channel's
settings — is a :class:`StrictModel`: an unknown key is an error, values are frozen once
loaded. A key that was renamed is declared on the model that had it
(:attr:`StrictModel.renamed_keys`), so an old file is answered with the key to use instead of
a bare "unknown key".

:func:`explain` turns one pydantic error into the ``<reason>`` of ``<file>: <key>: <reason>``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict

#: libyaml's safe loader when PyYAML has it, as dbt uses: configuration, the calendar and the dbt project's YAML
#: are read by one parser (the pure-Python one refuses some text libyaml takes, e.g. '? ' in a flow mapping) and
#: quicker in every fresh process.
SAFE_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """``text`` parsed as YAML by :data:`SAFE_YAML_LOADER` (raises ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=SAFE_YAML_LOADER)  # noqa: S506 (a safe loader)


class StrictModel(BaseModel):
    """A block of configuration: unknown keys are errors, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Keys this block used to have → the key that replaced each (reported as "renamed to …").
    renamed_keys: ClassVar[Mapping[str, str]] = {}


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def format_loc(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as the key path a person reads: ``sources[0].ftp.timeout``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def owner_model(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model that holds the last key of ``loc``, found by following ``model``'s fields along it."""
    owner = model
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if isinstance(current, type) and issubclass(current, BaseModel) \
            else None
        if field is None:
            return owner
        current = _model_in(field.annotation)
        if current is None:
            return owner
        owner = current
    return owner


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds: itself, or inside ``X | None``, ``tuple[X, ...]``, ``list[X]``, ``dict[str, X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, tuple, list, dict) or type(annotation).__name__ == "UnionType":
        for arg in get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def explain(error: Mapping[str, Any], model: type[BaseModel] | None) -> str:
    """Why one value of a block is wrong, in words the person who edited the file can act on.

    ``model`` is the model validated (the block's own, or the file's): an unknown key is looked
    up on the model that holds it, as a renamed key first, then for a close spelling.
    """
    if error["type"] == "extra_forbidden":
        key = str(error["loc"][-1])
        owner = owner_model(model, tuple(error["loc"]))
        if owner is not None:
            renamed = getattr(owner, "renamed_keys", {})
            if key in renamed:
                return f"renamed to {renamed[key]!r}"
            return f"unknown key{did_you_mean(key, owner.model_fields)}"
        return "unknown key"
    if error["type"] == "missing":
        return "is required but missing"
    if error["type"] == "string_pattern_mismatch":
        return (f"{error.get('input')!r} is not a valid name: use lower-case letters, digits and _,"
                " starting with a letter")
    return str(error["msg"]).removeprefix("Value error, ")
