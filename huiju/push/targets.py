"""Push targets (推送目标): the credit platforms the warehouse publishes to, declared in ``config/push_targets/``.

One YAML file per target, schema-checked like a department's (:class:`Target`, a strict model: an
unknown key is an error naming file and key)::

    target: city_credit                 # the file's name
    title: 市公共信用信息平台
    connection: huiju_push_city_credit  # Airflow Connection: base URL (extra.base_url or host/port), credentials
    auth: hmac                          # bearer (password or extra.token) | hmac (login/password = app key/secret)
    signature: sm3                      # hmac only: sha256 (HMAC-SHA256, default) or sm3 (HMAC-SM3, 国密)
    batch_size: 500
    schedule: "30 1 * * *"
    clear_fields: [legal_rep_id_no]     # sensitive fields this target is entitled to in clear; others masked
    forward_backflow: true              # false for the province the backflow (省回流) came from
    relations:
      - relation: credit.credit_legal_person_penalty
        dataset: admin_penalty          # whose field flags (sensitive) apply
        item_set: CF                    # 双公示 item set, prefix of every record id
        key: decision_no
        fields: {CF_WSH: decision_no, CF_XDR_SHXYM: uscc, ...}   # the target's item code → column

Credentials never appear here: the task (Airflow) or the command line resolves the Connection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from huiju.channel_settings import HmacHeaderSettings
from huiju.registry import ORIGIN_BACKFLOW, ORIGIN_LOCAL, ConfigError, Registry, check_known, validated_files
from huiju.schema import StrictModel, did_you_mean
from huiju.settings import get_settings

#: Columns every pushed relation has beside its fields (dbt's credit models).
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
__all__ = ["ORIGIN_BACKFLOW", "ORIGIN_LOCAL", "PushEndpoint", "PushRelation", "PushTargets", "Target", "load_targets",
           "sensitive_columns"]


class PushRelation(StrictModel):
    """One relation a target takes, and how its columns become the target's item codes."""

    relation: str = Field(pattern=r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
    dataset: str
    item_set: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    key: str
    fields: dict[str, str]
    publishable_column: str | None = "is_publishable"
    publish_until_column: str | None = "publish_until"
    changed_column: str = "published_at"
    decision_date_column: str | None = "decision_date"
    department_column: str | None = "source_department"
    origin_column: str | None = None  # 本地 / 省回流, where the relation carries the backflow too

    @field_validator("fields")
    @classmethod
    def _codes(cls, value: dict[str, str]) -> dict[str, str]:
        for code, column in value.items():
            if not re.fullmatch(r"[A-Z][A-Z0-9_]*", code):
                raise ValueError(f"item code {code!r} must be upper case letters, digits and _ (e.g. CF_WSH)")
            if not _IDENTIFIER.fullmatch(column):
                raise ValueError(f"{code}: {column!r} is not a column name")
        if len(set(value.values())) != len(value):
            raise ValueError("a column is mapped to two item codes")
        return value

    @property
    def name(self) -> str:
        """The relation without its schema (what record keys and reports name)."""
        return self.relation.split(".", 1)[1]


class PushEndpoint(StrictModel):
    """How batches reach a receiving system: its Connection, signature, paths, batch size and retries.

    ``target`` names it in the outbox (``ops.push_outbox.target``: its batches' ids and order). A credit
    platform (:class:`Target`) is one; a department receiving a sharing grant by push is another
    (:class:`huiju.sharing.config.Receiver`, one outbox name per grant).
    """

    target: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    connection: str
    auth: Literal["bearer", "hmac"]
    signature: Literal["sha256", "sm3"] = "sha256"
    hmac_headers: HmacHeaderSettings = HmacHeaderSettings()
    submit_path: str = "/api/v1/push/batches"
    status_path: str = "/api/v1/push/batches"
    idempotency_header: str = "Idempotency-Key"
    batch_size: int = Field(default=500, ge=1, le=10000)
    attempts: int = Field(default=5, ge=1, le=20)
    timeout: float = Field(default=30.0, gt=0)


class Target(PushEndpoint):
    """A platform the warehouse pushes to (see the module docstring)."""

    title: str
    level: Literal["city", "province"] = "city"
    schedule: str = "30 1 * * *"
    clear_fields: tuple[str, ...] = ()
    forward_backflow: bool = True
    publication_working_days: int = Field(default=7, ge=1)
    relations: tuple[PushRelation, ...] = Field(min_length=1)

    @cached_property
    def dag_id(self) -> str:
        """``huiju_push__<target>``."""
        return f"huiju_push__{self.target}"

    def relation(self, name: str) -> PushRelation:
        """A relation of this target by its name (without schema)."""
        for relation in self.relations:
            if relation.name == name:
                return relation
        raise KeyError(f"target {self.target} takes no relation {name!r}")


@dataclass(frozen=True)
class PushTargets:
    """Every target, by name, checked against the registry's datasets."""

    targets: dict[str, Target]

    def __getitem__(self, name: str) -> Target:
        if name not in self.targets:
            raise KeyError(f"no push target {name!r} in config/push_targets/{did_you_mean(name, self.targets)}")
        return self.targets[name]


def load_targets(registry: Registry, config_dir: Path | None = None) -> PushTargets:
    """Load and cross-check ``config/push_targets/*.yaml``; :class:`ConfigError` lists every problem."""
    config_dir = config_dir or get_settings().config_dir
    problems: list[str] = []
    targets: dict[str, Target] = {}
    for name, target in validated_files(config_dir / "push_targets", Target, "target", problems, config_dir.parent):
        sensitive: set[str] = set()
        for index, relation in enumerate(target.relations):
            dataset = registry.datasets.get(relation.dataset)
            if dataset is None:
                problems.append(f"{name}: relations[{index}].dataset: no dataset {relation.dataset!r}"
                                f"{did_you_mean(relation.dataset, registry.datasets)}")
                continue
            sensitive |= {f.name for f in dataset.fields if f.sensitive}
            if relation.key not in relation.fields.values():
                problems.append(f"{name}: relations[{index}].key: {relation.key!r} is not mapped to an item code")
        if not target.forward_backflow:
            for index, relation in enumerate(target.relations):
                if relation.origin_column is None:
                    problems.append(f"{name}: relations[{index}].origin_column: required with forward_backflow: "
                                    "false (the column saying 本地 / 省回流), or the province's backflow could be "
                                    "pushed back to it")
        for field in target.clear_fields:
            check_known(field, sensitive, f"{name}: clear_fields", "a sensitive field of the datasets pushed", problems)
        targets[target.target] = target
    ConfigError.raise_any(problems)
    return PushTargets(targets)


def sensitive_columns(registry: Registry, target: Target, relation: PushRelation) -> frozenset[str]:
    """The relation's columns this target gets masked: the dataset's sensitive fields not in ``clear_fields``."""
    dataset = registry.datasets[relation.dataset]
    return frozenset(f.name for f in dataset.fields if f.sensitive and f.name not in target.clear_fields)
