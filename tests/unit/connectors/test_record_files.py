"""JSON and XML files read as records: the shapes departments send, streamed, hostile XML refused."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

import pytest
from huiju_connectors import files
from huiju_connectors.files import FileFormatError, read_json, read_xml
from pydantic import ValidationError

from huiju.registry import Source

RECORDS = [
    {"当事人名称": "甲公司", "罚款金额": 12.50, "文号": 20260001, "标签": ["a", "b"], "已公示": True},
    {"当事人名称": "乙公司", "备注": None, "地址": {"市": "杭州"}},
]


def table(path: Path, **options: str) -> tuple[list[str], list[tuple[int, list[str | None]]]]:
    sheet = read_xml(path, **options) if path.suffix == ".xml" else read_json(path, **options)
    return sheet.header, list(sheet.rows)


def test_an_array_of_objects_keeps_numbers_as_sent_and_nested_values_as_json(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps(RECORDS, ensure_ascii=False).replace("12.5", "12.50"), encoding="utf-8")
    header, rows = table(path)
    assert header == ["当事人名称", "罚款金额", "文号", "标签", "已公示", "备注", "地址"]
    assert rows == [
        (1, ["甲公司", "12.50", "20260001", '["a", "b"]', "true", None, None]),
        (2, ["乙公司", None, None, None, None, None, '{"市": "杭州"}']),
    ]


def test_an_object_holding_the_records_under_a_key_skips_the_metadata(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    document = {"total": 2, "meta": {"导出": [1, 2]}, "data": RECORDS, "after": "x"}
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2), encoding="utf-8-sig")
    header, rows = table(path, records_key="data")
    assert header[0] == "当事人名称" and [r[0] for r in rows] == [1, 2]
    with pytest.raises(FileFormatError, match=r"b\.json: the JSON object has no key 'rows'"):
        table(path, records_key="rows")


def test_json_lines_are_numbered_by_line(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"a": "1"}\n\n{"a": "2", "b": "x"}\n', encoding="utf-8")
    assert table(path) == (["a", "b"], [(1, ["1", None]), (3, ["2", "x"])])
    path.write_text('{"a": "1"}\n{"a": \n', encoding="utf-8")
    with pytest.raises(FileFormatError, match=r"c\.json: line 2 is not a JSON object"):
        table(path)


def test_records_split_across_any_read_boundary_are_read_whole(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"n": 3.25, "data": RECORDS * 3}, ensure_ascii=False), encoding="utf-8")
    expected = table(path, records_key="data")
    for size in range(1, 30):
        monkeypatch.setattr(files, "_CHUNK", size)
        assert table(path, records_key="data") == expected, size


@pytest.mark.parametrize(("text", "message"), [
    ('[{"a": 1}, 5]', r"record 2 is not a JSON object but str"),
    ('[{"a": 1}, {"a": ', r"not valid JSON"),
    ("[]", r"holds no records"),
    ('[{"a": 1}', r"array of records is not closed"),
])
def test_broken_json_is_refused_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "e.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FileFormatError, match=rf"e\.json: .*{message}"):
        table(path)


XML = """<?xml version="1.0" encoding="UTF-8"?>
<导出 xmlns="urn:dept"><head><count>2</count></head>
  <list>
    <record id="7"><party_name>甲公司</party_name><fine> 12.50 </fine><addr><city>杭州</city></addr></record>
    <record id="8"><party_name>乙公司</party_name><fine/></record>
  </list>
