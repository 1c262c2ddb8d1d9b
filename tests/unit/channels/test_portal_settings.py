"""The `portal:` block of a source: its ways in and limits, checked with the rest of the configuration."""

from __future__ import annotations

from pathlib import Path

from huiju.channel_settings import PortalSettings
from huiju.registry import load_registry
from tests.support.config import CONFIG, copy_config, edit, problems_of


def test_the_portal_sources_load_with_their_settings() -> None:
    registry = load_registry(CONFIG)
    upload = registry.source("sthjj_penalty").channel_settings
    entry = registry.source("mzj_penalty").channel_settings
    assert isinstance(upload, PortalSettings) and (upload.upload, upload.manual_entry) == (True, True)
    assert upload.max_upload_bytes == 20 * 1024 * 1024
    assert (entry.upload, entry.manual_entry, entry.max_entry_records) == (False, True, 50)


def test_a_portal_source_needs_a_way_in_and_known_keys(tmp_path: Path) -> None:
    config = copy_config(tmp_path / "config", departments=("mzj.yaml", "sthjj.yaml"))
    edit(config / "departments/mzj.yaml", "portal: {upload: false, manual_entry: true}",
         "portal: {upload: false, manual_entry: false}")
    edit(config / "departments/sthjj.yaml", "portal: {upload: true,", "portal: {uploads: true,")
    problems = problems_of(config)
    assert any(p.startswith("config/departments/mzj.yaml: sources[1].portal:")
               and "a portal source needs upload or manual_entry" in p for p in problems), problems
    assert any(p.startswith("config/departments/sthjj.yaml: sources[0].portal.uploads: unknown key")
               and "did you mean 'upload'" in p for p in problems), problems
