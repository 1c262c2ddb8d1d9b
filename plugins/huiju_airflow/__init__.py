"""Huiju's Airflow skin: DAG factories, thin task wrappers and the UI plugin. Logic lives in ``huiju``."""
