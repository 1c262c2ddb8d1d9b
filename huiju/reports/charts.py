"""The reports' PNG charts (matplotlib, Agg), their Chinese set in Noto Sans CJK.

The font is Debian's fonts-noto-cjk, which the project installs itself
(``scripts/install_cjk_font.sh``, run by ``make demo`` and the report tests), never assumed: without it
:func:`cjk_font` raises :class:`CJKFontMissing` saying how to install it, rather than drawing every
Chinese label as the missing-glyph box.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from huiju.private_files import private_output
from huiju.reports.statistics import TableResult

CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC")
INSTALL_HINT = "run scripts/install_cjk_font.sh (as root: apt-get install fonts-noto-cjk)"


class CJKFontMissing(RuntimeError):
    """No Noto Sans CJK font is installed: Chinese labels would render as boxes."""


@dataclass(frozen=True)
class ResolvedFont:
    """The font the renderer resolved for Chinese: its family and file."""

    family: str
    path: Path


@functools.cache
def cjk_font() -> ResolvedFont:
    """The Noto Sans CJK face matplotlib finds on this machine (no fallback to a Latin font)."""
    from matplotlib import font_manager  # why: matplotlib is imported only by those who draw

    for family in CJK_FAMILIES:
        try:
            path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
        except ValueError:
            continue
        return ResolvedFont(family, Path(path))
    raise CJKFontMissing(f"no Noto Sans CJK font found for the report charts; {INSTALL_HINT}")


def missing_glyphs(text: Iterable[str], font: ResolvedFont | None = None) -> set[str]:
    """The characters of ``text`` the resolved font has no glyph for (drawn as the missing-glyph box)."""
    from fontTools.ttLib import TTCollection, TTFont  # why: only a check needs the font's tables

    font = font or cjk_font()
    if font.path.suffix.lower() == ".ttc":
        faces = TTCollection(str(font.path)).fonts
        face = next((f for f in faces if f["name"].getBestFamilyName() == font.family), faces[0])
    else:
        face = TTFont(str(font.path))
    cmap = face.getBestCmap()
    return {ch for chunk in text for ch in chunk if not ch.isspace() and ord(ch) not in cmap}


def _pyplot():
    """pyplot on the Agg backend (no display), drawing with the CJK font."""
    import matplotlib  # why: the backend must be chosen before pyplot is first imported, and only charts need it

    matplotlib.use("Agg")
    from matplotlib import pyplot  # why: after matplotlib.use, above

    pyplot.rcParams["font.family"] = [cjk_font().family]
    pyplot.rcParams["axes.unicode_minus"] = False
    return pyplot


def chart_labels(result: TableResult) -> tuple[list[str], dict[str, list[float]]]:
    """The categories (first group column, others joined) and the series a table's chart draws."""
    table = result.table
    chart = table.chart
    assert chart is not None
    groups = len(table.group_by)
    rows = list(result.rows)
    if chart.kind != "line":
        rows = rows[: chart.top]
    categories = ["·".join(str(v) for v in row[:groups]) or table.title for row in rows]
    drawn = chart.measures or (table.measures[0].key,)
    series = {key: [float(row[result.keys.index(key)] or 0) for row in rows] for key in drawn}
    return categories, series


def draw_chart(result: TableResult, path: Path) -> Path:
    """The table's chart as a PNG at ``path`` (0600, written whole)."""
    pyplot = _pyplot()
    chart = result.table.chart
    assert chart is not None
    categories, series = chart_labels(result)
    labels = {m.key: m.label for m in result.table.measures}
    figure, axes = pyplot.subplots(figsize=(8, 4.5), dpi=110)
    try:
        if chart.kind == "pie":
            values = next(iter(series.values()))
            if sum(values) > 0:
                axes.pie(values, labels=categories, autopct="%1.1f%%", startangle=90, counterclock=False)
            axes.axis("equal")
        else:
            positions = range(len(categories))
            width = 0.8 / max(len(series), 1)
            for index, (key, values) in enumerate(series.items()):
                if chart.kind == "line":
                    axes.plot(categories, values, marker="o", label=labels[key])
                else:
                    axes.bar([p + index * width for p in positions], values, width, label=labels[key])
            if chart.kind == "bar":
                axes.set_xticks([p + width * (len(series) - 1) / 2 for p in positions], categories,
                                rotation=30, ha="right")
            axes.legend()
            axes.grid(axis="y", alpha=0.3)
        axes.set_title(chart.title)
        figure.tight_layout()
        with private_output(path) as out:
            figure.savefig(out, format="png")
    finally:
        pyplot.close(figure)
    return path
