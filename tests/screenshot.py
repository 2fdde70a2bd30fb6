"""Screenshots of HTML pages with headless Chromium, to check what a reader's browser shows."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_PATHS = ("/usr/bin/chromium",)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT_SECONDS = 60


def find_chromium() -> str | None:
    """The Chromium executable: /usr/bin/chromium, else the first one on PATH, else None."""
    for path in CHROMIUM_PATHS:
        if Path(path).is_file():
            return path
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(html_path: Path, png_path: Path, width: int = 1280, height: int = 2400) -> None:
    """Render ``html_path`` in headless Chromium and save a ``width`` x ``height`` PNG.

    A fresh profile folder each time, and no network, sync or update traffic,
    so the picture depends on the page alone.

    Raises
    ------
    FileNotFoundError
        When no Chromium is found.
    RuntimeError
        When Chromium wrote no PNG (its exit code and stderr are in the message).
    """
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("Chromium not found at /usr/bin/chromium nor on PATH")
    png_path = Path(png_path).resolve()
    png_path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
            f"--window-size={width},{height}", f"--screenshot={png_path}",
            Path(html_path).resolve().as_uri(),
        ]
        result = subprocess.run(command, capture_output=True, text=True,
                                timeout=TIMEOUT_SECONDS, check=False)
    if not png_path.is_file() or png_path.stat().st_size == 0:
        raise RuntimeError(f"Chromium wrote no screenshot (exit code {result.returncode}):\n"
                           f"{result.stderr}")
