"""A source's Excel template (报送模板), generated from its dataset and column mapping.

The department's own headers in its mapping's order (on the row ``header_row`` says, under a
merged title row when the source expects one), required columns marked in red with a note,
enumerations as in-cell dropdowns (data validation, from a hidden options sheet), numbers
bounded where the dataset bounds them, dates, codes and text as text-format cells (so 18-digit
ID numbers are never turned into 1.23E+17 and dates stay as typed), a prompt on every column,
and a 填报说明 sheet. The data sheet comes first: it is the one landing reads.
"""

from __future__ import annotations

import io
import re

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation

from huiju.registry import Registry, Source
from huiju_portal.fields import SourceField, source_fields

TEMPLATE_ROWS = 1000  # rows formatted and validated below the header
OPTIONS_SHEET = "选项"
GUIDE_SHEET = "填报说明"
HEADER_FILL = PatternFill(fill_type="solid", start_color="FFD9E1F2", end_color="FFD9E1F2")
REQUIRED_FONT = Font(bold=True, color="FFC00000")
_SHEET_UNSAFE = re.compile(r"[\[\]:*?/\\]")


def template_filename(source: Source) -> str:
    """The file name offered for download, e.g. ``环境行政处罚_报送模板.xlsx``."""
    return f"{source.title}_报送模板.xlsx"


def data_sheet_name(registry: Registry, source: Source) -> str:
    """The data sheet's name: the source's ``sheet`` if it names one, else the dataset's title."""
    return _SHEET_UNSAFE.sub("_", source.sheet or registry.dataset_of(source).title)[:31]


def template_workbook(registry: Registry, source: Source) -> bytes:
    """The template of ``source`` as .xlsx bytes."""
    department = registry.departments[source.department]
    fields = source_fields(registry, source)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = data_sheet_name(registry, source)
    last_column = get_column_letter(len(fields))
    header_row = source.header_row
    if header_row > 1:
        sheet["A1"] = f"{department.name}{source.title}报送表"
        sheet["A1"].font = Font(bold=True, size=14)
        sheet["A1"].alignment = Alignment(horizontal="center", vertical="center")
        sheet.merge_cells(f"A1:{last_column}1")
        sheet.row_dimensions[1].height = 28
    options = workbook.create_sheet(OPTIONS_SHEET)
    options.sheet_state = "hidden"
    first, last = header_row + 1, header_row + TEMPLATE_ROWS
    for index, field in enumerate(fields, start=1):
        letter = get_column_letter(index)
        cell = sheet.cell(row=header_row, column=index, value=field.header)
        cell.fill = HEADER_FILL
        cell.font = REQUIRED_FONT if field.required else Font(bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.comment = Comment("。".join(filter(None, ["必填" if field.required else "选填", field.hint])), "汇聚平台")
        sheet.column_dimensions[letter].width = max(14, min(40, len(field.header) * 2 + 6))
        cells = f"{letter}{first}:{letter}{last}"
        if field.as_text:
            for row in range(first, last + 1):
                sheet.cell(row=row, column=index).number_format = "@"
        validation = _validation(field, options, index, cells)
        if validation is not None:
            sheet.add_data_validation(validation)
    sheet.freeze_panes = sheet.cell(row=header_row + 1, column=1)
    _guide(workbook.create_sheet(GUIDE_SHEET), registry, source, fields)
    workbook.properties.creator = "汇聚平台"
    workbook.properties.title = f"{source.title}报送模板"
    workbook.move_sheet(GUIDE_SHEET, offset=-1)  # data sheet, 填报说明, then the hidden options
    workbook.active = 0
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _validation(field: SourceField, options, column: int, cells: str) -> DataValidation | None:
    prompt = "；".join(filter(None, ["必填" if field.required else "选填", field.hint]))[:250]
    if field.options:
        letter = get_column_letter(column)
        options.cell(row=1, column=column, value=field.header)
        for row, value in enumerate(field.options, start=2):
            options.cell(row=row, column=column, value=value)
        source = f"{quote_sheetname(OPTIONS_SHEET)}!${letter}$2:${letter}${len(field.options) + 1}"
        # Several values in one cell (以“;”分隔) cannot be picked from a list: offer it, do not insist.
        strict = field.separator is None
        validation = DataValidation(type="list", formula1=source, allow_blank=True, showErrorMessage=strict,
                                    errorTitle="不在规定范围", error=f"「{field.header}」请从下拉列表中选择")
    elif field.input == "number":
        low = field.field.min if field.field.min is not None else -1e15
        high = field.field.max if field.field.max is not None else 1e15
        validation = DataValidation(type="decimal", operator="between", formula1=f"{low:g}", formula2=f"{high:g}",
                                    allow_blank=True, showErrorMessage=True, errorTitle="不是有效数字",
                                    error=f"「{field.header}」应为数字（{low:g}至{high:g}）")
    else:
        validation = DataValidation(allow_blank=True)
    validation.showInputMessage = True
    validation.promptTitle = field.header[:32]
    validation.prompt = prompt
    validation.add(cells)
    return validation


def _guide(sheet, registry: Registry, source: Source, fields: list[SourceField]) -> None:
    department = registry.departments[source.department]
    dataset = registry.dataset_of(source)
    sheet["A1"] = f"{source.title}报送模板 · 填报说明"
    sheet["A1"].font = Font(bold=True, size=14)
    lines = [
        f"报送单位：{department.name}；数据项：{source.title}（{dataset.title}）。",
        f"在「{data_sheet_name(registry, source)}」表中从第{source.header_row + 1}行起每行填写一条记录；"
        "请勿修改、删除或移动表头" + ("和标题行" if source.header_row > 1 else "") + "，也不要新增工作表。",
        "红色表头为必填项；有下拉列表的列请从列表中选择；日期按2026-03-05格式填写。",
        "统一社会信用代码、身份证号码等代码列已设为文本格式，请勿改为数字格式，否则号码后几位会丢失。",
        "请保存为Excel工作簿（.xlsx）后在汇聚平台部门门户上传；不接收含宏的工作簿（.xlsm）和旧版 .xls 文件。",
        "上传后平台立即校验，结果和问题数据反馈表可在门户的「报送记录」中查看和下载。",
    ]
    for row, text in enumerate(lines, start=3):
        sheet.cell(row=row, column=1, value=f"{row - 2}. {text}")
    start = len(lines) + 5
    for column, title in enumerate(("列名", "是否必填", "填写要求"), start=1):
        cell = sheet.cell(row=start, column=column, value=title)
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
    for row, field in enumerate(fields, start=start + 1):
        sheet.cell(row=row, column=1, value=field.header).font = REQUIRED_FONT if field.required else Font()
        sheet.cell(row=row, column=2, value="必填" if field.required else "选填")
        sheet.cell(row=row, column=3, value=field.hint or "—").alignment = Alignment(wrap_text=True)
    sheet.column_dimensions["A"].width = 30
    sheet.column_dimensions["B"].width = 10
    sheet.column_dimensions["C"].width = 90
