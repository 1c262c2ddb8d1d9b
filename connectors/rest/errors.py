"""The errors of a paged web-service read (REST, and SOAP through the same paging engine)."""

from __future__ import annotations

from collections.abc import Sequence


class RestError(Exception):
    """A terminal failure talking to a REST source (the run stops; retrying will not help).

    ``url`` has secrets redacted; ``status`` is the HTTP status (``None`` for transport
    errors); the body is never quoted in the message (it can hold citizens' data):
    ``gateway_message`` is the gateway's own words from a JSON error body (``msg``…), for the
    platform to mask before it shows them. ``retryable`` is true only
    when a later run may succeed unchanged (the source stayed unreachable through every
    attempt); a refused request, a bad answer or an untrusted certificate needs a person.
    """

    def __init__(self, message: str, *, url: str = "", status: int | None = None, gateway_message: str | None = None,
                 retryable: bool = False):
        super().__init__(message)
        self.url = url
        self.status = status
        self.gateway_message = gateway_message
        self.retryable = retryable


class SchemaDrift(Exception):
    """Records no longer have the fields the source is registered with (policy ``hold``)."""

    def __init__(self, message: str, *, added: Sequence[str], removed: Sequence[str]):
        super().__init__(message)
        self.added = list(added)
        self.removed = list(removed)

