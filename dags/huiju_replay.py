"""重放: archived originals landed again on demand, selected by validated Params (logic in huiju.replay)."""

from huiju_airflow.dag_factory import replay_dag

dag = replay_dag()
