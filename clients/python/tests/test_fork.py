"""One run id is one directory, whatever the timing: a run forked right after it starts (before
logd has seen it), multiprocessing workers with fork and with spawn, and DDP-style ranks that
start at the same instant. The racy cases are repeated so that a regression shows."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
from collections import Counter

import yaml

import logd
from conftest import HERE, metric_rows

REPEAT = 50


def _metas(daemon, experiment):
    logd.control.flush(socket=daemon.socket)
    out = []
    for d in daemon.run_dirs(experiment):
        with open(os.path.join(d, "run.yaml"), encoding="utf-8") as f:
            out.append((d, yaml.safe_load(f)))
    return out


def test_fork_right_after_start_keeps_one_directory_per_run(daemon):
    ids = []
    for i in range(REPEAT):
        run = logd.Run(experiment="forknow", name="r%d" % i, socket=daemon.socket, run_id="forknow-%d" % i)
        ids.append(run.run_id)
        pid = os.fork()  # at once: logd has probably not seen the parent's RUN_START yet
        if pid == 0:
            code = 1
            try:
                run.log_metric("child", float(i), 0)
                rep = run.finish(timeout=10)
                code = 0 if rep.completed and rep.undelivered == 0 else 2
            finally:
                os._exit(code)
        run.log_metric("parent", float(i), 0)
        assert os.waitpid(pid, 0)[1] == 0
        assert run.finish(timeout=10).undelivered == 0
    metas = _metas(daemon, "forknow")
    per_id = Counter(m["run_id"] for _, m in metas)
    assert sorted(per_id) == sorted(ids)
    split = {k: n for k, n in per_id.items() if n != 1}
    assert not split, "run ids split over several directories: %r" % split
    for d, meta in metas:
        assert len(meta["producers"]) == 2
        assert sorted(r["key"] for r in metric_rows(d)) == ["child", "parent"]


def _spawned(run):
    # A Run passed to a spawned (or forked) process joins the same run there.
    for step in range(100):
        run.log_metric("spawned", float(step), step)


def test_spawned_and_forked_workers_join_the_run_they_were_given(daemon):
    run = logd.Run(experiment="spawn", name="s", socket=daemon.socket)
    pids = {os.getpid(): "parent"}
    for method in ("spawn", "fork", "forkserver"):
        ctx = multiprocessing.get_context(method)
        procs = [ctx.Process(target=_spawned, args=(run,)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
            pids[p.pid] = method
    assert run.finish(timeout=20).undelivered == 0
    [(d, meta)] = _metas(daemon, "spawn")
    assert sorted(pids[p["pid"]] for p in meta["producers"]) == sorted(pids.values()), (pids, meta["producers"])
    assert all(p["status"] == "finished" for p in meta["producers"])
    rows = [r for r in metric_rows(d) if r["key"] == "spawned"]
    assert Counter(int(r["step"]) for r in rows) == {s: 6 for s in range(100)}


RANK = """
import os, sys, time, logd
start = float(sys.argv[1])
while time.time() < start:  # every rank starts its run at the same instant
    pass
run = logd.Run(experiment="ddpnow", name="rank" + os.environ["RANK"])
run.log_metric("loss", 1.0, 0)
run.finish(timeout=20)
"""


def test_ddp_ranks_starting_together_share_one_directory(daemon, tmp_path):
    import time

    script = tmp_path / "rank.py"
    script.write_text(textwrap.dedent(RANK))
    rounds = 10
    for r in range(rounds):
        start = time.time() + 0.5
        procs = []
        for rank in range(4):
            env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src"), LOGD_SOCKET=daemon.socket,
                       LOGD_RUN_ID="ddpnow-%d" % r, RANK=str(rank), WORLD_SIZE="4", LOCAL_RANK=str(rank))
            procs.append(subprocess.Popen([sys.executable, str(script), repr(start)], env=env))
        for p in procs:
            assert p.wait(60) == 0
    metas = _metas(daemon, "ddpnow")
    per_id = Counter(m["run_id"] for _, m in metas)
    assert per_id == {"ddpnow-%d" % r: 1 for r in range(rounds)}, per_id
    for d, meta in metas:
        assert sorted(p["rank"] for p in meta["producers"]) == [0, 1, 2, 3]
        assert meta["status"] == "finished"
