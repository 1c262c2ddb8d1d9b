"""Masking of citizens' identifiers in anything a person reads (logs, ledger, quarantine, notices, feedback).

One rule for everything that leaves the data path: :func:`mask_text` hides the middle of every
ID number (居民身份证号码, 15 or 18 characters, check digit ``X`` or ``x``) and every mainland mobile
number (手机号码, optionally ``+86``/``86-``) found anywhere in a text — glued to letters
(``身份证11010519491231002X号``), written with spaces or dashes inside (``110105 19491231 002X``,
``138-1234-5678``, ``+86 138 1234 5678``). Over-masking is accepted: a 15-or-more-digit number that
is no ID (a bank card, a long serial) loses its middle too; nothing shorter than a mobile is touched.
(``11010519491231002X``, here and in the tests, is GB 11643-1999's own example number: a published
test vector, no citizen's.)

The same patterns back the warehouse's ``ops.mask_text(text)`` (``huiju/sql/150_mask_text.sql``),
which quarantine applies to the values it keeps; ``tests/integration/core/test_mask_text_sql.py``
checks the two hide the same numbers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

#: One optional separator between two digits of a number written in groups.
_SEP = r"[- \u00a0\u3000]"
_D = r"[0-9０-９]"
#: 18-character ID (17 digits + digit or X/x), or 15-digit ID; region (6) and last four are kept.
_ID_18 = rf"(?P<id18>{_D}(?:{_SEP}?{_D}){{16}}{_SEP}?[0-9０-９Xx])"
_ID_15 = rf"(?P<id15>{_D}(?:{_SEP}?{_D}){{14}})"
#: Mobile: optional 86 country code, then 1[3-9] and nine digits; first three and last four kept.
_MOBILE = rf"(?P<mobile>(?:(?<![0-9０-９])86{_SEP}?)?1[3-9３-９](?:{_SEP}?{_D}){{9}})"
_NUMBER = re.compile(f"{_ID_18}|{_ID_15}|{_MOBILE}")
_DIGIT = re.compile(r"[0-9０-９Xx]")


def _masked(match: re.Match[str]) -> str:
    """The match with its hidden digits turned into ``*`` and its separators kept."""
    text = match.group(0)
    positions = [m.start() for m in _DIGIT.finditer(text)]
    if match.group("mobile") is not None:
        # Keep the country code (when there is one), then three digits; the last four stay.
        skip = 2 if len(positions) == 13 else 0
        hidden = positions[skip + 3:-4]
    else:
        hidden = positions[6:-4]
    chars = list(text)
    for position in hidden:
        chars[position] = "*"
    return "".join(chars)


def mask_id_number(value: str | None) -> str | None:
    """``110101********1234``: region and last four kept, birth date hidden."""
    if value is None:
        return None
    text = value.strip()
    if len(text) <= 8:
        return "*" * len(text)
    return text[:6] + "*" * (len(text) - 10) + text[-4:]


def mask_text(text: str | None) -> str:
    """Any ID or mobile number inside free text, masked (``None`` → ``""``)."""
    if not text:
        return ""
    return _NUMBER.sub(_masked, str(text))


def mask_exception(exc: BaseException) -> str:
    """``Type: message`` of an exception, masked: what a log line or the ledger may say about it."""
    return mask_text(f"{type(exc).__name__}: {exc}")


def mask_value(value: Any) -> Any:
    """``value`` with every string inside it masked (dicts, lists and tuples walked; others unchanged)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {mask_value(k): mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_value(v) for v in value)
    return value


def mask_all(texts: Iterable[str]) -> list[str]:
    """Each text masked (warnings, notices' lines)."""
    return [mask_text(t) for t in texts]


class MaskedError(RuntimeError):
    """An exception re-raised with its message masked (the original stays out of tracebacks)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@contextmanager
def masked_errors() -> Iterator[None]:
    """Re-raise any exception as :class:`MaskedError` with its text masked.

    For the edge where an exception leaves the platform's code for a log it does not control
    (Airflow's task log prints the message of every exception in the chain, so the original is
    dropped with ``from None``). ``retryable`` is carried over.
    """
    try:
        yield
    except MaskedError:
        raise
    except Exception as exc:
        raise MaskedError(mask_exception(exc), retryable=getattr(exc, "retryable", True)) from None


class _MaskingRecordFactory:
    """Wraps the log record factory: records of the platform's loggers carry masked messages."""

    def __init__(self, inner: Callable[..., logging.LogRecord]) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        # A record made by hand (e.g. structlog's bridge) may have no logger name: not the platform's.
        if (record.name or "").startswith(_MASKED_LOGGERS):
            # A malformed format string is left to logging's own report.
            with suppress(TypeError, ValueError):
                record.msg, record.args = mask_text(record.getMessage()), ()
        return record


_MASKED_LOGGERS = ("huiju", "huiju_connectors", "huiju_airflow", "huiju_portal", "huiju_demo")


def install_log_masking() -> None:
    """Mask every record logged by the platform's own loggers (idempotent; call once per process)."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _MaskingRecordFactory):
        logging.setLogRecordFactory(_MaskingRecordFactory(factory))
