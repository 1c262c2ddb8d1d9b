"""``config/sharing/``: the sharing policy (``policy.yaml``), the catalogued resources (``catalogue/<id>.yaml``) and
the departments' receiving systems (``receivers/<department>.yaml``, for resources shared by push).

A resource names the dbt model it publishes (its 信息项 come from the dbt project, :mod:`huiju.sharing.catalogue`),
its provider (a department of ``config/departments/`` or the bureau), and its share type (共享类型):
``unconditional`` (无条件共享), ``conditional`` (有条件共享, with its 共享条件) or ``not_shared`` (不予共享, with
its basis). Mistakes are reported as ``<file>: <key>: <reason>``, like every other file of ``config/``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from huiju.push.targets import PushEndpoint
from huiju.registry import ConfigError, Identifier, _read_yaml, _validate, check_known, load_registry, validated_files
from huiju.schema import StrictModel, did_you_mean
from huiju.settings import get_settings
from huiju.sharing.dbt_docs import DbtModel, dbt_models

ShareType = Literal["unconditional", "conditional", "not_shared"]
ShareMethod = Literal["database", "api", "push"]

#: 共享类型 as GB/T 21063 and the provinces' catalogues write it.
SHARE_TYPE_LABELS: dict[str, str] = {"unconditional": "无条件共享", "conditional": "有条件共享",
                                     "not_shared": "不予共享"}
#: 共享方式.
SHARE_METHOD_LABELS: dict[str, str] = {"database": "数据库授权", "api": "接口服务", "push": "数据推送"}


class Bureau(StrictModel):
    """The bureau (大数据管理局) that runs the platform: it checks requests and may approve on a department's behalf."""

    code: Identifier
    name: str


class DocumentPolicy(StrictModel):
    """What an uploaded approval document (审批件) may be: its size and its kinds, recognised by content."""

    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    types: tuple[Literal["pdf", "ofd", "png", "jpeg"], ...] = ("pdf", "ofd", "png", "jpeg")


class ApiPolicy(StrictModel):
    """The data service API's paging and rate limit (per token)."""

    page_size: int = Field(default=100, ge=1, le=10_000)
    max_page_size: int = Field(default=1000, ge=1, le=100_000)
    requests_per_minute: int = Field(default=60, ge=1, le=100_000)


class SharingPolicy(StrictModel):
    """The clocks and limits of a sharing request, in Chinese working days (huiju.workdays)."""

    bureau: Bureau
    check_working_days: int = Field(default=2, ge=1, le=30)
    approval_working_days: int = Field(default=5, ge=1, le=60)
    remind_before_working_days: int = Field(default=1, ge=0, le=10)
    max_duration_days: int = Field(default=366, ge=1, le=3660)
    document: DocumentPolicy = DocumentPolicy()
    api: ApiPolicy = ApiPolicy()


class Resource(StrictModel):
    """One catalogued information resource (信息资源) and how it is shared."""

    id: Identifier
    code: str = Field(pattern=r"^[0-9A-Za-z]+/[0-9A-Za-z-]+$")  # 信息资源代码: 前段码/后段码
    name: str = Field(min_length=2)
    model: Identifier  # the dbt model that publishes it
    provider: Identifier  # a department's code, or the bureau's
    abstract: str = Field(min_length=2)
    category: str
    format: str = "数据库表"
    share_type: ShareType
    condition: str | None = None  # 共享条件 (conditional) or the basis of 不予共享 (not_shared)
    share_methods: tuple[ShareMethod, ...] = ("database", "api")
    update_cycle: str
    published: date
    approver: Identifier | None = None  # the department whose 审批人 decide (default: the provider)
    bureau_check: bool = False  # unconditional: the bureau checks a request before it is provisioned
    scope_fields: tuple[Identifier, ...] = ()  # columns a request may limit its rows by (e.g. its district)

    @model_validator(mode="after")
    def _type_needs(self) -> Resource:
        if self.share_type in ("conditional", "not_shared") and not self.condition:
            what = "共享条件" if self.share_type == "conditional" else "the basis for not sharing (不予共享依据)"
            raise ValueError(f"share_type {self.share_type} needs condition: {what}")
        if self.share_type == "not_shared" and self.share_methods:
            raise ValueError("share_type not_shared cannot have share_methods")
        if self.share_type != "not_shared" and not self.share_methods:
            raise ValueError(f"share_type {self.share_type} needs at least one of share_methods")
        if self.bureau_check and self.share_type != "unconditional":
            raise ValueError("bureau_check applies to unconditional resources (conditional ones are approved)")
        return self

    @property
    def deciding_department(self) -> str:
        """The department whose 审批人 decide a conditional request."""
        return self.approver or self.provider


