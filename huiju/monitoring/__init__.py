"""监控: what each department owes (obligations), what it delivered (the submission ledger), how its month
went (scorecards), and the 催报 reminders that follow; see the README's "Monitoring (监控)" section."""

#: Where the plugin serves the stewards' dashboard on Airflow's API server (``huiju up`` and the demo print it);
#: here, not in :mod:`huiju.monitoring.dashboard`, so that the plugin, which every Airflow process imports, stays light.
DASHBOARD_PATH = "huiju-dashboard/"
