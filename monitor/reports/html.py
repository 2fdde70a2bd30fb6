"""Self-contained HTML reports for analysts and operators: sections of text, charts and tables.

Pure: titles, text, PNG bytes and DataFrames in, one HTML string out. The
page links nothing outside itself (charts are data: URLs, the CSS is
inline, there is no script), so it opens by double-click on Windows or
Linux and can be mailed as one file. Given the bytes of a CJK font, the page
embeds a subset of it holding the characters it shows (and the printable
ASCII, so that a night's dates do not change it), so Chinese
renders even on a machine without a Chinese font. The same input always
gives the same bytes.
"""

from __future__ import annotations

import base64
import functools
import html
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pandas as pd

MISSING = "—"
NO_ROWS = "无数据"
CONTENTS = "目录"
EMBEDDED_FAMILY = "ReportCJK"
# Fonts a reader's machine most likely has, after the embedded subset.
SYSTEM_FAMILIES = '"Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", sans-serif'


@dataclass
class Section:
    """One titled part of a report, shown in this order: paragraphs, charts, tables, note.

    Attributes
    ----------
    title : str
        The heading, also listed in the table of contents.
    paragraphs : list of str
        Plain text, one paragraph each (escaped, never read as HTML).
    charts : list of (str, bytes)
        Caption and PNG bytes; the caption is also the image's alt text.
    tables : list of (str, pandas.DataFrame)
        Caption and table. A meaningful index (anything but the default 0..n-1)
        is shown as leading columns.
    note : str, optional
        A remark set apart after the rest (caveats, sources).
    """

    title: str
    paragraphs: list[str] = field(default_factory=list)
    charts: list[tuple[str, bytes]] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    note: str | None = None


def readable_table(frame: pd.DataFrame, headers: dict[str, str],
                   values: dict[str, dict] | None = None) -> pd.DataFrame:
    """A table as a report shows it: dates as text, yes/no as 是/否, codes named, headers renamed.

    ``values`` maps a column to the names of its codes (e.g. ``side``: 现行参数).

    Examples
    --------
    >>> readable_table(pd.DataFrame({"ok": [True], "side": ["current"]}), {"ok": "是否"},
    ...                {"side": {"current": "现行"}}).to_dict("records")
    [{'是否': '是', 'side': '现行'}]
    """
    shown = frame.reset_index(drop=True)
    for column in shown.columns:
        if pd.api.types.is_datetime64_any_dtype(shown[column]):
            shown[column] = shown[column].dt.strftime("%Y-%m-%d")
    for column in shown.select_dtypes(include="bool").columns:
        shown[column] = shown[column].map({True: "是", False: "否"})
    for column, names in (values or {}).items():
        if column in shown.columns:
            shown[column] = shown[column].map(names)
    return shown.rename(columns=headers)


def subset_font(font: bytes, text: str) -> bytes:
    """A font cut down to the glyphs of the characters in ``text``, as WOFF (1) bytes.

    ``font`` is an OpenType or TrueType font. Layout features are kept for the
    glyphs kept, and the file's timestamp is not touched, so the same font and
    text always give the same bytes. WOFF 1 is zlib-compressed and needs no
    library beyond fontTools; every current browser reads it.
    """
    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.flavor = "woff"
    # recalcTimestamp=False: saving would otherwise stamp head.modified with the current time.
    # recalcBBoxes=False: the font's own bounding boxes are kept (a little larger than the
    # subset needs, which no browser minds), not worked out again from every outline: that
    # took half of a small night's report.
    loaded = TTFont(io.BytesIO(font), recalcTimestamp=False, recalcBBoxes=False)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(loaded)
    loaded.flavor = options.flavor
    buffer = io.BytesIO()
    loaded.save(buffer)
    return buffer.getvalue()


