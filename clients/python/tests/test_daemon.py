"""The Python client against the real logd binary: what lands where, flush as a barrier, a
daemon restart mid-run, an absent daemon, forked workers, drops."""

from __future__ import annotations

import enum
import hashlib
import logging
import math
import multiprocessing
import os
import time

import pytest
import yaml

import logd
from conftest import metric_rows, read_text


def load_yaml(path: str):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


class Stage(enum.Enum):
    PREPROCESSING = 3


def test_records_land_in_the_right_files(daemon, tmp_path):
    config = {"optimizer": {"type": "AdamW", "lr": 0.001, "betas": [0.9, 0.999]},
              "layers": [{"type": "Conv2d", "kernel_size": 3}, {"type": "Linear", "bias": True}],
              "epochs": 10, "tricky": {"yes": "yes", "one": "1.0", "nothing": None, "nan": float("nan")},
              "path": tmp_path}
    artifact = tmp_path / "confusion.txt"
    artifact.write_bytes(b"tp fp\nfn tn\n")
    checkpoint = tmp_path / "ckpt.bin"
    checkpoint.write_bytes(os.urandom(5000))
    run = logd.Run(experiment="mnist", name="baseline", config=config, tags=["cnn"], seed=42,
                   socket=daemon.socket)
    for step in range(100):
        run.log_metric("loss", 1.0 / (step + 1), step)
    run.log_metric("accuracy", 0.97, 99, logd.VALIDATION)
    run.log_metric("grad", float("inf"), 5, "training", "encoder.block 1")
    run.log_metric("rows", 7.0, context=Stage.PREPROCESSING)
    run.log_metrics({"a": 1.0, "b": 2.0}, step=3, context=logd.TESTING)
    run.log_param("epochs", 12)  # overrides the config's 10
    run.log_params({"optimizer": {"lr": 0.0005}})  # merged: type and betas stay
    run.log("epoch 1 starting", "INFO", "train")
    run.log("line one\nline two", logging.WARNING, "data")
    assert run.log_artifact(artifact, role="input")
    assert run.log_artifact(artifact, copy=False)
    run.log_model("tiny", parameter_count=1234, memory_bytes=4936,
                  layers=[{"name": "fc", "type": "Linear", "parameters": 1234}])
    assert run.save_model_version(checkpoint, "tiny", step=10)
    assert run.save_model_version(checkpoint, "tiny", step=20)
    run.log_dataset(None, "mnist-train", samples=60000, batch_size=64, workers=4, shuffle=True)
    report = run.finish(timeout=20)
    assert report.completed and report.undelivered == 0 and report.dropped == 0, report
    assert run.errors == 0, run.last_error

    d = daemon.run_dir("mnist")
    rows = metric_rows(d)
    loss = [r for r in rows if r["key"] == "loss"]
    assert [int(r["step"]) for r in loss] == list(range(100))
    assert all(float(r["value"]) == 1.0 / (int(r["step"]) + 1) for r in loss)
    assert {(r["key"], r["context"], r["source"], r["step"], r["value"]) for r in rows if r["key"] != "loss"} == {
        ("accuracy", "validation", "", "99", "0.97"),
        ("grad", "training", "encoder.block 1", "5", "inf"),
        ("rows", "preprocessing", "", "", "7.0"),
        ("a", "testing", "", "3", "1.0"),
        ("b", "testing", "", "3", "2.0"),
    }

    cfg = load_yaml(os.path.join(d, "config.yaml"))
    assert cfg["optimizer"] == {"type": "AdamW", "lr": 0.0005, "betas": [0.9, 0.999]}
    assert cfg["layers"] == config["layers"]
    assert cfg["epochs"] == 12
    assert cfg["tricky"]["yes"] == "yes" and cfg["tricky"]["one"] == "1.0" and cfg["tricky"]["nothing"] is None
    assert math.isnan(cfg["tricky"]["nan"])
    assert cfg["path"] == str(tmp_path)

    log = read_text(os.path.join(d, "main.log"))
    assert "INFO [rank 0] train: epoch 1 starting\n" in log
    assert "WARNING [rank 0] data: line one\n    line two\n" in log

    assert (open(os.path.join(d, "artifacts", "confusion.txt"), "rb").read()) == artifact.read_bytes()
    meta = load_yaml(os.path.join(d, "run.yaml"))
    assert meta["seed"] == 42 and meta["experiment"] == "mnist" and meta["tags"] == ["cnn"]
    reference = [a for a in meta["artifacts"] if a["mode"] == "reference"][0]
    assert reference["sha256"] == hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert reference["size"] == artifact.stat().st_size
    model = load_yaml(os.path.join(d, "models", "tiny", "model.yaml"))
    assert model["parameter_count"] == 1234 and [v["version"] for v in model["versions"]] == [1, 2]
    for v in (1, 2):
        assert open(os.path.join(d, "models", "tiny", "v%d" % v, "ckpt.bin"), "rb").read() == checkpoint.read_bytes()
    assert meta["datasets"] == [{"label": "mnist-train", "context": "training", "samples": 60000, "batch_size": 64,
                                 "workers": 4, "shuffle": True, "batches": 938}]
    assert meta["status"] == "finished"
    [producer] = meta["producers"]
    assert producer["client"].startswith("logd-python") and producer["pid"] == os.getpid()


