"""Huiju 汇聚: the core of a city government's data aggregation and sharing platform.

The core never imports Airflow: DAGs and plugins wrap it, tests drive it directly.
"""

__version__ = "0.1.0"
