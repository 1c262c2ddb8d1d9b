"""The `rest:` and `soap:` blocks: mistakes are reported with the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from huiju.registry import load_registry
from tests.support.config import copy_config, edit, problems_of


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return copy_config(tmp_path / "config", departments=("gaj.yaml", "jtj.yaml"))


def test_the_web_service_sources_load_with_typed_settings(config: Path) -> None:
    registry = load_registry(config)
    rest = registry.source("jtj_penalty").channel_settings
    assert (rest.auth, rest.pagination.kind, rest.incremental.key_fields, rest.drift) == ("hmac", "page",
                                                                                          ("CF_WSH",), "warn")
    soap = registry.source("gaj_penalty").channel_settings
    assert soap.wsdl == "wsdl/gaj_penalty.wsdl" and soap.username_token
    assert (config / soap.wsdl).is_file()


def test_an_unknown_auth_kind_names_file_and_key(config: Path) -> None:
    edit(config / "departments/jtj.yaml", "auth: hmac", "auth: hamc")
    problems = problems_of(config)
    assert any(p.startswith("config/departments/jtj.yaml: sources[0].rest.auth:") and "'hmac'" in p
               for p in problems), problems


def test_a_misspelt_rest_key_is_reported_with_a_suggestion(config: Path) -> None:
    edit(config / "departments/jtj.yaml", "page_size: 500", "page_sise: 500")
    problems = problems_of(config)
    assert any(p.startswith("config/departments/jtj.yaml: sources[0].rest.page_sise: unknown key")
               and "did you mean 'page_size'" in p for p in problems), problems


def test_nested_keys_are_named_in_full(config: Path) -> None:
    edit(config / "departments/jtj.yaml", "kind: page,", "kind: pages,")
    edit(config / "departments/jtj.yaml", "        since_param: gxsjStart\n", "")
    problems = problems_of(config)
    assert any(p.startswith("config/departments/jtj.yaml: sources[0].rest.pagination.kind:") for p in problems)
    assert "config/departments/jtj.yaml: sources[0].rest.incremental.since_param: is required but missing" \
        in problems, problems


def test_oauth2_without_a_token_endpoint_is_refused(config: Path) -> None:
    edit(config / "departments/jtj.yaml", "auth: hmac", "auth: oauth2")
    problems = problems_of(config)
    assert any(p.startswith("config/departments/jtj.yaml: sources[0].rest:") and "token_url" in p
               for p in problems), problems


def test_soap_block_mistakes_name_file_and_key(config: Path) -> None:
    edit(config / "departments/gaj.yaml", "wsdl: wsdl/gaj_penalty.wsdl",
          "wsdl: http://gaj.example.gov.cn/PenaltyService?wsdl")
    edit(config / "departments/gaj.yaml", "drift: warn", "drift: ignore")
    problems = problems_of(config)
    assert any(p.startswith("config/departments/gaj.yaml: sources[0].soap.wsdl:") and "never a URL" in p
               for p in problems), problems
    assert any(p.startswith("config/departments/gaj.yaml: sources[0].soap.drift:") for p in problems), problems


def test_a_rest_block_on_a_soap_source_is_refused(config: Path) -> None:
    edit(config / "departments/gaj.yaml", "    soap:\n", "    rest:\n")
    problems = problems_of(config)
    assert any("config/departments/gaj.yaml: sources[0]" in p and "rest" in p for p in problems), problems


def test_a_date_windowed_soap_operation_loads_and_excludes_updated_since(config: Path) -> None:
    windowed = ("      window:\n        from_param: dateFrom\n        to_param: dateTo\n"
                "        start: 2026-11-01\n        days: 7\n      drift: warn")
    edit(config / "departments/gaj.yaml", "      drift: warn", windowed)
    problems = problems_of(config)
    assert any(p.startswith("config/departments/gaj.yaml: sources[0].soap:") and "not both" in p
               for p in problems), problems

    text = (config / "departments/gaj.yaml").read_text(encoding="utf-8")
    start = text.index("      incremental:\n")
    end = text.index("      window:\n")
    (config / "departments/gaj.yaml").write_text(text[:start] + text[end:], encoding="utf-8")
    window = load_registry(config).source("gaj_penalty").channel_settings.window
    assert (window.from_param, window.start.isoformat(), window.days) == ("dateFrom", "2026-11-01", 7)



def test_a_nested_block_names_its_own_keys(config: Path) -> None:
    edit(config / "departments/jtj.yaml", "pagination: {kind: page,", "pagination: {kind: page, page_parm: p,")
    problems = problems_of(config)
    assert any("sources[0].rest.pagination.page_parm: unknown key (did you mean 'page_param'?)" in p
               for p in problems), problems