def test_flush_is_a_barrier(daemon):
    run = logd.Run(experiment="barrier", name="b", socket=daemon.socket)
    for round_ in range(3):
        for step in range(round_ * 20000, (round_ + 1) * 20000):
            run.log_metric("x", float(step), step)
        assert run.flush(timeout=20)
        # No sleep, no retry: what flush promised must already be in the file.
        steps = [int(r["step"]) for r in metric_rows(daemon.run_dir("barrier"))]
        assert steps == list(range((round_ + 1) * 20000))
    run.finish(timeout=10)


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGKILL"])
def test_daemon_restart_mid_run_loses_and_duplicates_nothing(daemon, signal_name):
    import signal

    run = logd.Run(experiment="restart", name="r", socket=daemon.socket)
    n = 60000
    for step in range(n // 3):
        run.log_metric("loss", float(step), step)
    assert run.flush(timeout=20)
    for step in range(n // 3, 2 * n // 3):  # some of these are in flight when the daemon goes
        run.log_metric("loss", float(step), step)
    daemon.stop(getattr(signal, signal_name))
    for step in range(2 * n // 3, n):  # logged while there is no daemon at all
        run.log_metric("loss", float(step), step)
    run.log("while the daemon was down")
    time.sleep(0.2)
    assert not run.connected
    daemon.start()
    report = run.finish(timeout=30)
    assert report.completed and report.undelivered == 0 and report.dropped == 0, report
    steps = [int(r["step"]) for r in metric_rows(daemon.run_dir("restart"))]
    assert sorted(steps) == list(range(n)), "lost or duplicated rows"
    assert "while the daemon was down" in read_text(os.path.join(daemon.run_dir("restart"), "main.log"))


def test_absent_daemon_finish_returns_within_its_timeout(tmpdir_short):
    run = logd.Run(experiment="nobody", name="home", socket=os.path.join(tmpdir_short, "none.sock"))
    for step in range(1000):
        run.log_metric("loss", 0.1, step)
    t0 = time.monotonic()
    report = run.finish(timeout=0.5)
    elapsed = time.monotonic() - t0
    assert elapsed < 3.0, elapsed
    assert not report.completed
    assert report.logged == 1002  # RUN_START, 1000 metrics, RUN_END
    assert report.undelivered == report.logged and report.acknowledged == 0
    assert "cannot connect" in (run._sender.last_error or "")


def _child_work(socket_path: str, index: int) -> None:
    run = logd.current_run()
    for step in range(500):
        run.log_metric("worker_loss", float(step), step, source="w%d" % index)
    # No finish: a multiprocessing child ends its session from its exit finalizers.


def test_forked_workers_log_to_their_own_sessions(daemon):
    run = logd.start_run(experiment="fork", name="f", socket=daemon.socket)
    run.log_metric("parent", 1.0, 0)
    assert run.flush(timeout=10)
    pids = []
    for i in range(2):  # plain os.fork(), as DataLoader workers are made
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for step in range(1000):
                    run.log_metric("child_loss", float(step), step, source="c%d" % i)
                rep = run.finish(timeout=10)
                code = 0 if rep.completed and rep.undelivered == 0 else 2
            finally:
                os._exit(code)
        pids.append(pid)
    silent = os.fork()  # a child that logs nothing opens no session
    if silent == 0:
        os._exit(0)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_child_work, args=(daemon.socket, i)) for i in range(2)]
    for p in procs:
        p.start()
    for step in range(1, 1000):  # the parent keeps logging meanwhile
        run.log_metric("parent", float(step), step)
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0
    assert os.waitpid(silent, 0)[1] == 0
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    report = logd.end_run(timeout=20)
    assert report.completed and report.undelivered == 0, report

    d = daemon.run_dir("fork")
    rows = metric_rows(d)
    for i in range(2):
        assert sorted(int(r["step"]) for r in rows if r["source"] == "c%d" % i) == list(range(1000))
        assert sorted(int(r["step"]) for r in rows if r["source"] == "w%d" % i) == list(range(500))
    assert sorted(int(r["step"]) for r in rows if r["key"] == "parent") == list(range(1000))
    meta = load_yaml(os.path.join(d, "run.yaml"))
    producers = meta["producers"]
    assert len(producers) == 5, [p["pid"] for p in producers]  # parent + 2 forked + 2 multiprocessing
    assert len({p["session"] for p in producers}) == 5
    assert {p["pid"] for p in producers} == {os.getpid(), *pids, *(p.pid for p in procs)}
    assert all(p["status"] == "finished" for p in producers), producers
    assert logd.control.status(socket=daemon.socket)["totals"]["malformed_frames"] == 0


def test_full_buffer_drops_newest_counts_and_reports(daemon, tmpdir_short):
    daemon.stop()
    run = logd.Run(experiment="drops", name="d", socket=daemon.socket, buffer_bytes=256 * 1024)
    for step in range(40000):  # the bound is at least two 256 KiB chunks: about 15,900 metrics
        run.log_metric("x", float(step), step)
    assert run.report.dropped > 20000
    daemon.start()
    report = run.finish(timeout=20)
    assert report.completed and report.undelivered == 0
    steps = [int(r["step"]) for r in metric_rows(daemon.run_dir("drops"))]
    assert steps == list(range(len(steps)))  # the oldest are kept, the newest dropped
    assert len(steps) + report.dropped == 40000
    meta = load_yaml(os.path.join(daemon.run_dir("drops"), "run.yaml"))
    assert meta["producers"][0]["dropped"] == report.dropped
    assert meta["records"]["dropped"] == report.dropped


def test_bad_calls_never_raise_and_lose_nothing_else(daemon):
    run = logd.Run(experiment="bad", name="b", socket=daemon.socket)
    run.log_metric("ok", 1.0, 0)
    run.log_metric("text", "not a number", 1)
    run.log_metric(["unhashable"], 1.0, 2)
    run.log_metric("big_step", 1.0, 2 ** 70)
    run.log_metric("k" * 5000, 1.0, 3)  # a key name over 4,096 bytes
    run.log_params({"weird": object(), "fine": 1})  # objects become text
    assert not run.log_artifact("/nonexistent/file")
    run.log_metric("ok", 2.0, 1)
    report = run.finish(timeout=10)
    assert report.completed and report.undelivered == 0
    assert run.errors == 5, run.last_error  # the unreadable artifact is counted too
    rows = metric_rows(daemon.run_dir("bad"))
    assert [(r["key"], r["value"]) for r in rows] == [("ok", "1.0"), ("ok", "2.0")]
    cfg = load_yaml(os.path.join(daemon.run_dir("bad"), "config.yaml"))
    assert cfg["fine"] == 1 and cfg["weird"].startswith("<object object")


def test_absent_daemon_finish_releases_every_descriptor(tmpdir_short, tmp_path):
    before = len(os.listdir("/proc/self/fd"))
    run = logd.Run(experiment="nobody", name="fds", socket=os.path.join(tmpdir_short, "none.sock"))
    f = tmp_path / "a.bin"
    f.write_bytes(b"x" * 1000)
    for _ in range(5):
        assert run.log_artifact(f)  # copy mode: each holds an open descriptor until acknowledged
    assert len(os.listdir("/proc/self/fd")) >= before + 5
    report = run.finish(timeout=0.3)
    assert report.undelivered == 7
    assert len(os.listdir("/proc/self/fd")) == before


def test_reconnect_after_everything_was_acknowledged_writes_nothing_twice(daemon):
    run = logd.Run(experiment="acked", name="a", socket=daemon.socket)
    for i in range(3):
        run.log("line %d" % i)
    assert run.flush(timeout=10)  # everything durable; the chunk stays in memory until it fills
    daemon.stop()
    daemon.start()
    run.log("line 3")
    run.log_metric("x", 1.0, 0)
    report = run.finish(timeout=20)
    assert report.completed and report.undelivered == 0, report
    log = read_text(os.path.join(daemon.run_dir("acked"), "main.log"))
    assert [line.split(": ", 1)[1] for line in log.splitlines()] == ["line 0", "line 1", "line 2", "line 3"]
    assert [r["step"] for r in metric_rows(daemon.run_dir("acked"))] == ["0"]


def test_a_bad_value_with_the_logging_handler_installed_does_not_deadlock():
    import threading

    run = logd.Run(experiment="e", name="n", sink="memory")
    handler = logd.LoggingHandler(run)
    logging.getLogger().addHandler(handler)
    try:
        t = threading.Thread(target=run.log_metric, args=("loss", None, 1), daemon=True)
        t.start()
        t.join(10)
        assert not t.is_alive(), "log_metric hung: its warning re-entered the run under the buffer lock"
    finally:
        logging.getLogger().removeHandler(handler)
    run.finish(timeout=5)
    assert run.errors == 1
    assert any(r["kind"] == "log" and "log_metric('loss')" in r["message"] for r in run.records)
