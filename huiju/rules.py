"""The rule pack: every rule a department's row can break, declared once.

Each :class:`Rule` says what the rest of the platform needs to know about it:

- ``name``: how the configuration, the quarantine (``quarantine.rows.violations[].rule``) and the
  GX suites call it;
- ``label``: what it checks, in the clerk's words (统一社会信用代码) — the dashboard's batch page shows it;
- ``problem``: a row breaking it, as the feedback workbook's summary and the notices count it
  (统一社会信用代码错误);
- ``reasons``: the Chinese reason for the department per problem code (the code is what the
  rule's SQL returns: the contract between SQL and Python). ``{h}`` is the department's own
  column header; other ``{…}`` fields are the rule's own (``{allowed}``, ``{max}`` …);
- ``sql_function``: the ``ops.*`` function returning the problem code (or NULL) for a value,
  where the rule is one (the others are compiled inline by :func:`huiju.checks.checks_for`);
- ``expectation``: its Great Expectations expectation type; :mod:`huiju.quality.expectations`
  makes the class (``expect_column_values_to_be_valid_uscc`` →
  ``ExpectColumnValuesToBeValidUscc``) and the suites in ``expectations/`` name it;
- ``field_rule``: a dataset's field names it under ``rules:`` (a code's format and check digit);
- ``sensitive``: the values it checks identify a citizen (masked in quarantine, never sent to GX).

Adding a rule
-------------
1. An entry in :data:`RULES` below.
2. Its SQL function in a new migration ``huiju/sql/NNN_<rule>.sql`` (``ops.<rule>_problem(value)``
   → a problem code of ``reasons`` or NULL; see ``huiju/sql/010_rules.sql`` for how they are
   written to stay fast).
3. A field rule is then available to every dataset (``rules: [<rule>]``); any other kind of rule
   needs its place in :func:`huiju.checks.checks_for`.
4. Tests: the SQL function's verdicts (``tests/integration/core/test_rule_functions.py``) and a
   batch breaking it (``tests/integration/core/test_rule_pack.py``); then regenerate the suites
   (``python -m huiju.quality.gx write``) and review their diff.

Nothing here imports more than the standard library: the registry, validation, feedback,
notices and the GX suites all read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Rule:
    """One rule of the rule pack (see the module docstring for each attribute)."""

    name: str
    label: str
    problem: str
    reasons: Mapping[str, str]
    expectation: str | None = None
    description: str = ""
    sql_function: str | None = None
    field_rule: bool = False
    sensitive: bool = False

    def reason(self, code: str, **values: object) -> str:
        """The reason for ``code``, its fields filled in (``h``: the department's column header)."""
        return self.reasons[code].format(**values)

    def fallback(self, header: str) -> str:
        """The reason for a problem code this rule does not know (a contract broken by its SQL)."""
        return f"「{header}」不符合规则（{self.name}）"


def _rules(*rules: Rule) -> Mapping[str, Rule]:
    return MappingProxyType({rule.name: rule for rule in rules})


RULES: Mapping[str, Rule] = _rules(
    Rule("required", "必填", "必填项为空", {"required": "「{h}」为必填项，不能为空"},
         "expect_column_values_to_be_present", "必填项：不能为空。"),
    Rule("enum", "枚举", "不在规定范围", {"enum": "「{h}」的值不在规定范围内，应为：{allowed}"},
         "expect_column_values_to_be_in_code_list", "枚举：值在规定范围内（一格多值时每个值都在范围内）。"),
    Rule("number", "数字", "不是有效数字", {"number": "「{h}」不是有效数字"},
         "expect_column_values_to_be_plain_numbers", "数字：普通十进制数。", sql_function="ops.number_problem"),
    Rule("range", "金额范围", "金额超出合理范围", {
        "max": "「{h}」数值过大（超过{max}）；金额以万元为单位，请核对是否误按元填写",
        "min": "「{h}」不应小于{min}",
    }, "expect_column_values_to_be_plausible_amounts", "金额合理范围：万元金额超过上限多半是误按元填写。"),
    Rule("date", "日期", "日期无效", {
        "date": "「{h}」不是有效日期（应为如2026-03-05的日期）",
        "ambiguous": "「{h}」的年月日顺序无法确定（如3/5/2026），请按2026-03-05的格式填写",
        "serial": "「{h}」是一个数字而不是日期，请按2026-03-05的格式填写",
    }, "expect_column_values_to_be_real_dates", "日期：真实存在的日期，年月日顺序明确。",
         sql_function="ops.date_problem_cn"),
    Rule("uscc", "统一社会信用代码", "统一社会信用代码错误", {
        "length": "「{h}」应为18位统一社会信用代码",
        "charset": "「{h}」含有统一社会信用代码不允许的字符（不使用I、O、Z、S、V）",
        "authority": "「{h}」第1位登记管理部门代码错误",
        "category": "「{h}」第2位机构类别代码错误",
        "region": "「{h}」第3至8位应为行政区划代码（数字）",
        "org_code": "「{h}」第9至17位组织机构代码的校验码错误",
        "check": "「{h}」第18位校验码错误，请核对代码是否抄错",
    }, "expect_column_values_to_be_valid_uscc",
         "统一社会信用代码（GB 32100-2015）：字符集、登记管理部门、机构类别、组织机构代码校验码、第18位校验码。",
         sql_function="ops.uscc_problem", field_rule=True),
    Rule("id_number", "公民身份号码", "公民身份号码错误", {
        "numeric": "「{h}」被表格软件存成了数字，后几位已丢失；请把该列设为文本格式后重新填写",
        "format": "「{h}」应为18位公民身份号码（或15位旧号码）",
        "region": "「{h}」前6位不是有效的行政区划代码（GB/T 2260）",
        "birth_date": "「{h}」中的出生日期无效",
        "check": "「{h}」最后一位校验码错误，请核对号码是否抄错",
    }, "expect_column_values_to_be_valid_id_number",
         "公民身份号码（GB 11643-1999）：格式、地址码（GB/T 2260 行政区划代码，含历史代码）、出生日期、"
         "MOD 11-2 校验码；数字化的号码直接拒绝。",
         sql_function="ops.id_number_problem", field_rule=True, sensitive=True),
    Rule("org_code", "组织机构代码", "组织机构代码错误", {
        "length": "「{h}」应为9位组织机构代码（8位本体代码和1位校验码）",
        "charset": "「{h}」含有组织机构代码不允许的字符（应为数字或大写字母）",
        "check": "「{h}」最后一位校验码错误，请核对代码是否抄错",
    }, "expect_column_values_to_be_valid_org_code", "组织机构代码（GB 11714-1997）：9位，校验码。",
         sql_function="ops.org_code_problem", field_rule=True),
    Rule("mobile", "手机号码", "手机号码错误", {
        "numeric": "「{h}」被表格软件存成了数字，请把该列设为文本格式后重新填写",
        "format": "「{h}」应为11位手机号码",
        "prefix": "「{h}」不是有效的手机号段（应以13至19开头）",
    }, "expect_column_values_to_be_valid_mobile", "手机号码：11位，13-19号段。",
         sql_function="ops.mobile_problem", field_rule=True, sensitive=True),
    Rule("date_order", "日期先后", "日期先后顺序错误", {"order": "「{h}」早于「{before}」，日期先后顺序不对"},
         "expect_column_pair_dates_to_be_ordered", "日期先后：如处罚决定日期不晚于公示截止期。"),
    Rule("duplicate", "批内重复", "本批次内重复", {"duplicate": "「{h}」与本批次第{first}行重复"},
         "expect_natural_key_to_be_unique_in_batch", "本批次内业务主键（如决定书文号）不重复。"),
    Rule("published", "与已公示重复", "与已公示数据重复",
         {"published": "「{h}」已由其他来源报送并已公示，请核对是否重复或文号有误"},
         "expect_natural_key_not_published_by_other_source", "业务主键未被其他来源报送并公示。"),
    # Checked while landing, not by validation: a workbook cell holding a formula's error value.
    Rule("cell_error", "单元格错误值", "单元格为公式错误值", {
        code: "单元格 {cell}（「{h}」）是表格公式的错误值 {value}（" + meaning + "），不是数据；"
              "请改正公式或直接填写实际值后重新报送"
        for code, meaning in (
            ("#N/A", "查找不到引用的值"), ("#DIV/0!", "除数为零"), ("#VALUE!", "参与运算的值类型不对"),
            ("#REF!", "引用的单元格已被删除"), ("#NAME?", "公式中有无法识别的函数或名称"),
            ("#NUM!", "数值无效或超出范围"), ("#NULL!", "引用的区域没有交集"),
            ("#SPILL!", "公式结果溢出区域被占用"), ("#CALC!", "公式无法计算"), ("#GETTING_DATA", "数据尚未取回"),
            ("other", "公式出错"))
    }),
    # Checked while landing, not by validation: a value sent as a national code the code list does not hold
    # (config/item_sets/codes/; huiju.landing.codes). The reason names where the row came from: the
    # province's backflow is read by stewards, not by the department that keyed it.
    Rule("code", "国家代码", "代码不在国家代码表中", {
        "unknown": "来源 {source} 批次 {load_id} 第{row}行：「{h}」的代码 {value} 不在《{code_list}》"
                   "（config/item_sets/codes/）中，无法转换为名称；请与报送方核对代码后重新报送",
    }),
    # Checked while landing, not by validation: a record that cannot become a row as sent.
    Rule("columns", "行结构", "列数不一致", {
        "count": "本行有{cells}列，表头有{width}列，列数不一致（可能有多余或缺少的分隔符）",
        "unstorable": "本行字段 {fields} 含有无法保存的字符（不成对的 Unicode 代理项，如 \\ud800），请核对后重新报送",
        "mojibake": "「{field}」的文字编码有误：该列声明为latin1，实际存放的是GBK编码的中文，"
                    "直接读取会变成乱码；请前置库管理员将该列字符集改为utf8mb4（或GBK）后重新填报",
    }),
)

#: Rules a dataset's field names under ``rules:`` (the format and check digit of a code).
FIELD_RULES: tuple[str, ...] = tuple(name for name, rule in RULES.items() if rule.field_rule)
#: Rules whose values identify a citizen: masked in quarantine, never sent to GX results.
SENSITIVE_RULES: frozenset[str] = frozenset(name for name, rule in RULES.items() if rule.sensitive)
#: Rules that Great Expectations runs (one expectation each, per field it applies to).
EXPECTED_RULES: tuple[str, ...] = tuple(name for name, rule in RULES.items() if rule.expectation)


def rule(name: str) -> Rule:
    """The rule called ``name``; a clear error naming the known ones otherwise."""
    try:
        return RULES[name]
    except KeyError:
        raise KeyError(f"no rule {name!r} in the rule pack; known: {', '.join(RULES)}") from None


def problem_name(name: str) -> str:
    """How the feedback workbook and the notices name a problem with rule ``name`` (the name if unknown)."""
    found = RULES.get(name)
    return found.problem if found is not None else name
