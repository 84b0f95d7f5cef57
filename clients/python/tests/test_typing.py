"""The package says ``Typing :: Typed`` and ships ``py.typed``: mypy, run with the
``[tool.mypy]`` configuration in clients/python/pyproject.toml (Python 3.9, missing imports
ignored only for the optional third-party modules), reports no error in ``src/logd``.

Skipped when mypy is not installed, except under ``CI=true`` (scripts/requirements-test.txt
installs it there), where a missing mypy fails."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

PROJECT = Path(__file__).resolve().parent.parent  # clients/python
PYPROJECT = PROJECT / "pyproject.toml"

HAVE_MYPY = importlib.util.find_spec("mypy") is not None
IN_CI = os.environ.get("CI") == "true"

pytestmark = pytest.mark.skipif(not HAVE_MYPY and not IN_CI,
                                reason="mypy is not installed (pip install -r scripts/requirements-test.txt)")


def run_mypy(cache: Path, *args: str) -> subprocess.CompletedProcess:
    """``mypy ARGS`` in clients/python with its pyproject.toml, caching under ``cache``."""
    if not HAVE_MYPY:
        pytest.fail("CI=true but mypy is not installed: scripts/requirements-test.txt lists it")
    cmd: List[str] = [sys.executable, "-m", "mypy", "--config-file", str(PYPROJECT),
                      "--cache-dir", str(cache), "--no-color-output", "--no-error-summary", *args]
    return subprocess.run(cmd, cwd=str(PROJECT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600)


def probe(tmp_path: Path, program: str) -> str:
    """A file holding ``program``, for mypy to check with the package's configuration (files
    named on the command line replace the configuration's ``files``)."""
    path = tmp_path / "probe.py"
    path.write_text(program, encoding="utf-8")
    return str(path)


def test_mypy_reports_no_error_in_the_package(tmp_path: Path) -> None:
    r = run_mypy(tmp_path / "cache", "src/logd")
    assert r.returncode == 0, "mypy src/logd (exit %d):\n%s" % (r.returncode, r.stdout)
    assert " error: " not in r.stdout, r.stdout


def test_a_missing_module_outside_the_optional_ones_is_still_an_error(tmp_path: Path) -> None:
    """ignore_missing_imports is per module (pandas, numpy, torch, ...), not global: the check
    would notice a typo'd or undeclared import."""
    program = "import logd\nimport pandas\nimport torch.nn\nimport logd_no_such_module_for_mypy\n"
    r = run_mypy(tmp_path / "cache", probe(tmp_path, program))
    assert r.returncode == 1, "exit %d:\n%s" % (r.returncode, r.stdout)
    errors = [line for line in r.stdout.splitlines() if " error: " in line]
    assert len(errors) == 1, r.stdout
    assert "logd_no_such_module_for_mypy" in errors[0] and "[import-not-found]" in errors[0], r.stdout


def test_the_configuration_targets_python_3_9(tmp_path: Path) -> None:
    """requires-python is >=3.9, so the check runs as 3.9: a 3.10-only annotation in the package
    would fail it."""
    program = "def f(x: int | None) -> None: ...\n"
    r = run_mypy(tmp_path / "cache", probe(tmp_path, program))
    assert r.returncode == 1, "exit %d:\n%s" % (r.returncode, r.stdout)
    assert "X | Y syntax for unions requires Python 3.10" in r.stdout, r.stdout
