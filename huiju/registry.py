"""The registry: departments, their sources and the datasets they deliver, from ``config/``.

Configuration is data with a schema. Every YAML file is validated into typed models
once, at load; a mistake is reported as ``<file>: <key>: <reason>`` in words the person
who edited the file can act on, e.g.::

    config/departments/swj.yaml: sources[0].columns.处罚日期: maps to 'decison_date', which is
    not a field of dataset admin_penalty (did you mean 'decision_date'?)
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import Field, StringConstraints, ValidationError, field_validator, model_validator

from huiju.channel_settings import CHANNELS, FILE_CHANNELS, settings_model
from huiju.rules import FIELD_RULES
from huiju.schema import StrictModel, did_you_mean, explain, format_loc, load_yaml
from huiju.settings import get_settings

#: libyaml's safe loader where PyYAML was built with it (several times faster), else the pure-Python one.

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]

CADENCES = ("daily", "weekly", "monthly", "quarterly")
#: Where a record comes from (数据来源): the city's own departments, or the province's backflow (省回流).
#: Landed with every batch (``ops.loads.origin``) so the credit models and the pushes can tell them apart.
ORIGIN_LOCAL = "本地"
ORIGIN_BACKFLOW = "省回流"
Origin = Literal["本地", "省回流"]
#: Channels whose system delivers continuously: due when its data stops arriving, not per period.
CONTINUOUS_CHANNELS = ("rest", "soap", "frontdb")
_CRON = re.compile(r"^(\S+\s+){4}\S+$")


class ConfigError(ValueError):
    """A configuration file is wrong; the message names the file, the key and the reason."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))

    @classmethod
    def raise_any(cls, problems: list[str]) -> None:
        """Raise the problems found, if any: a loader gathers them all, then reports them at once."""
        if problems:
            raise cls(problems)


def check_known(value: str, choices: Collection[str], where: str, what: str, problems: list[str]) -> bool:
    """Whether ``value`` is one of ``choices``; if not, ``problems`` gets "``where``: 'value' is not ``what``"
    with the nearest choice suggested (``what`` says what it should have been: "a field", "a department of …")."""
    if value in choices:
        return True
    problems.append(f"{where}: {value!r} is not {what}{did_you_mean(value, choices)}")
    return False


#: What a field may name under ``rules:`` (see :mod:`huiju.rules`).
FieldRule = Literal[FIELD_RULES]  # type: ignore[valid-type]


class DatasetField(StrictModel):
    """One field of a dataset: its name in the warehouse, its Chinese label and its checks.

    ``rules`` name format checks (check digits, mobile numbers); ``min``/``max`` bound a
    number's plausible range (``max`` on an amount in 万元 catches a fine typed in 元);
    ``enum_separator`` lets one cell hold several allowed values (``罚款;没收违法所得``).
    """

    name: Identifier
    label: str
    required: bool = False
    type: Literal["text", "number", "date"] = "text"
    rules: tuple[FieldRule, ...] = ()
    enum: tuple[str, ...] | None = None
    enum_separator: str | None = Field(default=None, min_length=1, max_length=1)
    min: float | None = None
    max: float | None = None
    sensitive: bool = False


class DatasetCheck(StrictModel):
    """A rule across fields of one row: ``date_order`` means ``before`` ≤ ``after`` when both are dates."""

    rule: Literal["date_order"]
    before: Identifier
    after: Identifier


class Dataset(StrictModel):
    """A dataset the platform collects (``raw.<dataset>``), whoever delivers it."""

    dataset: Identifier
    title: str
    natural_key: tuple[Identifier, ...]
    fields: tuple[DatasetField, ...] = Field(min_length=1)
    checks: tuple[DatasetCheck, ...] = ()
    # A natural key already published by another source is a conflict; the same source
    # sending it again is a correction (staging keeps the latest version).
    unique_published: bool = False

    @cached_property
    def field_names(self) -> tuple[str, ...]:
        """The fields' names, in declaration order (the column order of ``raw.<dataset>``)."""
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> DatasetField:
        """The field called ``name``."""
        return next(f for f in self.fields if f.name == name)


