"""A mail sink for the demo and the tests: a real SMTP server (aiosmtpd) on loopback that keeps what it receives.

Every message is written as ``<n>.eml`` into a folder and kept in memory, so the demo can
show the e-mails the platform sent and tests can read them back.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from huiju_demo.ports import free_port

SMTP_CONN_ID = "huiju_smtp"


@dataclass
class MailSink:
    """A running sink: where it listens and what it received."""

    host: str
    port: int
    folder: Path
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)  # (mail from, rcpt to)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def connection(self) -> dict[str, Any]:
        """The sink as an Airflow smtp Connection (JSON form): plain SMTP on loopback, no TLS."""
        return {"conn_type": "smtp", "host": self.host, "port": self.port,
                "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "huiju-noreply@example.gov.cn",
                          "timeout": 10, "retry_limit": 0}}

    def airflow_env(self, conn_id: str = SMTP_CONN_ID) -> dict[str, str]:
        """``AIRFLOW_CONN_<ID>`` for the sink."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(self.connection())}

    first_number: int = 1  # the number of the first message's file (after those of an earlier run)

    def count(self) -> int:
        """How many messages arrived."""
        with self._lock:
            return len(self.messages)


def mails_with_subject(folder: Path, marker: str) -> list[tuple[Path, EmailMessage]]:
    """The e-mails kept in ``folder`` (by this run or an earlier one) whose subject contains ``marker``."""
    found = []
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if marker in str(message["Subject"] or ""):
            found.append((path, message))  # type: ignore[arg-type]
    return found


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        message = email.message_from_bytes(content, policy=email.policy.default)
        with self.sink._lock:
            self.sink.messages.append(message)  # type: ignore[arg-type]
            self.sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            number = self.sink.first_number + len(self.sink.messages) - 1
        (self.sink.folder / f"{number:05d}.eml").write_bytes(content)
        return "250 Message accepted for delivery"


@contextmanager
def running_mail_sink(folder: Path) -> Iterator[MailSink]:
    """Start the sink on a free loopback port; stop it on exit."""
    from aiosmtpd.controller import Controller

    folder.mkdir(parents=True, exist_ok=True)
    # Numbered on from an earlier run's files: the demo run again keeps the e-mails of the first.
    sink = MailSink("127.0.0.1", free_port(), folder, first_number=len(list(folder.glob("*.eml"))) + 1)
    # 8-bit and UTF-8 content accepted as is (Chinese subjects and attachment names).
    controller = Controller(_Handler(sink), hostname=sink.host, port=sink.port, decode_data=False,
                            enable_SMTPUTF8=True)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
