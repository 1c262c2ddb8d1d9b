"""Push targets' configuration, payloads (masking, item codes), receipts and signatures: no server needed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from huiju_connectors.credit_push import parse_receipts
from huiju_connectors.http_auth import canonical_request, hmac_signature

from huiju.push.outbox import canonical_json, content_hash, payload_builder
from huiju.push.sender import PayloadMismatch, batch_id_of, idempotency_key, wire_payload
from huiju.push.targets import load_targets
from huiju.registry import ConfigError, load_registry
from tests.support.citizens import EXAMPLE_ID_NUMBER

ID_NUMBER = EXAMPLE_ID_NUMBER
ROW = {"decision_no": "杭市监罚〔2026〕1号", "party_name": "某某公司", "party_type_code": "1",
       "uscc": "91330100MA00000001",
       "legal_rep": "张三", "legal_rep_id_no": ID_NUMBER, "penalty_type_code": "2", "penalty_content": "罚款",
       "fine_amount_wan": Decimal("1.50"), "decision_date": date(2026, 9, 1), "publish_until": date(2029, 9, 1),
       "authority": "市场监督管理局", "authority_uscc": "11330100000000000X", "source_department": "scjgj"}


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def test_the_repository_targets_load(registry) -> None:
    targets = load_targets(registry)
    assert set(targets.targets) == {"city_credit", "province_share"}
    assert targets["province_share"].signature == "sm3"
    assert not targets["province_share"].forward_backflow
    assert targets["city_credit"].relation("credit_legal_person_penalty").fields["CF_WSH"] == "decision_no"


def test_a_wrong_target_file_names_file_and_key(registry, tmp_path: Path) -> None:
    config = tmp_path / "config"
    (config / "push_targets").mkdir(parents=True)
    source = yaml.safe_load((registry_config() / "push_targets" / "city_credit.yaml").read_text(encoding="utf-8"))
    source["clear_fields"] = ["party_name"]
    source["batch_sise"] = 10
    source["relations"][0]["fields"]["cf_wsh"] = "decision_no"
    (config / "push_targets" / "city_credit.yaml").write_text(yaml.safe_dump(source, allow_unicode=True),
                                                              encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_targets(registry, config)
    text = str(raised.value)
    assert "push_targets/city_credit.yaml: batch_sise" in text
    assert "cf_wsh" in text


def test_a_target_that_does_not_take_the_backflow_must_say_where_origin_is(registry, tmp_path: Path) -> None:
    # Every relation of the repository's targets names its origin column (本地 / 省回流) …
    targets = load_targets(registry)
    assert all(r.origin_column == "origin" for t in targets.targets.values() for r in t.relations)
    # … and a target the backflow must never reach cannot leave it out.
    config = tmp_path / "config"
    (config / "push_targets").mkdir(parents=True)
    province = yaml.safe_load((registry_config() / "push_targets" / "province_share.yaml").read_text(encoding="utf-8"))
    del province["relations"][1]["origin_column"]
    (config / "push_targets" / "province_share.yaml").write_text(yaml.safe_dump(province, allow_unicode=True),
                                                                 encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_targets(registry, config)
    assert "province_share.yaml: relations[1].origin_column: required with forward_backflow: false" in str(raised.value)


def registry_config() -> Path:
    return Path(__file__).resolve().parents[3] / "config"


def test_payload_masks_what_the_target_is_not_entitled_to(registry) -> None:
    targets = load_targets(registry)
    city = targets["city_credit"]
    relation = city.relation("credit_legal_person_penalty")
    clear = payload_builder(registry, city, relation).upsert(ROW)
    assert clear["data"]["CF_FRDB_ZJHM"] == ID_NUMBER
    assert clear["data"]["CF_NR_FK"] == "1.5" and clear["data"]["CF_JDRQ"] == "2026-09-01"
    assert clear["record_id"] == "CF:杭市监罚〔2026〕1号"
    public = city.model_copy(update={"clear_fields": ()})
    masked = payload_builder(registry, public, relation).upsert(ROW)
    assert masked["data"]["CF_FRDB_ZJHM"] == "110105********002X"
    assert content_hash(masked) != content_hash(clear)
    assert content_hash(dict(reversed(clear.items()))) == content_hash(clear)


def test_a_stored_payload_is_sent_only_as_the_bytes_its_hash_names(registry) -> None:
    city = load_targets(registry)["city_credit"]
    record = payload_builder(registry, city, city.relation("credit_legal_person_penalty")).upsert(ROW)
    text, digest = canonical_json(record), content_hash(record)
    assert wire_payload("CF:1", digest, text) == text  # byte for byte
    # As migration 181 moved it from ops (jsonb's key order and spacing): rendered canonically again.
    jsonb_text = json.dumps(dict(sorted(record.items(), key=lambda item: (len(item[0]), item[0]))),
                            ensure_ascii=False)
    assert jsonb_text != text and wire_payload("CF:1", digest, jsonb_text) == text
    # GB 11643-1999's example with its check digit changed (X → 1): not a valid number, so nobody's.
    tampered = text.replace(ID_NUMBER, "110105194912310021")
    for stored in (tampered, None):
        with pytest.raises(PayloadMismatch) as raised:
            wire_payload("CF:1", digest, stored)
        assert ID_NUMBER not in str(raised.value)


def test_receipts_that_cannot_be_read_leave_records_unknown() -> None:
    ids = ["CF:1", "CF:2", "CF:3"]
    good = b'{"batch_id":"b","receipts":[{"record_id":"CF:1","status":"accepted"},' \
           b'{"record_id":"CF:2","status":"rejected","reason":"x"},{"record_id":"CF:3","status":"accepted"}]}'
    assert parse_receipts(good, "b", ids).malformed is None
    assert parse_receipts(good, "b", ids).of("CF:2") == ("rejected", "x")
    assert parse_receipts(good[:40], "b", ids).of("CF:1")[0] == "unknown"
    assert parse_receipts(good, "another", ids).of("CF:1")[0] == "unknown"
    odd = b'{"receipts":[{"record_id":"CF:1","status":"maybe"},{"record_id":"CF:2","status":"accepted"}]}'
    parsed = parse_receipts(odd, "b", ids)
    assert [parsed.of(i)[0] for i in ids] == ["unknown", "accepted", "unknown"]


def test_batch_ids_and_idempotency_keys_are_deterministic() -> None:
    assert batch_id_of("city_credit", 12) == "city_credit-00000012"
    assert idempotency_key("city_credit-00000012", ["a", "b"]) == idempotency_key("city_credit-00000012", ["a", "b"])
    assert idempotency_key("city_credit-00000012", ["a", "b"]) != idempotency_key("city_credit-00000012", ["a", "c"])


def test_sm3_signature_follows_the_documented_canonical_string() -> None:
    """HMAC-SM3 (GB/T 32905-2016 through OpenSSL): body hash and MAC both SM3."""
    assert hashlib.new("sm3", b"abc").hexdigest() == \
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"  # the standard's example
    canonical = canonical_request("POST", "/api/v1/push/batches", [], "1", "n", b"{}", "sm3")
    assert canonical.endswith(hashlib.new("sm3", b"{}").hexdigest())
    expected = hmac.new(b"secret", canonical.encode(), "sm3").digest()
    assert hmac_signature("secret", canonical, "sm3") == base64.b64encode(expected).decode()
    with pytest.raises(ValueError, match="unknown signature algorithm"):
        hmac_signature("secret", canonical, "md5")


def test_a_run_reads_from_the_newest_row_seen_or_what_was_committed_after_the_last_read() -> None:
    from datetime import UTC, datetime, timedelta

    from huiju.push.outbox import CURSOR_OVERLAP, read_since

    built = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)  # the build's rows' publication time (the watermark)
    # The last run read long after the build: every row it could not see was published after it read, less the
    # overlap, later than the watermark — the run reads from the watermark, not the whole last build again.
    assert read_since(built, built + timedelta(hours=8)) == built
    # It read while the build was committing: rows published up to the overlap before it read are read again.
    assert read_since(built, built + timedelta(minutes=10)) == built + timedelta(minutes=10) - CURSOR_OVERLAP
    assert read_since(built, None) == built - CURSOR_OVERLAP  # a cursor written before its read time was kept


def test_the_warehouse_trims_an_id_number_as_python_strips_it() -> None:
    from huiju.push.outbox import STRIP_WHITESPACE

    assert "".join(c for c in map(chr, range(0x110000)) if c.isspace()) == STRIP_WHITESPACE
