"""Replays every daemon fuzz regression input (vectors/fuzz-daemon/*.txt) against the real logd.

Each file is an action script (adversarial/actions.py) that once crashed logd: a trap, a start-up
that failed on what was in the data root, a drain that did not exit 0, or a daemon that stopped
answering. Each is played on a fresh logd and data root; afterwards logd must still be running and
answer ``flush`` and ``status``.

    LOGD_BIN=/path/to/logd .venv/bin/python3 -m pytest -q -p no:cacheprovider adversarial/test_replay.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from actions import Executor, parse  # noqa: E402
from harness import REPO, DaemonDied, Logd, status  # noqa: E402

VECTORS = REPO / "vectors" / "fuzz-daemon"
FILES = sorted(VECTORS.glob("*.txt"))




def test_the_folder_holds_inputs() -> None:
    """An empty or misnamed folder would make the replay below assert nothing."""
    assert len(FILES) >= 5, "expected the committed regression inputs in %s" % VECTORS
    for f in FILES:
        actions = parse(f.read_text())
        assert actions, "%s holds no actions" % f.name
        assert any(line.startswith("# site: ") for line in f.read_text().splitlines()), f.name


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_replay_leaves_logd_running(binary: str, path: Path) -> None:
    d = Logd(binary)
    ex = Executor(d)
    try:
        d.start()
        try:
            ex.play(parse(path.read_text()))
            ex.sync()
        except DaemonDied as e:
            start = e.stderr.find(" crashed:\n")
            trace = e.stderr[max(0, start - 200):start + 1500] if start >= 0 else e.stderr[-1500:]
            pytest.fail("%s: logd died (%s at %s: %s)\n%s" % (path.name, e.kind, e.site, e.message, trace))
        assert d.alive()
        body = status(d.socket)
        assert body["pid"] == d.pid
        assert isinstance(body["runs"], list)
    finally:
        ex.close()
        d.cleanup()
