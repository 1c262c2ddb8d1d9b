"""Services that packages beside the core add to ``huiju up``, ``huiju down`` and ``huiju demo``.

The departments' portal (package ``huiju_portal``) is a web server of its own that calls the
core; the core never imports it. It declares itself under the entry point group
``huiju.extensions`` (see ``pyproject.toml``) with an object that has the methods of
:class:`Extension`, and the commands ask every installed one in turn: ``up`` starts it beside
Airflow and prints where it is, ``down`` stops it, ``demo`` lets it create its demo accounts and
make its part of the demo day's submissions through its own code path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from huiju.demo.generate import DemoManifest, SourceSubmission
    from huiju.registry import Registry

log = logging.getLogger(__name__)

GROUP = "huiju.extensions"


@dataclass(frozen=True)
class DemoContribution:
    """What an extension added to the demo day: submissions it made beyond the manifest's, and lines to print."""

    submissions: tuple[SourceSubmission, ...] = ()
    lines: list[str] = field(default_factory=list)


class Extension(Protocol):
    """A service beside the core (the portal). Each method returns lines to print for the person at the terminal."""

    name: str

    def up(self) -> list[str]:
        """Start the service in the background (nothing if it runs); where it is and how to log in."""
        ...

    def down(self) -> list[str]:
        """Stop the service if it runs."""
        ...

    def demo(self, registry: Registry, day: date, manifest: DemoManifest) -> DemoContribution:
        """Before the demo's DAG runs: the service's demo set-up and the submissions that go through it.

        ``manifest`` holds the files the demo generated; those of sources the service receives
        (the portal's uploads) are for it to submit.
        """
        ...


def load_extensions() -> list[Extension]:
    """The installed extensions, in name order."""
    found = []
    for entry in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        found.append(entry.load())
        log.debug("extension %s from %s", entry.name, entry.value)
    return found
