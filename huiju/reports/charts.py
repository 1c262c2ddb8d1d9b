"""The reports' PNG charts (matplotlib, Agg), their Chinese set in Noto Sans CJK.

The font is Debian's fonts-noto-cjk, which the project installs itself
(``scripts/install_cjk_font.sh``, run by ``make demo`` and the report tests), never assumed: without it
:func:`cjk_font` raises :class:`CJKFontMissing` saying how to install it, rather than drawing every
Chinese label as the missing-glyph box.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import threading
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
    """The Noto Sans CJK face the charts are set in (no fallback to a Latin font), resolved once a process.

    matplotlib's font list is a cache (``fontlist-*.json``) written the first time it runs: a font installed
    after that (``scripts/install_cjk_font.sh`` on a machine where matplotlib already ran) is not in it, and
    rebuilding it rescans every font of the machine. So the list is asked first, then fontconfig (the
    system's own resolver, which knows the new font), whose file is added to matplotlib's list in memory.
    """
    from matplotlib import font_manager  # why: matplotlib is imported only by those who draw

    for family in CJK_FAMILIES:
        try:
            path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
        except ValueError:
            continue
        return ResolvedFont(family, Path(path))
    for family in CJK_FAMILIES:
        path = _fontconfig_file(family)
        if path is None:
            continue
        font_manager.fontManager.addfont(str(path))  # its first face, under that face's family name
        return ResolvedFont(font_manager.get_font(str(path)).family_name, path)
    raise CJKFontMissing(f"no Noto Sans CJK font found for the report charts; {INSTALL_HINT}")


def _fontconfig_file(family: str) -> Path | None:
    """The file fontconfig resolves ``family`` to, when it is that family (fc-match substitutes otherwise)."""
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None
    found = subprocess.run([fc_match, "-f", "%{family}\t%{file}", family], capture_output=True, text=True,
                           check=False).stdout
    families, _, file = found.partition("\t")
    if family not in families.split(",") or not file:
        return None
    return Path(file)


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


#: Fixed margins (fractions of the figure) instead of ``tight_layout``, which measures every label first
#: (a third of a chart's drawing time in report_monthly's profile): room below for the rotated category
#: labels, above for the title.
MARGINS = {"left": 0.09, "right": 0.98, "bottom": 0.27, "top": 0.91}
#: zlib level of the PNGs: 1 writes them several times faster than matplotlib's default (6) for a few
#: percent more bytes on charts of flat colours.
PNG_COMPRESSION = 1


@functools.cache
def _renderer() -> tuple[type, type]:
    """matplotlib's Figure and Agg canvas, with the CJK font resolved, loaded and set (once a process)."""
    import matplotlib  # why: matplotlib is imported only by those who draw
    from matplotlib import font_manager  # why: as above
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # why: as above
    from matplotlib.figure import Figure  # why: as above

    font = cjk_font()
    font_manager.get_font(str(font.path))  # parsed once here (cached), not inside the first chart's drawing
    matplotlib.rcParams["font.family"] = [font.family]
    matplotlib.rcParams["axes.unicode_minus"] = False
    return Figure, FigureCanvasAgg


@functools.cache
def warm_up_renderer() -> threading.Thread:
    """Start importing matplotlib and loading the CJK font in a thread (once a process); return it.

    A report calls this before it reads the warehouse: the import (the largest part of drawing a report's
    charts, ~1 s of CPU) then runs while the process waits for the warehouse's queries, instead of after.
    Joining the thread is optional: :func:`draw_chart` takes the same cached renderer (importing waits on
    the import lock); an error in the thread is raised again by the first chart.
    """
    thread = threading.Thread(target=_warm_up, name="report-charts-warm-up", daemon=True)
    thread.start()
    return thread


def _warm_up() -> None:
    try:
        _renderer()
    except Exception:
        _renderer.cache_clear()


def _figure():
    """A figure on the Agg canvas, without pyplot (its import and figure manager are not needed to save PNGs)."""
    figure_class, canvas_class = _renderer()
    figure = figure_class(figsize=(8, 4.5), dpi=110)
    canvas_class(figure)
    return figure


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
    chart = result.table.chart
    assert chart is not None
    categories, series = chart_labels(result)
    labels = {m.key: m.label for m in result.table.measures}
    figure = _figure()
    axes = figure.add_subplot()
    if chart.kind == "pie":
        figure.subplots_adjust(left=0.02, right=0.98, bottom=0.04, top=MARGINS["top"])
        values = next(iter(series.values()))
        if sum(values) > 0:
            axes.pie(values, labels=categories, autopct="%1.1f%%", startangle=90, counterclock=False)
        axes.axis("equal")
    else:
        figure.subplots_adjust(**MARGINS)
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
    with private_output(path) as out:
        figure.savefig(out, format="png", pil_kwargs={"compress_level": PNG_COMPRESSION})
    return path
