"""The client's front ends against the real logd binary: the tensorboardX-style SummaryWriter,
the logging handler, the yProv4ML-style module functions, the memory and discard sinks, Run as
a context manager, ranks and shared run ids from the environment, and the control client.

Every test reads what logd wrote (main.log, metrics.csv, config.yaml, run.yaml, artifacts/,
models/) and checks concrete contents."""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import re
import time
from datetime import datetime, timezone
from typing import Any, Iterator, List

import pytest
import yaml

import logd
from conftest import metric_rows, read_text

# A main.log line: <time> <LEVEL> [rank <R>] <logger>: <message>
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) ([A-Z]+) \[rank (\d+)\] ([^:]+): (.*)$")
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# Launcher variables that would change run ids and ranks (a test run under SLURM or torchrun).
LAUNCHER_ENV = ["LOGD_RUN_ID", "TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", "SLURM_STEP_ID", "RANK",
                "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "LOCAL_RANK", "SLURM_LOCALID",
                "OMPI_COMM_WORLD_LOCAL_RANK", "WORLD_SIZE", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE",
                "PMI_SIZE", "LOGD_SOCKET"]


def load_yaml(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def log_lines(run_dir: str) -> List[str]:
    return read_text(os.path.join(run_dir, "main.log")).splitlines()


def parsed_log(run_dir: str) -> List[tuple]:
    """(level, rank, logger, message) of every record line of main.log (not continuations)."""
    out = []
    for line in log_lines(run_dir):
        m = LOG_LINE.match(line)
        if m:
            out.append((m.group(2), int(m.group(3)), m.group(4), m.group(5)))
    return out


def iso_ms(seconds: float) -> str:
    """ISO-8601 UTC with milliseconds truncated, as logd writes times."""
    dt = datetime.fromtimestamp(int(seconds), tz=timezone.utc)
    ms = min(999, int((seconds - int(seconds)) * 1000))
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % ms


@pytest.fixture(autouse=True)
def clean_env_and_current_run(monkeypatch, tmp_path) -> Iterator[None]:
    """No launcher variables leak in; no module-level run is left current, even on failure; a
    SummaryWriter's relative logdir (created as tensorboardX does) lands in a temp folder, never
    in the repository."""
    monkeypatch.chdir(tmp_path)
    for name in LAUNCHER_ENV:
        monkeypatch.delenv(name, raising=False)
    if logd.current_run() is not None:
        logd.end_run(timeout=2)
    try:
        yield
    finally:
        if logd.current_run() is not None:
            logd.end_run(timeout=5)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Puts the root logger and the loggers these tests use back as they were."""
    root = logging.getLogger()
    names = ["train", "train.data", "data"]
    saved_root = (list(root.handlers), root.level)
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level,
                 logging.getLogger(n).propagate) for n in names}
    try:
        yield
    finally:
        for h in list(root.handlers):
            if h not in saved_root[0]:
                root.removeHandler(h)
                h.close()
        root.setLevel(saved_root[1])
        for n, (handlers, level, propagate) in saved.items():
            lg = logging.getLogger(n)
            for h in list(lg.handlers):
                if h not in handlers:
                    lg.removeHandler(h)
                    h.close()
            lg.setLevel(level)
            lg.propagate = propagate


# --------------------------------------------------------------------------------------------
# Duck-typed torch stand-ins (what torch_helpers reads)
# --------------------------------------------------------------------------------------------


class Scalar0d:
    """A 0-d tensor: float() would fail, .item() gives the number."""

    def __init__(self, value: float) -> None:
        self.value = value

    def item(self) -> float:
        return self.value

    def __float__(self) -> float:
        raise TypeError("use item()")


class Param:
    def __init__(self, *shape: int) -> None:
        self.shape = shape
        self.dtype = "torch.float32"
        self.requires_grad = True

    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def element_size(self) -> int:
        return 4


class Linear:
    def __init__(self, n_in: int, n_out: int) -> None:
        self.weight = Param(n_out, n_in)
        self.bias = Param(n_out)

    def parameters(self, recurse: bool = True):
        return iter([self.weight, self.bias])

    def named_children(self):
        return iter([])


class Net:
    def __init__(self) -> None:
        self.fc = Linear(10, 5)

    def parameters(self, recurse: bool = True):
        return iter([self.fc.weight, self.fc.bias] if recurse else [])

    def named_children(self):
        return iter([("fc", self.fc)])

    def named_modules(self):
        return iter([("", self), ("fc", self.fc)])


class RandomSampler:
    """Named like torch's: a class name containing "Random" means shuffling."""


class Loader:
    """A DataLoader look-alike: 100 samples, batches of 16 (7 batches), 2 workers, shuffled."""

    def __init__(self) -> None:
        self.dataset = list(range(100))
        self.batch_size = 16
        self.num_workers = 2
        self.sampler = RandomSampler()

    def __len__(self) -> int:
        return 7


class MyContext(enum.Enum):
    PREPROCESSING = 3


# --------------------------------------------------------------------------------------------
# SummaryWriter
# --------------------------------------------------------------------------------------------


def test_summary_writer_starts_and_finishes_its_own_run(daemon, monkeypatch):
    monkeypatch.setenv("LOGD_SOCKET", daemon.socket)
    assert logd.current_run() is None
    before = time.time()
    w = logd.SummaryWriter(logdir="runs/exp1", comment="_a")
    assert w.get_logdir() == "runs/exp1"
    assert w.run.experiment == "runs" and w.run.name == "exp1_a"
    assert logd.current_run() is None  # the writer's run is its own, not the current one
    w.add_scalar("loss", 0.5, 1)
    w.add_scalar("lr", 0.1)  # no global_step
    w.add_scalar("wall", 2.0, 2, walltime=1700000000.375)
    w.add_scalar("tensor", Scalar0d(3.25), 3)
    w.add_scalars("main", {"a": 1.0, "b": 2}, 4)
    w.add_text("notes", "hello there", 5)
    w.add_text("notes", "no step")
    w.add_hparams({"lr": 0.01, "batch_size": 32, "optimizer": "adam"}, {"hparam/accuracy": 0.9}, name="t1")
    # images, histograms and the rest: test_tensorboard_surface.py
    w.flush()
    w.close()
    w.close()  # a second close does nothing
    after = time.time()
    assert w.run.finished and w.run.errors == 0, w.run.last_error
    report = w.run.report
    assert report.completed and report.undelivered == 0, report

    d = daemon.run_dir("runs")
    assert os.path.basename(d).endswith("_exp1_a")
    meta = load_yaml(os.path.join(d, "run.yaml"))
    assert meta["experiment"] == "runs" and meta["name"] == "exp1_a"
    assert meta["status"] == "finished"

    rows = metric_rows(d)
    got = [(r["key"], r["step"], r["value"], r["context"], r["source"]) for r in rows]
    assert got == [
        ("loss", "1", "0.5", "training", ""),
        ("lr", "0", "0.1", "training", ""),  # no global_step: step 0, as tensorboardX records it
        ("wall", "2", "2.0", "training", ""),
        ("tensor", "3", "3.25", "training", ""),
        ("main/a", "4", "1.0", "training", ""),
        ("main/b", "4", "2.0", "training", ""),
        ("t1/hparam/accuracy", "0", "0.9", "training", ""),  # the trial's name keeps trials apart
    ]
    times = {r["key"]: r["time"] for r in rows}
    assert times["wall"] == "2023-11-14T22:13:20.375Z"  # the given walltime, not the clock
    for key, t in times.items():
        assert ISO_MS.match(t), t
        if key != "wall":
            assert iso_ms(before) <= t <= iso_ms(after + 0.001), (key, t)

    cfg = load_yaml(os.path.join(d, "config.yaml"))
    assert cfg == {"hparams": {"t1": {"lr": 0.01, "batch_size": 32, "optimizer": "adam"}}}

    assert parsed_log(d) == [("INFO", 0, "notes", "step 5: hello there"),
                             ("INFO", 0, "notes", "no step")]


def test_summary_writer_logs_into_the_current_run_and_leaves_it_open(daemon):
    run = logd.start_run(experiment="tb", name="current", socket=daemon.socket)
    w = logd.SummaryWriter(logdir="elsewhere/exp9")
    assert w.run is run
    w.add_scalar("x", 1.0, 0)
    w.add_text("tb", "from the writer", 0)
    w.close()
    assert not run.finished and logd.current_run() is run
    d = daemon.run_dir("tb")
    # close() flushed: the scalar is on disk and the run is still running.
    assert [(r["key"], r["step"]) for r in metric_rows(d)] == [("x", "0")]
    assert load_yaml(os.path.join(d, "run.yaml"))["status"] == "running"
    # The run still accepts records after the writer is closed.
    run.log_metric("after_close", 2.0, 1)
    logd.log_metric("module_level", 3.0, logd.Context.TRAINING, 2)
    report = logd.end_run()
    assert report is not None and report.completed and report.undelivered == 0, report
    assert logd.current_run() is None
    rows = metric_rows(d)
    assert [(r["key"], r["step"], r["value"]) for r in rows] == [
        ("x", "0", "1.0"), ("after_close", "1", "2.0"), ("module_level", "2", "3.0")]
    assert parsed_log(d) == [("INFO", 0, "tb", "step 0: from the writer")]
    assert load_yaml(os.path.join(d, "run.yaml"))["status"] == "finished"
    assert not os.path.exists(os.path.join(daemon.root, "elsewhere"))  # no run of its own


def test_summary_writer_as_a_context_manager(daemon, monkeypatch):
    monkeypatch.setenv("LOGD_SOCKET", daemon.socket)
    with logd.SummaryWriter(log_dir="cm/own") as w:  # torch.utils.tensorboard's spelling
        w.add_scalar("y", 4.0, 7)
    assert w.run.finished
    d = daemon.run_dir("cm")
    meta = load_yaml(os.path.join(d, "run.yaml"))
    assert (meta["experiment"], meta["name"], meta["status"]) == ("cm", "own", "finished")
    assert [(r["key"], r["step"], r["value"]) for r in metric_rows(d)] == [("y", "7", "4.0")]

    # Inside a current run: the with block flushes but leaves the run open.
    run = logd.start_run(experiment="cm2", name="shared", socket=daemon.socket)
    with logd.SummaryWriter() as w2:
        w2.add_scalar("z", 5.0, 1)
    assert w2.run is run and not run.finished
    d2 = daemon.run_dir("cm2")
    assert [(r["key"], r["value"]) for r in metric_rows(d2)] == [("z", "5.0")]
    assert load_yaml(os.path.join(d2, "run.yaml"))["status"] == "running"
    logd.end_run()
    assert load_yaml(os.path.join(d2, "run.yaml"))["status"] == "finished"


def test_summary_writer_without_write_to_disk_writes_nothing(daemon, monkeypatch):
    monkeypatch.setenv("LOGD_SOCKET", daemon.socket)
    w = logd.SummaryWriter(logdir="quiet/exp", write_to_disk=False)
    w.add_scalar("x", 1.0, 0)
    w.close()
    report = w.run.report
    assert report.undelivered == 0 and report.logged == report.acknowledged == 3  # start, metric, end
    assert logd.control.flush(socket=daemon.socket)["durable"] is True
    assert not os.path.exists(os.path.join(daemon.root, "quiet"))


def test_summary_writer_after_a_with_start_run_block_gets_its_own_run(daemon, monkeypatch):
    monkeypatch.setenv("LOGD_SOCKET", daemon.socket)
    with logd.start_run(experiment="first", name="block", socket=daemon.socket) as run:
        run.log_metric("a", 1.0, 0)
    assert run.finished
    w = logd.SummaryWriter(logdir="second/writer")
    assert w.run is not run  # (closing a writer on the finished run would wait out flush's 10 s)
    w.add_scalar("b", 2.0, 0)
    w.close()
    assert [(r["key"], r["value"]) for r in metric_rows(daemon.run_dir("second"))] == [("b", "2.0")]


def test_summary_writer_bad_values_never_raise():
    run = logd.Run(experiment="bad", name="tb", sink="memory")
    try:
        w = logd.SummaryWriter(run=run)
        w.add_scalar("ok", 1.0, 0)
        w.add_scalar("text", "not a number", 1)
        w.add_scalar("none", None, 2)
        w.add_scalar("step", 1.0, "three")
        w.add_text("notes", "hello", "four")
        w.add_scalar("ok", 2.0, 5)
    finally:
        run.finish()
    assert [r["value"] for r in run.records if r["kind"] == "metric"] == [1.0, 2.0]
    assert run.errors == 4


# --------------------------------------------------------------------------------------------
# logging
# --------------------------------------------------------------------------------------------


def test_logging_handler_levels_loggers_and_tracebacks(daemon, restore_logging):
    run = logd.Run(experiment="logging", name="handler", socket=daemon.socket)
    handler = logd.LoggingHandler(run)
    root = logging.getLogger()
    root.addHandler(handler)
    logger = logging.getLogger("train")
    logger.setLevel(logging.INFO)
    logger.info("epoch %d starting", 1)
    logger.debug("filtered out by the logger's level")
    logger.warning("slow batch")
    logging.getLogger("train.data").info("loaded %s", "mnist")
    try:
        raise ValueError("bad value")
    except ValueError:
        logger.exception("step failed")
    logger.critical("giving up")
    report = run.finish()
    assert report.completed and report.undelivered == 0 and run.errors == 0, (report, run.last_error)

    d = daemon.run_dir("logging")
    assert parsed_log(d) == [
        ("INFO", 0, "train", "epoch 1 starting"),
        ("WARNING", 0, "train", "slow batch"),
        ("INFO", 0, "train.data", "loaded mnist"),
        ("ERROR", 0, "train", "step failed"),
        ("CRITICAL", 0, "train", "giving up"),
    ]
    lines = log_lines(d)
    assert all(LOG_LINE.match(l) or l.startswith("    ") for l in lines), lines
    assert not any("filtered out" in l for l in lines)
    i = next(n for n, l in enumerate(lines) if l.endswith("train: step failed"))
    tb = []
    for line in lines[i + 1:]:
        if not line.startswith("    "):
            break
        tb.append(line)
    assert tb[0] == "    Traceback (most recent call last):"
    assert any(l.startswith("      File ") and __file__.rstrip("c") in l for l in tb), tb
    assert tb[-1] == "    ValueError: bad value"
    assert lines[i + 1 + len(tb)].endswith("CRITICAL [rank 0] train: giving up")
    meta = load_yaml(os.path.join(d, "run.yaml"))
    assert meta["records"]["log_lines"] == 5


def test_set_logger_configures_the_root_logger_once(daemon, restore_logging, capsys):
    run = logd.Run(experiment="setlogger", name="s", socket=daemon.socket)
    root = logd.set_logger(run)
    assert root is logging.getLogger() and root.level == logging.INFO
    n = len(root.handlers)
    logd.set_logger(run)  # idempotent: no second file handler, no second console
    assert len(root.handlers) == n
    mine = [h for h in root.handlers if isinstance(h, logd.LoggingHandler)]
    assert len(mine) == 1 and mine[0].run is run
    logging.getLogger("train").info("through set_logger")
    logging.getLogger("train").debug("below INFO")
    report = run.finish()
    assert report.completed and report.undelivered == 0
    assert ":INFO: through set_logger" in capsys.readouterr().err
    assert parsed_log(daemon.run_dir("setlogger")) == [("INFO", 0, "train", "through set_logger")]


def test_handler_without_a_run_follows_the_current_run(daemon, restore_logging):
    handler = logd.LoggingHandler()  # run=None
    logging.getLogger().addHandler(handler)
    logger = logging.getLogger("train")
    logger.setLevel(logging.INFO)
    logger.info("no run yet: dropped quietly")
    a = logd.start_run(experiment="follow", name="a", socket=daemon.socket)
    logger.info("into a")
    logd.end_run()
    logger.info("between runs: dropped quietly")
    b = logd.start_run(experiment="follow", name="b", socket=daemon.socket)
    logger.warning("into b")
    report = logd.end_run()
    assert report.completed and report.undelivered == 0
    assert a.errors == 0 and b.errors == 0
    dirs = daemon.run_dirs("follow")
    assert len(dirs) == 2
    by_name = {load_yaml(os.path.join(d, "run.yaml"))["name"]: d for d in dirs}
    assert parsed_log(by_name["a"]) == [("INFO", 0, "train", "into a")]
    assert parsed_log(by_name["b"]) == [("WARNING", 0, "train", "into b")]


def test_handler_never_raises_into_the_caller_when_the_run_is_finished(daemon, restore_logging):
    run = logd.Run(experiment="late", name="l", socket=daemon.socket)
    handler = logd.LoggingHandler(run)
    handled: List[logging.LogRecord] = []
    handler.handleError = handled.append  # type: ignore[assignment]  # would print "--- Logging error ---"
    logging.getLogger().addHandler(handler)
    logger = logging.getLogger("train")
    logger.setLevel(logging.INFO)
    logger.info("before the end")
    run.finish()
    logger.info("after the end")
    logger.error("multi\nline after the end")
    try:
        raise KeyError("x")
    except KeyError:
        logger.exception("with traceback after the end")
    assert handled == []
    logd.control.flush(socket=daemon.socket)
    d = daemon.run_dir("late")
    assert parsed_log(d) == [("INFO", 0, "train", "before the end")]
    assert load_yaml(os.path.join(d, "run.yaml"))["status"] == "finished"


def test_calls_after_finish_change_nothing(daemon):
    run = logd.Run(experiment="afterfinish", name="a", socket=daemon.socket)
    run.log_metric("x", 1.0, 0)
    first = run.finish()
    assert first.undelivered == 0
    run.log("too late")
    run.log_metric("x", 2.0, 1)
    run.log_params({"late": True})
    second = run.finish()
    assert (second.logged, second.acknowledged, second.undelivered) == (first.logged, first.acknowledged, 0)


# --------------------------------------------------------------------------------------------
# yProv4ML-style module functions
# --------------------------------------------------------------------------------------------


def test_module_level_api_like_yprov4ml(daemon, tmp_path):
    weights = tmp_path / "weights.txt"
    weights.write_bytes(b"0.1 0.2 0.3\n")
    data = tmp_path / "train.csv"
    data.write_bytes(b"x,y\n1,2\n")
    run = logd.start_run(experiment="prov", name="yprov", socket=daemon.socket,
                         prov_user_namespace="www.example.org", provenance_save_dir="prov",
                         save_after_n_logs=100, collect_all_processes=False)
    try:
        assert logd.current_run() is run
        logd.log_param("lr", 0.01)
        logd.log_params({"batch_size": 32, "optimizer": {"name": "sgd", "momentum": 0.9}})
        logd.log_metric("loss", 0.5, logd.Context.TRAINING, step=3)
        logd.log_metric("acc", 0.9, logd.Context.VALIDATION, 3, "head")
        logd.log_metric("rows", 7.0, MyContext.PREPROCESSING, step=1)
        logd.log_metrics({"f1": 0.75, "recall": 0.5}, logd.Context.TESTING, 4)
        assert logd.log_artifact(str(weights))
        assert logd.log_artifact("notes.txt", "some text content")
        assert logd.log_artifact("blob.bin", b"\x00\x01\x02")
        assert logd.log_artifact(data, is_input=True, log_copy_in_prov_directory=False)
        logd.log_dataset(Loader(), "train")
        logd.log_model(Net(), "net", log_as_artifact=False)
        logd.log_model(Net(), "net_layers", log_model_layers=True, log_as_artifact=False)
        assert logd.flush()
        assert run.errors == 0, run.last_error
    finally:
        report = logd.end_run()
    assert report is not None and report.completed and report.undelivered == 0 and report.dropped == 0, report
    assert logd.current_run() is None and run.finished

    d = daemon.run_dir("prov")
    rows = metric_rows(d)
    assert [(r["key"], r["context"], r["step"], r["value"], r["source"]) for r in rows] == [
        ("loss", "training", "3", "0.5", ""),
        ("acc", "validation", "3", "0.9", "head"),
        ("rows", "preprocessing", "1", "7.0", ""),
        ("f1", "testing", "4", "0.75", ""),
        ("recall", "testing", "4", "0.5", ""),
    ]
    assert load_yaml(os.path.join(d, "config.yaml")) == {
        "lr": 0.01, "batch_size": 32, "optimizer": {"name": "sgd", "momentum": 0.9}}

    def artifact(name: str) -> bytes:
        with open(os.path.join(d, "artifacts", name), "rb") as f:
            return f.read()

    assert artifact("weights.txt") == b"0.1 0.2 0.3\n"
    assert artifact("notes.txt") == b"some text content"
    assert artifact("blob.bin") == b"\x00\x01\x02"
    assert sorted(os.listdir(os.path.join(d, "artifacts"))) == ["blob.bin", "notes.txt", "weights.txt"]
    meta = load_yaml(os.path.join(d, "run.yaml"))
    arts = {a["file_name"]: a for a in meta["artifacts"]}
    assert {n: (a["role"], a["mode"], a["status"]) for n, a in arts.items()} == {
        "weights.txt": ("output", "copy", "copied"),
        "notes.txt": ("output", "copy", "copied"),
        "blob.bin": ("output", "copy", "copied"),
        "train.csv": ("input", "reference", "recorded"),
    }
    assert arts["weights.txt"]["original_path"] == str(weights)
    assert arts["train.csv"]["original_path"] == str(data) and arts["train.csv"]["size"] == 8
    assert arts["train.csv"]["sha256"] == hashlib.sha256(b"x,y\n1,2\n").hexdigest()
    assert arts["notes.txt"]["size"] == len(b"some text content")

    assert meta["datasets"] == [{"label": "train", "context": "training", "samples": 100, "batch_size": 16,
                                 "workers": 2, "shuffle": True, "batches": 7}]
    model = load_yaml(os.path.join(d, "models", "net", "model.yaml"))
    assert model["name"] == "net" and model["parameter_count"] == 55 and model["memory_bytes"] == 220
    assert model["layers"] == [] and model["versions"] == []  # yProv4ML's default: no layers
    layered = load_yaml(os.path.join(d, "models", "net_layers", "model.yaml"))
    assert layered["parameter_count"] == 55
    assert layered["layers"] == [{"name": "fc", "type": "Linear", "parameters": 55, "trainable": 55,
                                  "dtype": "torch.float32", "shape": [5, 10]}]
    assert meta["status"] == "finished"


def test_module_level_calls_without_a_run_do_nothing(daemon, monkeypatch, tmp_path):
    monkeypatch.setenv("LOGD_SOCKET", daemon.socket)  # a stray run would land in this daemon
    f = tmp_path / "a.txt"
    f.write_text("a")
    assert logd.current_run() is None
    assert logd.log_param("a", 1) is None
    logd.log_params({"b": 2})
    logd.log_metric("loss", 0.5, logd.Context.TRAINING, step=3)
    logd.log_metric("acc", 0.9, logd.Context.VALIDATION, 3, "head")
    logd.log_metrics({"x": 1.0}, logd.Context.TESTING, 1)
    assert logd.log_artifact(str(f)) is False
    assert logd.log_artifact("notes.txt", "text") is False
    logd.log_dataset(Loader(), "train")
    logd.log_model(Net(), "net", log_as_artifact=False)
    assert logd.save_model_version(str(f), "net") is False
    assert logd.flush() is True
    assert logd.end_run() is None
    assert logd.current_run() is None
    logd.control.flush(socket=daemon.socket)
    assert [n for n in os.listdir(daemon.root) if not n.startswith(".")] == []
    assert logd.control.status(socket=daemon.socket)["runs"] == []


# --------------------------------------------------------------------------------------------
# Sinks
# --------------------------------------------------------------------------------------------


def test_memory_sink_keeps_the_decoded_records(tmpdir_short):
    run = logd.Run(experiment="mem", name="m", config={"lr": 0.1}, tags=["t"], seed=7, sink="memory",
                   socket=os.path.join(tmpdir_short, "never.sock"))
    run.log_metric("loss", 0.5, 1)
    run.log_metric("loss", 0.25, 2)
    run.log("hello", "WARNING", "train")
    report = run.finish()
    assert report.completed and report.undelivered == 0 and report.logged == report.acknowledged == 6
    assert not os.path.exists(os.path.join(tmpdir_short, "never.sock"))
    kinds = [r["kind"] for r in run.records]
    assert kinds == ["run_start", "params", "metric_key", "metric", "metric", "log", "run_end"]
    start, params, key, m1, m2, log, end = run.records
    assert (start["experiment"], start["name"], start["tags"], start["seed"]) == ("mem", "m", ["t"], 7)
    assert start["run_id"] == run.run_id and start["rank"] == 0 and start["world_size"] == 1
    assert params["params"] == {"lr": 0.1}
    assert (key["id"], key["key"], key["context"], key["source"]) == (1, "loss", "training", "")
    assert [(m["key_id"], m["step"], m["value"]) for m in (m1, m2)] == [(1, 1, 0.5), (1, 2, 0.25)]
    assert (log["level"], log["logger"], log["message"]) == ("WARNING", "train", "hello")
    assert end["status"] == "finished"
    assert start["start_time"] <= m1["timestamp"] <= m2["timestamp"] <= log["timestamp"] <= end["timestamp"]


def test_none_sink_delivers_nothing_but_acknowledges_everything(tmpdir_short):
    run = logd.Run(experiment="none", name="n", config={"a": 1}, sink="none",
                   socket=os.path.join(tmpdir_short, "never.sock"))
    for step in range(1000):
        run.log_metric("x", float(step), step)
    run.log("discarded")
    assert run.flush(timeout=5)
    report = run.finish()
    assert run.records == []
    assert report.completed and report.logged == report.acknowledged == 1004 and report.undelivered == 0
    assert report.dropped == 0


def test_unknown_sink_is_refused():
    with pytest.raises(ValueError):
        logd.Run(sink="disk")


# --------------------------------------------------------------------------------------------
# Run as a context manager
# --------------------------------------------------------------------------------------------


def test_run_context_manager_failed_on_exception_finished_otherwise(daemon):
    with pytest.raises(RuntimeError, match="boom"):
        with logd.Run(experiment="ctx", name="bad", socket=daemon.socket) as bad:
            bad.log_metric("x", 1.0, 0)
            raise RuntimeError("boom")
    assert bad.finished
    with logd.Run(experiment="ctx", name="good", socket=daemon.socket) as good:
        good.log_metric("x", 2.0, 0)
    assert good.finished
    with pytest.raises(KeyboardInterrupt):
        with logd.Run(experiment="ctx", name="interrupted", socket=daemon.socket):
            raise KeyboardInterrupt
    metas = {}
    for d in daemon.run_dirs("ctx"):
        meta = load_yaml(os.path.join(d, "run.yaml"))
        metas[meta["name"]] = meta
    assert {n: m["status"] for n, m in metas.items()} == {
        "bad": "failed", "good": "finished", "interrupted": "killed"}
    assert metas["bad"]["producers"][0]["status"] == "failed"
    assert metas["bad"]["records"]["metrics"] == 1


# --------------------------------------------------------------------------------------------
# Ranks and shared run ids
# --------------------------------------------------------------------------------------------


def test_env_ranks_and_run_id_land_in_run_yaml(daemon, monkeypatch):
    monkeypatch.setenv("LOGD_RUN_ID", "job-42")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "1")
    run = logd.Run(experiment="env", name="ranked", socket=daemon.socket)
    assert (run.run_id, run.rank, run.local_rank, run.world_size) == ("job-42", 3, 1, 1)
    run.log_metric("loss", 1.0, 0)
    run.log("from rank three")
    run.finish()
    d = daemon.run_dir("env")
    meta = load_yaml(os.path.join(d, "run.yaml"))
    assert meta["run_id"] == "job-42" and meta["world_size"] == 1 and meta["status"] == "finished"
    [p] = meta["producers"]
    assert (p["rank"], p["local_rank"], p["world_size"], p["pid"]) == (3, 1, 1, os.getpid())
    assert [r["rank"] for r in metric_rows(d)] == ["3"]
    assert parsed_log(d) == [("INFO", 3, "main", "from rank three")]


