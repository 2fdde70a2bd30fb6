"""Charts with Chinese labels, the self-contained HTML report and its embedded font subset."""

from __future__ import annotations

import base64
import html
import io
import re
import struct
import warnings

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from fontTools.ttLib import TTFont
from screenshot import find_chromium, screenshot

from monitor.io.fonts import cjk_font_bytes, cjk_font_path, use_cjk_font
from monitor.reports import charts
from monitor.reports.html import Section, render_html, subset_font

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
FONT_URL = re.compile(r"url\(data:font/woff;base64,([A-Za-z0-9+/=]+)\)")
IMG_URL = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)">')


@pytest.fixture(scope="module")
def family() -> str:
    return use_cjk_font()


def missing_glyph_warnings(draw) -> tuple[bytes, list[str]]:
    """The PNG ``draw()`` returns and matplotlib's "Glyph ... missing from font" warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = draw()
    return png, [str(w.message) for w in caught if "missing from font" in str(w.message)]


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE)
    return struct.unpack(">II", png[16:24])


# --- fonts --------------------------------------------------------------------------------


def test_cjk_font_is_noto_sans_cjk_sc_from_mplfonts(family):
    assert cjk_font_path().name == "NotoSansCJKsc-Regular.otf"
    assert family == "Noto Sans CJK SC"
    assert cjk_font_bytes()[:4] == b"OTTO"


# --- charts -------------------------------------------------------------------------------


def test_bar_chart_draws_chinese_with_the_cjk_font_and_boxes_without_it(family):
    values = pd.Series([12345, 678], index=["低保边缘", "万州区"])
    png, missing = missing_glyph_warnings(lambda: charts.bar_chart(
        values, title="按规则的户数", value_label="户数", font_family=family))
    assert png.startswith(PNG_SIGNATURE)
    assert missing == []
    # The same chart in matplotlib's own font has no Chinese glyphs: the check above can fail.
    _, missing = missing_glyph_warnings(lambda: charts.bar_chart(
        values, title="按规则的户数", value_label="户数", font_family="DejaVu Sans"))
    assert any("missing from font" in message for message in missing)


def test_bar_chart_is_modest_and_grows_only_when_horizontal(family):
    levels = pd.Series([30, 20, 10], index=list(charts.LEVEL_COLORS))
    png, missing = missing_glyph_warnings(lambda: charts.bar_chart(
        levels, title="按预警等级", value_label="户数", font_family=family,
        colors=charts.LEVEL_COLORS))
    assert missing == []
    assert png_size(png) == (800, 400)
    counties = pd.Series(np.arange(20) * 1000, index=[f"第{n}区县" for n in range(20)])
    width, height = png_size(charts.bar_chart(counties, title="按区县", value_label="户数",
                                              font_family=family, horizontal=True))
    assert width == 800
    assert 400 < height <= 1000


def test_bar_chart_colours_levels(family):
    levels = pd.Series([30, 20, 10], index=list(charts.LEVEL_COLORS))
    image = matplotlib.image.imread(io.BytesIO(charts.bar_chart(
        levels, title="按预警等级", value_label="户数", font_family=family,
        colors=charts.LEVEL_COLORS)), format="png")[..., :3]
    for colour in charts.LEVEL_COLORS.values():
        rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
        assert np.all(np.abs(image - rgb) < 0.02, axis=2).sum() > 500, colour


def test_grouped_bar_chart_has_chinese_groups_and_legend(family):
    frame = pd.DataFrame({"现行": [1200, 3400], "候选": [1300, 3000]},
                         index=["低保边缘", "万州区"])
    png, missing = missing_glyph_warnings(lambda: charts.grouped_bar_chart(
        frame, title="现行与候选", value_label="户数", font_family=family))
    assert missing == []
    assert png_size(png) == (800, 400)
    single = charts.grouped_bar_chart(frame[["现行"]], title="现行与候选", value_label="户数",
                                      font_family=family)
    assert single != png


def capacity_curve() -> pd.DataFrame:
    threshold = np.linspace(0, 1, 21)
    return pd.DataFrame({"预警户数": (1 - threshold) ** 2 * 25000, "召回率": 1 - threshold ** 3},
                        index=pd.Index(threshold, name="阈值"))


def test_line_chart_with_markers_and_secondary_axis(family):
    curve = capacity_curve()
    png, missing = missing_glyph_warnings(lambda: charts.line_chart(
        curve, title="容量曲线", x_label="模型阈值", value_label="户数", font_family=family,
        markers={"现行阈值": 0.4, "候选阈值": 0.55}, secondary="召回率"))
    assert missing == []
    assert png_size(png) == (800, 400)
    without_markers = charts.line_chart(curve, title="容量曲线", x_label="模型阈值",
                                        value_label="户数", font_family=family,
                                        secondary="召回率")
    one_axis = charts.line_chart(curve, title="容量曲线", x_label="模型阈值", value_label="户数",
                                 font_family=family, markers={"现行阈值": 0.4, "候选阈值": 0.55})
    assert len({png, without_markers, one_axis}) == 3
    with pytest.raises(KeyError, match="精确率"):
        charts.line_chart(curve, title="容量曲线", x_label="模型阈值", value_label="户数",
                          font_family=family, secondary="精确率")


def test_line_chart_over_dates(family):
    months = pd.DataFrame({"新增": np.arange(12.0), "持续": np.arange(12.0)[::-1]},
                          index=pd.date_range("2025-07-01", periods=12, freq="MS"))
    png, missing = missing_glyph_warnings(lambda: charts.line_chart(
        months, title="逐月预警", x_label="月份", value_label="户数", font_family=family))
    assert missing == []
    assert png_size(png) == (800, 400)


@pytest.mark.parametrize("frame", [pd.DataFrame(), pd.DataFrame({"召回率": []}, dtype=float)])
def test_line_chart_of_nothing_says_no_data(family, frame):
    png, missing = missing_glyph_warnings(lambda: charts.line_chart(
        frame, title="容量曲线", x_label="阈值", value_label="户数", font_family=family))
    assert missing == []
    assert png_size(png) == (600, 200)
    # 无数据 in a font without it would warn: the text really is drawn.
    _, missing = missing_glyph_warnings(lambda: charts.line_chart(
        frame, title="curve", x_label="x", value_label="y", font_family="DejaVu Sans"))
    assert missing


# --- the HTML report ----------------------------------------------------------------------

LONG_ROWS = 205


def report_sections(bar_png: bytes, line_png: bytes) -> list[Section]:
    counties = pd.DataFrame({"区县": ["万州区", "涪陵区", "渝中区<b>"],
                             "户数": [1234567, 678, 9],
                             "召回率": [0.81234, np.nan, 0.5],
                             "备注": ["正常", None, "a & b"]})
    long = pd.DataFrame({"编号": np.arange(LONG_ROWS), "分数": np.linspace(0, 1, LONG_ROWS)})
    rules = pd.DataFrame({"预警数": [10, 20]}, index=pd.Index(["低保边缘", "特困"], name="规则"))
    return [
        Section("按预警等级", ["共列出 1,234 户 <b>不是标签</b>。"],
                charts=[("各等级户数", bar_png)], tables=[("各区县户数与召回率", counties)],
                note="召回率按验证集计算。"),
        Section("容量曲线 <现行与候选>", ["阈值的比较。"], charts=[("容量曲线图", line_png)],
                tables=[("长表", long), ("按规则", rules)]),
    ]


@pytest.fixture(scope="module")
def report(family) -> tuple[str, list[Section]]:
    bar_png = charts.bar_chart(pd.Series([120, 45, 9], index=list(charts.LEVEL_COLORS)),
                               title="按预警等级", value_label="户数", font_family=family,
                               colors=charts.LEVEL_COLORS)
    line_png = charts.line_chart(capacity_curve(), title="容量曲线", x_label="阈值",
                                 value_label="户数", font_family=family,
                                 markers={"现行": 0.4}, secondary="召回率")
    sections = report_sections(bar_png, line_png)
    page = render_html("监测预警报告", "2026-06-30 运行", sections, font=cjk_font_bytes(),
                       tables_note="完整表格见报告旁的 tables 文件夹。")
    return page, sections


def visible_text(page: str) -> str:
    """The page's text, found independently of the module: tags and the head removed."""
    body = page.split("<body>", 1)[1]
    return html.unescape(re.sub(r"<[^>]+>", "", body))


