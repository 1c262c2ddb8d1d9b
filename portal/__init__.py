"""huiju_portal: the departments' portal (部门门户) — accounts, Excel upload, manual entry, submission history.

A web server of its own (FastAPI, pages rendered on the server with Jinja2, a little vanilla
JavaScript, every asset served by itself), started by ``huiju up`` beside Airflow. Departments
log in here, never into Airflow. It calls the core (:mod:`huiju`); the core never imports it.

Layout, by concern:

- :mod:`~huiju_portal.config` — settings from the environment;
- :mod:`~huiju_portal.roles` — roles (报送员, 审批人, 数据管理员) and what each may do;
- :mod:`~huiju_portal.accounts`, :mod:`~huiju_portal.passwords`, :mod:`~huiju_portal.sessions`,
  :mod:`~huiju_portal.throttle`, :mod:`~huiju_portal.audit` — who is who, and what they did;
- :mod:`~huiju_portal.scope` — every query about submissions, scoped to the session's department;
- :mod:`~huiju_portal.workbook` — a source's Excel template;
- :mod:`~huiju_portal.uploads`, :mod:`~huiju_portal.entry` — the two ways in, both through the
  core's landing, validation and feedback;
- :mod:`~huiju_portal.app` and :mod:`~huiju_portal.routers` — the web layer, one router per area
  (the catalogue and sharing requests of the next issue add theirs);
- :mod:`~huiju_portal.service`, :mod:`~huiju_portal.extension` — started and stopped by ``huiju up``/``down``,
  demo accounts and submissions for ``huiju demo``.
"""