class ItemSet(StrictModel):
    """A coded item set (数据项编码): the codes a platform names each dataset's fields by, declared once.

    ``config/item_sets/<item_set>.yaml`` — the 双公示 v1 and v2 item sets, or a province's own coded
    schema — maps, per dataset, each item code to the dataset field it carries::

        item_set: sgs_v2
        title: 双公示数据项（v2）
        datasets:
          admin_penalty: {CF_WSH: decision_no, CF_XDR_MC: party_name, ...}

    A source that delivers records under item codes (the province's backflow) names the set with
    ``item_set:`` instead of listing ``columns:``; its ``columns:`` then only add or replace codes
    (a province that codes one item its own way).
    """

    item_set: Identifier
    title: str
    datasets: dict[Identifier, dict[str, Identifier]] = Field(min_length=1)

    @field_validator("datasets")
    @classmethod
    def _codes(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for dataset, codes in value.items():
            for code in codes:
                if not re.fullmatch(r"[A-Z][A-Z0-9_]*", code):
                    raise ValueError(f"{dataset}: item code {code!r} must be upper case letters, digits and _")
            if len(set(codes.values())) != len(codes):
                raise ValueError(f"{dataset}: a field is carried by two item codes")
        return value


class CodeList(StrictModel):
    """A national code list (国家代码表) of one dataset field: each code and the name it stands for.

    ``config/item_sets/codes/<field>.yaml``, next to the item sets whose items carry the field::

        code_list: penalty_type          # the dataset field (in every dataset that has it)
        title: 处罚类别代码
        codes: {"01": 警告, "02": 通报批评, "03": 罚款, ...}

    A source delivering under an item set may send a code instead of the name: landing writes the
    name (:mod:`huiju.codes`). Codes are numbers, compared as such (``1`` and ``01`` are one code);
    each name must be allowed by the field's ``enum``. The credit layer's dbt seeds
    (``code_<field>.csv``) are written from these files.
    """

    code_list: Identifier
    title: str
    codes: dict[str, str] = Field(min_length=1)

    @field_validator("codes")
    @classmethod
    def _numeric_codes(cls, value: dict[str, str]) -> dict[str, str]:
        numbers: dict[int, str] = {}
        for code in value:
            if not code.isascii() or not code.isdigit():
                raise ValueError(f"code {code!r} must be digits (quote it in YAML: \"01\")")
            if int(code) in numbers:
                raise ValueError(f"codes {numbers[int(code)]!r} and {code!r} are the same number")
            numbers[int(code)] = code
        if len(set(value.values())) != len(value):
            raise ValueError("a name is given two codes")
        return value

    @cached_property
    def by_number(self) -> dict[int, str]:
        """Each code's name by the code's number (``1`` and ``01`` alike)."""
        return {int(code): name for code, name in self.codes.items()}


#: The channels a notice can go through (see :mod:`huiju.notices`); the robots are group robots.
NoticeChannel = Literal["email", "dingtalk", "wecom"]
ROBOT_CHANNELS = ("dingtalk", "wecom")


class NoticeChannels(StrictModel):
    """Which channels a department wants its notices through (通知渠道), for its contacts and for its leader.

    Unset: every channel the department has (e-mail to each address, each robot whose
    connection is set). A robot named here needs its ``<channel>_connection``.
    """

    contacts: tuple[NoticeChannel, ...] | None = None
    leader: tuple[NoticeChannel, ...] | None = None


class AnomalySettings(StrictModel):
    """预测预警: how a batch is compared with the source's own history before it is published.

    A batch is anomalous when its row count, or its pass rate (accepted / received), is far
    from the median of the source's last ``history`` comparable batches: more than
    ``threshold`` robust deviations (1.4826 × MAD) away, and by at least ``min_change`` (rows,
    relative to the median) or ``pass_rate_drop`` (pass rate, in points; only a drop counts).
    Nothing is judged before ``min_history`` comparable batches exist. Daily sources are
    compared with batches of the same weekday (``weekday``). ``action``: ``alert`` tells the
    stewards and publishes; ``hold`` holds the batch until a steward releases it; ``off``.
    """

    action: Literal["alert", "hold", "off"] = "alert"
    history: int = Field(default=12, ge=3, le=200)
    min_history: int = Field(default=5, ge=3, le=200)
    threshold: float = Field(default=4.0, gt=0)
    min_change: float = Field(default=0.5, ge=0)
    pass_rate_drop: float = Field(default=0.10, ge=0, le=1)
    weekday: bool | None = None  # default: true for daily sources

    @model_validator(mode="after")
    def _history_covers_minimum(self) -> AnomalySettings:
        if self.min_history > self.history:
            raise ValueError(f"min_history ({self.min_history}) cannot exceed history ({self.history})")
        return self


class Person(StrictModel):
    """Someone at a department whom notices name: who, and how to reach them (e-mail, phone)."""

    name: str
    email: str | None = None
    phone: str | None = None


class Contact(Person):
    """Who at a department receives notices (feedback, reminders)."""

    role: str = ""


class Leader(Person):
    """The department's leader (分管领导): the escalation step of the 催报 ladder."""

    title: str = ""


class Department(StrictModel):
    """A department (委办局) that delivers data.

    ``origin``: 本地 for the city's own departments; 省回流 for the provincial platform whose credit
    records come back (回流) through a channel like any department's. Every source of the department
    lands its batches with that origin; a 省回流 record is never pushed back up to the province.
    """

    code: Identifier
    name: str
    origin: Origin = ORIGIN_LOCAL
    contacts: tuple[Contact, ...] = ()
    leader: Leader | None = None
    # Which channels notices to the contacts and to the leader go through (default: all it has).
    channels: NoticeChannels = NoticeChannels()
    # The Airflow Connection (conn type dingding) of the department's DingTalk group robot, if notices
    # should also go there; e-mail goes to the contacts' addresses.
    dingtalk_connection: str | None = None
    # Its WeCom (企业微信) group robot's Connection (password: the webhook key); a DingTalk robot in
    # 加签 mode has its secret in the Connection's extra.
    wecom_connection: str | None = None

    @model_validator(mode="after")
    def _robots_have_connections(self) -> Department:
        for audience in ("contacts", "leader"):
            for channel in getattr(self.channels, audience) or ():
                if channel in ROBOT_CHANNELS and not self.robot_connection(channel):
                    raise ValueError(f"channels.{audience} names {channel} but {channel}_connection is not set")
        return self

    def robot_connection(self, channel: str) -> str | None:
        """The Airflow Connection of the department's robot on ``channel`` (dingtalk, wecom), if any."""
        return {"dingtalk": self.dingtalk_connection, "wecom": self.wecom_connection}.get(channel)

    def channels_for(self, audience: Literal["contacts", "leader"]) -> tuple[str, ...]:
        """The channels notices to ``audience`` go through: as declared, else e-mail and every robot it has."""
        declared = getattr(self.channels, audience)
        if declared is not None:
            return declared
        return ("email", *(c for c in ROBOT_CHANNELS if self.robot_connection(c)))


class Obligation(StrictModel):
    """When a source's delivery is due (报送时限), for monitoring (:mod:`huiju.monitoring.obligations`).

    Every key has a default, so a source without an ``obligation:`` block is monitored by its
    ``cadence``: a periodic source owes one delivery per period (``period``, default from the
    cadence: daily → day, weekly → week, monthly → month, quarterly → quarter, cron → the time
    between two firings), due ``due_working_days`` Chinese working days after the period ends, late
    after ``grace_working_days`` more. A continuous source (channel rest, soap or frontdb, or
    ``mode: continuous``) owes data every working day and is overdue after ``silence_working_days``
    working days without any. Reminders: ``remind_before_working_days`` before the due day, an
    overdue notice once late, the leader after ``escalate_after_working_days`` more.
    """

    enabled: bool = True
    mode: Literal["periodic", "continuous"] | None = None  # default: continuous for rest, soap, frontdb
    period: Literal["day", "week", "month", "quarter"] | None = None  # default: from the cadence
    due_working_days: int | None = Field(default=None, ge=0, le=60)  # default: day 1, week 2, month 5, quarter 10
    grace_working_days: int = Field(default=0, ge=0, le=30)
    silence_working_days: int = Field(default=1, ge=1, le=30)
    remind_before_working_days: int = Field(default=1, ge=0, le=10)
    escalate_after_working_days: int = Field(default=3, ge=1, le=60)
    since: date | None = None  # the first period owed (default: the first delivery's, else the current one)


#: The labels of the common templates' footers (mirrors ``huiju_connectors.footers.DEFAULT_FOOTER_LABELS``,
#: which the configuration may not import).
FOOTER_LABELS: tuple[str, ...] = (
    "填表人", "填报人", "制表人", "审核人", "审核", "复核人", "负责人", "单位负责人", "部门负责人", "分管领导",
    "联系人", "联系电话", "电话", "填报日期", "填表日期", "制表日期", "报送日期", "填报单位", "备注", "说明",
    "填报说明", "注",
)


class FooterSettings(StrictModel):
    """A template's footer (表尾): lines below the data that are not records (填表人, 审核人, 联系电话, 备注 …).

    The footer is the run of rows at the end of a CSV or a sheet that starts with a row whose first
    filled cell is one of ``labels`` (alone, or followed by ``：`` or a bracket), possibly after
    blank rows, and holds nothing but such rows, blank rows and one-cell notes (the lines under
    备注/说明), ``max_rows`` rows at most. It is not landed; the ledger's warnings say what was
    left out. ``labels`` replaces the default list, ``extra_labels`` adds to it; ``enabled: false``
    lands every row as before.
    """

    enabled: bool = True
    labels: tuple[str, ...] = FOOTER_LABELS
    extra_labels: tuple[str, ...] = ()
    max_rows: int = Field(default=20, ge=1, le=200)

    @property
    def all_labels(self) -> tuple[str, ...]:
        """The labels in force: ``labels`` and ``extra_labels``."""
        return tuple(dict.fromkeys((*self.labels, *self.extra_labels)))


class Source(StrictModel):
    """One delivery of one dataset by one department through one channel.

    File settings (``format`` … ``sheet``) apply to the file channels (inbox, ftp, sftp, and the
    portal's uploads, whose template is generated from them);
    the channel's own settings go in a block named after it (``sftp: {...}``), validated by
    that channel's ``Settings`` model. ``connection`` names the Airflow Connection holding
    the address and credentials.
    """

    id: Identifier
    title: str
    dataset: Identifier
    channel: Literal["inbox", "ftp", "sftp", "rest", "soap", "frontdb", "portal", "web"]
    format: Literal["csv", "xlsx", "json", "xml"] | None = None
    file_pattern: str = "*"
    header_row: int = Field(default=1, ge=1, le=50)
    encoding: Literal["auto", "utf-8", "gb18030"] = "auto"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    sheet: str | None = None
    # json: the key of the top-level object that holds the array of records (none: the file is
    # an array of objects, or JSON Lines). xml: the element that is one record (local name).
    records_key: str | None = Field(default=None, min_length=1)
    record_element: str | None = Field(default=None, pattern=r"^[^\s<>/{}:]+$")
    # Caps on a workbook (see README "Caps"): the rectangle its sheets span, refused before any reader opens it.
    max_sheet_cells: int = Field(default=20_000_000, ge=1, le=200_000_000)
    max_sheet_columns: int = Field(default=1_000, ge=1, le=16_384)
    footer: FooterSettings = FooterSettings()  # 表尾 (填表人, 审核人 …) below a CSV's or a sheet's data
    cadence: str = "daily"
    obligation: Obligation = Obligation()
    tolerance: float = Field(default=0.05, ge=0.0, le=1.0)
    # The source's column (or record key) → dataset field. With ``item_set`` (config/item_sets/), the
    # set's codes for the dataset are the columns and ``columns`` only adds or replaces codes.
    columns: dict[str, Identifier] = Field(default_factory=dict)
    item_set: Identifier | None = None
    connection: str | None = None
    # Where feedback workbooks go back on the department's own server (SFTP): relative to the
    # drop directory, or absolute. Other channels get them from the outbox folder or by e-mail.
    feedback_dir: str = "outbox"
    anomaly: AnomalySettings = AnomalySettings()  # 预测预警 (see AnomalySettings)
    inbox: dict[str, Any] | None = None
    ftp: dict[str, Any] | None = None
    sftp: dict[str, Any] | None = None
    rest: dict[str, Any] | None = None
    soap: dict[str, Any] | None = None
    frontdb: dict[str, Any] | None = None
    portal: dict[str, Any] | None = None
    web: dict[str, Any] | None = None
    department: str = ""  # filled from the department file the source is declared in
    origin: Origin = ORIGIN_LOCAL  # filled from the department (本地 / 省回流): landed with every batch
    channel_settings: Any = Field(default=None, exclude=True)  # the validated block, set by load_registry

    @field_validator("cadence")
    @classmethod
    def _cadence_is_known(cls, value: str) -> str:
        if value in CADENCES or _CRON.match(value):
            return value
        raise ValueError(f"cadence must be one of {', '.join(CADENCES)} or a 5-field cron expression")

    @model_validator(mode="after")
    def _channel_blocks_match(self) -> Source:
        others = [name for name in CHANNELS if name != self.channel and getattr(self, name) is not None]
        if others:
            raise ValueError(f"settings block(s) {', '.join(others)} do not belong to channel {self.channel!r}")
        if self.channel in FILE_CHANNELS and self.format is None:
            raise ValueError(f"format (csv or xlsx) is required for a file channel ({self.channel}); "
                             "json and xml are read too")
        if self.format == "xml" and self.record_element is None:
            raise ValueError("record_element (the XML element that is one record, e.g. item) is required for xml")
        if not self.columns and self.item_set is None:
            raise ValueError("columns (the source's column → dataset field) or item_set is required")
        if self.record_element is not None and self.format != "xml":
            raise ValueError("record_element only applies to format xml")
        if self.records_key is not None and self.format != "json":
            raise ValueError("records_key only applies to format json")
        return self

    @property
    def schedule(self) -> str:
        """The Airflow schedule for this source's cadence (local time, Asia/Shanghai)."""
        return {"daily": "@daily", "weekly": "@weekly", "monthly": "@monthly",
                "quarterly": "@quarterly"}.get(self.cadence, self.cadence)

    @property
    def ingest_dag_id(self) -> str:
        """The id of this source's ingest DAG (one per source; the portal asks Airflow to run it by this name)."""
        return f"ingest__{self.id}"

    @property
    def header_for_field(self) -> dict[str, str]:
        """The department's own column header for each mapped field."""
        return {field: header for header, field in self.columns.items()}


class Registry(StrictModel):
    """Everything ``config/`` declares, cross-checked."""

    datasets: dict[str, Dataset]
    departments: dict[str, Department]
    sources: dict[str, Source]
    item_sets: dict[str, ItemSet] = Field(default_factory=dict)
    code_lists: dict[str, CodeList] = Field(default_factory=dict)  # by the field they code

    def source(self, source_id: str) -> Source:
        """The source ``source_id``; a clear error if there is none."""
        try:
            return self.sources[source_id]
        except KeyError:
            suggestion = did_you_mean(source_id, self.sources)
            raise KeyError(f"no source {source_id!r} in the registry{suggestion}") from None

    def dataset_of(self, source: Source) -> Dataset:
        """The dataset a source delivers."""
        return self.datasets[source.dataset]

    def security_warnings(self) -> list[str]:
        """Settings that are allowed but weaken transport security or politeness (``check-config`` prints them)."""
        warnings = []
        for source in self.sources.values():
            settings = source.channel_settings
            if source.channel == "ftp" and settings is not None and not settings.tls:
                warnings.append(f"{source.id}: ftp.tls is false: plain FTP sends the password and every file "
                                "unencrypted; use FTPS (tls: true, the default) unless the server is on loopback")
            if source.channel == "web" and settings is not None and settings.rate_limit is None:
                warnings.append(f"{source.id}: web.rate_limit is null: the department's site is read as fast as "
                                "it answers; keep a polite rate (the default, 1 request a second) unless it is on "
                                "loopback")
            if source.channel == "frontdb" and settings is not None:
                if not settings.tls.enabled:
                    warnings.append(f"{source.id}: frontdb.tls.enabled is false: the front-end database is read "
                                    "unencrypted; leave TLS on (the default) unless the database is on loopback")
                elif not settings.tls.verify:
                    warnings.append(f"{source.id}: frontdb.tls.verify is false: the database's certificate and "
                                    "host name are not checked; give its CA as tls.ca_file instead")
        return warnings


def item_set_columns(codes: dict[str, str], overrides: dict[str, str]) -> dict[str, str]:
    """A source's columns from an item set's ``codes`` (code → field) and its own ``overrides``.

    An override mapping a field the set already carries replaces the set's code for it (the
    province's own code for that item); any other adds a column.
    """
    replaced = set(overrides.values())
    return {**{code: field for code, field in codes.items() if field not in replaced}, **overrides}


def _read_yaml(path: Path, rel: str) -> Any:
    try:
        return load_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([f"{rel}: the file is not UTF-8 text; save it as UTF-8"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError([f"{rel}: not valid YAML{where}: {getattr(exc, 'problem', exc)}"]) from None


def _validate(model: type[StrictModel], data: Any, rel: str, prefix: str, problems: list[str]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            key = format_loc((prefix, *loc) if prefix else loc) or "(top level)"
            problems.append(f"{rel}: {key}: {explain(error, model)}")
        return None


def _channel_settings(source: Source, key: str, problems: list[str]) -> Any:
    model = settings_model(source.channel)
    block = getattr(source, source.channel) or {}
    try:
        return model.model_validate(block)
    except ValidationError as exc:
        for error in exc.errors():
            where = format_loc((source.channel, *error["loc"]))
            problems.append(f"{key}.{where}: {explain(error, model)}")
        return None


#: A configuration file's model whose key names the file (dataset, item set, code list).
_Named = TypeVar("_Named", bound=StrictModel)


def config_file_name(path: Path, base: Path) -> str:
    """``path`` as messages name it: relative to ``base`` (the folder holding ``config/``) when under it."""
    return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)


def validated_files(folder: Path, model: type[_Named], key: str, problems: list[str],
                    base: Path) -> Iterator[tuple[str, _Named]]:
    """Each ``*.yaml`` of ``folder`` validated as ``model``, with its name (:func:`config_file_name`).

    ``key`` is the dotted path of the field that must equal the file's name (``dataset``, ``report.id``);
    a file that does not validate, or whose key differs, adds to ``problems`` (a mismatched one is still
    yielded, so its other problems are found in the same pass).
    """
    for path in sorted(folder.glob("*.yaml")):
        name = config_file_name(path, base)
        loaded = _validate(model, _read_yaml(path, name), name, "", problems)
        if loaded is None:
            continue
        value: Any = loaded
        for part in key.split("."):
            value = getattr(value, part)
        if value != path.stem:
            problems.append(f"{name}: {key}: {value!r} must match the file name {path.stem!r}")
        yield name, loaded


class _DepartmentFile(StrictModel):
    department: Department
    sources: tuple[dict[str, Any], ...] = ()


def load_registry(config_dir: Path | None = None) -> Registry:
    """Load and cross-check ``config_dir`` (default: the configured ``config/``).

    Raises :class:`ConfigError` listing every problem found, each naming its file and key.
    """
    if config_dir is None:
        config_dir = get_settings().config_dir
    problems: list[str] = []
    base = config_dir.parent

    def rel(path: Path) -> str:
        return config_file_name(path, base)

    datasets: dict[str, Dataset] = {}
    for name, dataset in validated_files(config_dir / "datasets", Dataset, "dataset", problems, base):
        for key in dataset.natural_key:
            check_known(key, dataset.field_names, f"{name}: natural_key", "a field", problems)
        for index, check in enumerate(dataset.checks):
            for side in ("before", "after"):
                field_name = getattr(check, side)
                where = f"{name}: checks[{index}].{side}"
                if not check_known(field_name, dataset.field_names, where, "a field", problems):
                    continue
                if check.rule == "date_order" and dataset.field(field_name).type != "date":
                    problems.append(f"{name}: checks[{index}].{side}: {field_name!r} is not a date field")
        datasets[dataset.dataset] = dataset

    item_sets: dict[str, ItemSet] = {}
    for name, item_set in validated_files(config_dir / "item_sets", ItemSet, "item_set", problems, base):
        for dataset_name, codes in item_set.datasets.items():
            found = datasets.get(dataset_name)
            if found is None:
                problems.append(f"{name}: datasets.{dataset_name}: no dataset {dataset_name!r} in "
                                f"config/datasets/{did_you_mean(dataset_name, datasets)}")
                continue
            for code, field in codes.items():
                check_known(field, found.field_names, f"{name}: datasets.{dataset_name}.{code}",
                      f"a field of dataset {dataset_name}", problems)
        item_sets[item_set.item_set] = item_set

    code_lists: dict[str, CodeList] = {}
    for name, code_list in validated_files(config_dir / "item_sets" / "codes", CodeList, "code_list", problems, base):
        coded = [d for d in datasets.values() if code_list.code_list in d.field_names]
        if not coded:
            every_field = {f for d in datasets.values() for f in d.field_names}
            problems.append(f"{name}: code_list: {code_list.code_list!r} is not a field of any dataset"
                            f"{did_you_mean(code_list.code_list, every_field)}")
        for found in coded:
            allowed = found.field(code_list.code_list).enum
            for code, value in code_list.codes.items():
                if allowed is not None and value not in allowed:
                    problems.append(f"{name}: codes.{code}: {value!r} is not a value the field "
                                    f"{code_list.code_list} of dataset {found.dataset} allows"
                                    f"{did_you_mean(value, allowed)}")
        code_lists[code_list.code_list] = code_list

    departments: dict[str, Department] = {}
    sources: dict[str, Source] = {}
    where_declared: dict[str, str] = {}
    for path in sorted((config_dir / "departments").glob("*.yaml")):
        name = rel(path)
        doc = _validate(_DepartmentFile, _read_yaml(path, name), name, "", problems)
        if doc is None:
            continue
        dept = doc.department
        if dept.code in departments:
            problems.append(f"{name}: department.code: {dept.code!r} is already declared in "
                            f"{where_declared[dept.code]}")
            continue
        departments[dept.code] = dept
        where_declared[dept.code] = name
        for index, raw_source in enumerate(doc.sources):
            source = _validate(Source, {**raw_source, "department": dept.code, "origin": dept.origin}, name,
                               f"sources[{index}]", problems)
            if source is None:
                continue
            key = f"{name}: sources[{index}]"
            if source.item_set is not None:
                item_set = item_sets.get(source.item_set)
                codes = item_set.datasets.get(source.dataset) if item_set is not None else None
                if codes is None:
                    problems.append(f"{key}.item_set: no item set {source.item_set!r} for dataset {source.dataset} "
                                    f"in config/item_sets/{did_you_mean(source.item_set, item_sets)}")
                    continue
                source = source.model_copy(update={"columns": item_set_columns(codes, source.columns)})
            if source.id in sources:
                problems.append(f"{key}.id: {source.id!r} is already used by another source")
                continue
            dataset = datasets.get(source.dataset)
            if dataset is None:
                problems.append(f"{key}.dataset: no dataset {source.dataset!r} in config/datasets/"
                                f"{did_you_mean(source.dataset, datasets)}")
                continue
            seen_fields: dict[str, str] = {}
            for header, field in source.columns.items():
                if field not in dataset.field_names:
                    problems.append(f"{key}.columns.{header}: maps to {field!r}, which is not a field of dataset "
                                    f"{dataset.dataset}{did_you_mean(field, dataset.field_names)}")
                elif field in seen_fields:
                    problems.append(f"{key}.columns.{header}: field {field!r} is already mapped from "
                                    f"column {seen_fields[field]!r}")
                else:
                    seen_fields[field] = header
            for field in dataset.fields:
                if field.required and field.name not in seen_fields:
                    problems.append(f"{key}.columns: required field {field.name!r} ({field.label}) is not mapped "
                                    "from any column")
            settings = _channel_settings(source, key, problems)
            if settings is not None:
                sources[source.id] = source.model_copy(update={"channel_settings": settings})
    if problems:
        raise ConfigError(problems)
    return Registry(datasets=datasets, departments=departments, sources=sources, item_sets=item_sets,
                    code_lists=code_lists)
