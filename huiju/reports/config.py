"""The reports a bureau receives on a schedule, declared in ``config/reports/<id>.yaml``.

A report names its period (``month`` or ``week``), its cron (Airflow's schedule, Beijing time), its
recipients and its tables: each a query over one relation of the analysis layer — which columns to
group by, which to add up, an optional filter — and the chart drawn from it. Identifiers are checked
against what the analysis layer may be asked for (a relation of the ``analysis`` schema, plain column
names), so a report file cannot carry SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from croniter import croniter
from pydantic import Field, field_validator, model_validator

from huiju.registry import ConfigError, validated_files
from huiju.schema import StrictModel
from huiju.settings import get_settings

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def _identifier(value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(f"{value!r} is not a plain column or relation name (lower case, digits, _)")
    return value


class Measure(StrictModel):
    """A column added up over the group (``sum``), or a rate of two sums (``ratio``: part ÷ whole)."""

    column: str
    label: str
    agg: Literal["sum", "ratio"] = "sum"
    of: str | None = None  # ratio: the whole's column

    _column = field_validator("column")(_identifier)

    @property
    def key(self) -> str:
        """The measure's name in results and charts: its column, or ``<part>_per_<whole>`` for a ratio."""
        return self.column if self.agg == "sum" else f"{self.column}_per_{self.of}"

    @model_validator(mode="after")
    def _ratio_has_whole(self) -> Measure:
        if (self.agg == "ratio") != (self.of is not None):
            raise ValueError("'of' is the whole of a ratio: give it with agg: ratio, and only then")
        if self.of is not None:
            _identifier(self.of)
        return self


class Chart(StrictModel):
    """The chart of a table: bars, a line over time, or a pie of its first measure."""

    kind: Literal["bar", "line", "pie"] = "bar"
    title: str
    measures: tuple[str, ...] = ()  # the measures drawn (default: the first)
    top: int = Field(default=15, ge=1, le=50)  # categories shown, largest first (bar and pie)


class Table(StrictModel):
    """One sheet of the workbook: a grouped query over an analysis relation, in the report's period."""

    id: str
    title: str
    relation: str
    group_by: tuple[str, ...] = ()
    labels: Mapping[str, str] = {}  # column → header shown (group_by columns)
    measures: tuple[Measure, ...]
    where: Mapping[str, str] = {}  # column → value every row must have
    period_column: str | None = "stat_month"  # None: the relation is not by period (read whole)
    months_back: int = Field(default=0, ge=0, le=36)  # >0: a trend of this many months before the period too
    department_names: tuple[str, ...] = ()  # group_by columns holding a department code, shown by name
    chart: Chart | None = None

    _ids = field_validator("id", "relation")(_identifier)

    @field_validator("group_by", "department_names")
    @classmethod
    def _columns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_identifier(column) for column in value)

    @model_validator(mode="after")
    def _references(self) -> Table:
        for column in (*self.where, *self.labels, *([self.period_column] if self.period_column else [])):
            _identifier(column)
        measures = {m.key for m in self.measures}
        if self.chart is not None:
            unknown = set(self.chart.measures) - measures
            if unknown:
                raise ValueError(f"chart.measures {sorted(unknown)} are not measures of this table")
        unknown = set(self.department_names) - set(self.group_by)
        if unknown:
            raise ValueError(f"department_names {sorted(unknown)} are not group_by columns")
        return self


class Highlight(StrictModel):
    """A figure of the summary sheet: one measure of one table, over the whole period."""

    label: str
    table: str
    measure: str


class Recipients(StrictModel):
    """Who receives the report by e-mail (through the notices outbox)."""

    emails: tuple[str, ...] = ()
    stewards: bool = True  # HUIJU_STEWARD_EMAILS
    department_leaders: bool = False  # every configured department's leader


class Report(StrictModel):
    """A scheduled report."""

    id: str
    title: str
    period: Literal["month", "week"]
    cron: str
    recipients: Recipients = Recipients()
    scorecards: bool = False  # a sheet of the month's 报送考核 通报 (huiju.monitoring.scorecards)
    summary: tuple[Highlight, ...] = ()
    tables: tuple[Table, ...]

    _report_id = field_validator("id")(_identifier)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression")
        return value

    @model_validator(mode="after")
    def _summary_references(self) -> Report:
        tables = {t.id: t for t in self.tables}
        if len(tables) != len(self.tables):
            raise ValueError("table ids repeat")
        for highlight in self.summary:
            table = tables.get(highlight.table)
            if table is None:
                raise ValueError(f"summary: table {highlight.table!r} is not one of {sorted(tables)}")
            if highlight.measure not in {m.key for m in table.measures}:
                raise ValueError(f"summary: {highlight.measure!r} is not a measure of table {highlight.table!r}")
        return self


class _ReportFile(StrictModel):
    report: Report


def load_reports(config_dir: Path | None = None) -> dict[str, Report]:
    """Every ``config/reports/*.yaml``, checked; raises :class:`ConfigError` naming each problem's file and key."""
    config_dir = config_dir or get_settings().config_dir
    problems: list[str] = []
    reports: dict[str, Report] = {}
    for _, doc in validated_files(config_dir / "reports", _ReportFile, "report.id", problems, config_dir.parent):
        reports[doc.report.id] = doc.report
    ConfigError.raise_any(problems)
    return reports
