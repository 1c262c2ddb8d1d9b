"""定时离线分析: one DAG per report in config/reports/ on its cron (logic in huiju.reports)."""

from huiju_airflow.dag_factory import report_dags

globals().update(report_dags())
