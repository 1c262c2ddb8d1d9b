"""Services that packages beside the core add to ``huiju up`` and ``huiju down``.

The departments' portal (package ``huiju_portal``) is a web server of its own that calls the
core; the core never imports it. It declares itself under the entry point group
``huiju.extensions`` (see ``pyproject.toml``) with an object that has the methods of
:class:`Extension`, and the commands ask every installed one in turn: ``up`` starts it beside
Airflow and prints where it is, ``down`` stops it.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Protocol

log = logging.getLogger(__name__)

GROUP = "huiju.extensions"


class Extension(Protocol):
    """A service beside the core (the portal). Each method returns lines to print for the person at the terminal."""

    name: str

    def up(self) -> list[str]:
        """Start the service in the background (nothing if it runs); where it is and how to log in."""
        ...

    def down(self) -> list[str]:
        """Stop the service if it runs."""
        ...


def load_extensions() -> list[Extension]:
    """The installed extensions, in name order."""
    found = []
    for entry in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        found.append(entry.load())
        log.debug("extension %s from %s", entry.name, entry.value)
    return found
