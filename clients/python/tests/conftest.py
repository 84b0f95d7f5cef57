"""Shared fixtures: the real logd binary on a real socket in a temporary directory.

The binary is ``$LOGD_BIN``, else the repository's ``.build/debug/logd`` (``swift build``), else
``.build/release/logd``. Without one the daemon tests are skipped, except under CI (``CI=true``),
where a missing binary is a failure.
"""

from __future__ import annotations

import csv
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(HERE.parent / "src"))  # test the source tree, installed or not


def logd_binary() -> Optional[str]:
    env = os.environ.get("LOGD_BIN")
    if env:
        return env
    for kind in ("debug", "release"):
        p = REPO / ".build" / kind / "logd"
        if p.exists():
            return str(p)
    return None


class Daemon:
    """One logd process with its own socket and data root; restartable on the same paths."""

    def __init__(self, binary: str, base: str) -> None:
        self.binary = binary
        self.base = base
        self.socket = os.path.join(base, "logd.sock")
        self.root = os.path.join(base, "runs")
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = os.path.join(base, "logd.err")

    def start(self) -> None:
        err = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--socket", self.socket, "--data-root", self.root, "--log-level", "warning"],
            stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        err.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("logd exited with %s: %s" % (self.proc.returncode, self.stderr()))
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(self.socket)
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("logd did not start listening: %s" % self.stderr())

    def stop(self, sig: int = signal.SIGTERM) -> int:
        proc, self.proc = self.proc, None
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return proc.returncode

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)

    def stderr(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- reading what it wrote ---------------------------------------------------------------

    def run_dirs(self, experiment: str) -> List[str]:
        return sorted(glob.glob(os.path.join(self.root, experiment, "*")))

    def run_dir(self, experiment: str) -> str:
        dirs = self.run_dirs(experiment)
        assert len(dirs) == 1, "expected one run directory under %s, found %r" % (experiment, dirs)
        return dirs[0]


def metric_rows(run_dir: str) -> List[Dict[str, str]]:
    """Every metrics.csv row of a run, segments oldest first, then the live file."""
    parts = sorted(glob.glob(os.path.join(run_dir, "metrics.[0-9]*.csv"))) + [os.path.join(run_dir, "metrics.csv")]
    rows: List[Dict[str, str]] = []
    for p in parts:
        if os.path.exists(p):
            with open(p, newline="") as f:
                rows.extend(csv.DictReader(f))
    return rows


def read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


@pytest.fixture
def daemon() -> Iterator[Daemon]:
    binary = logd_binary()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no logd binary: run `swift build` first or set LOGD_BIN")
        pytest.skip("no logd binary (swift build, or set LOGD_BIN)")
    base = tempfile.mkdtemp(prefix="logd-py-")  # short: a socket path must fit in 108 bytes
    d = Daemon(binary, base)
    d.start()
    try:
        yield d
    finally:
        d.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def tmpdir_short() -> Iterator[str]:
    base = tempfile.mkdtemp(prefix="logd-py-")
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)
