"""Notices to departments and stewards (e-mail, DingTalk, WeCom), delivered every 10 minutes."""

from huiju_airflow.dag_factory import notices_dag

dag = notices_dag()
