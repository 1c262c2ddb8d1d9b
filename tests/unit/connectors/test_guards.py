"""Content guards: sniffing by content, zip/gzip bombs rejected before and while decompressing."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import openpyxl
import pytest
from huiju_connectors import guards
from huiju_connectors.guards import (
    ArchiveLimits,
    SheetLimits,
    UnsafeArchive,
    check_archive,
    check_gzip,
    check_sheet_extent,
    open_gzip,
    open_member,
    safe_extract,
    sniff_kind,
)

from tests.support.hostile_corpus import xlsx_bytes

ZEROS_20MB = b"\0" * (20 * 1024 * 1024)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 MB of zeros deflated to ~20 KB: ratio ~1000."""
    path = tmp_path_factory.mktemp("bomb") / "report.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/worksheets/sheet1.xml", ZEROS_20MB)
    return path


# Where a central directory entry declares its member's sizes (4 bytes each, little-endian).
COMPRESSED_SIZE, UNCOMPRESSED_SIZE = 20, 24


def _zip_declaring(path: Path, member: str, size_field: int, declared: int) -> Path:
    """A zip of ZEROS_20MB as ``member`` whose central directory declares ``declared`` bytes in
    ``size_field`` (COMPRESSED_SIZE or UNCOMPRESSED_SIZE) instead of the truth."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, ZEROS_20MB)
    raw = bytearray(path.read_bytes())
    entry = raw.rindex(b"PK\x01\x02")
    raw[entry + size_field : entry + size_field + 4] = declared.to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    return path


def _lying_zip(tmp_path: Path) -> Path:
    """A zip whose central directory under-declares the member's size, ~1000x less than it is."""
    return _zip_declaring(tmp_path / "liar.zip", "data.csv", UNCOMPRESSED_SIZE, len(ZEROS_20MB) // 1000)


def test_zip_bomb_rejected_from_central_directory(bomb: Path) -> None:
    with pytest.raises(UnsafeArchive, match=r"report\.xlsx.*expands"):
        check_archive(bomb, limits=ArchiveLimits(max_ratio=100))


def test_zip_limits_on_total_and_members(bomb: Path, tmp_path: Path) -> None:
    with pytest.raises(UnsafeArchive, match="uncompressed"):
        check_archive(bomb, limits=ArchiveLimits(max_total_uncompressed=10 * 1024 * 1024, max_ratio=10_000))
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(30):
            zf.writestr(f"f{i}.csv", b"a")
    with pytest.raises(UnsafeArchive, match="30 entries"):
        check_archive(many, limits=ArchiveLimits(max_members=20))
    assert len(check_archive(many)) == 30


def test_reasonable_zip_passes_and_extracts(tmp_path: Path) -> None:
    src = tmp_path / "ok.zip"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/b.csv", "名称\n示例\n")
        zf.writestr("c.txt", b"x" * 1000)
    out = tmp_path / "out"
    out.mkdir()
    written = safe_extract(src, out)
    assert sorted(p.relative_to(out.resolve()).as_posix() for p in written) == ["a/b.csv", "c.txt"]
    with open_member(src, "a/b.csv") as fh:
        assert fh.read().decode() == "名称\n示例\n"


def test_inflated_compressed_size_is_refused_while_streaming(tmp_path: Path) -> None:
    # The directory claims 1 MB compressed → 20 MB (ratio 20, passes the cheap check); really it
    # is ~20 KB. Streaming refuses it (ratio, or the compressed stream ending early).
    path = _zip_declaring(tmp_path / "inflated.zip", "xl/worksheets/sheet1.xml", COMPRESSED_SIZE, 1024 * 1024)
    check_archive(path, limits=ArchiveLimits(max_ratio=100))
    with pytest.raises(UnsafeArchive, match=r"inflated\.zip"), open_member(
        path, "xl/worksheets/sheet1.xml", limits=ArchiveLimits(max_ratio=100)
    ) as fh:
        while fh.read(1 << 20):
            pass
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UnsafeArchive, match=r"inflated\.zip"):
        safe_extract(path, out, limits=ArchiveLimits(max_ratio=100))
    assert [p for p in out.rglob("*") if p.is_file()] == []


def test_lying_central_directory_is_caught(tmp_path: Path) -> None:
    liar = _lying_zip(tmp_path)
    check_archive(liar, limits=ArchiveLimits(max_ratio=100))  # the lie passes the cheap check …
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UnsafeArchive, match=r"liar\.zip"):  # … but not the extraction
        safe_extract(liar, out, limits=ArchiveLimits(max_ratio=100))
    assert [p for p in out.rglob("*") if p.is_file()] == []


