"""JSON page bodies: following dotted paths, decoding, and checking a page without decoding its records whole.

A department's page is mostly its records; the platform decodes them once. The fetcher checks a
body cheaply (:func:`_checker`: the envelope, the status and token, each record an object, only
the fields the watermark needs decoded) and leaves the records in it; whoever lands the page
decodes them — the common plain page straight into value tuples (:func:`plain_records`), any
other into dicts (:func:`page_records`) — the same records either way.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import msgspec

from .errors import RestError

if TYPE_CHECKING:
    from .paging import Page


def json_path(obj: Any, path: str) -> Any:
    """Follow a dotted path (``data.items``, ``result.0.id``; ``""``/``$`` = the whole object).

    Raises ``KeyError`` when a step is missing.
    """
    current = obj
    for step in path_steps(path):
        if isinstance(current, Mapping):
            if step not in current:
                raise KeyError(path)
            current = current[step]
        elif isinstance(current, list) and step.lstrip("-").isdigit():
            try:
                current = current[int(step)]
            except IndexError:
                raise KeyError(path) from None
        else:
            raise KeyError(path)
    return current


def path_steps(path: str) -> list[str]:
    """The steps of a dotted path as :func:`json_path` follows them (``[]`` for ``""`` and ``$``)."""
    path = "" if path in ("", "$") else path.removeprefix("$.")
    return path.split(".") if path else []



_JSON = msgspec.json.Decoder()


def decode_json(body: bytes) -> Any:
    """A JSON body as Python objects, exactly as :func:`json.loads` would give them.

    msgspec decodes UTF-8 JSON in about two thirds of the time; what it refuses and
    :func:`json.loads` accepts (``NaN``, out-of-range floats, lone surrogates, a BOM or UTF-16)
    is left to :func:`json.loads`, so the result never depends on which one read the body.
    Raises ``ValueError`` when the body is not JSON (or is nested too deep to decode).
    """
    try:
        try:
            return _JSON.decode(body)
        except (msgspec.MsgspecError, UnicodeDecodeError):
            return json.loads(body)
    except RecursionError:  # arrays in arrays thousands deep: no department sends that
        raise ValueError("JSON nested too deep to read") from None


def records_at(body: Any, path: str) -> Any:
    """What a decoded page holds at ``path``: its records (``[]`` where the path is null or missing).

    Many gateways send null, or omit the list, on an empty page.
    """
    try:
        records = json_path(body, path)
    except KeyError:
        return []
    return [] if records is None else records


def page_records(page: Page, records_path: str) -> list[dict[str, Any]]:
    """A page's records as dicts: ``page.records``, or those it left in its body (``page.in_body``).

    Decoded as :func:`fetch_pages` decodes a body it keeps whole (:func:`decode_json`, the list
    at ``records_path``), so they are the records it would have yielded. Raises
    :class:`RestError` naming the page when the body is not JSON or holds no list of objects there.
    """
    if not page.in_body:
        return page.records
    try:
        body = decode_json(page.raw_bytes)
    except ValueError as exc:
        raise RestError(f"{page.reference}: the body is not JSON ({exc})", url=page.reference) from None
    records = records_at(body, records_path)
    if not isinstance(records, list) or not all(map(isinstance, records, itertools.repeat(dict))):
        raise RestError(f"{page.reference}: {records_path or 'the body'} is not a list of objects", url=page.reference)
    check_body_count(page, len(records))
    return records if page.kept is None else [records[i] for i in page.kept]


def check_body_count(page: Page, found: int) -> None:
    """Refuse a page whose body holds ``found`` records where the connector counted another number."""
    if found != page.fetched_count:
        raise RestError(f"{page.reference}: {found} records in the body, {page.fetched_count} fetched",
                        url=page.reference)


@dataclass(frozen=True)
class _Checker:
    """Decodes a page's envelope and checks its records without decoding them whole.

    ``decoder`` gives a tree of structs; ``records``, ``ok`` and ``token`` are the attribute
    paths to the record list, the status value and the next-page token in it (``None``: not
    asked for). Each record decodes to a struct with only ``fields`` (its top-level fields the
    watermark needs; absent ones ``UNSET``): the rest of it is validated and skipped.
    """

    decoder: msgspec.json.Decoder
    records: tuple[str, ...]
    ok: tuple[str, ...] | None
    token: tuple[str, ...] | None
    fields: tuple[str, ...]

    def check(self, body: bytes) -> tuple[list[Mapping[str, Any]], Any, Any] | None:
        """The records (each a dict of ``fields`` only), the status value and the token; ``None`` if refused."""
        try:
            decoded = self.decoder.decode(body)
        except (msgspec.MsgspecError, UnicodeDecodeError):  # the whole decoding gives the error
            return None
        records = _follow(decoded, self.records) or []
        if self.fields:
            views = [{name: value for name, value in zip(self.fields, msgspec.structs.astuple(record), strict=True)
                      if value is not msgspec.UNSET} for record in records]
        else:
            views = [_NO_FIELDS] * len(records)  # one read-only mapping: nothing reads a field of it
        return views, _follow(decoded, self.ok), _follow(decoded, self.token)


_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})


def _follow(decoded: Any, names: tuple[str, ...] | None) -> Any:
    if names is None:
        return None
    for name in names:
        if decoded is None:
            return None
        decoded = getattr(decoded, name)
    return decoded




@functools.cache
def _checker(records_path: str, ok_path: str | None, token_path: str | None,
             fields: tuple[str, ...]) -> _Checker | None:
    """The :class:`_Checker` for these paths; ``None`` where it cannot mirror :func:`json_path`.

    It cannot when a path steps through a list index, when the body is the list itself and a
    status or token is asked for, or when one path passes through another's value.
    """
    roles = {"records": path_steps(records_path)}
    if ok_path is not None:
        roles["ok"] = path_steps(ok_path)
    if token_path is not None:
        roles["token"] = path_steps(token_path)
    if any(step.lstrip("-").isdigit() for steps in roles.values() for step in steps):
        return None
    if not roles["records"] and len(roles) > 1:
        return None
    record = msgspec.defstruct("Record", [(f"f{i}", Any, msgspec.UNSET) for i in range(len(fields))],
                               rename={f"f{i}": name for i, name in enumerate(fields)})
    leaves = {"records": list[record] | None, "ok": Any, "token": Any}  # type: ignore[valid-type]
    tree: dict[str, Any] = {}
    for role, steps in roles.items():
        if not steps:
            continue
        node = tree
        for step in steps[:-1]:
            node = node.setdefault(step, {})
            if not isinstance(node, dict):
                return None
        if steps[-1] in node:  # two roles at one value, or one path inside another's value
            return None
        node[steps[-1]] = role
    if not roles["records"]:
        return _Checker(msgspec.json.Decoder(list[record]), (), None, None, fields)  # type: ignore[valid-type]
    attributes: dict[str, tuple[str, ...]] = {}

    def struct(node: dict[str, Any], trail: tuple[str, ...]) -> Any:
        members, rename = [], {}
        for index, (key, child) in enumerate(node.items()):
            name = f"f{index}"
            rename[name] = key
            if isinstance(child, dict):
                kind = struct(child, (*trail, name)) | None
            else:
                kind, attributes[child] = leaves[child], (*trail, name)
            members.append((name, kind, None))
        return msgspec.defstruct("Envelope", members, rename=rename)

    decoder = msgspec.json.Decoder(struct(tree, ()))
    return _Checker(decoder, attributes["records"], attributes.get("ok"), attributes.get("token"), fields)


def plain_records(page: Page, keys: tuple[str, ...], records_path: str) -> list[tuple[Any, ...]] | None:
    """A page's records as value tuples in the order of ``keys``, when the page is plain; ``None`` otherwise.

    Plain: every record (at ``records_path``) is an object with exactly ``keys``, every value a
    string or null — the common page, decoded straight into tuples without a dict per record
    (:func:`_plain_page_decoder`). The tuples are the records :func:`page_records` would give,
    in that order; any other page (or one that is not UTF-8 JSON) is for :func:`page_records`.
    """
    plain = _plain_page_decoder(keys, records_path)
    if plain is None:
        return None
    decoder, depth = plain
    try:
        decoded = decoder.decode(page.raw_bytes)
    except (msgspec.MsgspecError, UnicodeDecodeError):  # not plain (or not UTF-8 JSON): the general path decides
        return None
    for _ in range(depth):
        decoded = decoded.records
    values = list(map(msgspec.structs.astuple, decoded))
    check_body_count(page, len(values))
    if page.kept is not None:
        values = [values[i] for i in page.kept]
    return values


@functools.cache
def _plain_page_decoder(keys: tuple[str, ...], records_path: str) -> tuple[msgspec.json.Decoder, int] | None:
    """A JSON decoder that accepts only plain pages, and how many envelopes wrap their records.

    Plain: the records (at ``records_path``, as :func:`json_path` follows it) are objects with
    exactly the mapped ``keys`` (a duplicate key keeps its last value, as in a dict), every
    value a string or null; each decodes into a struct whose fields are the values in the order
    of ``keys``. ``None`` for a path through list indices.
    """
    steps = path_steps(records_path)
    if any(step.lstrip("-").isdigit() for step in steps):
        return None
    names = [f"f{index}" for index in range(len(keys))]
    record = msgspec.defstruct("PlainRecord", [(name, str | None) for name in names],
                               rename=dict(zip(names, keys, strict=True)), forbid_unknown_fields=True)
    kind: object = list[record]
    for step in reversed(steps):
        kind = msgspec.defstruct("Envelope", [("records", kind)], rename={"records": step})
    return msgspec.json.Decoder(kind), len(steps)
