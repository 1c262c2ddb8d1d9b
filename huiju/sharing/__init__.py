"""共享交换 (sharing): the resource catalogue, requests and their approval, grants and the audit trail.

- :mod:`huiju.sharing.config` — ``config/sharing/``: the policy and each catalogued resource, schema-checked;
- :mod:`huiju.sharing.catalogue` — the 政务信息资源目录 (GB/T 21063 core metadata) from the config and the dbt
  project, exported as the Excel sheet departments exchange and as JSON.

No Airflow here: the portal, the CLI and the demo call these modules.
"""
