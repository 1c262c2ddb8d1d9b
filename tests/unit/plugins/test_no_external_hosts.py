"""No page the platform serves references another host: government intranets have no internet (no CDN).

Every template and static asset of the stewards' dashboard (the Airflow plugin) and of the departments' portal,
and the dbt docs page as ``huiju.transform.generate_docs`` writes it, read as text
(:mod:`tests.support.external_hosts`). Great Expectations' Data Docs, which load Bootstrap, jQuery, Vega and
Font Awesome from public CDNs, are no longer built or served (the dashboard's batch page shows their results);
the browser tests load the dashboard and the portal with the network cut.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from huiju.transform import offline_docs_page
from tests.support.external_hosts import external_references

ROOT = Path(__file__).resolve().parents[3]
SERVED = [ROOT / "plugins" / "huiju_airflow" / "templates", ROOT / "plugins" / "huiju_airflow" / "static",
          ROOT / "portal" / "templates", ROOT / "portal" / "static"]


@pytest.mark.parametrize("folder", SERVED, ids=lambda folder: str(folder.relative_to(ROOT)))
def test_no_template_or_asset_references_another_host(folder: Path) -> None:
    files = [path for path in folder.rglob("*") if path.is_file()]
    assert files
    found = {str(path.relative_to(ROOT)): refs for path in files
             if (refs := external_references(path.read_text(encoding="utf-8", errors="replace")))}
    assert found == {}


def test_the_dbt_docs_page_loads_nothing_from_another_host() -> None:
    import dbt.task.docs  # the page dbt docs generate writes (its catalog and manifest are JSON data)

    page = (Path(dbt.task.docs.__file__).parent / "index.html").read_text(encoding="utf-8")
    assert any("cloudfront.net" in ref for ref in external_references(page))  # dbt's own page does
    assert external_references(offline_docs_page(page)) == []


def test_the_check_finds_what_a_page_would_fetch() -> None:
    # A page that must fail the check: CDN-style references on example.com (reserved, RFC 2606), never served.
    page = ('<link rel="stylesheet" href="https://cdn.example.com/bootstrap.css"><script src="//cdn.example.com/j.js">'
            '</script><style>@import "https://fonts.example.com/a.css"; b { background: url(//img.example.com/x.png) }'
            '</style><script>i.src="https://t.example.com/sp.js"</script><a href="http://127.0.0.1:8080/">local</a>'
            '<svg xmlns="http://www.w3.org/2000/svg"></svg>')
    assert external_references(page) == ["//cdn.example.com/j.js", "//img.example.com/x.png",
                                         "https://cdn.example.com/bootstrap.css", "https://fonts.example.com/a.css",
                                         "https://t.example.com/sp.js"]
