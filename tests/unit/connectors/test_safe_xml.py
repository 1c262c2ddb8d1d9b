"""safe_xml refuses DTDs, entities and external references; parses ordinary documents."""

from __future__ import annotations

import time

import pytest
from huiju_connectors.safe_xml import MalformedXml, UnsafeXml, XmlError, parse_xml

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{(f"&lol{i - 1};" if i > 1 else "&lol;") * 10}">'.encode() for i in range(1, 10)
    )
    + b"]><lolz>&lol9;</lolz>"
)


def test_ordinary_document_parses_including_chinese_text() -> None:
    root = parse_xml('<?xml version="1.0" encoding="UTF-8"?><r><名称>市场监督管理局</名称></r>'.encode())
    assert root.tag == "r" and root.findtext("名称") == "市场监督管理局"


@pytest.mark.parametrize("declared", ["GBK", "gb2312", "GB18030"])
def test_gb_encoded_documents_parse(declared: str) -> None:
    # expat cannot decode GBK itself; government XML drops are often GBK, sometimes with GB18030-only chars.
    data = f'<?xml version="1.0" encoding="{declared}"?><r a="江北">公安局</r>'.encode("gb18030")
    root = parse_xml(data)
    assert root.text == "公安局" and root.get("a") == "江北"


def test_gbk_document_with_dtd_is_still_refused() -> None:
    data = '<?xml version="1.0" encoding="GBK"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    with pytest.raises(UnsafeXml):
        parse_xml(data.encode("gbk"))


def test_wrongly_encoded_document_is_malformed() -> None:
    with pytest.raises(MalformedXml, match="gbk"):
        parse_xml(b'<?xml version="1.0" encoding="GBK"?><r>\xff\xff\xff</r>')


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', id="xxe"),
        pytest.param(BILLION_LAUGHS, id="billion-laughs"),
        pytest.param(b'<!DOCTYPE x SYSTEM "http://127.0.0.1:9/evil.dtd"><x/>', id="external-dtd"),
        pytest.param(b'<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p">%p;]><x/>', id="parameter-entity"),
        pytest.param(b"<!DOCTYPE x><x/>", id="bare-doctype"),
    ],
)
def test_hostile_documents_are_refused_quickly(data: bytes) -> None:
    started = time.monotonic()
    with pytest.raises(UnsafeXml, match="refused") as err:
        parse_xml(data, source="ftp://gaj/drop.xml")
    assert "ftp://gaj/drop.xml" in str(err.value)
    assert time.monotonic() - started < 1.0


def test_malformed_is_distinguished_from_unsafe() -> None:
    with pytest.raises(MalformedXml, match="not well-formed"):
        parse_xml(b"<a><b></a>")
    assert issubclass(MalformedXml, XmlError) and issubclass(UnsafeXml, ValueError)


def test_oversized_document_is_refused_before_parsing() -> None:
    with pytest.raises(UnsafeXml, match="over the limit"):
        parse_xml(b"<a>" + b"x" * 2000 + b"</a>", max_bytes=1000)
