"""The `web:` block and the `footer:` rule: mistakes are reported with the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from huiju.registry import load_registry
from tests.support.config import Edit, assert_reported, copy_config, edit

WJW = "departments/wjw.yaml"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return copy_config(tmp_path / "config", departments=("wjw.yaml",))


def test_the_web_source_loads_with_typed_settings_and_a_polite_default(config: Path) -> None:
    registry = load_registry(config)
    source = registry.source("wjw_penalty")
    web = source.channel_settings
    assert (web.path, web.pagination.kind, web.pagination.pattern, web.rate_limit) == (
        "/xxgk/xzcf/index.html", "pattern", "index_{page}.html", 5.0)
    assert source.footer.enabled and "填表人" in source.footer.all_labels
    assert registry.security_warnings() == []
    edit(config / WJW, "rate_limit: 5 ", "rate_limit: null ")
    [warning] = load_registry(config).security_warnings()
    assert "wjw_penalty: web.rate_limit is null" in warning


MISTAKES = [
    pytest.param([(WJW, 'pattern: "index_{page}.html"', 'pattern: "index_n.html"')],
                 [("config/departments/wjw.yaml: sources[0].web.pagination", "{page}")], id="a pattern without {page}"),
    pytest.param([(WJW, "path: /xxgk/xzcf/index.html", "path: http://example.gov.cn/xzcf/")],
                 [("config/departments/wjw.yaml: sources[0].web.path", "not a URL")], id="a URL instead of a path"),
    pytest.param([(WJW, "rate_limit: 5 ", "rate_limt: 5 ")],
                 [("config/departments/wjw.yaml: sources[0].web.rate_limt: unknown key", "rate_limit")],
                 id="a misspelt key"),
    pytest.param([(WJW, "rate_limit: 5 ", "rate_limit: 5000 ")],
                 [("config/departments/wjw.yaml: sources[0].web.rate_limit",)], id="an impolite rate"),
    pytest.param([(WJW, "    tolerance: 0.10\n", "    tolerance: 0.10\n    footer: {lables: [经办人]}\n")],
                 [("config/departments/wjw.yaml: sources[0].footer.lables: unknown key", "labels")],
                 id="a misspelt footer key"),
]


@pytest.mark.parametrize(("edits", "expected"), MISTAKES)
def test_mistakes_name_file_key_and_reason(config: Path, edits: list[Edit], expected: list[tuple[str, ...]]) -> None:
    assert_reported(config, edits, expected)
