"""The incremental-read engine every watermarked source shares: the keys at the watermark.

A source read incrementally (a REST or SOAP interface by updated-since, a front-end database
table by an update-time column or an increasing id) is asked for everything with a watermark
``>= W``, where ``W`` is the greatest watermark already landed, in watermark order. Asking
``>=`` rather than ``>`` is what keeps a record that arrives later with that very watermark —
the same second as the last landed one, whatever its key — from being lost; the price is that
the records landed at ``W`` come back, so the position also holds their keys, and exactly those
are skipped. :class:`KeysAtWatermark` is that position:

* the watermark never moves ahead of landed data: the caller saves the position with the
  records it covers, in the transaction that lands them;
* records sharing the newest watermark are never lost and never landed twice — across a page or
  batch boundary, across runs, and when more arrive with that watermark between two runs;
* a record *updated* later has a newer watermark and is landed again, as a new version.

Limits: the keys at one watermark grow with the records sharing it (a bulk update stamping
100,000 rows alike makes a position of 100,000 keys); a record re-saved with the very same
watermark and key is not read again. Values are compared in the form the caller gives them:
front-end databases give JSON values in the database's own order; web services give the
watermark as sent, compared as a timestamp (:func:`timestamp_order`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["KeysAtWatermark", "OutOfOrder", "timestamp_order", "trailing_keys"]


class OutOfOrder(ValueError):
    """A record older than the watermark: the source does not filter ``>=`` or does not order by it."""

    def __init__(self, stamp: Any, watermark: Any) -> None:
        super().__init__(f"{stamp!r} is older than the watermark {watermark!r}")
        self.stamp = stamp
        self.watermark = watermark


def _as_is(value: Any) -> Any:
    return value


class KeysAtWatermark:
    """The position of an incremental read: the greatest watermark landed, and every key landed at it.

    ``order`` turns a watermark into what orders it (e.g. :func:`timestamp_order`); by default
    watermarks compare as given. Keys are tuples of the key fields' values.
    """

    def __init__(self, watermark: Any = None, keys: Iterable[Sequence[Any]] = (), *,
                 order: Callable[[Any], Any] = _as_is) -> None:
        self.watermark = watermark
        self.keys: dict[tuple[Any, ...], None] = dict.fromkeys(tuple(key) for key in keys)  # in the order landed
        self._order = order
        self._mark = order(watermark) if watermark is not None else None

    def landed(self, watermark: Any, key: Sequence[Any]) -> bool:
        """Whether a record was landed before: at the stored watermark, with one of its keys."""
        return watermark == self.watermark and tuple(key) in self.keys

    def admit(self, watermark: Any, key: tuple[Any, ...]) -> bool:
        """Take the next record in watermark order: ``False`` if it was landed before, else move the position to it.

        Raises :class:`OutOfOrder` for a record older than the watermark (it would be a silent gap).
        """
        mark = self._order(watermark)
        if self._mark is not None:
            if mark < self._mark:
                raise OutOfOrder(watermark, self.watermark)
            if mark == self._mark:
                if key in self.keys:
                    return False
                self.keys[key] = None
                return True
        self.watermark, self._mark, self.keys = watermark, mark, {key: None}
        return True

    def advance(self, watermark: Any, keys_at_last: Sequence[Sequence[Any]]) -> None:
        """Move to the end of a landed batch: its last watermark and the keys it landed at that watermark."""
        if watermark == self.watermark:
            self.keys.update(dict.fromkeys(tuple(key) for key in keys_at_last))
        else:
            self.watermark, self.keys = watermark, dict.fromkeys(tuple(key) for key in keys_at_last)
            self._mark = self._order(watermark) if watermark is not None else None

    def key_list(self) -> list[list[Any]]:
        """The keys at the watermark as JSON lists, in the order they were landed (for the stored cursor)."""
        return [list(key) for key in self.keys]


def trailing_keys(positions: Sequence[Sequence[Any]]) -> tuple[Any, list[list[Any]]]:
    """(last watermark, keys of the trailing records sharing it) from ``[watermark, key…]`` lists in order."""
    last = positions[-1][0]
    keys = []
    for position in reversed(positions):
        if position[0] != last:
            break
        keys.append(list(position[1:]))
    keys.reverse()
    return last, keys


def timestamp_order(value: Any) -> tuple[int, Any]:
    """Comparable form of a timestamp as a source sends it: numbers as numbers, ISO-8601 as naive-UTC datetimes.

    A source must not mix naive and aware timestamps (aware ones compare in UTC).
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return (0, float(value))
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            try:
                return (0, float(text))
            except ValueError:
                raise ValueError(f"not a timestamp: {value!r}") from None
    else:
        raise ValueError(f"not a timestamp: {value!r}")
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return (1, dt)
