"""Rendering pages: the Jinja2 environment (autoescaped), the Chinese labels, and :func:`render`."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from huiju.masking import mask_text
from huiju.settings import TIMEZONE

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
_ZONE = ZoneInfo(TIMEZONE)

STATUS_LABELS = {
    "received": "已接收，校验中",
    "validated": "校验通过，待入库",
    "published": "已入库",
    "held": "暂缓入库",
    "failed": "未能入库",
}
# How the verdict reads for the department, and the badge it wears.
STATUS_TONES = {"received": "info", "validated": "ok", "published": "ok", "held": "bad", "failed": "bad"}
CHANNEL_LABELS = {
    "inbox": "文件交换目录", "ftp": "FTP", "sftp": "SFTP", "rest": "REST接口", "soap": "WebService接口",
    "frontdb": "前置库", "portal": "门户", "web": "网络爬虫",
}
KIND_LABELS = {"upload": "文件上传", "entry": "人工录入"}
NOTICE_LABELS = {"held": "暂缓入库", "feedback": "问题数据反馈", "remote_file": "文件报送异常", "reminder": "催报",
                 "overdue": "催报"}
CADENCE_LABELS = {"daily": "每日", "weekly": "每周", "monthly": "每月", "quarterly": "每季度"}


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A timestamp in Beijing time, as departments read it."""
    if value is None:
        return ""
    return value.astimezone(_ZONE).strftime(fmt)


def day_text(value: date | None) -> str:
    """A date as 2026-03-05 (empty for none)."""
    return value.isoformat() if value else ""


def how_submitted(batch: Any) -> str:
    """文件上传 / 人工录入 for portal batches, the channel's name otherwise."""
    return KIND_LABELS.get(batch.kind) or CHANNEL_LABELS.get(batch.channel, batch.channel)


TEMPLATES.env.filters.update(
    local_time=local_time, day_text=day_text, status_label=lambda s: STATUS_LABELS.get(s, s),
    status_tone=lambda s: STATUS_TONES.get(s, "info"), channel_label=lambda c: CHANNEL_LABELS.get(c, c),
    notice_label=lambda k: NOTICE_LABELS.get(k, k), cadence_label=lambda c: CADENCE_LABELS.get(c, c),
    how_submitted=how_submitted, masked=lambda t: mask_text(t or ""))


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with the session (if any), its CSRF token and the registry in the context."""
    session = getattr(request.state, "session", None)
    return TEMPLATES.TemplateResponse(request, template, {
        "session": session,
        "account": session.account if session else None,
        "csrf_token": session.csrf_token if session else None,
        "registry": request.app.state.registry,
        **context,
    }, status_code=status_code)