def test_traversal_members_are_refused(tmp_path: Path) -> None:
    src = tmp_path / "evil.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("ok.csv", b"1")
        zf.writestr("../../escape.csv", b"boom")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UnsafeArchive, match="outside"):
        safe_extract(src, out)
    assert not (tmp_path / "escape.csv").exists()
    assert not (out / "ok.csv").exists()


def test_gzip_bomb_is_capped_while_streaming(tmp_path: Path) -> None:
    path = tmp_path / "data.csv.gz"
    path.write_bytes(gzip.compress(ZEROS_20MB, compresslevel=1))
    with pytest.raises(UnsafeArchive, match=r"data\.csv\.gz"):
        check_gzip(path, max_total_uncompressed=1024 * 1024)
    # Forge the trailer so the cheap check passes; the streaming cap still stops it.
    raw = bytearray(path.read_bytes())
    raw[-4:] = (100).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(UnsafeArchive, match=r"data\.csv\.gz"), \
            open_gzip(path, limits=ArchiveLimits(max_ratio=100)) as fh:
        while fh.read(1 << 20):
            pass
    small = tmp_path / "small.csv.gz"
    small.write_bytes(gzip.compress("名称\n示例\n".encode()))
    with open_gzip(small) as fh:
        assert fh.read().decode() == "名称\n示例\n"


def test_real_xlsx_is_xlsx(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.append(["统一社会信用代码", "名称"])
    path = tmp_path / "real.xlsx"
    wb.save(path)
    assert sniff_kind(path) == "xlsx"
    check_archive(path)


def test_macro_workbook_is_xlsm_even_when_named_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "looks_harmless.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.ms-excel.sheet.macroEnabled.main+xml"/></Types>',
        )
        zf.writestr("xl/workbook.xml", "<workbook/>")
    assert sniff_kind(path) == "xlsm"
    only_vba = tmp_path / "vba.xlsx"
    with zipfile.ZipFile(only_vba, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/vbaProject.bin", b"\x00" * 10)
    assert sniff_kind(only_vba) == "xlsm"


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"<!DOCTYPE html><html><body><table><tr><td>1</td></tr></table></body></html>", "html"),
        (b"\xef\xbb\xbf  <html xmlns:o='urn:schemas-microsoft-com:office:office'>", "html"),
        (b"<table border=1><tr><td>x</td></tr></table>", "html"),
        (b"<?xml version='1.0'?><html xmlns='http://www.w3.org/1999/xhtml'/>", "html"),
        (b"<?xml version='1.0' encoding='GBK'?><records/>", "xml"),
        (b'  {"rows": [1, 2]}', "json"),
        (b'[{"a": 1}]', "json"),
        (bytes.fromhex("D0CF11E0A1B11AE1") + b"\0" * 504, "xls_legacy"),
        (gzip.compress(b"a,b\n", mtime=0), "gzip"),  # mtime=0: the same test id in every xdist worker
        ("名称,代码\n示例,1\n".encode("gb18030"), "csv_or_text"),
        ("名称,代码\n".encode("utf-16"), "csv_or_text"),
        (b"a,b\n1,2\n", "csv_or_text"),
        (b"", "csv_or_text"),
        (b"\x00\x01\x02\x03binary", "unknown"),
    ],
)
def test_sniff_by_content_not_extension(tmp_path: Path, content: bytes, kind: str) -> None:
    path = tmp_path / "upload.xlsx"  # the extension is always a lie here
    path.write_bytes(content)
    assert sniff_kind(path) == kind


def test_plain_zip_and_broken_zip(tmp_path: Path) -> None:
    plain = tmp_path / "plain.xlsx"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("data.csv", "a,b\n")
    plain.write_bytes(buf.getvalue())
    assert sniff_kind(plain) == "zip"
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    assert sniff_kind(broken) == "unknown"
    with pytest.raises(UnsafeArchive, match=r"broken\.xlsx"):
        check_archive(broken)


def test_a_workbook_claiming_a_huge_range_is_refused_before_any_reader(tmp_path: Path) -> None:
    small = tmp_path / "small.xlsx"
    small.write_bytes(xlsx_bytes([["a", "b"], [1, 2]], dimension="A1:B2"))
    check_sheet_extent(small)
    claims = tmp_path / "claims.xlsx"
    claims.write_bytes(xlsx_bytes([["a"]], dimension="A1:XFD1048576"))
    with pytest.raises(UnsafeArchive, match=r"claims.xlsx: worksheet sheet1.xml spans 1048576 rows × 16384 columns"):
        check_sheet_extent(claims)
    wide = tmp_path / "wide.xlsx"
    wide.write_bytes(xlsx_bytes([[f"c{i}" for i in range(30)]]))
    with pytest.raises(UnsafeArchive, match="max_sheet_columns 20"):
        check_sheet_extent(wide, limits=SheetLimits(max_columns=20))


