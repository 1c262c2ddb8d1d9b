"""The warehouse build (dbt), run when any source publishes new data."""

from huiju_airflow.dag_factory import transform_dag

dag = transform_dag()
