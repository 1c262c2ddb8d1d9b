"""Parsing XML that came from outside the platform, safely.

Every XML document the platform parses outside zeep (XML file drops, SOAP payloads inspected
by hand, push receipts …) goes through :func:`parse_xml`. It refuses any document type
declaration (DTD), entity declaration or external reference, so XXE (reading local files or
reaching internal hosts) and entity-expansion bombs ("billion laughs") are rejected before
anything is expanded or fetched. Government data exchange formats never need a DTD, so
refusing all of them costs nothing and keeps the rule simple.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import defusedxml
import defusedxml.ElementTree as DET

__all__ = ["DEFAULT_MAX_BYTES", "MalformedXml", "UnsafeXml", "XmlError", "parse_xml"]

#: Larger documents are refused: a drop that big should come as a file, not one in-memory tree.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


#: Encodings expat decodes itself; any other declared encoding is decoded in Python first.
_EXPAT_ENCODINGS = {
    "utf-8", "utf8", "utf-16", "utf16", "iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii",
}
#: GB2312 and GBK are subsets of GB18030; departments declare "GBK" yet emit GB18030-only characters.
_GB_SUPERSET = {"gbk": "gb18030", "gb2312": "gb18030", "cp936": "gb18030"}
_DECLARATION = re.compile(
    rb"""^(\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["'][^>]*\?>"""
)


def _decode_if_needed(data: bytes | str) -> bytes | str:
    """Decode documents in encodings expat lacks (GBK, GB18030, Big5 …) and drop their declaration.

    expat only knows single-byte encodings and UTF-8/16; Chinese government XML is often GBK.
    """
    if isinstance(data, str):
        return data
    match = _DECLARATION.match(data[:512])
    if match is None:
        return data
    declared = match.group(2).decode("ascii").lower()
    if declared in _EXPAT_ENCODINGS:
        return data
    codec = _GB_SUPERSET.get(declared, declared)
    try:
        text = data[match.end():].decode(codec)
    except LookupError:
        raise MalformedXml(f"unknown XML encoding {declared!r}") from None
    except UnicodeDecodeError as exc:
        raise MalformedXml(f"XML document is not valid {declared}: {exc}") from None
    return '<?xml version="1.0"?>' + text


class XmlError(ValueError):
    """Base class: an XML document the platform will not accept."""


class UnsafeXml(XmlError):
    """The document contains a DTD, an entity declaration or an external reference, or is too large."""


class MalformedXml(XmlError):
    """The document is not well-formed XML."""


def parse_xml(data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES, source: str = "") -> ET.Element:
    """Parse ``data`` and return the root element, refusing anything hostile.

    DTDs, entity declarations and external references are all forbidden (defusedxml with
    ``forbid_dtd``, ``forbid_entities`` and ``forbid_external``). ``source`` names where the
    document came from, for the error message only.

    Raises:
        UnsafeXml: the document has a DTD / entities / external references, or exceeds ``max_bytes``.
        MalformedXml: the document is not well-formed.
    """
    where = f" from {source}" if source else ""
    if len(data) > max_bytes:
        raise UnsafeXml(f"XML document{where} refused: {len(data)} bytes is over the limit of {max_bytes}")
    try:
        data = _decode_if_needed(data)
        return DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden as exc:
        # DTDs are where XXE and entity bombs live; no legitimate exchange format here uses one.
        raise UnsafeXml(
            f"XML document{where} refused: it declares a DTD (<!DOCTYPE {exc.name}>), "
            "which may hide XXE or entity-expansion attacks"
        ) from None
    except defusedxml.EntitiesForbidden as exc:
        raise UnsafeXml(f"XML document{where} refused: it declares the entity {exc.name!r}") from None
    except defusedxml.ExternalReferenceForbidden as exc:
        raise UnsafeXml(
            f"XML document{where} refused: it references the external resource {exc.sysid!r}"
        ) from None
    except defusedxml.DefusedXmlException as exc:  # any other defusedxml refusal
        raise UnsafeXml(f"XML document{where} refused: {exc}") from None
    except ET.ParseError as exc:
        raise MalformedXml(f"XML document{where} is not well-formed: {exc}") from None
    except MalformedXml as exc:
        raise MalformedXml(f"XML document{where}: {exc}") from None
