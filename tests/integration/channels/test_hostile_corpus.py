"""The hostile-input corpus (tests/support/hostile_corpus.py), each case through the inbox channel.

Every case must be refused (a failed load whose message names the source and the file, and the
row or column where there is one) or quarantined (rows quarantined with their row number and a
reason naming the column), within 5 s and 256 MB, and the good file waiting beside it must be
neither lost nor landed twice. No message may show a planted ID or mobile number whole.
"""

from __future__ import annotations

import json
import resource
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from huiju.channels import CollectContext, ConnectionInfo, collector
from huiju.landing import LandResult
from huiju.masking import mask_text
from huiju.registry import Registry, load_registry
from huiju.settings import get_settings
from huiju.validation import validate_load
from tests.support.hostile_corpus import (
    CASES,
    FORMATS,
    KEYS_SOURCE,
    PAGE_CASES,
    PLANTED_ID,
    PLANTED_MOBILE,
    Case,
    PageCase,
    csv_bytes,
    department_config,
    json_bytes,
    page_body,
    page_source_id,
    rows_of,
    source_id,
    table,
    xlsx_bytes,
    xml_bytes,
)
from tests.support.hostile_http import ScriptedServer

ROOT = Path(__file__).resolve().parents[3]
SECONDS = 5.0
MEGABYTES = 256


@dataclass
class Corpus:
    """The corpus's own warehouse, config and var/, and the process's peak memory before the first case."""

    url: str
    registry: Registry
    inbox: Path
    rss_before_kb: int


