"""Fixtures of the chart tests (helpers live in chart_helpers.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chart_helpers import CHART


@pytest.fixture
def chart_copy(tmp_path: Path) -> Path:
    """A throw-away copy of the chart, for tests that add files (plugins given by `file`)."""
    target = tmp_path / "k8up"
    shutil.copytree(CHART, target)
    return target