</导出>
"""


def test_xml_records_take_attributes_children_and_namespaces(tmp_path: Path) -> None:
    path = tmp_path / "a.xml"
    path.write_text(XML, encoding="utf-8")
    assert table(path, record_element="record") == (
        ["id", "party_name", "fine", "addr"],
        [(1, ["7", "甲公司", "12.50", '{"city": "杭州"}']), (2, ["8", "乙公司", None, None])],
    )
    with pytest.raises(FileFormatError, match=r"a\.xml: no <item> records"):
        table(path, record_element="item")


def test_repeated_xml_children_keep_every_value(tmp_path: Path) -> None:
    path = tmp_path / "rep.xml"
    path.write_text("<r><rec><phone>1</phone><phone>2</phone><a><b>x</b><b>y</b></a></rec></r>", encoding="utf-8")
    assert table(path, record_element="rec") == (["phone", "a"], [(1, ['["1", "2"]', '{"b": ["x", "y"]}'])])


def test_xml_declared_as_gb2312_is_read(tmp_path: Path) -> None:
    path = tmp_path / "gb.xml"
    path.write_bytes('<?xml version="1.0" encoding="GB2312"?>\n<r><rec><名称>城管局</名称></rec></r>'.encode("gb2312"))
    assert table(path, record_element="rec") == (["名称"], [(1, ["城管局"])])


HOSTILE = {
    "billion_laughs": '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">'
                      '<!ENTITY c "&b;&b;&b;&b;&b;">]><r><rec><x>&c;</x></rec></r>',
    "xxe_file": '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                "<r><rec><x>&x;</x></rec></r>",
    "external_dtd": '<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r><rec><x>1</x></rec></r>',
    "parameter_entity": '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p">%p;]>'
                        "<r><rec><x>1</x></rec></r>",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_xml_is_refused_before_any_record(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.xml"
    path.write_text(HOSTILE[kind], encoding="utf-8")
    with pytest.raises(FileFormatError, match=rf"{kind}\.xml: XML refused: it declares a DTD"):
        table(path, record_element="rec")


def test_malformed_xml_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.xml"
    path.write_text("<r>\n<rec><x>1</x></rec>\n<rec><x>2</y></rec></r>", encoding="utf-8")
    with pytest.raises(FileFormatError, match=r"bad\.xml: not well-formed XML at line 3, column \d+"):
        table(path, record_element="rec")


def test_a_long_xml_file_is_streamed_not_held_as_a_tree(tmp_path: Path) -> None:
    path = tmp_path / "long.xml.gz"
    count = 60_000
    with gzip.open(path, "wt", encoding="utf-8") as out:  # written compressed, read below uncompressed
        out.write("<r><list>")
        for i in range(count):
            out.write(f"<rec><n>{i}</n><name>单位{i}</name><note>{'备注' * 20}</note></rec>")
        out.write("</list></r>")
    plain = tmp_path / "long.xml"
    with gzip.open(path, "rb") as compressed:
        plain.write_bytes(compressed.read())
    assert plain.stat().st_size > 8_000_000
    tracemalloc.start()
    try:
        sheet = read_xml(plain, record_element="rec")
        rows = 0
        last: tuple[int, list[str | None]] | None = None
        for row in sheet.rows:
            rows += 1
            last = row
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rows == count and last is not None and last[0] == count and last[1][0] == str(count - 1)
    assert peak < 4_000_000, peak  # the whole tree would take well over 50 MB


def _source(**fields: object) -> Source:
    base: dict[str, object] = {"id": "s1", "title": "t", "dataset": "d1", "channel": "inbox",
                               "columns": {"名称": "name"}}
    return Source(**{**base, **fields})


def test_registry_accepts_json_and_xml_with_their_settings() -> None:
    assert _source(format="json", records_key="data").records_key == "data"
    assert _source(format="json").records_key is None
    assert _source(format="xml", record_element="record").record_element == "record"


@pytest.mark.parametrize(("fields", "message"), [
    ({"format": "xml"}, "record_element .* is required for xml"),
    ({"format": "csv", "record_element": "r"}, "record_element only applies to format xml"),
    ({"format": "xlsx", "records_key": "data"}, "records_key only applies to format json"),
    ({"format": "xml", "record_element": "a b"}, "record_element"),
    ({"format": "yaml"}, "format"),
])
def test_registry_refuses_wrong_format_settings(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _source(**fields)
