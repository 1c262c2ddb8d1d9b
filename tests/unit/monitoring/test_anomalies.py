"""The robust comparison of a batch with its history (预测预警), on generated histories."""

from __future__ import annotations

import random

import pytest

from huiju.monitoring.anomalies import judge, robust_baseline
from huiju.registry import AnomalySettings

SETTINGS = AnomalySettings()


def history(center: int, jitter: int, count: int = 12, pass_rate: float = 0.98, seed: int = 1) -> list[tuple]:
    rng = random.Random(seed)
    return [(center + rng.randint(-jitter, jitter), pass_rate + rng.uniform(-0.01, 0.01)) for _ in range(count)]


def test_the_baseline_is_not_dragged_by_a_few_odd_batches() -> None:
    middle, spread = robust_baseline([1000, 1010, 990, 1005, 995, 50_000, 3], 0.0)
    assert middle == 1000 and spread == pytest.approx(1.4826 * 10)


@pytest.mark.parametrize("rows", [1000, 1090, 930])
def test_a_normal_batch_passes(rows: int) -> None:
    assert judge(rows, 0.98, history(1000, 60), SETTINGS) == ()


@pytest.mark.parametrize("rows, direction", [(90, -1), (3000, 1), (0, -1)])
def test_a_batch_far_off_its_size_is_found_both_ways(rows: int, direction: int) -> None:
    (finding,) = judge(rows, 0.98, history(1000, 60), SETTINGS)
    assert finding.metric == "rows" and finding.score * direction > SETTINGS.threshold
    assert 940 <= finding.median <= 1060


def test_a_source_that_always_sends_the_same_count_is_not_alarmed_by_a_small_change() -> None:
    steady = [(1000, 1.0)] * 10
    assert judge(1010, 1.0, steady, SETTINGS) == ()
    assert judge(1400, 1.0, steady, SETTINGS) == ()  # 40 %: under min_change
    assert [f.metric for f in judge(1600, 1.0, steady, SETTINGS)] == ["rows"]


def test_a_pass_rate_drop_is_found_and_a_rise_is_not() -> None:
    past = history(1000, 60, pass_rate=0.97)
    (finding,) = judge(1000, 0.70, past, SETTINGS)
    assert finding.metric == "pass_rate" and finding.score < -SETTINGS.threshold
    assert judge(1000, 1.0, history(1000, 60, pass_rate=0.80), SETTINGS) == ()
    assert judge(1000, 0.92, past, SETTINGS) == ()  # five points: under pass_rate_drop


def test_nothing_is_judged_before_the_minimum_history() -> None:
    assert judge(5, 0.1, history(1000, 60, count=SETTINGS.min_history - 1), SETTINGS) == ()
    assert judge(5, 0.1, history(1000, 60, count=SETTINGS.min_history), SETTINGS) != ()


def test_the_threshold_and_minimum_history_are_the_sources_to_set() -> None:
    loose = AnomalySettings(threshold=50, min_history=3, history=3)
    assert judge(90, 0.98, history(1000, 60, count=3), loose) == ()
    with pytest.raises(ValueError, match="min_history"):
        AnomalySettings(min_history=20, history=10)