def test_report_is_one_self_contained_page(report):
    page, sections = report
    assert page.startswith("<!DOCTYPE html>\n<html lang=\"zh-CN\">")
    assert '<meta charset="utf-8">' in page
    for section in sections:
        assert html.escape(section.title) in page
    assert '<a href="#s2">容量曲线 &lt;现行与候选&gt;</a>' in page
    lowered = page.lower()
    for external in ("http://", "https://", "<script", "<link", "src=\"file:"):
        assert external not in lowered


def test_report_charts_are_inline_pngs_with_their_captions_as_alt(report):
    page, sections = report
    images = IMG_URL.findall(page)
    expected = [(caption, png) for section in sections for caption, png in section.charts]
    assert len(images) == len(expected) == 2
    for (data, alt), (caption, png) in zip(images, expected, strict=True):
        assert base64.b64decode(data) == png
        assert alt == caption
        assert f"<figcaption>{caption}</figcaption>" in page


def test_report_escapes_text(report):
    page, _ = report
    assert "&lt;b&gt;不是标签&lt;/b&gt;" in page
    assert "<b>" not in page
    assert "<td>渝中区&lt;b&gt;</td>" in page
    assert "<td>a &amp; b</td>" in page


def test_report_tables_format_numbers_and_missing_values(report):
    page, _ = report
    assert '<th class="num">户数</th>' in page
    assert '<td class="num">1,234,567</td>' in page
    assert '<td class="num">0.812</td>' in page
    assert '<td class="num">0.500</td>' in page
    assert '<td class="num">—</td>' in page  # NaN in a float column
    assert "<td>—</td>" in page  # None in a text column
    assert "nan" not in visible_text(page).lower()
    # A named index is shown as the first column.
    assert "<th>规则</th>" in page
    assert "<tr><td>低保边缘</td>" in page


