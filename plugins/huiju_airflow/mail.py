"""The smtp provider's hook, with PNG files sent as images shown in the HTML body (a report's charts).

``SmtpHook.send_email_smtp(mime_subtype="related")`` already makes the message ``multipart/related`` and gives
each file it sends a Content-ID (its file name), which an HTML body references as ``cid:<file name>``; but it
sends every file as ``application/octet-stream``, disposition attachment, which mail clients list as
attachments rather than draw. :class:`InlineImagesSmtpHook` sends the PNGs as ``image/png``, disposition
inline, and leaves everything else (connection, TLS, retries, other files) to the provider.
"""

from __future__ import annotations

from email.mime.image import MIMEImage
from typing import Any

from airflow.providers.smtp.hooks.smtp import SmtpHook


class InlineImagesSmtpHook(SmtpHook):
    """:class:`SmtpHook` whose ``.png`` files go as inline ``image/png`` parts (same Content-ID)."""

    def _build_mime_message(self, *args: Any, **kwargs: Any) -> Any:
        message, recipients = super()._build_mime_message(*args, **kwargs)
        parts = message.get_payload()
        for index, part in enumerate(parts):
            name = part.get_param("Name") or ""
            if name.lower().endswith(".png"):
                image = MIMEImage(part.get_payload(decode=True), "png")
                image["Content-ID"] = part["Content-ID"]
                image.add_header("Content-Disposition", "inline", filename=name)
                parts[index] = image
        return message, recipients
