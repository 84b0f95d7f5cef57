"""``python -m logd``: status from the daemon, runs and show from disk, logctl's exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import logd

SRC = str(Path(__file__).resolve().parents[1] / "src")


def cli(*args, env=None):
    e = dict(os.environ)
    e["PYTHONPATH"] = SRC + os.pathsep + e.get("PYTHONPATH", "")
    e.update(env or {})
    p = subprocess.run([sys.executable, "-m", "logd", *args], capture_output=True, text=True, env=e, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_status_runs_and_show_against_a_daemon_and_its_runs(daemon):
    run = logd.Run(experiment="cli", name="first", config={"opt": {"lr": 0.5}, "note": "two\nlines"},
                   run_id="cli-run-1", socket=daemon.socket)
    for step in range(10):
        run.log_metric("loss", 10.0 - step, step)
    run.log_metric("acc", float("nan"), 9, context="validation")
    assert run.flush(timeout=20)

    code, out, err = cli("status", "--socket", daemon.socket, "--json")
    assert code == 0, err
    status = json.loads(out)
    assert [r["run_id"] for r in status["runs"]] == ["cli-run-1"]
    code, out, err = cli("status", "--socket", daemon.socket)
    assert code == 0 and "cli-run-1" in out and "runs 1" in out, out + err
    assert run.finish(timeout=20).completed

    code, out, err = cli("runs", "--data-root", daemon.root, "--json")
    assert code == 0, err
    listing = json.loads(out)
    assert [(r["run_id"], r["experiment"], r["name"], r["status"]) for r in listing] == \
        [("cli-run-1", "cli", "first", "finished")]
    assert listing[0]["directory"].startswith("cli/") and listing[0]["directory"].endswith("_first")
    code, out, _ = cli("runs", env={"LOGD_DATA_ROOT": daemon.root})
    assert code == 0 and "cli-run-1" in out and out.splitlines()[0].split()[:3] == ["START", "EXPERIMENT", "NAME"]
    code, out, _ = cli("runs", "--data-root", daemon.root, "--experiment", "other")
    assert code == 0 and "no runs" in out

    for name in ("cli-run-1", "cli-run", "first", "cli/first", listing[0]["directory"]):
        code, out, err = cli("show", name, "--data-root", daemon.root, "--json")
        assert code == 0, (name, err)
        shown = json.loads(out)
        assert shown["info"]["run_id"] == "cli-run-1", name
    assert shown["config"] == {"opt": {"lr": 0.5}, "note": "two\nlines"}
    assert shown["summary"]["training"]["loss"]["last"] == 1.0
    assert shown["summary"]["validation"]["acc"]["last"] == "nan"  # JSON has no NaN: logctl's convention
    code, out, err = cli("show", "first", "--data-root", daemon.root)
    assert code == 0, err
    assert "opt.lr" in out and "training/loss" in out and "validation/acc" in out
    # A multi-line value stays on one line of the table.
    assert '"two\\nlines"' in out


def test_exit_codes_as_logctl(tmp_path):
    code, _, err = cli("status", "--socket", str(tmp_path / "none.sock"))
    assert code == 3 and "cannot connect" in err
    code, _, err = cli("show", "nothing", "--data-root", str(tmp_path))
    assert code == 4 and "nothing" in err
    code, _, _ = cli("bogus")
    assert code == 2
    code, _, _ = cli()
    assert code == 2
    code, out, _ = cli("runs", "--data-root", str(tmp_path / "absent"), "--json")
    assert code == 0 and json.loads(out) == []
