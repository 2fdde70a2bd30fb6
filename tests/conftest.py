"""Shared pytest fixtures."""

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty deployment home folder."""
    return tmp_path / "home"
