"""监控: the submission ledger and the 催报 ladder, every hour (logic in huiju.monitoring)."""

from huiju_airflow.dag_factory import monitor_dag

dag = monitor_dag()
