"""The demo (package ``huiju_demo``): a fictional city's departments, their submissions and their systems.

Not part of the platform: nothing in ``huiju`` imports it; ``huiju demo`` (the CLI, the top of
the stack) starts it.

- :mod:`huiju_demo.generate` writes the departments' daily submissions (:mod:`.penalties`,
  :mod:`.registers`, each in its department's habits: :mod:`.departments`; identifiers with
  valid check characters: :mod:`.identifiers`) with a known few defective rows, listed in a
  manifest (:mod:`.manifest`) so quarantine counts can be checked exactly;
- :mod:`huiju_demo.simulators` runs the servers a non-inbox source talks to, on loopback: FTP
  (:mod:`.ftp_server`), SFTP (:mod:`.sftp_server`), a REST gateway (:mod:`.rest_gateway`), a
  SOAP service (:mod:`.soap_service`), a front-end database;
- :mod:`huiju_demo.mail_sink` receives the notices the demo sends;
- :mod:`huiju_demo.bulk` writes large penalty files for the benchmarks and the dbt tests.
"""
