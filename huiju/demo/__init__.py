"""The demo: three fictional departments of 示范市 that deliver 行政处罚 files every day.

:mod:`huiju.demo.generate` writes their submissions into the inboxes, each file in its
department's own habits (GBK CSV, an Excel template with a title row, UTF-8 CSV with BOM),
with a known handful of bad rows so that quarantine counts can be checked exactly.
"""
