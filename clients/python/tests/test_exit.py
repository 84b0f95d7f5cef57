"""Nothing logged is lost when the interpreter exits, whatever the script forgot.

Each case is a real script run in its own interpreter against the real logd: an unclosed
SummaryWriter or Run (local to ``main()``, module-level, garbage-collected, created in a thread),
``sys.exit``, an uncaught exception, SIGTERM, and ``multiprocessing`` pools that are closed or
terminated. The oracle reads metrics.csv and run.yaml: every value logged is there exactly once,
and the run's status says how the process ended (finished / failed / killed).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Dict, List, Optional

import pytest
import yaml

import logd
from conftest import HERE, metric_rows

SRC = str(HERE.parent / "src")


def run_script(daemon, tmp_path, body: str, *, env: Optional[Dict[str, str]] = None, timeout: float = 60,
               wait: bool = True):
    """Runs ``body`` as ``python script.py`` with logd's socket in the environment."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    e = dict(os.environ)
    for name in ("LOGD_RUN_ID", "TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        e.pop(name, None)
    e["PYTHONPATH"] = SRC + os.pathsep + e.get("PYTHONPATH", "")
    e["LOGD_SOCKET"] = daemon.socket if daemon is not None else str(tmp_path / "absent.sock")
    e.update(env or {})
    proc = subprocess.Popen([sys.executable, str(script)], cwd=str(tmp_path), env=e,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if not wait:
        return proc
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode(), err.decode()


def one_run(daemon, experiment: str):
    """(rows, run.yaml) of the only run directory of ``experiment``, after a daemon flush."""
    logd.control.flush(socket=daemon.socket)
    d = daemon.run_dir(experiment)
    with open(os.path.join(d, "run.yaml"), encoding="utf-8") as f:
        meta = yaml.safe_load(f)
    return metric_rows(d), meta


def values(rows: List[dict], key: str) -> List[int]:
    return sorted(int(float(r["value"])) for r in rows if r["key"] == key)


N = 5000


def test_unclosed_writer_local_to_main_keeps_every_scalar(daemon, tmp_path):
    rc, out, err = run_script(daemon, tmp_path, """
        from logd import SummaryWriter

        def main():
            w = SummaryWriter("runs/local_main")
            for i in range(%d):
                w.add_scalar("loss", i, i)

        main()
    """ % N)
    assert rc == 0, err
    rows, meta = one_run(daemon, "runs")
    assert values(rows, "loss") == list(range(N))
    assert meta["status"] == "finished"


def test_unclosed_module_level_run_and_writer(daemon, tmp_path):
    rc, out, err = run_script(daemon, tmp_path, """
        import logd
        run = logd.Run(experiment="modlevel", name="m")
        for i in range(%d):
            run.log_metric("x", i, i)
    """ % N)
    assert rc == 0, err
    rows, meta = one_run(daemon, "modlevel")
    assert values(rows, "x") == list(range(N))
    assert meta["status"] == "finished"


def test_garbage_collected_writer_and_run_keep_everything(daemon, tmp_path):
    rc, out, err = run_script(daemon, tmp_path, """
        import gc, logd
        from logd import SummaryWriter

        def epoch():
            w = SummaryWriter("gcw/a")
            for i in range(1000):
                w.add_scalar("w", i, i)
            r = logd.Run(experiment="gcr", name="b")
            for i in range(1000):
                r.log_metric("r", i, i)

        epoch()
        gc.collect()
        junk = [[i] for i in range(100000)]  # the script goes on long after the objects are gone
        gc.collect()
    """)
    assert rc == 0, err
    rows, meta = one_run(daemon, "gcw")
    assert values(rows, "w") == list(range(1000)) and meta["status"] == "finished"
    rows, meta = one_run(daemon, "gcr")
    assert values(rows, "r") == list(range(1000)) and meta["status"] == "finished"


def test_run_created_in_a_thread_that_ended(daemon, tmp_path):
    rc, out, err = run_script(daemon, tmp_path, """
        import threading, logd

        def work():
            run = logd.Run(experiment="thread", name="t")
            for i in range(%d):
                run.log_metric("t", i, i)

        t = threading.Thread(target=work)
        t.start()
        t.join()
    """ % N)
    assert rc == 0, err
    rows, meta = one_run(daemon, "thread")
    assert values(rows, "t") == list(range(N)) and meta["status"] == "finished"


@pytest.mark.parametrize("code", [0, 3])
def test_sys_exit(daemon, tmp_path, code):
    rc, out, err = run_script(daemon, tmp_path, """
        import sys, logd
        w = logd.SummaryWriter("sysexit/s")
        for i in range(%d):
            w.add_scalar("s", i, i)
        sys.exit(%d)
    """ % (N, code))
    assert rc == code, err
    rows, meta = one_run(daemon, "sysexit")
    assert values(rows, "s") == list(range(N))
    assert meta["status"] == "finished"  # sys.exit(n) is an exit the script chose, whatever n


def test_uncaught_exception_is_failed_and_loses_nothing(daemon, tmp_path):
    rc, out, err = run_script(daemon, tmp_path, """
        import logd
        run = logd.Run(experiment="boom", name="b")
        for i in range(%d):
            run.log_metric("b", i, i)
        raise RuntimeError("boom")
    """ % N)
    assert rc == 1 and "RuntimeError: boom" in err
    rows, meta = one_run(daemon, "boom")
    assert values(rows, "b") == list(range(N))
    assert meta["status"] == "failed"



def sigterm_when_ready(proc) -> None:
    """Waits for the script's "ready" line, sends SIGTERM, and checks it exited by the signal
    (128 + SIGTERM, the status logd's handler keeps); never leaves the process behind."""
    try:
        assert proc.stdout.readline().strip() == b"ready"
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 128 + signal.SIGTERM

def test_sigterm_is_killed_and_loses_nothing(daemon, tmp_path):
    proc = run_script(daemon, tmp_path, """
        import sys, threading, logd
        run = logd.Run(experiment="term", name="t")
        for i in range(%d):
            run.log_metric("k", i, i)
        print("ready", flush=True)
        threading.Event().wait()  # until SIGTERM
    """ % N, wait=False)
    sigterm_when_ready(proc)
    rows, meta = one_run(daemon, "term")
    assert values(rows, "k") == list(range(N))
    assert meta["status"] == "killed"


def test_sigterm_while_the_main_thread_can_never_run_a_handler(daemon, tmp_path):
    # The main thread blocks SIGTERM and waits forever: a Python-level handler would never run
    # (the kernel delivers the signal to another thread; the main thread is never woken).
    proc = run_script(daemon, tmp_path, """
        import signal, threading, logd
        run = logd.Run(experiment="termblocked", name="t")
        for i in range(%d):
            run.log_metric("k", i, i)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        print("ready", flush=True)
        threading.Event().wait()
    """ % N, wait=False)
    sigterm_when_ready(proc)
    rows, meta = one_run(daemon, "termblocked")
    assert values(rows, "k") == list(range(N))
    assert meta["status"] == "killed"


def test_pools_of_silent_workers_terminate_promptly(daemon, tmp_path):
    # Workers that never log keep SIGTERM's default action: Pool.terminate (a `with Pool` block's
    # exit) can never leave one waiting for a handler, round after round.
    rc, out, err = run_script(daemon, tmp_path, """
        import multiprocessing as mp, logd
        run = logd.Run(experiment="silentpool", name="s")

        def square(x):
            return x * x

        if __name__ == "__main__":
            ctx = mp.get_context("fork")
            for i in range(40):
                with ctx.Pool(2) as pool:
                    assert pool.map(square, range(4)) == [0, 1, 4, 9]
                run.log_metric("round", i, i)
            print("done", flush=True)
    """, timeout=300)
    assert rc == 0 and out.strip() == "done", err
    rows, meta = one_run(daemon, "silentpool")
    assert values(rows, "round") == list(range(40)) and len(meta["producers"]) == 1


def test_user_sigterm_handler_is_left_alone(daemon, tmp_path):
    rc, out, err = run_script(daemon, tmp_path, """
        import os, signal, logd
        seen = []
        signal.signal(signal.SIGTERM, lambda s, f: seen.append(s))
        run = logd.Run(experiment="ownterm", name="t")
        run.log_metric("k", 1, 1)
        os.kill(os.getpid(), signal.SIGTERM)
        print("handled" if seen == [signal.SIGTERM] else "lost", flush=True)
    """)
    assert rc == 0, err
    assert out.strip() == "handled"
    rows, meta = one_run(daemon, "ownterm")
    assert values(rows, "k") == [1] and meta["status"] == "finished"


POOL = """
    import multiprocessing as mp, os, signal, time, logd

    run = logd.Run(experiment="%s", name="p")

    def work(i):
        run.log_metric("item", i, i)
        return os.getpid()

    def hold(i):
        run.log_metric("item", i, i)
        time.sleep(600)  # terminated while still working

    if __name__ == "__main__":
        ctx = mp.get_context("fork")
        pool = ctx.Pool(4)
        pids = set(pool.map(work, range(608), chunksize=1))
        %s
        run.finish()
        print(len(pids), flush=True)
"""


def test_pool_close_join_keeps_every_value(daemon, tmp_path):
    rc, out, err = run_script(daemon, tmp_path, POOL % ("poolclose", "pool.close(); pool.join()"))
    assert rc == 0, err
    rows, meta = one_run(daemon, "poolclose")
    assert values(rows, "item") == list(range(608))
    assert meta["status"] == "finished"
    assert all(p["status"] == "finished" for p in meta["producers"]), meta["producers"]


def test_pool_terminate_keeps_every_value(daemon, tmp_path):
    # Workers are terminated (SIGTERM) idle and in the middle of a task: each ends its
    # session as "killed" and delivers what it logged first.
    body = POOL % ("poolterm", "pool.map_async(hold, range(1000, 1004), chunksize=1); time.sleep(1.0); "
                               "pool.terminate(); pool.join()")
    for _ in range(3):
        daemon_dirs_before = len(daemon.run_dirs("poolterm"))
        rc, out, err = run_script(daemon, tmp_path, body)
        assert rc == 0, err
        assert len(daemon.run_dirs("poolterm")) == daemon_dirs_before + 1
    logd.control.flush(socket=daemon.socket)
    for d in daemon.run_dirs("poolterm"):
        rows = metric_rows(d)
        got = values(rows, "item")
        assert got[:608] == list(range(608)), len(got)
        with open(os.path.join(d, "run.yaml"), encoding="utf-8") as f:
            meta = yaml.safe_load(f)
        parent = [p for p in meta["producers"] if p["status"] == "finished"]
        workers = [p for p in meta["producers"] if p["status"] != "finished"]
        assert len(parent) == 1 and len(workers) == 4, meta["producers"]
        assert all(p["status"] == "killed" for p in workers), workers  # never "crashed"


def test_exit_without_logd_is_bounded(tmp_path):
    t0 = time.monotonic()
    rc, out, err = run_script(None, tmp_path, """
        import logd
        runs = [logd.Run(experiment="absent", name=str(i)) for i in range(5)]
        for r in runs:
            r.log_metric("x", 1.0, 0)
        print("done", flush=True)
    """, env={"LOGD_EXIT_TIMEOUT": "1"}, timeout=60)
    assert rc == 0 and out.strip() == "done", err
    # Five unfinished runs share one exit deadline, not five: well under 5 x 1 s.
    assert time.monotonic() - t0 < 30
