"""The resource catalogue (政务信息资源目录): built from config/sharing/ and the dbt project, checked, exported."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest

from huiju.cli import main
from huiju.registry import ConfigError
from huiju.sharing.catalogue import ITEM_COLUMNS, RESOURCE_COLUMNS, catalogue_json, load_catalogue, write_workbook
from huiju.sharing.config import load_resources
from tests.support.config import copy_config, edit


def test_the_shipped_catalogue_has_each_share_type_and_the_core_metadata() -> None:
    catalogue = load_catalogue()
    kinds = {entry.share_type for entry in catalogue.values()}
    assert kinds == {"unconditional", "conditional", "not_shared"}
    legal_person = catalogue["legal_person"]
    assert (legal_person.provider, legal_person.provider_code) == ("市大数据管理局", "sjj")
    assert legal_person.relation == "share.share_legal_person"
    assert legal_person.share_type_label == "无条件共享" and legal_person.share_methods == ("数据库授权", "接口服务")
    # 信息项 come from the dbt project's documentation: names, types, sensitivity.
    penalty = catalogue["legal_person_penalty"]
    id_number = penalty.item("legal_rep_id_no")
    assert id_number is not None and id_number.sensitive and id_number.name.startswith("法定代表人证件号码")
    assert penalty.item("fine_amount_wan").data_type == "数值型"
    assert catalogue["population"].condition.startswith("涉及公民个人信息")
    assert catalogue["natural_person_penalty"].approver == "scjgj"


def test_the_excel_export_has_a_row_per_resource_and_per_item(tmp_path: Path) -> None:
    catalogue = load_catalogue()
    book = openpyxl.load_workbook(write_workbook(catalogue, tmp_path / "目录.xlsx"), read_only=True)
    resources = list(book["信息资源目录"].iter_rows(values_only=True))
    assert resources[0] == tuple(label for label, _ in RESOURCE_COLUMNS)
    assert len(resources) == len(catalogue) + 1
    by_code = {row[1]: row for row in resources[1:]}
    assert by_code["ZJJ/XY-XK-00001"][7] == "有条件共享" and by_code["ZJJ/XY-XK-00001"][2] == "住房和城乡建设局"
    items = list(book["信息项"].iter_rows(values_only=True))
    assert items[0] == ITEM_COLUMNS
    assert len(items) == 1 + sum(len(entry.items) for entry in catalogue.values())
    assert ("SCJGJ/XY-CF-00001", "法人行政处罚信息（公示期内）", "法定代表人证件号码（脱敏）", "legal_rep_id_no",
            "字符型", "是") in items


def test_the_json_export_and_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(catalogue_json(load_catalogue()))
    assert {entry["id"] for entry in data["catalogue"]} >= {"legal_person", "population"}
    assert main(["catalogue", "export", "--xlsx", str(tmp_path / "c.xlsx"), "--json", str(tmp_path / "c.json")]) == 0
    assert json.loads((tmp_path / "c.json").read_text(encoding="utf-8")) == data
    assert (tmp_path / "c.xlsx").stat().st_size > 0
    assert main(["catalogue", "list"]) == 0
    assert "自然人行政许可信息（有效期内）" in capsys.readouterr().out


MISTAKES = [
    ("natural_person_penalty.yaml", "  condition: 仅限依法履行信用监管", "  not_a_condition: 仅限依法履行信用监管",
     "resource.not_a_condition:"),
    ("natural_person_license.yaml", "  condition: 仅限行政审批、资格核验使用，须经提供部门审批。\n", "",
     "sharing/catalogue/natural_person_license.yaml: resource: share_type conditional needs condition: 共享条件"),
    ("legal_person.yaml", "model: share_legal_person\n", "model: share_legal_persons\n",
     "resource.model: 'share_legal_persons' is not a model of the dbt project (did you mean 'share_legal_person'?)"),
    ("legal_person.yaml", "provider: sjj", "provider: scjg",
     "resource.provider: 'scjg' is neither a department of config/departments/ nor the bureau (sjj)"),
    ("legal_person.yaml", "scope_fields: [region_code,", "scope_fields: [region,",
     "resource.scope_fields: 'region' is not a column of share_legal_person"),
    ("legal_person.yaml", "model: share_legal_person\n", "model: basic_population\n",
     "resource.model: 'basic_population' is in schema 'basic'; only the share layer is shared"),
    ("legal_person.yaml", "share_type: unconditional", "share_type: sometimes",
     "sharing/catalogue/legal_person.yaml: resource.share_type:"),
    ("legal_person.yaml", 'code: "SJJ/JC-FR-00001"', 'code: "SCJGJ/XY-CF-00001"',
     "resource.code: 'SCJGJ/XY-CF-00001' is already the code of"),
]


@pytest.mark.parametrize(("file", "old", "new", "expected"), MISTAKES)
def test_a_mistake_is_named_by_file_and_key(tmp_path: Path, file: str, old: str, new: str, expected: str) -> None:
    config = copy_config(tmp_path / "config")
    edit(config / "sharing" / "catalogue" / file, old, new)
    with pytest.raises(ConfigError) as caught:
        load_resources(config)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_check_config_reports_a_broken_resource(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = copy_config(tmp_path / "config")
    edit(config / "sharing" / "catalogue" / "legal_person.yaml", "share_methods: [database, api]", "share_methods: []")
    assert main(["check-config", "--config", str(config)]) == 1
    assert "needs at least one of share_methods" in capsys.readouterr().err



def test_receivers_are_checked_and_each_grant_has_an_outbox_name_of_its_own(tmp_path: Path) -> None:
    from huiju.sharing.config import load_receivers

    receiver = load_receivers()["zjj"]
    assert (receiver.auth, receiver.connection) == ("hmac", "huiju_share_zjj")
    endpoint = receiver.for_grant(7)
    assert endpoint.target == "share_grant_7" and endpoint.batch_size == receiver.batch_size
    assert load_catalogue()["natural_person_penalty"].offers("push")
    config = copy_config(tmp_path / "config")
    edit(config / "sharing" / "receivers" / "zjj.yaml", "department: zjj", "department: zjjj")
    edit(config / "sharing" / "receivers" / "zjj.yaml", "auth: hmac", "auth: basic")
    with pytest.raises(ConfigError) as caught:
        load_receivers(config)
    problems = "\n".join(caught.value.problems)
    assert "sharing/receivers/zjj.yaml: receiver.auth" in problems
    (config / "sharing" / "receivers" / "zjj.yaml").write_text(
        "receiver: {department: zjjj, title: 某系统, connection: c, auth: hmac}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_receivers(config)
    assert any("must match the file name 'zjj'" in p for p in caught.value.problems)
    assert any("'zjjj' is not a department of config/departments/" in p for p in caught.value.problems)
