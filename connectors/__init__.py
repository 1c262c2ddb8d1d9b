"""Huiju connectors: talking to the outside world (sources, targets). Plain Python, no Airflow."""