def test_report_long_tables_are_cut_at_max_rows(report):
    page, _ = report
    assert f"另有 {LONG_ROWS - 200:,} 行未显示" in page
    assert '<td class="num">199</td>' in page
    assert '<td class="num">200</td>' not in page
    short = render_html("t", "", [Section("s", tables=[("t", pd.DataFrame({"n": range(5)}))])],
                        max_rows=2)
    assert short.count('<td class="num">') == 2
    assert "仅显示前 2 行；另有 3 行未显示" in short
    assert "另有" not in render_html("t", "", [Section("s", tables=[
        ("t", pd.DataFrame({"n": range(5)}))])])


def test_report_embeds_a_subset_of_the_font_with_every_character_shown(report):
    page, _ = report
    fonts = FONT_URL.findall(page)
    assert len(fonts) == 1
    subset = base64.b64decode(fonts[0])
    assert len(subset) < 1_000_000
    assert len(subset) < len(cjk_font_bytes()) / 100
    cmap = TTFont(io.BytesIO(subset)).getBestCmap()
    text = visible_text(page)
    cjk = set(CJK.findall(text))
    assert {"监", "测", "渝", "目", "录", "。"} <= cjk
    assert {ord(char) for char in cjk} <= set(cmap)
    assert {ord(char) for char in "0123456789,.—"} <= set(cmap)
    assert ord("鑫") not in cmap  # exactly the page's characters, not the whole font
    assert '@font-face { font-family: "ReportCJK"' in page
    assert 'font-family: "ReportCJK", "Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC"' in page


def test_report_is_deterministic(report, family):
    page, sections = report
    again = render_html("监测预警报告", "2026-06-30 运行", sections, font=cjk_font_bytes(),
                        tables_note="完整表格见报告旁的 tables 文件夹。")
    assert again == page


def test_report_without_font_relies_on_system_fonts():
    page = render_html("报告", "副标题", [Section("一节", ["文字"])])
    assert "@font-face" not in page
    assert "ReportCJK" not in page
    assert 'font-family: "Microsoft YaHei"' in page


def test_subset_font_keeps_only_the_glyphs_asked_for():
    subset = subset_font(cjk_font_bytes(), "万州区")
    cmap = TTFont(io.BytesIO(subset)).getBestCmap()
    assert set(cmap) == {ord(char) for char in "万州区"}


