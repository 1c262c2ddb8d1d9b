"""The `rest:` and `soap:` blocks: mistakes are reported with the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from huiju.registry import load_registry
from tests.support.config import Edit, assert_reported, copy_config, edit, problems_of


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


JTJ = "departments/jtj.yaml"
GAJ = "departments/gaj.yaml"

# Each mistake: the edits made to a copy of config/, and what loading it must report (the parts one
# problem names).
MISTAKES = [
    pytest.param(
        [(JTJ, "auth: hmac", "auth: hamc")],
        [("config/departments/jtj.yaml: sources[0].rest.auth:", "'hmac'")],
        id="an unknown auth kind names file and key"),
    pytest.param(
        [(JTJ, "page_size: 500", "page_sise: 500")],
        [("config/departments/jtj.yaml: sources[0].rest.page_sise: unknown key", "did you mean 'page_size'")],
        id="a misspelt rest key, with a suggestion"),
    pytest.param(
        [(JTJ, "kind: page,", "kind: pages,"), (JTJ, "        since_param: gxsjStart\n", "")],
        [("config/departments/jtj.yaml: sources[0].rest.pagination.kind:",),
         ("config/departments/jtj.yaml: sources[0].rest.incremental.since_param: is required but missing",)],
        id="nested keys are named in full"),
    pytest.param(
        [(JTJ, "pagination: {kind: page,", "pagination: {kind: page, page_parm: p,")],
        [("sources[0].rest.pagination.page_parm: unknown key (did you mean 'page_param'?)",)],
        id="a nested block names its own keys"),
    pytest.param(
        [(JTJ, "auth: hmac", "auth: oauth2")],
        [("config/departments/jtj.yaml: sources[0].rest:", "token_url")],
        id="oauth2 without a token endpoint"),
    pytest.param(
        [(GAJ, "wsdl: wsdl/gaj_penalty.wsdl", "wsdl: http://gaj.example.gov.cn/PenaltyService?wsdl"),
         (GAJ, "drift: warn", "drift: ignore")],
        [("config/departments/gaj.yaml: sources[0].soap.wsdl:", "never a URL"),
         ("config/departments/gaj.yaml: sources[0].soap.drift:",)],
        id="soap block mistakes name file and key"),
    pytest.param(
        [(GAJ, "    soap:\n", "    rest:\n")],
        [("config/departments/gaj.yaml: sources[0]", "rest")],
        id="a rest block on a soap source"),
]


@pytest.mark.parametrize(("edits", "expected"), MISTAKES)
def test_a_mistake_is_reported_with_file_key_and_reason(
    config: Path, edits: list[Edit], expected: list[tuple[str, ...]]
) -> None:
    assert_reported(config, edits, expected)


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

