"""空间地理: the national division list comes from the pinned python-stdnum, and the seed is what it yields."""

from __future__ import annotations

from huiju.divisions import LOCAL_SOURCE, all_divisions, national_divisions, seed_csv, seed_path


def test_the_shipped_seed_is_what_the_pinned_package_yields() -> None:
    # A version bump of python-stdnum shows here: run `python -m huiju.divisions` and review the diff.
    assert seed_path().read_text(encoding="utf-8") == seed_csv()


def test_the_national_list_holds_every_level_with_names_and_parents() -> None:
    by_code = {d.code: d for d in national_divisions()}
    assert len(by_code) > 6000
    beijing = by_code["110000"]
    assert (beijing.name, beijing.level, beijing.parent_code) == ("北京市", "province", None)
    assert (by_code["331002"].name, by_code["331002"].parent_code) == ("椒江区", "331000")  # 台州市椒江区
    assert by_code["330402"].name == "南湖区" and by_code["330402"].is_current  # renamed over time: the latest name
    assert by_code["110103"].in_use_until == 2010 and not by_code["110103"].is_current  # 崇文区, abolished, kept
    assert all(d.parent_code in by_code for d in by_code.values() if d.parent_code)


def test_the_demo_city_is_added_and_never_a_national_code() -> None:
    national = {d.code for d in national_divisions()}
    local = [d for d in all_divisions() if d.source == LOCAL_SOURCE]
    assert {d.code for d in local} == {"331200", "331202", "331203", "331204"}
    assert not {d.code for d in local} & national
