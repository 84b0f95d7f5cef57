"""Shared fixtures of the adversarial tests: the logd binary under test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import logd_binary  # noqa: E402


@pytest.fixture
def binary() -> str:
    """``$LOGD_BIN`` or the repository's build; under CI a missing binary fails instead of skipping."""
    b = logd_binary()
    if b is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no logd binary: run `swift build` first or set LOGD_BIN")
        pytest.skip("no logd binary (swift build, or set LOGD_BIN)")
    return b
