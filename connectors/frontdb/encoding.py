"""Text in a wrongly declared encoding: GBK bytes stored in a column declared latin1."""

from __future__ import annotations


def _latin1_bytes(value: str) -> bytes | None:
    """The bytes a latin1 column held, recovered from the text the driver decoded.

    MySQL's ``latin1`` is really cp1252 (0x80-0x9F are €, ‚ …), PostgreSQL's is ISO 8859-1, so
    both mappings are undone; a character neither can produce means the text was not latin1.
    """
    out = bytearray()
    for ch in value:
        code = ord(ch)
        if code < 0x100:
            out.append(code)
            continue
        try:
            out += ch.encode("cp1252")
        except UnicodeEncodeError:
            return None
    return bytes(out)


def gbk_mojibake(value: str) -> str | None:
    """The Chinese text hidden in ``value`` if it is GBK bytes read as latin1, else None.

    GBK bytes in a column declared latin1 come back as accented Latin garbage (``ÐÐÕþ´¦·£``).
    Encoded back to latin1 they are valid GBK with at least one two-byte character; genuine
    Latin text (``café``) almost never is, because a GBK lead byte needs a trail byte.
    """
    if value.isascii() or max(value) > "\u2122":  # real CJK text, or pure ASCII: nothing to undo
        return None
    raw = _latin1_bytes(value)
    if raw is None:
        return None
    try:
        decoded = raw.decode("gbk")
    except UnicodeDecodeError:
        return None
    # Latin text can decode as GBK by accident ("Müller": ü + l is a rare GBK-extension
    # character); real Chinese is mostly in the GB2312 core, so require its characters to dominate.
    common = rare = 0
    for ch in decoded:
        if ch.isascii():
            continue
        try:
            ch.encode("gb2312")
            common += 1
        except UnicodeEncodeError:
            rare += 1
    return decoded if common and common >= rare else None