class _TextCollector(HTMLParser):
    """Every character a browser may draw from a piece of HTML: its text and its alt texts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parts.extend(value or "" for name, value in attrs if name == "alt")


#: Kept in every subset whatever the page shows: dates and counts change every night, and
#: with them the digits shown; a subset that depends only on the Chinese a page shows is
#: the same from one night to the next (and can be kept, see monitor.io.fonts.FontSubsets).
ALWAYS_IN_SUBSET = "".join(chr(code) for code in range(0x20, 0x7F))


def _page_text(body: str) -> str:
    """Every character the page shows and the printable ASCII, once each, sorted.

    (The font subset's key.)
    """
    collector = _TextCollector()
    collector.feed(body)
    collector.close()
    return "".join(sorted(set("".join(collector.parts)) | set(ALWAYS_IN_SUBSET)))


def _escape(text: pd.Series) -> pd.Series:
    """``html.escape`` over a column of strings, without a Python call per cell."""
    return (text.str.replace("&", "&amp;", regex=False)
            .str.replace("<", "&lt;", regex=False)
            .str.replace(">", "&gt;", regex=False)
            .str.replace('"', "&quot;", regex=False))


def _cell_text(column: pd.Series) -> tuple[pd.Series, bool]:
    """The escaped text of a column's cells, and whether the column is numeric.

    Examples
    --------
    >>> _cell_text(pd.Series([1234.5678, float("nan")]))[0].tolist()
    ['1,234.568', '—']
    >>> _cell_text(pd.Series(["<b>", None]))[0].tolist()
    ['&lt;b&gt;', '—']
    >>> _cell_text(pd.Series([1234, None], dtype="Int64"))[0].tolist()
    ['1,234', '—']
    """
    column = column.reset_index(drop=True)
    # As plain objects: a nullable integer column (Int64) cannot hold the formatted text.
    present = column[column.notna().to_numpy(dtype=bool)].astype(object)
    dtype = column.dtype
    numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    if numeric and pd.api.types.is_integer_dtype(dtype):
        text = present.map("{:,}".format)
    elif numeric:
        text = present.map("{:,.3f}".format)
    else:
        text = _escape(present.astype(str))
    return text.reindex(column.index, fill_value=MISSING).astype(object), numeric


def _header_text(name: object) -> str:
    if isinstance(name, tuple):
        name = " / ".join(str(part) for part in name)
    return html.escape(str(name))


def _shown_frame(frame: pd.DataFrame) -> pd.DataFrame:
    index = frame.index
    is_default = (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
                  and index.name is None)
    if is_default:
        return frame
    if index.nlevels == 1 and index.name is None:
        return frame.rename_axis("").reset_index()
    return frame.reset_index()


def _table_html(caption: str, frame: pd.DataFrame, max_rows: int) -> str:
    shown = _shown_frame(frame)
    head = shown.head(max_rows)
    header_cells, rows = [], pd.Series("<tr>", index=range(len(head)), dtype=object)
    # Column by column: the cost is a few vectorised string operations per column, whatever
    # the number of rows.
    for position in range(shown.shape[1]):
        text, numeric = _cell_text(head.iloc[:, position])
        cell_class = ' class="num"' if numeric else ""
        header_cells.append(f"<th{cell_class}>{_header_text(shown.columns[position])}</th>")
        rows = rows + f"<td{cell_class}>" + text + "</td>"
    if head.empty:
        body = f'<tr><td class="empty" colspan="{max(1, shown.shape[1])}">{NO_ROWS}</td></tr>'
    else:
        body = "\n".join(rows + "</tr>")
    parts = [
        '<div class="table-wrap">',
        "<table>",
        f"<caption>{html.escape(caption)}</caption>",
        f"<thead><tr>{''.join(header_cells)}</tr></thead>",
        f"<tbody>\n{body}\n</tbody>",
        "</table>",
        "</div>",
    ]
    hidden = len(shown) - len(head)
    if hidden > 0:
        parts.append(f'<p class="more">仅显示前 {len(head):,} 行；另有 {hidden:,} 行未显示，'
                     "完整表格见报告旁的 CSV/Parquet 文件。</p>")
    return "\n".join(parts)


def _chart_html(caption: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    alt = html.escape(caption)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">'
            f"<figcaption>{alt}</figcaption></figure>")


def _section_html(number: int, section: Section, max_rows: int) -> str:
    parts = [f'<section id="s{number}">', f"<h2>{html.escape(section.title)}</h2>"]
    parts += [f"<p>{html.escape(paragraph)}</p>" for paragraph in section.paragraphs]
    parts += [_chart_html(caption, png) for caption, png in section.charts]
    parts += [_table_html(caption, frame, max_rows) for caption, frame in section.tables]
    if section.note:
        parts.append(f'<p class="note">{html.escape(section.note)}</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _contents_html(sections: list[Section]) -> str:
    items = "\n".join(f'<li><a href="#s{number}">{html.escape(section.title)}</a></li>'
                      for number, section in enumerate(sections, start=1))
    return f'<nav class="toc">\n<h2>{CONTENTS}</h2>\n<ol>\n{items}\n</ol>\n</nav>'


_CSS = """
:root { color-scheme: light; }
body { font-family: FAMILIES; color: #222; background: #fff; line-height: 1.6;
       max-width: 60rem; margin: 2rem auto; padding: 0 1.5rem; font-size: 15px; }
h1 { font-size: 1.8rem; margin: 0 0 .25rem; font-weight: 600; }
h2 { font-size: 1.35rem; margin: 2.2rem 0 .6rem; padding-bottom: .25rem;
     border-bottom: 2px solid #d0d7de; font-weight: 600; }
.subtitle { color: #555; margin: 0 0 1rem; }
.tables-note, .more, .note { color: #555; font-size: .9rem; }
.note { background: #f6f8fa; border-left: 4px solid #d0d7de; padding: .5rem .8rem; }
nav.toc { background: #f6f8fa; padding: .6rem 1.2rem; border-radius: 6px; }
nav.toc h2 { font-size: 1.05rem; margin: .2rem 0; border: 0; padding: 0; }
nav.toc ol { margin: .2rem 0; }
a { color: #0b5cad; text-decoration: none; }
a:hover { text-decoration: underline; }
figure { margin: 1rem 0; }
img { max-width: 100%; height: auto; display: block; }
figcaption, caption { color: #555; font-size: .9rem; text-align: left; padding: .3rem 0; }
.table-wrap { overflow-x: auto; margin: 1rem 0 .3rem; }
table { border-collapse: collapse; font-size: .9rem; }
th, td { border-bottom: 1px solid #e1e4e8; padding: .3rem .7rem; text-align: left;
         vertical-align: top; white-space: nowrap; }
th { background: #f6f8fa; font-weight: 600; border-bottom: 2px solid #d0d7de; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.empty { color: #777; text-align: center; }
tbody tr:nth-child(even) { background: #fbfcfd; }
@page { size: A4; margin: 12mm; }
@media print {
  body { max-width: none; margin: 0; padding: 0; font-size: 10pt; }
  nav.toc { background: none; border: 1px solid #ccc; }
  a { color: inherit; }
  h2 { break-after: avoid; }
  figure, tr, .note { break-inside: avoid; }
  thead { display: table-header-group; }
  .table-wrap { overflow: visible; }
  th, td { white-space: normal; }
}
"""


def _style(font_face: str | None) -> str:
    families = f'"{EMBEDDED_FAMILY}", {SYSTEM_FAMILIES}' if font_face else SYSTEM_FAMILIES
    return (font_face or "") + _CSS.replace("FAMILIES", families)


@functools.lru_cache(maxsize=8)
def _subset_of_characters(font: bytes, characters: str) -> bytes:
    """:func:`subset_font` remembered by character set.

    Cutting the 16 MB font takes about a second; successive reports in one
    process (a tune and its run, the tests' many runs) mostly show the same
    characters, and the subset depends on nothing else.
    """
    return subset_font(font, characters)


def _font_face(font: bytes | Callable[[str], bytes], characters: str) -> str:
    """The @font-face rule of the font's subset for ``characters`` (:func:`_page_text`)."""
    subset = font(characters) if callable(font) else _subset_of_characters(font, characters)
    data = base64.b64encode(subset).decode("ascii")
    return (f'@font-face {{ font-family: "{EMBEDDED_FAMILY}"; font-style: normal; '
            f'font-weight: normal; font-display: block; '
            f'src: url(data:font/woff;base64,{data}) format("woff"); }}')


def render_html(title: str, subtitle: str, sections: list[Section], *,
                font: bytes | Callable[[str], bytes] | None = None,
                tables_note: str | None = None,
                max_rows: int = 200, contents: bool = True) -> str:
    """A whole report as one self-contained HTML page.

    Parameters
    ----------
    title, subtitle : str
        The page heading and the line under it (e.g. the run date and the data used).
    sections : list of Section
        The report's parts, in order; each gets an entry in the table of contents.
    font : bytes, optional
        An OpenType font (e.g. :func:`monitor.io.fonts.cjk_font_bytes`). A subset of it
        with the characters of the page (and :data:`ALWAYS_IN_SUBSET`) is embedded and
        used first, so Chinese
        renders where no CJK font is installed. Without it the page relies on the
        reader's fonts. Or a function that gives the subset for a text (e.g.
        :class:`monitor.io.fonts.FontSubsets`, which keeps the subsets it cuts).
    tables_note : str, optional
        A line under the subtitle saying where the full tables are.
    max_rows : int
        Rows shown per table; a line under a longer table says how many more there are.
    contents : bool
        Whether the page starts with a table of contents (a page printed as one
        record, such as the household file, needs none).

    Returns
    -------
    str
        The HTML page (write it as UTF-8).
    """
    header = [f"<header>\n<h1>{html.escape(title)}</h1>"]
    if subtitle:
        header.append(f'<p class="subtitle">{html.escape(subtitle)}</p>')
    if tables_note:
        header.append(f'<p class="tables-note">{html.escape(tables_note)}</p>')
    header.append("</header>")
    body = "\n".join([
        *header,
        *([_contents_html(sections)] if contents else []),
        "<main>",
        *(_section_html(number, section, max_rows)
          for number, section in enumerate(sections, start=1)),
        "</main>",
    ])
    font_face = _font_face(font, _page_text(body)) if font is not None else None
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>\n{_style(font_face)}</style>",
        "</head>",
        "<body>",
        body,
        "</body>",
        "</html>",
        "",
    ])
