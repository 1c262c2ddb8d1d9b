"""Push DAGs: one per credit platform declared in config/push_targets/*.yaml, and huiju_push_replay."""

from huiju_airflow.dag_factory import push_dags

globals().update(push_dags())
