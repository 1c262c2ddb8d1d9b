"""What an Airflow task's log can show of a failure: the exception's text, masked, the original dropped."""

from __future__ import annotations

import traceback
from datetime import datetime

import pytest
from airflow.sdk.exceptions import AirflowFailException
from huiju_airflow import tasks

import huiju.pipeline
from huiju.masking import MaskedError

# 11010519491231002X is GB 11643-1999's own example ID number (a published test vector, no citizen's).

SECRET = "张三 11010519491231002X 13912345678"


class _Refused(Exception):
    retryable = False


@pytest.mark.parametrize(("error", "raised_type"), [(ValueError(f"bad row {SECRET}"), MaskedError),
                                                    (_Refused(f"refused {SECRET}"), AirflowFailException)])
def test_a_failing_land_task_shows_no_citizen_number(monkeypatch: pytest.MonkeyPatch, error: Exception,
                                                     raised_type: type[Exception]) -> None:
    def failing(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(huiju.pipeline, "collect", failing)
    with pytest.raises(raised_type) as raised:
        tasks.land("scjgj_penalty", logical_date=datetime(2026, 11, 20))
    text = "".join(traceback.format_exception(raised.value))  # what the task log prints, chain included
    assert "11010519491231002X" not in text and "13912345678" not in text
    assert "110105********002X" in str(raised.value) and "139****5678" in str(raised.value)


def test_a_failing_sharing_sweep_alerts_the_stewards_and_fails_the_monitor_task(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from contextlib import nullcontext
    from types import SimpleNamespace

    import huiju.monitoring.monitor
    import huiju.sharing.sweep
    import huiju.warehouse

    def failing(*args: object, **kwargs: object) -> None:
        raise ValueError(f"grant view gone {SECRET}")

    alerts: list[tuple[object, str]] = []
    monkeypatch.setattr(huiju.warehouse, "connect", lambda **kwargs: nullcontext(None))
    monkeypatch.setattr(huiju.monitoring.monitor, "run_monitor", lambda *args: SimpleNamespace(
        warnings=[], as_of=datetime(2026, 11, 21).date(), periods=1, reminders=SimpleNamespace(queued=[]),
        calendar_gaps=()))
    monkeypatch.setattr(huiju.sharing.sweep, "run_sharing_sweep", failing)
    monkeypatch.setattr(huiju.sharing.sweep, "alert_sweep_failure",
                        lambda day, error: alerts.append((day, str(error))))
    with pytest.raises(MaskedError) as raised:  # the run fails (and is retried): the stewards see it
        tasks.monitor(logical_date=datetime(2026, 11, 21))
    assert alerts == [(datetime(2026, 11, 21).date(), str(raised.value))]
    assert "11010519491231002X" not in alerts[0][1] and "ValueError: grant view gone" in alerts[0][1]
