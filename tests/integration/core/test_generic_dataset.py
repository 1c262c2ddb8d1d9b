"""Validation, quarantine, feedback and notices are generic over datasets: a 行政许可 dataset declared
only in YAML (a config folder of this test's own) gets its 许可类别 enumeration, 有效期自 ≤ 有效期至, the
organisation-code and mobile rules, every broken rule per row and its normalisations recorded.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from huiju_demo.bulk import valid_uscc
from huiju_demo.generate import org_code_check_char

from huiju.feedback import build_feedback
from huiju.landing import land_records
from huiju.registry import Registry, load_registry
from huiju.settings import get_settings
from huiju.validation import validate_load

DATASET = """\
dataset: admin_license
title: 行政许可
natural_key: [license_no]
checks:
  - {rule: date_order, before: valid_from, after: valid_to}     # 有效期自 ≤ 有效期至
fields:
  - {name: party_name,   label: 行政相对人名称, required: true}
  - {name: party_type,   label: 行政相对人类别, required: true, enum: [法人及非法人组织, 自然人, 个体工商户]}
  - {name: uscc,         label: 统一社会信用代码, rules: [uscc]}
  - {name: org_code,     label: 组织机构代码, rules: [org_code]}
  - {name: license_no,   label: 行政许可决定文书号, required: true}
  - {name: license_type, label: 许可类别, required: true, enum: [普通, 特许, 认可, 核准, 登记, 其他]}
  - {name: valid_from,   label: 有效期自, required: true, type: date}
  - {name: valid_to,     label: 有效期至, type: date}
  - {name: contact_mobile, label: 联系电话, rules: [mobile], sensitive: true}
"""

DEPARTMENT = """\
department:
  code: xzspj
  name: 行政审批局
  contacts:
    - {name: 李明, email: xzspj-data@example.gov.cn}
sources:
  - id: xzspj_license
    title: 行政许可信息
    dataset: admin_license
    channel: rest
    connection: huiju_xzspj_api
    tolerance: 0.10
    rest:
      path: /api/v1/xk
    columns:
      相对人名称: party_name
      相对人类别: party_type
      统一社会信用代码: uscc
      组织机构代码: org_code
      许可文书号: license_no
      许可类别: license_type
      有效期自: valid_from
      有效期至: valid_to
      联系电话: contact_mobile
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    config = tmp_path_factory.mktemp("config")
    (config / "datasets").mkdir()
    (config / "departments").mkdir()
    (config / "datasets" / "admin_license.yaml").write_text(DATASET, encoding="utf-8")
    (config / "departments" / "xzspj.yaml").write_text(textwrap.dedent(DEPARTMENT), encoding="utf-8")
    return load_registry(config)


@pytest.fixture(autouse=True)
def scratch_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("HUIJU_VAR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_a_license_dataset_declared_in_yaml_is_validated_fed_back_and_announced(
        make_database, registry: Registry) -> None:
    url = make_database("gd", migrated=True)
    source = registry.source("xzspj_license")
    body = "12345678"
    good = {"相对人名称": "某某科技有限公司", "相对人类别": "法人及非法人组织", "统一社会信用代码": valid_uscc(1),
            "组织机构代码": f"{body}-{org_code_check_char(body)}", "许可文书号": "", "许可类别": "普通",
            "有效期自": "2026-01-01", "有效期至": "2031-12-31", "联系电话": "13800000001"}
    records = [{**good, "许可文书号": f"许〔2026〕{i}号"} for i in range(40)]
    records[0].update({"许可类别": "特别许可", "有效期至": "2025-12-31"})            # two rules on one row
    records[1].update({"组织机构代码": f"{body}-{'0' if org_code_check_char(body) != '0' else '1'}"})
    records[2].update({"联系电话": "12800000001"})
    records[3].update({"有效期自": "2026年1月1日", "许可类别": " 特许 "})             # normalised, accepted
    with psycopg.connect(url) as conn:
        landed = land_records(conn, registry, source, reference="xk?page=1", content_id="license-page-1",
                              records=records)
        result = validate_load(conn, registry, landed.load_id, run_gx=False)
        assert (result.status, result.rows_quarantined) == ("validated", 3)
        got = {row: [(v["rule"], v["problem"], v["header"]) for v in violations] for row, violations in conn.execute(
            "select row_no, violations from quarantine.rows where load_id = %s", (landed.load_id,))}
        assert got == {
            1: [("enum", "enum", "许可类别"), ("date_order", "order", "有效期至")],
            2: [("org_code", "check", "组织机构代码")],
            3: [("mobile", "prefix", "联系电话")],
        }
        masked = conn.execute("select violations->0->>'value' from quarantine.rows where load_id = %s and row_no = 3",
                              (landed.load_id,)).fetchone()[0]
        assert masked == "128****0001"
        (normalised,) = conn.execute("select normalised from ops.validation_runs where load_id = %s",
                                     (landed.load_id,)).fetchone()
        assert normalised == {"license_type": {"trim": 1}, "valid_from": {"date_form": 1}}
        feedback = build_feedback(conn, registry, landed.load_id)
        assert feedback is not None and feedback.channel == "portal" and feedback.rows == 3
        assert conn.execute("select department, attachment is not null from ops.notices where load_id = %s",
                            (landed.load_id,)).fetchall() == [("xzspj", False)]  # a portal link, no attachment
