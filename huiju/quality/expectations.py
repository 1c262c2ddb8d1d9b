"""Custom Great Expectations: one ``UnexpectedRowsExpectation`` subclass per rule of the rule pack.

Each expectation's ``unexpected_rows_query`` is generated from the same SQL the quarantine
statement uses (:func:`huiju.validation.checks_for`), over ``{batch}`` — the landed batch of
one load. They only ever count failing rows: ``metric_dependencies`` leaves out GX's
``unexpected_rows_query.table`` metric, so no value of any row (ID or phone numbers
included) can reach a validation result or Data Docs, whatever ``result_format`` asks for.
The rows themselves, all of them, are in ``quarantine.rows``.

Importing this module imports GX: do it inside functions only.
"""

from __future__ import annotations

from typing import Any, ClassVar

from great_expectations.expectations import UnexpectedRowsExpectation


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


class ExpectColumnValuesToBePresent(HuijuRuleExpectation):
    """必填项：不能为空。"""

    rule_label = "必填"


class ExpectColumnValuesToBeInCodeList(HuijuRuleExpectation):
    """枚举：值在规定范围内（一格多值时每个值都在范围内）。"""

    rule_label = "枚举"


class ExpectColumnValuesToBePlainNumbers(HuijuRuleExpectation):
    """数字：普通十进制数。"""

    rule_label = "数字"


class ExpectColumnValuesToBePlausibleAmounts(HuijuRuleExpectation):
    """金额合理范围：万元金额超过上限多半是误按元填写。"""

    rule_label = "金额范围"


class ExpectColumnValuesToBeRealDates(HuijuRuleExpectation):
    """日期：真实存在的日期，年月日顺序明确。"""

    rule_label = "日期"


class ExpectColumnValuesToBeValidUscc(HuijuRuleExpectation):
    """统一社会信用代码（GB 32100-2015）：字符集、登记管理部门、机构类别、组织机构代码校验码、第18位校验码。"""

    rule_label = "统一社会信用代码"


class ExpectColumnValuesToBeValidIdNumber(HuijuRuleExpectation):
    """公民身份号码（GB 11643-1999）：格式、地区、出生日期、MOD 11-2 校验码；数字化的号码直接拒绝。"""

    rule_label = "公民身份号码"


class ExpectColumnValuesToBeValidOrgCode(HuijuRuleExpectation):
    """组织机构代码（GB 11714-1997）：9位，校验码。"""

    rule_label = "组织机构代码"


class ExpectColumnValuesToBeValidMobile(HuijuRuleExpectation):
    """手机号码：11位，13-19号段。"""

    rule_label = "手机号码"


class ExpectColumnPairDatesToBeOrdered(HuijuRuleExpectation):
    """日期先后：如处罚决定日期不晚于公示截止期。"""

    rule_label = "日期先后"


class ExpectNaturalKeyToBeUniqueInBatch(HuijuRuleExpectation):
    """本批次内业务主键（如决定书文号）不重复。"""

    rule_label = "批内重复"


class ExpectNaturalKeyNotPublishedByOtherSource(HuijuRuleExpectation):
    """业务主键未被其他来源报送并公示。"""

    rule_label = "与已公示重复"


BY_RULE: dict[str, type[HuijuRuleExpectation]] = {
    "required": ExpectColumnValuesToBePresent,
    "enum": ExpectColumnValuesToBeInCodeList,
    "number": ExpectColumnValuesToBePlainNumbers,
    "range": ExpectColumnValuesToBePlausibleAmounts,
    "date": ExpectColumnValuesToBeRealDates,
    "uscc": ExpectColumnValuesToBeValidUscc,
    "id_number": ExpectColumnValuesToBeValidIdNumber,
    "org_code": ExpectColumnValuesToBeValidOrgCode,
    "mobile": ExpectColumnValuesToBeValidMobile,
    "date_order": ExpectColumnPairDatesToBeOrdered,
    "duplicate": ExpectNaturalKeyToBeUniqueInBatch,
    "published": ExpectNaturalKeyNotPublishedByOtherSource,
}
