"""Ingest DAGs, one per source declared in config/departments/*.yaml."""

from huiju_airflow.dag_factory import ingest_dags

globals().update(ingest_dags())
