"""Fixtures of the push tests: a credit relation of the test's own, targets, simulated platforms on loopback.

Every test ends by checking what the issue asks of each fault: every record at the target exactly
once (:meth:`CreditPlatform.duplicates`, and the platform's state equal to what is publishable) and
every receipt recorded. Injected faults are counted across the suite and printed at its end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest
from huiju_demo.credit_platform import CreditPlatform as SimulatedPlatform

from huiju.channels.connection import ConnectionInfo
from huiju.push.run import platform_for
from huiju.push.targets import Target
from huiju.registry import Registry, load_registry
from huiju.settings import get_settings

INJECTED: list[int] = []
MINIMUM_FAULTS = 500


@pytest.hookimpl
def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print how many faults the push tests injected."""
    if INJECTED:
        terminalreporter.write_line(f"push fault tests: {sum(INJECTED)} faults injected across "
                                    f"{len(INJECTED)} tests (the issue asks for at least {MINIMUM_FAULTS})")


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The repository's registry (the admin_penalty dataset's sensitive flags)."""
    get_settings.cache_clear()
    return load_registry()


@dataclass
class CreditTable:
    """A stand-in for a credit relation (same columns as dbt's credit penalty models), in a schema of its own."""

    conn: psycopg.Connection
    schema: str
    count: int = 0
    published: list[str] = field(default_factory=list)

    @property
    def relation(self) -> str:
        """The relation pushed (a view computing is_publishable, as dbt's credit models do)."""
        return f"{self.schema}.penalties"

    @property
    def table(self) -> str:
        return f"{self.schema}.penalties_data"

    def add(self, n: int, *, decision_date: date | None = None, publish_until: date | None = None,
            origin: str = "本地", prefix: str = "D") -> list[str]:
        """``n`` new decisions published now; their decision numbers."""
        keys = []
        for _ in range(n):
            self.count += 1
            key = f"{prefix}{self.count:06d}"
            keys.append(key)
            self.conn.execute(
                f"insert into {self.table} (decision_no, party_name, party_type_code, uscc, legal_rep,"
                " legal_rep_id_no, penalty_content, fine_amount_wan, decision_date, publish_until, source_department,"
                " origin, load_id, source_row_no, published_at) values (%s, %s, '1', %s, %s, %s, %s, %s, %s, %s,"
                " 'scjgj', %s, 'load-1', %s, clock_timestamp())",
                # 11010519491231002X: GB 11643-1999's own example number, not a person's
                (key, f"某某公司{self.count}", f"91330100MA{self.count:08d}", "张三", "11010519491231002X",
                 "罚款", 1.5, decision_date or date(2026, 9, 1), publish_until or date.today() + timedelta(days=365),
                 origin, self.count))
        self.conn.commit()
        return keys

    def correct(self, key: str, content: str) -> None:
        """A correction at the source: new content, published again."""
        self.conn.execute(f"update {self.table} set penalty_content = %s, published_at = clock_timestamp()"
                          " where decision_no = %s", (content, key))
        self.conn.commit()

    def expire(self, key: str) -> None:
        """公示截止期 passed (yesterday); nothing published about it."""
        self.conn.execute(f"update {self.table} set publish_until = current_date - 1 where decision_no = %s",
                          (key,))
        self.conn.commit()

    def delete(self, key: str) -> None:
        """Deleted at the source."""
        self.conn.execute(f"delete from {self.table} where decision_no = %s", (key,))
        self.conn.commit()

    def publishable(self, target_takes_backflow: bool = True) -> set[str]:
        """The record ids a target should hold now."""
        rows = self.conn.execute(f"select decision_no, origin from {self.relation}"
                                 " where coalesce(publish_until >= current_date, true)").fetchall()
        self.conn.commit()
        return {f"CF:{key}" for key, origin in rows if target_takes_backflow or origin != "省回流"}


@contextmanager
def credit_table(url: str) -> Iterator[CreditTable]:
    """A fresh penalties table (and its publishable view columns) in a schema of its own, in the warehouse at
    ``url``; dropped afterwards with everything pushed from it."""
    schema = f"pushtest_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url) as conn:
        conn.execute(f"create schema {schema}")
        conn.execute(
            f"create table {schema}.penalties_data (decision_no text primary key, party_name text,"
            " party_type_code text, uscc text, legal_rep text, legal_rep_id_no text, penalty_content text,"
            " fine_amount_wan numeric, decision_date date, publish_until date, source_department text, origin text,"
            " load_id text, source_row_no integer, published_at timestamptz)")
        conn.execute(f"create view {schema}.penalties as select *, coalesce(publish_until >= current_date, true)"
                     f" as is_publishable from {schema}.penalties_data")
        conn.commit()
        yield CreditTable(conn, schema)
        conn.rollback()
        conn.execute(f"drop schema {schema} cascade")
        conn.execute("delete from ops.push_receipts; delete from ops.push_outbox; delete from ops.push_batches;"
                     " delete from ops.push_records; delete from ops.push_cursors; delete from push_private.payloads")
        conn.commit()


@pytest.fixture
def credit(pg_url: str) -> Iterator[CreditTable]:
    """A fresh penalties table in the session's warehouse (:func:`credit_table`)."""
    with credit_table(pg_url) as table:
        yield table


def make_target(credit: CreditTable, name: str = "city_credit", *, clear: bool = True, batch_size: int = 10,
                forward_backflow: bool = True, auth: str = "hmac", signature: str = "sha256") -> Target:
    """A target taking the test's relation, with the 双公示 item codes."""
    return Target.model_validate({
        "target": name, "title": name, "connection": f"huiju_push_{name}", "auth": auth, "signature": signature,
        "batch_size": batch_size, "attempts": 4, "timeout": 0.3,
        "clear_fields": ["legal_rep_id_no"] if clear else [], "forward_backflow": forward_backflow,
        "relations": [{"relation": credit.relation, "dataset": "admin_penalty", "item_set": "CF",
                       "key": "decision_no", "origin_column": "origin",
                       "fields": {"CF_WSH": "decision_no", "CF_XDR_MC": "party_name", "CF_XDR_LB": "party_type_code",
                                  "CF_XDR_SHXYM": "uscc", "CF_FRDB": "legal_rep", "CF_FRDB_ZJHM": "legal_rep_id_no",
                                  "CF_NR": "penalty_content", "CF_NR_FK": "fine_amount_wan",
                                  "CF_JDRQ": "decision_date", "CF_GSJZQ": "publish_until",
                                  "CF_SJLY": "source_department"}}],
    })


@dataclass
class Waits:
    """The waits the connector asked for (nothing actually sleeps: a test's time is not a fault's)."""

    seconds: list[float] = field(default_factory=list)

    def __call__(self, value: float) -> None:
        self.seconds.append(value)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def platform() -> Iterator[SimulatedPlatform]:
    """The simulated city credit platform (HMAC-SHA256) on loopback; its injected faults are counted."""
    simulated = SimulatedPlatform(hang_seconds=0.6)
    with simulated.running():
        yield simulated
    INJECTED.append(simulated.injected)


def connector(target: Target, simulated: SimulatedPlatform, waits: Waits) -> Any:
    """The connector for ``target`` reaching ``simulated`` through its Connection (as the DAG resolves it)."""
    spec = simulated.connection()
    info = ConnectionInfo(conn_id=target.connection, login=spec.get("login"), password=spec.get("password"),
                          extra=spec["extra"])
    return platform_for(target, info, sleep=waits)