def test_a_subset_cut_once_is_kept_and_read_back_by_the_next_run(tmp_path, monkeypatch):
    from monitor.io import fonts

    cut = []
    monkeypatch.setattr(fonts, "subset_font",
                        lambda font, text: cut.append(text) or subset_font(font, text))
    kept = fonts.FontSubsets(tmp_path / "subsets", cjk_font_bytes())
    assert kept("万州区") == subset_font(cjk_font_bytes(), "万州区") and cut == ["万州区"]
    # Another run (another object): read back, not cut; other characters are cut anew.
    again = fonts.FontSubsets(tmp_path / "subsets", cjk_font_bytes())
    assert again("万州区") == kept("万州区") and cut == ["万州区"]
    assert again("涪陵区") == subset_font(cjk_font_bytes(), "涪陵区") and len(cut) == 2
    assert len(list((tmp_path / "subsets").glob("*.woff"))) == 2
    # The page is the same with the kept subset as with the font's bytes.
    sections = [Section("一节", ["万州区"])]
    assert render_html("报告", "", sections, font=again) == render_html(
        "报告", "", sections, font=cjk_font_bytes())
    # A kept file cut short (a crash before the disk had it all) is cut again, not embedded.
    (kept_file,) = [path for path in (tmp_path / "subsets").glob("*.woff")
                    if path.read_bytes() == subset_font(cjk_font_bytes(), "万州区")]
    kept_file.write_bytes(kept_file.read_bytes()[:100])
    before = len(cut)
    assert again("万州区") == subset_font(cjk_font_bytes(), "万州区") and len(cut) == before + 1
    assert kept_file.read_bytes() == subset_font(cjk_font_bytes(), "万州区")
    # Only the newest are kept.
    monkeypatch.setattr(fonts, "KEPT_SUBSETS", 2)
    again("区")
    assert len(list((tmp_path / "subsets").glob("*.woff"))) == 2


def test_a_folder_that_cannot_keep_subsets_costs_only_the_time(tmp_path):
    from monitor.io import fonts

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the folder would be")
    subsets = fonts.FontSubsets(blocked / "subsets", cjk_font_bytes())
    assert subsets("万州区") == subset_font(cjk_font_bytes(), "万州区")


# --- what a browser shows -----------------------------------------------------------------


@pytest.mark.skipif(find_chromium() is None, reason="headless Chromium not installed")
def test_browser_draws_chinese_glyphs_not_boxes(tmp_path, family):
    # The title is eight sparse characters (一二) then eight dense ones (警戒). A browser without
    # the glyphs draws each as the same box, so both halves would leave the same ink; real
    # glyphs leave far more on the right.
    chart = charts.bar_chart(pd.Series([120, 45, 9], index=list(charts.LEVEL_COLORS)),
                             title="按预警等级", value_label="户数", font_family=family,
                             colors=charts.LEVEL_COLORS)
    table = pd.DataFrame({"区县": ["万州区", "涪陵区"], "户数": [1234, 56]})
    page = render_html("一二一二一二一二警戒警戒警戒警戒", "测试报告",
                       [Section("各区县", ["说明文字。"], charts=[("各等级户数", chart)],
                                tables=[("各区县户数", table)])],
                       font=cjk_font_bytes())
    html_path, png_path = tmp_path / "report.html", tmp_path / "report.png"
    html_path.write_text(page, encoding="utf-8")
    screenshot(html_path, png_path, width=1280, height=900)

    image = matplotlib.image.imread(png_path)[..., :3]
    assert image.shape == (900, 1280, 3)
    assert len(np.unique((image[::4, ::4] * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 20
    red = np.array([0xd6, 0x27, 0x28]) / 255
    assert np.all(np.abs(image - red) < 0.05, axis=2).sum() > 1000  # the chart is shown
    # The h1 sits in this band at the top of the page (the subtitle starts below it).
    dark = image[30:80].mean(axis=2) < 0.5
    columns = np.flatnonzero(dark.any(axis=0))
    assert columns.size
    middle = (columns[0] + columns[-1]) // 2
    sparse, dense = int(dark[:, :middle].sum()), int(dark[:, middle:].sum())
    assert sparse > 100
    assert dense > 2 * sparse
