"""The PostgreSQL server's version against the latest minor release of its major (recorded by hand)."""

from __future__ import annotations

import datetime as dt

import pytest

from huiju.pg_release import LATEST_MINOR, RECORDED, embedded_binary, parse_version, release_problem, server_version


def test_versions_are_read_from_either_form() -> None:
    assert parse_version("postgres (PostgreSQL) 16.2") == (16, 2)
    assert parse_version("17.10 (Debian 17.10-1.pgdg120+1)") == (17, 10)
    with pytest.raises(ValueError):
        parse_version("unknown")


def test_an_older_minor_is_a_problem_the_latest_is_not() -> None:
    latest = LATEST_MINOR[16]
    problem = release_problem((16, latest - 1))
    assert problem and f"16.{latest}" in problem and RECORDED in problem and "README" in problem
    assert release_problem((16, latest)) is None
    assert release_problem((max(LATEST_MINOR) + 1, 0)) is None  # newer than the table: the table is stale, not it
    assert "no longer supported" in (release_problem((12, 22)) or "")


def test_the_record_is_dated_and_not_older_than_a_year() -> None:
    recorded = dt.date.fromisoformat(RECORDED)
    assert recorded <= dt.date.today() and (dt.date.today() - recorded).days < 366, (
        "update huiju/pg_release.py LATEST_MINOR and RECORDED from PostgreSQL's release announcements")


def test_the_embedded_server_is_checked_from_its_binary_without_starting_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from huiju.settings import get_settings

    monkeypatch.delenv("HUIJU_WAREHOUSE_URL", raising=False)
    get_settings.cache_clear()
    try:
        assert embedded_binary().is_file()
        version = server_version()
    finally:
        get_settings.cache_clear()
    assert version[0] in LATEST_MINOR
    # pgserver 0.1.4 bundles 16.2: the check says so (until the wheel, or the deployment, moves on).
    assert (release_problem(version) is None) == (version[1] >= LATEST_MINOR[version[0]])
