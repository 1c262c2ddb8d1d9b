"""Template footers: which rows below a table are its footer, in a stream and at the end of a CSV file."""

from __future__ import annotations

from pathlib import Path

import pytest
from huiju_connectors.footers import FooterRule, FooterSplitter, csv_footer, footer_text

RULE = FooterRule()


@pytest.mark.parametrize(("cells", "kind"), [
    (["填表人：张三", "", "审核人：李四"], "label"),
    (["填 表 人:", "张三"], "label"),
    (["", "备注"], "label"),
    (["填报单位（盖章）：示范市生态环境局"], "label"),
    (["说明书印刷厂", "91330000MA27XXXX0X"], "data"),  # a name starting with a label is no label
    (["备注有限公司", "x"], "data"),
    (["1、罚款金额单位为万元", None, ""], "note"),
    (["", None, "  "], "blank"),
])
def test_rows_are_told_apart(cells: list[str | None], kind: str) -> None:
    assert RULE.kind(cells) == kind


def _rows(*lines: list[str]) -> list[tuple[int, list[str]]]:
    return list(enumerate(lines, start=2))


def test_the_trailing_footer_is_split_off_a_stream() -> None:
    rows = _rows(["a", "b"], ["c", "d"], ["", ""], ["填表人：张三", "审核人：李四"], ["备注：", ""],
                 ["1、说明文字", ""])
    splitter = FooterSplitter(rows, RULE)
    assert [n for n, _ in splitter] == [2, 3]
    assert [n for n, _ in splitter.footer] == [4, 5, 6, 7]
    assert footer_text(splitter.footer) == "填表人：张三 审核人：李四 | 备注： | 1、说明文字"


def test_a_label_followed_by_a_record_is_data() -> None:
    rows = _rows(["a", "b"], ["备注：补录", ""], ["1、x", ""], ["c", "d"], ["", ""])
    splitter = FooterSplitter(rows, RULE)
    assert [n for n, _ in splitter] == [2, 3, 4, 5, 6]
    assert splitter.footer == []


def test_a_footer_longer_than_max_rows_is_data() -> None:
    rows = _rows(["a", "b"], ["备注：", ""], *([[f"{i}、x", ""] for i in range(5)]))
    splitter = FooterSplitter(rows, FooterRule(max_rows=3))
    assert len(list(splitter)) == 7 and splitter.footer == []
    splitter = FooterSplitter(rows, FooterRule(max_rows=6))
    assert len(list(splitter)) == 1 and len(splitter.footer) == 6


def test_custom_labels_replace_the_default() -> None:
    rule = FooterRule(labels=("经办人",))
    assert rule.kind(["经办人：赵六"]) == "label" and rule.kind(["填表人：张三"]) == "note"


def test_a_csv_footer_is_found_from_the_tail_of_the_file(tmp_path: Path) -> None:
    body = "表头1,表头2\n" + "".join(f"值{i},x\n" for i in range(20_000)) + ",\n填表人：张三,联系电话：0571\n注：无\n"
    path = tmp_path / "f.csv"
    path.write_bytes(body.encode("gb18030"))
    header_end = len("表头1,表头2\n".encode("gb18030"))
    found = csv_footer(path, data_offset=header_end, encoding="gb18030", delimiter=",", rule=RULE, tail_bytes=4096)
    assert found is not None
    offset, lines = found
    assert path.read_bytes()[offset:].decode("gb18030") == ",\n填表人：张三,联系电话：0571\n注：无\n"
    assert lines == [["", ""], ["填表人：张三", "联系电话：0571"], ["注：无"]]
    plain = tmp_path / "plain.csv"
    plain.write_text("a,b\n1,2\n3,4\n", encoding="utf-8")
    assert csv_footer(plain, data_offset=4, encoding="utf-8-sig", delimiter=",", rule=RULE) is None
