"""Custom Great Expectations: one ``UnexpectedRowsExpectation`` subclass per rule of the rule pack.

The classes are made from :data:`huiju.rules.RULES` (each rule names its expectation type, label
and description there), so adding a rule adds its expectation.

Each expectation's ``unexpected_rows_query`` is generated from the same SQL the quarantine
statement uses (:func:`huiju.checks.checks_for`), over ``{batch}`` — the landed batch of
one load. They only ever count failing rows: ``metric_dependencies`` leaves out GX's
``unexpected_rows_query.table`` metric, so no value of any row (ID or phone numbers
included) can reach a validation result, whatever ``result_format`` asks for.
The rows themselves, all of them, are in ``quarantine.rows``.

Importing this module imports GX: do it inside functions only.
"""

from __future__ import annotations

from typing import Any, ClassVar

from great_expectations.expectations import UnexpectedRowsExpectation

from huiju.rules import EXPECTED_RULES, RULES, Rule


class HuijuRuleExpectation(UnexpectedRowsExpectation):
    """Base: a rule of the rule pack on ``column``; succeeds when no row of the batch breaks it."""

    column: str
    rule: str
    header: str = ""
    rule_label: ClassVar[str] = ""
    metric_dependencies: ClassVar[tuple[str, ...]] = ("unexpected_rows_query.row_count",)
    # column and rule make each expectation distinct: GX replaces an expectation whose type
    # and domain equal one already in the suite (six required fields are six expectations).
    domain_keys: ClassVar[tuple[str, ...]] = ("batch_id", "row_condition", "condition_parser", "column", "rule")

    def _validate(self, metrics: dict, runtime_configuration: dict | None = None,
                  execution_engine: Any = None) -> dict:
        count = metrics["unexpected_rows_query.row_count"]
        return {"success": count == 0, "result": {"observed_value": count}}


def _expectation_class(rule: Rule) -> type[HuijuRuleExpectation]:
    """The expectation class of ``rule``, named as GX names its type (``expect_x_y`` → ``ExpectXY``)."""
    assert rule.expectation is not None
    name = "".join(part.capitalize() for part in rule.expectation.split("_"))
    # Creating the subclass registers it with GX under its type (GX's metaclass does).
    return type(name, (HuijuRuleExpectation,), {"__doc__": rule.description, "__module__": __name__,
                                                 "rule_label": rule.label})


#: The expectation class of every rule Great Expectations runs.
BY_RULE: dict[str, type[HuijuRuleExpectation]] = {name: _expectation_class(RULES[name]) for name in EXPECTED_RULES}
globals().update({cls.__name__: cls for cls in BY_RULE.values()})  # importable by name, as GX reports them
