"""Request bodies read within a cap: a form with a file is refused by its size before it is read, never spooled.

Starlette's ``request.form()`` reads the whole body and spools every file part over 1 MB to a temporary file on
disk before the handler sees it; an oversized upload would be on disk before it is refused. Here, instead:

- a declared ``Content-Length`` over the cap is refused at once (:class:`BodyTooLarge`), nothing read but what is
  discarded so the browser sees the answer (:func:`discard_body`; beyond ``DRAIN_FACTOR`` times the cap the
  connection is simply closed);
- otherwise the body is read as it streams, and refused the moment it passes the cap (a chunked body, or a
  ``Content-Length`` that lied); the rest is never read;
- the form is then parsed from memory, its file parts kept in memory too (:func:`read_form`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from starlette.datastructures import FormData
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import Request

# A multipart body carries more than the file: boundaries, the token, the file name.
MULTIPART_SLACK = 64 * 1024
# An oversized body is read and discarded up to this many times its cap (so the browser sees the answer), beyond
# that the connection is simply closed.
DRAIN_FACTOR = 4


class BodyTooLarge(Exception):
    """The request body passes its cap; ``declared``: refused by its Content-Length, before reading any of it."""

    def __init__(self, received: int, declared: bool) -> None:
        super().__init__(f"request body over its cap ({received} bytes {'declared' if declared else 'received'})")
        self.received = received
        self.declared = declared


class FormRefused(ValueError):
    """The body is not a form the platform can read (malformed multipart, too many parts)."""


async def discard_body(request: Request, limit: int) -> bool:
    """Read and drop the request body (so the browser sees the answer); False when it exceeds ``limit``."""
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            return False
    return True


async def read_body(request: Request, cap: int) -> bytes:
    """The request body, read as it streams; :class:`BodyTooLarge` as soon as it passes ``cap`` (or declares to)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > cap:
        raise BodyTooLarge(int(length), declared=True)
    chunks, received = [], 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > cap:
            raise BodyTooLarge(received, declared=False)
        chunks.append(chunk)
    return b"".join(chunks)


class _InMemoryMultiPart(MultiPartParser):
    """Starlette's multipart parser with its file parts kept in memory: the body is already capped."""

    spool_max_size = 1 << 62


async def read_form(request: Request, cap: int, *, max_files: int = 1, max_fields: int = 8) -> FormData:
    """The request's form, its body capped at ``cap`` bytes (:class:`BodyTooLarge`), nothing written to disk.

    :class:`FormRefused` when the body is not a readable form. The caller closes the form when done.
    """
    body = await read_body(request, cap)

    async def replay() -> AsyncGenerator[bytes, None]:
        yield body
        yield b""

    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("multipart/form-data"):
            return await _InMemoryMultiPart(request.headers, replay(), max_files=max_files, max_fields=max_fields,
                                            max_part_size=MULTIPART_SLACK).parse()
        if content_type.startswith("application/x-www-form-urlencoded"):
            return await FormParser(request.headers, replay()).parse()
    except MultiPartException as exc:
        raise FormRefused(str(exc)) from exc
    raise FormRefused(f"not a form: {content_type or 'no content type'}")
