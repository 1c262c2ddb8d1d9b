"""Scorecards (and the dashboard's batches) built from the ledger's rows without their dataclass's ``__init__``."""

from __future__ import annotations

import pytest

from huiju.monitoring.scorecards import Scorecard, frozen_rows

ROW = {"month": "2026-11", "department": "swj", "source_id": None, "periods_due": 30, "periods_delivered": 29,
       "periods_on_time": 27, "rows_received": 6000, "rows_accepted": 5900, "feedback_rows": 100,
       "rows_corrected": 80}


def test_a_card_from_a_row_is_the_card_its_fields_make() -> None:
    [card] = frozen_rows(Scorecard, [ROW])
    made = Scorecard(**ROW)
    assert card == made and hash(card) == hash(made) and vars(card) == vars(made)
    assert (card.timeliness, card.score) == (made.timeliness, made.score)
    with pytest.raises(AttributeError):  # still frozen
        card.periods_due = 0  # type: ignore[misc]


def test_rows_that_are_not_the_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="not its fields"):
        frozen_rows(Scorecard, [{**ROW, "score": 99.0}])
    assert frozen_rows(Scorecard, []) == []
