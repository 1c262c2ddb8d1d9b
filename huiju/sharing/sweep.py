"""The sharing workflow's clock (run with the hourly monitor): grants past their term end, deadlines are chased.

:func:`run_sharing_sweep` ends every grant whose 共享期限 is over (its role, view and token go) and queues the
reminders before a decision's deadline and the escalations after it (huiju.sharing.workflow), all through the
notices outbox the monitor's notify task delivers, and drops the data service API's call counters no window
reads any more. Running it twice in an hour queues nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from huiju.masking import MaskedError, mask_exception
from huiju.notices import queue_notice, steward_recipients
from huiju.registry import Registry
from huiju.sharing.catalogue import load_catalogue
from huiju.sharing.config import load_policy, sharing_dir
from huiju.sharing.grants import expire_grants, forget_old_calls
from huiju.sharing.workflow import remind_and_escalate
from huiju.warehouse import connect


@dataclass
class SweepReport:
    """What a sweep did: the grants it ended, the reminders and escalations it queued."""

    expired: list[int] = field(default_factory=list)
    reminded: int = 0
    escalated: int = 0


def run_sharing_sweep(registry: Registry, today: date, url: str | None = None) -> SweepReport:
    """Expire grants and chase deadlines as of ``today`` (as the sharing component); nothing without config/sharing/."""
    report = SweepReport()
    if not (sharing_dir() / "policy.yaml").exists():
        return report
    catalogue, policy = load_catalogue(), load_policy()
    with connect(url, role="sharing") as conn:
        report.expired = expire_grants(conn)
        forget_old_calls(conn)
        counts = remind_and_escalate(conn, registry, policy, catalogue, today)
    report.reminded, report.escalated = counts["reminded"], counts["escalated"]
    return report


def alert_sweep_failure(day: date, error: BaseException, url: str | None = None) -> int | None:
    """Tell the stewards the sharing sweep failed on ``day`` (once a day): grants past their term may still be open
    and deadlines unchased until it runs again. The notice's id (None: already told today). Commits."""
    what = str(error) if isinstance(error, MaskedError) else mask_exception(error)  # a MaskedError says its type
    with connect(url, role="sharing") as conn:
        return queue_notice(
            conn, dedupe_key=f"sharing_sweep_failed:{day.isoformat()}", kind="sharing_sweep_failed",
            subject=f"【共享交换·定时任务失败】{day.isoformat()} 共享授权到期处理与审批督办未能完成",
            body=(f"共享交换的定时处理（到期授权的收回、审批时限的提醒与督办）在 {day.isoformat()} 运行失败："
                  f"{what[:300]}\n到期的授权可能尚未收回，请检查 huiju_monitor 的任务日志，修复后可运行 "
                  "`huiju sharing sweep` 补做。"),
            recipients=steward_recipients())