@pytest.fixture(scope="module")
def corpus(make_database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    """One warehouse for every case, and a good file per source landed before the first one."""
    base = tmp_path_factory.mktemp("hostile")
    config = base / "config"
    shutil.copytree(ROOT / "config" / "datasets", config / "datasets")
    (config / "departments").mkdir()
    (config / "departments" / "hostile.yaml").write_text(json.dumps(department_config(), ensure_ascii=False),
                                                          encoding="utf-8")
    url = make_database("hostile", migrated=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HUIJU_CONFIG", str(config))
        patch.setenv("HUIJU_VAR", str(base / "var"))
        patch.setenv("HUIJU_WAREHOUSE_URL", url)
        get_settings.cache_clear()
        registry = load_registry(config)
        inbox = get_settings().inbox_dir
        writers = {"csv": lambda r: csv_bytes(r), "xlsx": lambda r: xlsx_bytes(table(r)), "json": json_bytes,
                   "xml": xml_bytes}
        for fmt in FORMATS:
            folder = inbox / source_id(fmt)
            folder.mkdir(parents=True)
            (folder / f"good.{fmt}").write_bytes(writers[fmt](rows_of(3, f"good{fmt}")))
            [first] = _collect(url, registry, fmt)
            assert first.outcome == "landed" and first.rows_received == 3, first
        yield Corpus(url, registry, inbox, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    get_settings.cache_clear()


def _collect(url: str, registry: Registry, fmt: str) -> list[LandResult]:
    source = registry.source(source_id(fmt))
    with psycopg.connect(url) as conn:
        return collector(source.channel)(CollectContext(registry, source, conn, None, None))


def test_the_corpus_has_at_least_150_cases(capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        kinds = {fmt: sum(c.fmt == fmt for c in CASES) for fmt in FORMATS}
        print(f"\nhostile corpus: {len(CASES) + len(PAGE_CASES)} cases ("
              f"{', '.join(f'{k} files {n}' for k, n in kinds.items())}, REST pages {len(PAGE_CASES)})")
    assert len(CASES) + len(PAGE_CASES) >= 150


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_hostile_delivery_is_refused_or_quarantined(corpus: Corpus, case: Case) -> None:
    folder = corpus.inbox / source_id(case.fmt)
    path = folder / case.name
    case.build(path)
    try:
        started = time.perf_counter()
        results = _collect(corpus.url, corpus.registry, case.fmt)
        seconds = time.perf_counter() - started
    finally:
        path.unlink()
    good = [r for r in results if r.reference == f"good.{case.fmt}"]
    hostile = [r for r in results if r.reference != f"good.{case.fmt}"]
    # Nothing else lost or duplicated: the good file is recognised as landed, and counted once.
    assert [r.outcome for r in good] == ["already_landed"], results
    assert hostile, results
    assert seconds < SECONDS, f"{case.id}: {seconds:.1f} s"
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - corpus.rss_before_kb) / 1024
    assert grown_mb < MEGABYTES, f"{case.id}: the process's peak memory grew by {grown_mb:.0f} MB"
    messages = _messages(corpus.url, hostile)
    for message in messages:
        assert PLANTED_ID not in message and PLANTED_MOBILE not in message, message
    source = source_id(case.fmt)
    if case.outcome == "refused":
        for result in hostile:
            assert result.outcome == "failed", (case.id, result)
            assert result.error is not None and result.error.startswith(f"{source}: "), result.error
            assert mask_text(case.name.replace("\n", " ").replace("\r", " "))[:20] in \
                result.error.replace("\n", " ").replace("\r", " ") or case.name in result.error, result.error
        for mention in case.mentions:
            assert any(mention in m for m in messages), (mention, messages)
        return
    quarantined = _quarantined(corpus, hostile)
    assert quarantined, (case.id, results)
    for row_no, reasons in quarantined:
        assert row_no >= 2, (row_no, reasons)  # a data row, by its number in the file
    for mention in case.mentions:
        assert any(mention in reasons for _, reasons in quarantined), (mention, quarantined)


def _messages(url: str, results: list[LandResult]) -> list[str]:
    """What the platform says about the results: errors and warnings, in the results and the ledger."""
    texts = [r.error or "" for r in results] + [w for r in results for w in r.warnings]
    with psycopg.connect(url) as conn:
        for result in results:
            if result.load_id:
                row = conn.execute("select coalesce(error, ''), coalesce(warnings::text, '') from ops.loads"
                                   " where load_id = %s", (result.load_id,)).fetchone()
                texts += list(row or ())
    return texts


def _quarantined(corpus: Corpus, results: list[LandResult]) -> list[tuple[int, str]]:
    """(row number, reasons) of every quarantined row of the landed results, validating them first."""
    rows: list[tuple[int, str]] = []
    with psycopg.connect(corpus.url) as conn:
        for result in results:
            if result.outcome != "landed":
                continue
            validate_load(conn, corpus.registry, result.load_id, run_gx=False)
            rows += [(row_no, json.dumps(reasons, ensure_ascii=False)) for row_no, reasons in conn.execute(
                "select row_no, reasons from quarantine.rows where load_id = %s", (result.load_id,)).fetchall()]
    return rows


@pytest.mark.parametrize("case", PAGE_CASES, ids=[c.id for c in PAGE_CASES])
def test_a_hostile_page_is_refused_and_the_pages_before_it_land_once(corpus: Corpus, case: PageCase) -> None:
    source = corpus.registry.source(page_source_id(case))
    server = ScriptedServer(lambda method, path, query, body: case.answer(int(query.get("page", "1"))))
    with server.running(), psycopg.connect(corpus.url) as conn:
        port = int(server.url.rsplit(":", 1)[1])
        connection = ConnectionInfo("huiju_hostile_rest", "127.0.0.1", port, schema="http")
        started = time.perf_counter()
        with pytest.raises(Exception) as raised:  # the run stops: Airflow marks the task failed
            collector("rest")(CollectContext(corpus.registry, source, conn, None, connection))
        seconds = time.perf_counter() - started
    assert seconds < SECONDS, f"{case.id}: {seconds:.1f} s"
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - corpus.rss_before_kb) / 1024
    assert grown_mb < MEGABYTES, f"{case.id}: the process's peak memory grew by {grown_mb:.0f} MB"
    assert getattr(raised.value, "retryable", True) is False, raised.value  # terminal: a person must look
    with psycopg.connect(corpus.url) as conn:
        loads = conn.execute("select status, coalesce(rows_received, 0), coalesce(error, ''), reference"
                             " from ops.loads where source_id = %s", (source.id,)).fetchall()
    landed = [rows for status, rows, _, _ in loads if status != "failed"]
    failed = [(error, reference) for status, _, error, reference in loads if status == "failed"]
    assert sum(landed) == 2 * case.good_pages, loads  # the good pages, each once
    [(error, reference)] = failed
    assert error.startswith(f"{source.id}: {reference}: ") and '"page"' in reference, error
    for text in (error, str(raised.value)):
        assert PLANTED_ID not in text and PLANTED_MOBILE not in text, text


def test_record_keys_holding_a_citizens_numbers_are_masked_in_the_warnings(corpus: Corpus) -> None:
    # A gateway keying a field by a person's numbers: the record lands (kept in _extra), the warning is masked.
    records = [row | {f"{PLANTED_ID}_{PLANTED_MOBILE}": "x"} for row in rows_of(1, "K")]
    server = ScriptedServer(lambda method, path, query, body: (200, {"Content-Type": "application/json"},
                                                               page_body(1, records)))
    source = corpus.registry.source(KEYS_SOURCE)
    with server.running(), psycopg.connect(corpus.url) as conn:
        connection = ConnectionInfo("huiju_hostile_rest", "127.0.0.1", int(server.url.rsplit(":", 1)[1]),
                                    schema="http")
        results = collector("rest")(CollectContext(corpus.registry, source, conn, None, connection))
    assert [r.outcome for r in results] == ["landed"]
    messages = _messages(corpus.url, results)
    assert any("_extra" in m for m in messages), messages
    for message in messages:
        assert PLANTED_ID not in message and PLANTED_MOBILE not in message, message
