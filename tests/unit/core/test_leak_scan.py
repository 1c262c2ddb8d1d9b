"""The leak scanner (tests/support/leak_scan.py) finds a generated number however it is written, and nothing else."""

from __future__ import annotations

from pathlib import Path

from huiju_demo.bulk import valid_id_number

from huiju.masking import mask_text
from tests.support.leak_scan import Needles, scan_files

ID = valid_id_number(4242)
MOBILE = "13912345678"


def needles() -> Needles:
    found = Needles()
    found.collect(f'{{"legal_rep_id_no": "{ID}", "phone": "{MOBILE}", "uscc": "911101050000424201", "n": 42}}')
    return found


def test_collects_ids_and_mobiles_but_not_organisation_codes() -> None:
    found = needles()
    assert found.ids == {ID} and found.mobiles == {MOBILE}


def test_finds_a_number_glued_spaced_hyphenated_or_behind_plus86_and_never_a_masked_one() -> None:
    found = needles()
    for text in (f"header: 姓名,{ID},{MOBILE}", f"abc{ID}def", f"{ID[:6]} {ID[6:14]} {ID[14:]}",
                 "tel +86 139 1234 5678", "tel 139-1234-5678", f"+86{MOBILE}"):
        assert list(found.find(text)), text
    assert not list(found.find(mask_text(f"{ID} {MOBILE}")))
    assert not list(found.find("2026-11-20 13:01:02,123 load 13912345670 rows"))
    leaks = found.leaks("file x.log", f"{ID} and {ID} and {MOBILE}")
    assert [(leak.kind, leak.number) for leak in leaks] == [("ID", ID[:3] + "*" * 13 + ID[-2:]),
                                                             ("mobile", "139******78")]
    assert ID not in str(leaks[0])  # a finding never shows the number


def test_scans_files_but_not_the_data_stores(tmp_path: Path) -> None:
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "original.csv").write_text(ID)
    (tmp_path / "airflow" / "logs").mkdir(parents=True)
    (tmp_path / "airflow" / "logs" / "task.log").write_text(f"error: header row {ID}")
    (tmp_path / "airflow" / "logs" / "clean.log").write_text(mask_text(f"error: header row {ID}"))
    assert [leak.place for leak in scan_files(needles(), tmp_path)] == ["file airflow/logs/task.log"]
