"""Masking of citizens' identifiers in anything a person reads (logs, quarantine, dashboards)."""

from __future__ import annotations

import re

# 15/18-digit ID numbers (last char may be X) and 11-digit mainland mobile numbers.
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{5,8}(\d{3}[\dXx])(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def mask_id_number(value: str | None) -> str | None:
    """``110101********1234``: region and last four kept, birth date hidden."""
    if value is None:
        return None
    text = value.strip()
    if len(text) <= 8:
        return "*" * len(text)
    return text[:6] + "*" * (len(text) - 10) + text[-4:]


def mask_text(text: str) -> str:
    """Any ID or mobile number inside free text, masked."""
    text = _ID_NUMBER.sub(lambda m: m.group(1) + "*" * (len(m.group(0)) - 10) + m.group(2), text)
    return _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(2), text)
