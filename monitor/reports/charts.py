"""Charts for the HTML reports: bars, grouped bars and lines, each returned as PNG bytes.

Pure: Series and DataFrames in, PNG bytes out. Figures are built with the
object API (``matplotlib.figure.Figure`` on an Agg canvas), never pyplot, so
no figure outlives its call. The caller names the font family (for Chinese
labels, the one :func:`monitor.io.fonts.use_cjk_font` registers); every
text element of a chart uses it.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

LEVEL_COLORS = {"红色": "#d62728", "橙色": "#ff7f0e", "黄色": "#e3c000"}

DEFAULT_COLOR = "#4c72b0"
NO_DATA = "无数据"

DPI = 100
FIGSIZE = (8.0, 4.0)
EMPTY_FIGSIZE = (6.0, 2.0)
# Horizontal bars grow with the number of categories, so that labels never overlap.
BAR_ROW_INCHES = 0.32
BAR_HEIGHT_BOUNDS = (3.0, 10.0)
BAR_MARGIN_INCHES = 1.2
# Vertical bars with more, or longer, labels than this get slanted tick labels.
UPRIGHT_MAX_BARS = 8
UPRIGHT_MAX_LABEL_CHARS = 4
SLANT_DEGREES = 30
# Value labels on more bars than this would overlap each other.
MAX_LABELLED_BARS = 30
# Non-integral values below this are shown to three decimals (rates, recall), above it to one.
SMALL_VALUE = 10.0
MARKER_STYLES = ("--", ":", "-.")
#: Date ticks on a line chart's x axis at the most.
MAX_DATE_TICKS = 12
#: Axes fraction between the labels of successive markers.
MARKER_LABEL_STEP = 0.07
MARKER_COLOR = "#444444"

# rcParams are process-wide: the lock keeps two threads drawing charts from
# seeing each other's font settings, since tick labels read them at draw time.
_RC_LOCK = threading.Lock()


def _rc(font_family: str) -> dict[str, object]:
    # DejaVu Sans (matplotlib's own) second: matplotlib falls back glyph by glyph along the list.
    return {
        "font.family": [font_family, "DejaVu Sans"],
        "font.size": 10,
        "axes.titlesize": 13,
        "axes.labelsize": 10,
        "legend.fontsize": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": False,
    }


def _render(draw: Callable[[Figure], None], *, font_family: str,
            figsize: tuple[float, float] = FIGSIZE) -> bytes:
    with _RC_LOCK, mpl.rc_context(_rc(font_family)):
        figure = Figure(figsize=figsize, dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        draw(figure)
        buffer = io.BytesIO()
        # No Software entry, so the bytes do not change with the matplotlib version.
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _no_data(title: str, font_family: str) -> bytes:
    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        axes.set_axis_off()
        axes.set_title(title)
        axes.text(0.5, 0.4, NO_DATA, ha="center", va="center", fontsize=14, color="#777777",
                  transform=axes.transAxes)

    return _render(draw, font_family=font_family, figsize=EMPTY_FIGSIZE)


def _tick_text(value: float, _position: object = None) -> str:
    """A tick value with thousands separators and no needless decimals.

    Examples
    --------
    >>> _tick_text(1234567.0), _tick_text(0.25), _tick_text(1500.5)
    ('1,234,567', '0.25', '1,500.5')
    """
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.6g}"


def _value_texts(values: np.ndarray) -> list[str]:
    """Labels for bar ends: counts as integers, rates to three decimals, missing as blank.

    Examples
    --------
    >>> _value_texts(np.array([1200.0, 3.0, np.nan]))
    ['1,200', '3', '']
    >>> _value_texts(np.array([0.5, 0.1234]))
    ['0.500', '0.123']
    """
    present = values[~np.isnan(values)]
    if np.all(np.mod(present, 1) == 0):
        spec = ",.0f"
    elif present.size and np.abs(present).max() < SMALL_VALUE:
        spec = ",.3f"
    else:
        spec = ",.1f"
    return ["" if np.isnan(value) else format(value, spec) for value in values]


def _value_axis(axes: Axes, horizontal: bool) -> None:
    axis = axes.xaxis if horizontal else axes.yaxis
    axis.set_major_formatter(ticker.FuncFormatter(_tick_text))
    axes.grid(axis="x" if horizontal else "y", color="#dddddd", linewidth=0.8)
    axes.set_axisbelow(True)


def _category_axis(axes: Axes, labels: list[str], positions: np.ndarray,
                   horizontal: bool) -> None:
    if horizontal:
        axes.set_yticks(positions, labels)
        # The first category on top, as it reads in a table.
        axes.invert_yaxis()
        return
    slanted = (len(labels) > UPRIGHT_MAX_BARS
               or max((len(label) for label in labels), default=0) > UPRIGHT_MAX_LABEL_CHARS)
    axes.set_xticks(positions, labels, rotation=SLANT_DEGREES if slanted else 0,
                    ha="right" if slanted else "center",
                    rotation_mode="anchor" if slanted else "default")


def _bar_figsize(categories: float, horizontal: bool) -> tuple[float, float]:
    if not horizontal:
        return FIGSIZE
    low, high = BAR_HEIGHT_BOUNDS
    return FIGSIZE[0], float(np.clip(BAR_MARGIN_INCHES + BAR_ROW_INCHES * categories, low, high))


def _labels(index: Iterable[object]) -> list[str]:
    return [str(label) for label in index]


def bar_chart(values: pd.Series, *, title: str, value_label: str, font_family: str,
              colors: dict[str, str] | None = None, horizontal: bool = False) -> bytes:
    """One bar per entry of ``values``, in the given order, as PNG bytes.

    Parameters
    ----------
    values : pandas.Series
        Index = category labels (rule names, counties, levels), values = bar lengths.
    title, value_label : str
        The chart title and the label of the value axis.
    font_family : str
        The font family of every text element (Noto Sans CJK SC for Chinese labels).
    colors : dict of str to str, optional
        Colour per category label, e.g. :data:`LEVEL_COLORS`; others get the default colour.
    horizontal : bool
        Horizontal bars, for long labels or many categories.

    Returns
    -------
    bytes
        A PNG image; a small one saying 无数据 when ``values`` is empty.
    """
    if values.empty:
        return _no_data(title, font_family)
    labels = _labels(values.index)
    palette = colors or {}
    bars = [_Bars(None, values.to_numpy(dtype="float64"),
                  [palette.get(label, DEFAULT_COLOR) for label in labels])]
    return _render(lambda figure: _draw_bars(figure, labels, bars, title, value_label,
                                             horizontal, label_size=8),
                   font_family=font_family, figsize=_bar_figsize(len(labels), horizontal))


def grouped_bar_chart(frame: pd.DataFrame, *, title: str, value_label: str, font_family: str,
                      horizontal: bool = False) -> bytes:
    """A group of bars per row of ``frame``, a bar per column, with a legend, as PNG bytes.

    Parameters
    ----------
    frame : pandas.DataFrame
        Index = categories (one group each, in order); columns = the series compared,
        e.g. 现行 and 候选 for current and candidate parameters.
    title, value_label : str
        The chart title and the label of the value axis.
    font_family : str
        The font family of every text element.
    horizontal : bool
        Horizontal bars, for long category labels.

    Returns
    -------
    bytes
        A PNG image; a small one saying 无数据 when ``frame`` is empty.
    """
    if frame.empty:
        return _no_data(title, font_family)
    labels = _labels(frame.index)
    values = frame.to_numpy(dtype="float64")
    bars = [_Bars(name, values[:, number], f"C{number}")
            for number, name in enumerate(_labels(frame.columns))]
    # A group of bars needs more room than one bar, though less than that many bars alone.
    figsize = _bar_figsize(len(labels) * (1 + (len(bars) - 1) / 2), horizontal)
    return _render(lambda figure: _draw_bars(figure, labels, bars, title, value_label,
                                             horizontal, label_size=7),
                   font_family=font_family, figsize=figsize)


@dataclass(frozen=True)
class _Bars:
    """One series of bars: its legend name (None: no legend), lengths and colour(s)."""

    name: str | None
    lengths: np.ndarray
    color: str | list[str]


def _draw_bars(figure: Figure, labels: list[str], series: list[_Bars], title: str,
               value_label: str, horizontal: bool, label_size: int) -> None:
    """A group of bars per category label, a bar per series side by side; values shown if few."""
    axes = figure.add_subplot()
    positions = np.arange(len(labels))
    plot = axes.barh if horizontal else axes.bar
    width = 0.8 / len(series)
    label_bars = len(labels) * len(series) <= MAX_LABELLED_BARS
    for number, bars in enumerate(series):
        offset = (number - (len(series) - 1) / 2) * width
        drawn = plot(positions + offset, np.nan_to_num(bars.lengths), width, label=bars.name,
                     color=bars.color)
        if label_bars:
            axes.bar_label(drawn, labels=_value_texts(bars.lengths), padding=2,
                           fontsize=label_size)
    if label_bars:
        # Room for the label beyond the longest bar.
        axes.margins(**{"x" if horizontal else "y": 0.1})
    _category_axis(axes, labels, positions, horizontal)
    _value_axis(axes, horizontal)
    (axes.set_xlabel if horizontal else axes.set_ylabel)(value_label)
    axes.set_title(title)
    if any(bars.name is not None for bars in series):
        axes.legend(frameon=False)


def _x_ticks(axes: object, x: pd.Index, is_dates: bool) -> None:
    """Date ticks (all of a few, spaced when many; numeric, not English month names)."""
    if not is_dates:
        axes.xaxis.set_major_formatter(ticker.FuncFormatter(_tick_text))
        return
    # A few dates (monthly backtests): a tick on each; more (a month of runs): spaced.
    if len(x) <= MAX_DATE_TICKS:
        axes.set_xticks(x)
    else:
        axes.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=MAX_DATE_TICKS))
    # Numeric dates: month names would be English in a Chinese report.
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    axes.tick_params(axis="x", labelrotation=30)


def _markers(axes: object, markers: dict[str, float]) -> None:
    """Labelled vertical lines (e.g. the current and the candidate model thresholds)."""
    for number, (label, position) in enumerate(markers.items()):
        axes.axvline(position, color=MARKER_COLOR, linewidth=1.2,
                     linestyle=MARKER_STYLES[number % len(MARKER_STYLES)])
        # x in data units, y in axes units: the label sits at the top whatever the scale.
        # Each label a line lower than the last, so that close markers stay readable.
        axes.text(position, 0.98 - MARKER_LABEL_STEP * number, f" {label}",
                  transform=axes.get_xaxis_transform(),
                  ha="left", va="top", fontsize=9, color=MARKER_COLOR)


def line_chart(frame: pd.DataFrame, *, title: str, x_label: str, value_label: str,
               font_family: str, markers: dict[str, float] | None = None,
               secondary: str | None = None, colors: dict[str, str] | None = None) -> bytes:
    """A line per column of ``frame`` over its index, as PNG bytes.

    Parameters
    ----------
    frame : pandas.DataFrame
        Index = x values (dates or numbers, sorted); one line per column.
    title, x_label, value_label : str
        The chart title and the labels of the x axis and the (left) value axis.
    font_family : str
        The font family of every text element.
    markers : dict of str to float, optional
        Labelled vertical lines, label -> x position in the index's units, e.g. the
        current and the candidate model thresholds on a capacity curve.
    secondary : str, optional
        A column drawn against a right-hand axis labelled with its name (e.g. recall,
        0–1, beside household counts).
    colors : dict of str to str, optional
        Colour per column name, e.g. :data:`LEVEL_COLORS`; others get the default cycle.

    Returns
    -------
    bytes
        A PNG image; a small one saying 无数据 when ``frame`` has no rows or no columns.

    Raises
    ------
    KeyError
        When ``secondary`` is not a column of ``frame``.
    """
    if frame.empty:
        return _no_data(title, font_family)
    if secondary is not None and secondary not in frame.columns:
        raise KeyError(f"secondary column {secondary!r} is not in the frame: "
                       f"{list(frame.columns)}")
    primary = [column for column in frame.columns if column != secondary]
    x = frame.index
    is_dates = isinstance(x, pd.DatetimeIndex)

    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        palette = colors or {}
        handles = [axes.plot(x, frame[column].to_numpy(dtype="float64"), label=str(column),
                             color=palette.get(str(column), f"C{number}"), linewidth=1.8)[0]
                   for number, column in enumerate(primary)]
        _value_axis(axes, horizontal=False)
        _x_ticks(axes, x, is_dates)
        if secondary is not None:
            right = axes.twinx()
            right.spines["right"].set_visible(True)
            handles += right.plot(x, frame[secondary].to_numpy(dtype="float64"),
                                  label=str(secondary), color=f"C{len(primary)}",
                                  linewidth=1.8, linestyle="-")
            right.yaxis.set_major_formatter(ticker.FuncFormatter(_tick_text))
            right.set_ylabel(str(secondary))
        _markers(axes, markers or {})
        axes.set_xlabel(x_label)
        axes.set_ylabel(value_label)
        axes.set_title(title)
        if len(handles) > 1:
            axes.legend(handles=handles, frameon=False, loc="best")

    return _render(draw, font_family=font_family)
