"""定时离线分析: scheduled reports over the analysis layer (dbt ``analysis`` schema).

``config/reports/*.yaml`` declares each report (:mod:`huiju.reports.config`); a run computes its
tables as of the period (:mod:`huiju.reports.statistics`), draws its charts (:mod:`huiju.reports.charts`),
writes the workbook (:mod:`huiju.reports.workbook`), archives both and queues the e-mail exactly once
(:mod:`huiju.reports.delivery`).
"""
