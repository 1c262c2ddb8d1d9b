"""The ledger's rules that need no database: deterministic ids and guarded status changes."""

from __future__ import annotations

import pytest

from huiju.ledger import STATUSES, make_content_id, make_load_id, set_status
from huiju.masking import mask_id_number, mask_text


def test_load_ids_are_deterministic_per_source_and_content() -> None:
    sha = "ab" * 32
    assert make_load_id("swj_penalty", sha) == make_load_id("swj_penalty", sha) == "swj_penalty-abababababababab"
    assert make_load_id("scjgj_penalty", sha) != make_load_id("swj_penalty", sha)


def test_content_ids_do_not_collide_on_concatenation() -> None:
    assert make_content_id("ab", "c") != make_content_id("a", "bc")
    assert len(make_content_id("page=1")) == 64


def test_the_status_flow_is_closed() -> None:
    assert STATUSES == ("received", "validated", "published", "held", "failed")
    with pytest.raises(ValueError, match="unknown load status 'done'"):
        set_status(None, "x", "done")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"cannot set ledger columns \['sha256'\]"):
        set_status(None, "x", "validated", sha256="00")  # type: ignore[arg-type]


def test_masking_hides_birth_dates_and_phone_middles() -> None:
    # 11010519491231002X is the worked example published in GB 11643-1999, not a person's number.
    assert mask_id_number("11010519491231002X") == "110105********002X"
    assert mask_text("法人张三 11010519491231002X 电话13912345678") == "法人张三 110105********002X 电话139****5678"
    assert mask_text("决定书〔2026〕12号") == "决定书〔2026〕12号"
