"""The Airflow plugin entry point (registered through the ``airflow.plugins`` entry point)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class HuijuPlugin(AirflowPlugin):
    """Huiju's additions to Airflow; the stewards' dashboard will be registered here."""

    name = "huiju"
