"""A report as an Excel workbook (XlsxWriter): a summary sheet a leader reads first, then one sheet per
table with its rows and a native Excel chart over them, and the 报送考核 通报 when the report has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import xlsxwriter

from huiju.monitoring.scorecards import Ranked, percent
from huiju.private_files import private_output
from huiju.reports.config import Report
from huiju.reports.statistics import BEIJING, Period, TableResult

SUMMARY_SHEET = "摘要"
SCORECARD_SHEET = "报送考核通报"
METHOD_NOTE = ("口径：处罚、许可按决定日期所在月份统计；区县按统一社会信用代码或身份证号码的行政区划部分，"
               "按全国行政区划代码（GB/T 2260）识别，无法识别的列为“未知地区”；"
               "行业按当事人企业登记的国民经济行业分类（GB/T 4754-2017）门类统计，自然人不分行业；"
               "报送部门为报送数据的部门。报告不含任何身份证号码、手机号码。")
_FORBIDDEN = str.maketrans({c: "_" for c in "[]:*?/\\"})


@dataclass(frozen=True)
class WorkbookContent:
    """What a report's workbook shows."""

    report: Report
    period: Period
    as_of: datetime
    tables: list[TableResult]
    ranking: list[tuple[int, str, Ranked]] | None = None  # (rank, department name, entry)


def sheet_name(title: str) -> str:
    """A table's title as an Excel sheet name (31 characters, none of []:*?/\\)."""
    return title.translate(_FORBIDDEN)[:31]


def highlight_values(content: WorkbookContent) -> list[tuple[str, object]]:
    """The summary's figures: (label, value) in the report's order."""
    by_id = {result.table.id: result for result in content.tables}
    return [(h.label, by_id[h.table].totals.get(h.measure)) for h in content.report.summary]


def write_workbook(content: WorkbookContent, path: Path) -> Path:
    """Write the workbook to ``path`` (0600, whole or not at all); return ``path``."""
    with private_output(path) as out:
        book = xlsxwriter.Workbook(out, {"in_memory": True})
        # Fixed metadata: a workbook rebuilt for the same period differs only where its numbers do.
        book.set_properties({"title": f"{content.report.title}（{content.period.label}）", "author": "汇聚平台",
                             "created": content.as_of.astimezone(BEIJING).replace(tzinfo=None)})
        _write(book, content)
        book.close()
    return path


def _write(book: xlsxwriter.Workbook, content: WorkbookContent) -> None:
    title = book.add_format({"bold": True, "font_size": 16})
    bold = book.add_format({"bold": True})
    header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
    number = book.add_format({"num_format": "#,##0", "border": 1})
    amount = book.add_format({"num_format": "#,##0.00", "border": 1})
    rate = book.add_format({"num_format": "0.0%", "border": 1})
    text = book.add_format({"border": 1})
    note = book.add_format({"font_color": "#595959", "text_wrap": True})

    def value_format(key: str, value: object):
        if key.count("_per_"):
            return rate
        return amount if (isinstance(value, float) and not value.is_integer()) or key.endswith("_wan") else number

    report, period = content.report, content.period
    summary = book.add_worksheet(SUMMARY_SHEET)
    summary.set_column(0, 0, 34)
    summary.set_column(1, 1, 22)
    summary.write(0, 0, f"{report.title}（{period.label}）", title)
    as_of = content.as_of.astimezone(BEIJING)
    summary.write(1, 0, f"数据截至：{as_of:%Y-%m-%d %H:%M}（北京时间），以此时已发布的数据为准；重新生成结果不变。",
                  note)
    summary.write(3, 0, "主要指标", bold)
    row = 4
    for label, value in highlight_values(content):
        summary.write(row, 0, label, text)
        key = next((h.measure for h in report.summary if h.label == label), "")
        summary.write(row, 1, value if value is not None else "—", value_format(key, value))
        row += 1
    row += 1
    summary.write(row, 0, "各分表", bold)
    row += 1
    for result in content.tables:
        name = sheet_name(result.table.title)
        summary.write_url(row, 0, f"internal:'{name}'!A1", string=result.table.title)
        summary.write(row, 1, f"{len(result.rows)} 行")
        row += 1
    if content.ranking is not None:
        summary.write_url(row, 0, f"internal:'{SCORECARD_SHEET}'!A1", string="报送考核通报（部门排名）")
        row += 1
    summary.write(row + 1, 0, METHOD_NOTE, note)
    summary.activate()

    for result in content.tables:
        sheet = book.add_worksheet(sheet_name(result.table.title))
        sheet.write(0, 0, f"{result.table.title}（{period.label}）", bold)
        sheet.set_column(0, len(result.headers) - 1, 16)
        for column, heading in enumerate(result.headers):
            sheet.write(2, column, heading, header)
        for offset, values in enumerate(result.rows):
            for column, (key, value) in enumerate(zip(result.keys, values, strict=True)):
                if column < len(result.table.group_by):
                    sheet.write(3 + offset, column, "" if value is None else str(value), text)
                else:
                    sheet.write(3 + offset, column, value, value_format(key, value))
        if result.table.chart is not None and result.rows:
            sheet.insert_chart(2, len(result.headers) + 1, _chart(book, sheet.name, result))

    if content.ranking is not None:
        sheet = book.add_worksheet(SCORECARD_SHEET)
        sheet.write(0, 0, f"{period.label} 数据报送情况通报", bold)
        headings = ("排名", "单位", "应报", "已报", "及时率", "完整率", "合格率", "整改率", "得分")
        sheet.set_column(0, len(headings) - 1, 12)
        for column, heading in enumerate(headings):
            sheet.write(2, column, heading, header)
        for offset, (rank, name, entry) in enumerate(content.ranking):
            card = entry.card
            cells = (rank, name, card.periods_due, card.periods_delivered, percent(card.timeliness),
                     percent(card.completeness), percent(card.quality), percent(card.correction),
                     "—" if card.score is None else round(card.score, 1))
            for column, value in enumerate(cells):
                sheet.write(3 + offset, column, value, text)


def _chart(book: xlsxwriter.Workbook, sheet: str, result: TableResult):
    chart_config = result.table.chart
    assert chart_config is not None
    kind = {"bar": "column", "line": "line", "pie": "pie"}[chart_config.kind]
    chart = book.add_chart({"type": kind})
    rows = len(result.rows) if chart_config.kind == "line" else min(len(result.rows), chart_config.top)
    first, last = 3, 3 + rows - 1
    drawn = chart_config.measures or (result.table.measures[0].key,)
    for key in drawn:
        column = result.keys.index(key)
        chart.add_series({
            "name": [sheet, 2, column],
            "categories": [sheet, first, 0, last, 0],
            "values": [sheet, first, column, last, column],
        })
    chart.set_title({"name": chart_config.title})
    chart.set_size({"width": 640, "height": 360})
    if chart_config.kind != "pie":
        chart.set_legend({"position": "bottom"})
    return chart
