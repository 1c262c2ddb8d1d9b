"""监控: what each department owes (obligations), what it delivered (the submission ledger), how its month
went (scorecards), and the 催报 reminders that follow; see the README's "Monitoring (监控)" section."""
