"""The Chinese font for charts and HTML reports: Noto Sans CJK SC as shipped by ``mplfonts``.

Servers rarely have a CJK font installed, and matplotlib without one draws
Chinese labels as empty boxes. The ``mplfonts`` package carries Noto Sans
CJK SC (SIL Open Font License); this module finds that file, registers it
with matplotlib for this process only (nothing is installed or written) and
reads its bytes so an HTML report can embed a subset of it, keeping the
subsets it has cut under the home (:class:`FontSubsets`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import os
from pathlib import Path

import fontTools

from monitor.io.files import atomic_path
from monitor.io.home import Home
from monitor.reports.html import subset_font

FONT_PACKAGE = "mplfonts"
FONT_FILE = ("fonts", "NotoSansCJKsc-Regular.otf")


def cjk_font_path() -> Path:
    """The Noto Sans CJK SC file inside the installed ``mplfonts`` package.

    Raises
    ------
    FileNotFoundError
        When ``mplfonts`` is not installed or no longer ships the file.
    """
    try:
        package = importlib.resources.files(FONT_PACKAGE)
    except ModuleNotFoundError as error:
        raise FileNotFoundError(
            f"The Chinese font comes from the Python package {FONT_PACKAGE!r}, which is not "
            f"installed: pip install {FONT_PACKAGE}") from error
    # An installed (not zipped) package is a real folder, so the resource is a real file.
    path = Path(str(package.joinpath(*FONT_FILE)))
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: the installed {FONT_PACKAGE!r} package does not ship "
            f"{'/'.join(FONT_FILE)}; reinstall it (pip install --force-reinstall {FONT_PACKAGE})")
    return path


@functools.cache
def use_cjk_font() -> str:
    """Register Noto Sans CJK SC with matplotlib (once per process) and return its family name.

    Pass the name as ``font_family`` to the functions of :mod:`monitor.reports.charts`.
    Only this process's in-memory font list changes; matplotlib's installation
    and font cache are left alone.
    """
    from matplotlib import font_manager

    path = cjk_font_path()
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


@functools.cache
def cjk_font_bytes() -> bytes:
    """The bytes of the Noto Sans CJK SC file (about 16 MB, read once per process)."""
    return cjk_font_path().read_bytes()


#: The WOFF 1 header: signature, flavour, then the whole file's length (big-endian), ...
WOFF_HEADER_BYTES = 44
#: Subsets kept per home: a night's report shows nearly the same characters as the last.
KEPT_SUBSETS = 16


class FontSubsets:
    """Subsets of a font for the characters of a page, kept on disk by character set.

    Cutting the 16 MB CJK font takes over a second, and every night's report
    (and each tune's) shows nearly the same characters: a subset cut once is
    read back by the next run. The same font and characters always give the
    same bytes (:func:`monitor.reports.html.subset_font`), so a kept subset is
    the one that would be cut. A folder that cannot be written (a read-only
    home) only costs the time.

    Pass it as the ``font`` of :func:`monitor.reports.html.render_html`.
    """

    def __init__(self, folder: Path, font: bytes) -> None:
        self.folder = Path(folder)
        self.font = font

    def __call__(self, characters: str) -> bytes:
        """The font's subset for ``characters``, as WOFF bytes."""
        # The font, the characters and the subsetter's version (another may cut other bytes).
        key = hashlib.sha256("\0".join([_digest(self.font), fontTools.version,
                                         characters]).encode("utf-8"))
        path = self.folder / f"{key.hexdigest()[:32]}.woff"
        try:
            kept = path.read_bytes()
            if _whole_woff(kept):
                os.utime(path)  # used: the last to be pruned
                return kept
        except OSError:
            pass
        subset = subset_font(self.font, characters)
        try:
            with atomic_path(path) as temporary:
                temporary.write_bytes(subset)
            kept = sorted(self.folder.glob("*.woff"), key=lambda kept: kept.stat().st_mtime_ns)
            for old in kept[:-KEPT_SUBSETS]:
                old.unlink(missing_ok=True)
        except OSError:
            pass  # not kept: the next run cuts it again
        return subset


def font_subsets(home: Path) -> FontSubsets:
    """The CJK font's subsets kept under ``home`` (``state/font_subsets/``)."""
    return FontSubsets(Home.of(home).font_subsets, cjk_font_bytes())


@functools.cache
def _digest(font: bytes) -> str:
    return hashlib.sha256(font).hexdigest()


def _whole_woff(data: bytes) -> bool:
    """Whether ``data`` is a WOFF file as long as its header says (not cut short on disk).

    Examples
    --------
    >>> _whole_woff(b"wOFF" + bytes(4) + (44).to_bytes(4, "big") + bytes(32))
    True
    >>> _whole_woff(b"wOFF" + bytes(4) + (1000).to_bytes(4, "big") + bytes(32))
    False
    """
    return (len(data) >= WOFF_HEADER_BYTES and data[:4] == b"wOFF"
            and int.from_bytes(data[8:12], "big") == len(data))