def _sheet(body: str, dimension: str | None = None) -> bytes:
    """A workbook whose first sheet's XML is ``body`` inside ``<sheetData>``, as written by hand."""
    declared = f'<dimension ref="{dimension}"/>' if dimension else ""
    sheet = ('<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
             f"{declared}<sheetData>{body}</sheetData></worksheet>")
    return xlsx_bytes([["a"]], extra_parts={"xl/worksheets/sheet1.xml": sheet.encode()})


FAR = '<row r="1"><c r="A1"><v>1</v></c></row>'


@pytest.mark.parametrize(("body", "dimension"), [
    pytest.param(FAR + "<row r='1048576'><c r = 'XFD1048576'><v>1</v></c></row>", None, id="single-quoted, spaced"),
    pytest.param(FAR + '<row r="9"><c r="xfd1048576"><v>1</v></c></row>', None, id="lower-case letters"),
    pytest.param(FAR + '<row r="9"><c r="AB99999999"><v>1</v></c></row>', None, id="eight-digit row"),
    pytest.param(FAR + '<x:row r="9"><x:c r="XFD1048576"><v>1</v></x:c></x:row>', None, id="prefixed elements"),
    pytest.param(FAR + '<row r="9"><c r="XFD1048576" t=" r=\'A1\'"><v>1</v></c></row>', "A1:A9",
                 id="a decoy r inside another attribute"),
    pytest.param(FAR + '<row r="1048576">' + "<c><v>1</v></c>" * 2000 + "</row>", None,
                 id="cells without r, placed one after the other"),
    pytest.param(FAR + '<row r="9"><c r="XFD1048576"><v>1</v></c></row>', "A1:A1", id="dimension understated"),
])
def test_every_way_of_placing_a_far_cell_is_refused(tmp_path: Path, body: str, dimension: str | None) -> None:
    hostile = tmp_path / "hostile.xlsx"
    hostile.write_bytes(_sheet(body, dimension))
    with pytest.raises(UnsafeArchive, match=r"hostile\.xlsx: worksheet sheet1\.xml spans"):
        check_sheet_extent(hostile)


def test_a_sheet_outside_the_usual_folder_name_is_checked_too(tmp_path: Path) -> None:
    """Calamine finds a sheet wherever the workbook's relationships point under xl/worksheets/, any name, any case."""
    hostile = tmp_path / "hostile.xlsx"
    sheet = f'<worksheet><sheetData>{FAR}<row r="9"><c r="XFD1048576"><v>1</v></c></row></sheetData></worksheet>'
    hostile.write_bytes(xlsx_bytes([["a"]], extra_parts={"xl/Worksheets/data/Big.bin": sheet.encode()}))
    with pytest.raises(UnsafeArchive, match=r"worksheet Big\.bin spans 1048576 rows × 16384 columns"):
        check_sheet_extent(hostile)


@pytest.mark.parametrize(("body", "dimension"), [
    pytest.param("".join(f'<row r="{r}">' + "".join(f'<c r="{c}{r}"><v>1</v></c>' for c in "ABCDEFGHIJKLM")
                         + "</row>" for r in range(1, 200)), "A1:M199", id="as writers write it"),
    pytest.param("".join(f'<row r="{r}">' + "".join(f'<c r="A{c}{r}"><v>1</v></c>' for c in "ABCDE")
                         + "</row>" for r in range(1, 50)), None, id="thirty-one columns"),
    pytest.param('<row><c><v>1</v></c><c t="n"><v>2</v></c></row>' * 50, None, id="cells without r"),
    pytest.param('<row r="1"><c r="A1"><v>1</v></c></row><row r="1048576"><c><v>1</v></c></row>', None,
                 id="a far row one column wide"),
])
def test_honest_sheets_pass_whichever_scan_vouches_for_them(tmp_path: Path, body: str, dimension: str | None) -> None:
    honest = tmp_path / "honest.xlsx"
    honest.write_bytes(_sheet(body, dimension))
    check_sheet_extent(honest)


@pytest.mark.parametrize("write_only", [False, True], ids=["openpyxl", "openpyxl write-only, no dimension"])
def test_a_written_workbook_is_vouched_for_by_the_quick_scan_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   write_only: bool) -> None:
    """The landing's cost: a workbook as writers make it never takes the slower scans."""
    path = tmp_path / "written.xlsx"
    workbook = openpyxl.Workbook(write_only=write_only)
    sheet = workbook.create_sheet() if write_only else workbook.active
    for row in range(2000):
        sheet.append([f"v{row}-{column}" for column in range(13)])
    workbook.save(path)

    def slower(*args: object) -> None:
        raise AssertionError("the quick scan should have vouched for this sheet")

    monkeypatch.setattr(guards, "_reference_scan", slower)
    monkeypatch.setattr(guards, "_exact_scan", slower)
    check_sheet_extent(path)
