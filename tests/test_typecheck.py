"""The package type-checks: ``python -m mypy`` with the repo's mypy.ini is clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_finds_no_errors_in_the_package(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    # A cache of our own: a cold run takes seconds, and concurrent runs (or an
    # older mypy's cache in the checkout) can't get in each other's way.
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini",
         "--cache-dir", str(tmp_path / "mypy_cache")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, (
        f"mypy exited {result.returncode}:\n{result.stdout}{result.stderr}"
    )