class Receiver(PushEndpoint):
    """A department's own system that receives the grants it is given by push (共享方式 ``push``).

    The push machinery's endpoint settings (its Airflow Connection, ``auth``, ``signature``, paths,
    ``batch_size``, retries: :class:`huiju.push.targets.PushEndpoint`); its batches go under one outbox name
    per grant (:meth:`for_grant`), so each grant's deliveries are numbered, sent and stopped on their own.
    """

    department: Identifier
    title: str
    target: Literal["share_grant"] = "share_grant"  # the outbox name is the grant's (for_grant), not the file's

    def for_grant(self, grant_id: int) -> PushEndpoint:
        """The endpoint as grant ``grant_id``'s deliveries use it: outbox name ``share_grant_<id>``."""
        settings = self.model_dump(exclude={"department", "title", "target"})
        return PushEndpoint.model_validate({**settings, "target": f"share_grant_{grant_id}"})


class _ReceiverFile(StrictModel):
    receiver: Receiver


class _PolicyFile(StrictModel):
    policy: SharingPolicy


class _ResourceFile(StrictModel):
    resource: Resource


def sharing_dir(config_dir: Path | None = None) -> Path:
    """``config/sharing/``."""
    return (config_dir or get_settings().config_dir) / "sharing"


def load_policy(config_dir: Path | None = None) -> SharingPolicy:
    """``config/sharing/policy.yaml``, checked."""
    path = sharing_dir(config_dir) / "policy.yaml"
    name = "sharing/policy.yaml"
    if not path.exists():
        raise ConfigError([f"{name}: missing (the sharing policy: the bureau, the deadlines, the document rules)"])
    problems: list[str] = []
    doc = _validate(_PolicyFile, _read_yaml(path, name), name, "", problems)
    if problems:
        raise ConfigError(problems)
    return doc.policy


def load_resources(config_dir: Path | None = None, models: dict[str, DbtModel] | None = None) -> dict[str, Resource]:
    """Every ``config/sharing/catalogue/*.yaml``, checked against the departments and the dbt project.

    ``models``: the dbt models by name (default: read from the dbt project, :func:`huiju.sharing.catalogue.dbt_models`);
    a resource's model must be one, and its ``scope_fields`` columns of it. Raises :class:`ConfigError`.
    """
    if not sharing_dir(config_dir).exists():
        return {}  # a configuration without sharing (a department's own test folder): nothing catalogued
    policy = load_policy(config_dir)
    departments = load_registry(config_dir).departments
    models = dbt_models() if models is None else models
    problems: list[str] = []
    resources: dict[str, Resource] = {}
    codes: dict[str, str] = {}
    config_dir = config_dir or get_settings().config_dir
    catalogue = sharing_dir(config_dir) / "catalogue"
    for name, doc in validated_files(catalogue, _ResourceFile, "resource.id", problems, config_dir.parent):
        resource = doc.resource
        if resource.code in codes:
            problems.append(f"{name}: resource.code: {resource.code!r} is already the code of {codes[resource.code]}")
        codes[resource.code] = resource.id
        deciders = (*departments, policy.bureau.code)
        for key in ("provider", "approver"):
            value = getattr(resource, key)
            if value is not None and value not in deciders:
                problems.append(f"{name}: resource.{key}: {value!r} is neither a department of config/departments/ "
                                f"nor the bureau ({policy.bureau.code}){did_you_mean(value, deciders)}")
        model = models.get(resource.model)
        if model is None:
            problems.append(f"{name}: resource.model: {resource.model!r} is not a model of the dbt project"
                            f"{did_you_mean(resource.model, models)}")
        else:
            columns = [column.name for column in model.columns]
            if resource.share_type != "not_shared" and model.schema_name != "share":
                problems.append(f"{name}: resource.model: {resource.model!r} is in schema "
                                f"{model.schema_name!r}; only the share layer is shared")
            for column in resource.scope_fields:
                check_known(column, columns, f"{name}: resource.scope_fields", f"a column of {resource.model}",
                            problems)
        resources[resource.id] = resource
    ConfigError.raise_any(problems)
    return resources


def load_receivers(config_dir: Path | None = None) -> dict[str, Receiver]:
    """Every ``config/sharing/receivers/<department>.yaml``, by department; :class:`ConfigError` lists every problem."""
    folder = sharing_dir(config_dir) / "receivers"
    if not folder.exists():
        return {}
    departments = load_registry(config_dir).departments
    problems: list[str] = []
    receivers: dict[str, Receiver] = {}
    base = (config_dir or get_settings().config_dir).parent
    for name, doc in validated_files(folder, _ReceiverFile, "receiver.department", problems, base):
        receiver = doc.receiver
        check_known(receiver.department, departments, f"{name}: receiver.department",
                    "a department of config/departments/", problems)
        receivers[receiver.department] = receiver
    ConfigError.raise_any(problems)
    return receivers
