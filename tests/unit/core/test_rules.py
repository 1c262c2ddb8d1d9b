"""The rule pack: each rule declared once, and everything that reads it agrees with it."""

from __future__ import annotations

import re
import string
import typing
from importlib import resources

import pytest

from huiju.registry import DatasetField
from huiju.rules import EXPECTED_RULES, FIELD_RULES, RULES, SENSITIVE_RULES, problem_name, rule

MIGRATIONS = "\n".join(entry.read_text(encoding="utf-8") for entry in resources.files("huiju.sql").iterdir()
                       if entry.name.endswith(".sql"))


@pytest.mark.parametrize("name", [name for name, r in RULES.items() if r.sql_function])
def test_every_sql_function_a_rule_names_is_created_by_a_migration(name: str) -> None:
    function = RULES[name].sql_function
    assert re.search(rf"create or replace function {re.escape(function or '')}\(", MIGRATIONS), function


def test_field_rules_are_what_a_dataset_may_name_and_each_has_its_function() -> None:
    assert typing.get_args(typing.get_args(DatasetField.model_fields["rules"].annotation)[0]) == FIELD_RULES
    assert FIELD_RULES == ("uscc", "id_number", "org_code", "mobile")
    assert all(RULES[name].sql_function for name in FIELD_RULES)
    assert {"id_number", "mobile"} == SENSITIVE_RULES


def test_every_reason_names_the_header_or_the_row_and_fills_in() -> None:
    for checked in RULES.values():
        assert checked.reasons, checked.name
        for code, text in checked.reasons.items():
            fields = {name for _, name, _, _ in string.Formatter().parse(text) if name}
            assert fields, (checked.name, code)
            assert "{" not in checked.reason(code, **dict.fromkeys(fields, "x")), (checked.name, code)


def test_the_expectation_classes_are_made_from_the_rules() -> None:
    from huiju.quality.expectations import BY_RULE

    assert tuple(BY_RULE) == EXPECTED_RULES
    assert "columns" not in EXPECTED_RULES  # checked while landing, not by GX
    for name, cls in BY_RULE.items():
        assert cls.rule_label == RULES[name].label
        assert cls.__doc__ == RULES[name].description
    assert BY_RULE["uscc"].__name__ == "ExpectColumnValuesToBeValidUscc"


def test_problem_names_and_unknown_rules() -> None:
    assert problem_name("uscc") == "统一社会信用代码错误"
    assert problem_name("columns") == "列数不一致"
    assert problem_name("something_new") == "something_new"
    with pytest.raises(KeyError, match="no rule 'nope'"):
        rule("nope")