def test_ddp_ranks_with_one_run_id_share_one_directory(daemon, monkeypatch):
    monkeypatch.setenv("LOGD_RUN_ID", "ddp-job-1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    runs = {}
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        runs[rank] = logd.Run(experiment="ddp", name="rank%d" % rank, socket=daemon.socket)
        assert runs[rank].run_id == "ddp-job-1" and runs[rank].rank == rank
    for step in range(10):
        for rank, run in runs.items():
            run.log_metric("loss_r%d" % rank, float(step), step)
    runs[0].log_metric("shared", 0.5, 10)
    runs[1].log_metric("shared", 0.25, 10)
    runs[1].log("rank one says hi", "INFO", "train")
    assert runs[1].finish().undelivered == 0
    d = daemon.run_dir("ddp")  # exactly one directory for both ranks
    # One of two ranks has ended: the run waits for the other.
    assert load_yaml(os.path.join(d, "run.yaml"))["status"] == "running"
    assert runs[0].finish().undelivered == 0
    assert daemon.run_dirs("ddp") == [d]

    meta = load_yaml(os.path.join(d, "run.yaml"))
    assert meta["run_id"] == "ddp-job-1" and meta["world_size"] == 2 and meta["status"] == "finished"
    assert sorted((p["rank"], p["local_rank"], p["world_size"], p["status"]) for p in meta["producers"]) == [
        (0, 0, 2, "finished"), (1, 1, 2, "finished")]
    assert len({p["session"] for p in meta["producers"]}) == 2
    rows = metric_rows(d)
    assert {r["rank"] for r in rows} == {"0", "1"}
    for rank in (0, 1):
        mine = [r for r in rows if r["key"] == "loss_r%d" % rank]
        assert [int(r["step"]) for r in mine] == list(range(10))
        assert {r["rank"] for r in mine} == {str(rank)}
    assert sorted((r["rank"], r["value"]) for r in rows if r["key"] == "shared") == [("0", "0.5"), ("1", "0.25")]
    assert parsed_log(d) == [("INFO", 1, "train", "rank one says hi")]
    assert meta["records"]["metrics"] == 22


# --------------------------------------------------------------------------------------------
# Control client
# --------------------------------------------------------------------------------------------


def test_control_status_and_flush(daemon):
    run = logd.Run(experiment="ctl", name="c", socket=daemon.socket)
    run.log_metric("x", 1.0, 0)
    assert run.flush()
    st = logd.control.status(socket=daemon.socket)
    assert list(st)[:10] == ["version", "pid", "uptime_s", "socket", "data_root", "disk_free_bytes",
                             "connections", "runs", "totals", "writer"]
    assert st["version"].startswith("logd ") and st["pid"] == daemon.proc.pid
    assert st["socket"] == daemon.socket and st["data_root"] == daemon.root
    producers = [c for c in st["connections"] if c["role"] == "producer"]
    assert len(producers) == 1
    [p] = producers
    assert (p["client"], p["client_version"], p["pid"]) == ("logd-python", logd.__version__, os.getpid())
    assert p["session"] == run.session and p["run_id"] == run.run_id
    controls = [c for c in st["connections"] if c["role"] == "control"]
    assert controls and controls[0]["client"] == "logd-python" and controls[0]["run_id"] is None
    [r] = st["runs"]
    assert (r["run_id"], r["experiment"], r["name"], r["status"], r["producers"]) == (
        run.run_id, "ctl", "c", "running", 1)
    assert os.path.join(daemon.root, r["directory"]) == daemon.run_dir("ctl")

    run.log_metric("x", 2.0, 1)
    time.sleep(0.05)  # let the sender hand it over; the barrier covers what logd has received
    body = logd.control.flush(socket=daemon.socket)
    assert body["durable"] is True and isinstance(body["records_written"], int)
    run.finish()
    assert [r["value"] for r in metric_rows(daemon.run_dir("ctl"))] == ["1.0", "2.0"]
    deadline = time.monotonic() + 5  # the daemon sees the producer's close asynchronously
    while True:
        after = logd.control.status(socket=daemon.socket)
        producers = [c for c in after["connections"] if c["role"] == "producer"]
        if not producers or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert producers == []
    assert [r["status"] for r in after["runs"] if r["run_id"] == run.run_id] in ([], ["finished"])
    assert after["totals"]["malformed_frames"] == 0


def test_control_error_without_a_daemon(tmpdir_short):
    with pytest.raises(logd.control.ControlError, match="cannot connect"):
        logd.control.status(socket=os.path.join(tmpdir_short, "none.sock"), timeout=1)
