"""Simulated department systems for the demo: the servers a non-inbox source talks to.

A channel's simulator is a module ``huiju_demo.simulators.<channel>`` with a context manager
``simulate(registry, source, day, rows, workdir) -> SimulatedSource``: it starts a real server
on loopback (FTP, SFTP, HTTP, SOAP, a front-end database) holding that source's demo rows for
``day``, and yields what the platform needs to reach it, as an Airflow Connection.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from huiju_demo.generate import SourceSubmission

from huiju.registry import ORIGIN_BACKFLOW, Registry


@dataclass(frozen=True)
class SimulatedSource:
    """A running simulated system: what it serves and how to connect to it."""

    submission: SourceSubmission
    connection_id: str
    connection: dict[str, Any] = field(repr=False)  # Airflow's JSON connection form: conn_type, host, port, …


@dataclass(frozen=True)
class Simulated:
    """All simulators running for a demo cycle."""

    sources: tuple[SimulatedSource, ...]

    @property
    def submissions(self) -> tuple[SourceSubmission, ...]:
        """What each simulated source serves and which of its rows must be quarantined."""
        return tuple(s.submission for s in self.sources)

    def airflow_env(self) -> dict[str, str]:
        """``AIRFLOW_CONN_<ID>`` variables so the DAG runs resolve the simulators' Connections."""
        return {f"AIRFLOW_CONN_{s.connection_id.upper()}": json.dumps(s.connection) for s in self.sources}


@contextmanager
def running_simulators(registry: Registry, day: date, rows: int, workdir: Path) -> Iterator[Simulated]:
    """Start a simulator for every source the platform fetches from (not inbox or portal, nor the province's
    backflow, which the simulated provincial platform serves); stop them all on exit."""
    with ExitStack() as stack:
        started = []
        for source_id in sorted(registry.sources):
            source = registry.sources[source_id]
            if source.channel in ("inbox", "portal"):  # their batches come to the platform: nothing to serve
                continue
            if source.origin == ORIGIN_BACKFLOW:  # served by the simulated provincial platform (credit_platform)
                continue
            module = importlib.import_module(f"{__name__}.{source.channel}")
            started.append(stack.enter_context(module.simulate(registry, source, day, rows, workdir)))
        yield Simulated(tuple(started))
