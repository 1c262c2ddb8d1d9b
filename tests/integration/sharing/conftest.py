"""Fixtures of the sharing tests: a warehouse with small share relations of the catalogue's models, the actors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest

from huiju import warehouse
from huiju.registry import Registry, load_registry
from huiju.settings import get_settings
from huiju.sharing.catalogue import CatalogueEntry, load_catalogue
from huiju.sharing.config import SharingPolicy, load_policy
from huiju.sharing.workflow import Actor

# Stand-ins for dbt's share views (the columns the tests read, as dbt's contracts type them), owned by the
# transformation as dbt's are. Names in the share rows are masked as the real views mask them.
SHARE_RELATIONS = """
set local role huiju_transform;
create table share.share_legal_person (uscc text, legal_person_name text, legal_person_type text, legal_rep text,
    region_code text, region_name text, is_authority boolean, known_to_departments text[]);
insert into share.share_legal_person values
    ('91330100MA0000001A', '甲公司', '企业法人', '张*', '330102', '上城区', false, '{scjgj}'),
    ('91330100MA0000002B', '乙公司', '企业法人', '李*', '330105', '拱墅区', false, '{scjgj}'),
    ('91330100MA0000003C', '丙公司', '企业法人', '王*', '330102', '上城区', false, '{swj}');
create table share.share_natural_person_penalty_publication (decision_no text, party_name text, party_type text,
    penalty_type text, fine_amount_wan numeric, decision_date date, authority text, source_department text);
insert into share.share_natural_person_penalty_publication values
    ('杭市监罚〔2026〕1号', '赵*', '自然人', '罚款', 0.5, '2026-11-02', '市市场监督管理局', 'scjgj'),
    ('杭税罚〔2026〕7号', '钱*', '自然人', '罚款', 1.2, '2026-11-03', '市税务局', 'swj');
create table share.share_legal_person_penalty_publication (decision_no text, party_name text, uscc text,
    legal_rep_id_no text, penalty_type text, authority text, source_department text);
insert into share.share_legal_person_penalty_publication values
    ('杭市监罚〔2026〕2号', '甲公司', '91330100MA0000001A', '330102********001X', '警告', '市市场监督管理局', 'scjgj');
"""

REQUESTER = Actor("zjj_data", "zjj", frozenset({"submitter"}))
OWNER_APPROVER = Actor("scjgj_boss", "scjgj", frozenset({"approver"}))
OTHER_APPROVER = Actor("zjj_boss", "zjj", frozenset({"approver"}))
STEWARD = Actor("steward", None, frozenset({"steward"}))


@dataclass(frozen=True)
class SharingEnv:
    """A warehouse with the share stand-ins, and the configuration the workflow reads."""

    url: str
    catalogue: dict[str, CatalogueEntry]
    policy: SharingPolicy
    registry: Registry

    def connect(self) -> psycopg.Connection:
        """A connection as the sharing component (commits when its block ends)."""
        return warehouse.connect(self.url, role="sharing")


@pytest.fixture(scope="module")
def sharing_env(make_database: Callable[..., str]) -> Iterator[SharingEnv]:
    """A warehouse of the module's own (migrated), with the share stand-ins; the repository's config/."""
    url = make_database("sharing", migrated=True)
    with psycopg.connect(url) as conn:
        conn.execute(SHARE_RELATIONS)
    get_settings.cache_clear()
    yield SharingEnv(url=url, catalogue=load_catalogue(), policy=load_policy(), registry=load_registry())
    with psycopg.connect(url, autocommit=True) as conn:  # the grants' roles are the server's: never left behind
        for (grant_id,) in conn.execute("select grant_id from sharing.grants where ended_at is null").fetchall():
            conn.execute("select sharing.end_grant(%s, 'revoked', 'tests', 'test teardown')", (grant_id,))
