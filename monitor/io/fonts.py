"""The Chinese font for charts and HTML reports: Noto Sans CJK SC as shipped by ``mplfonts``.

Servers rarely have a CJK font installed, and matplotlib without one draws
Chinese labels as empty boxes. The ``mplfonts`` package carries Noto Sans
CJK SC (SIL Open Font License); this module finds that file, registers it
with matplotlib for this process only (nothing is installed or written) and
reads its bytes so an HTML report can embed a subset of it.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

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

    Pass the name as ``font_family`` to the functions of :mod:`monitor.charts`.
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
