"""TensorBoard event files written by logd, read back with TensorBoard's own readers (the
``tensorboard`` package): every scalar with its step, value and wall time, main.log as text, the
config as hparams; the same after a kill -9 of logd mid-run and the client's resend; and
``logctl export tensorboard`` for a run already on disk.

docs/ON_DISK_FORMAT.md, "TensorBoard event files", is the contract these tests hold.
"""

from __future__ import annotations

import glob
import json
import logging
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from typing import Dict, List, Tuple

import pytest

import logd
from conftest import metric_rows, read_text

if os.environ.get("CI") == "true":
    import tensorboard  # noqa: F401  # CI installs it (scripts/requirements-test.txt): missing is a failure
else:
    pytest.importorskip("tensorboard")
from tensorboard import context as tb_context  # noqa: E402
from tensorboard.backend.event_processing import data_provider  # noqa: E402
from tensorboard.backend.event_processing import plugin_event_accumulator as pea  # noqa: E402
from tensorboard.backend.event_processing import plugin_event_multiplexer as pem  # noqa: E402
from tensorboard.compat.proto import event_pb2  # noqa: E402
from tensorboard.compat.tensorflow_stub import errors as tb_errors  # noqa: E402
from tensorboard.compat.tensorflow_stub import pywrap_tensorflow  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402


# -- reading -------------------------------------------------------------------------------------


def event_files(run_dir: str) -> List[str]:
    return sorted(p for p in glob.glob(os.path.join(run_dir, "*")) if "tfevents" in os.path.basename(p))


def read_records(path: str) -> List[bytes]:
    """Every record of one file with TensorBoard's own TFRecord reader; fails on any
    DataLossError (bad CRC, torn record) and on bytes left after the last whole record."""
    reader = pywrap_tensorflow.PyRecordReader_New(path, 0, None, None)
    records = []
    while True:
        try:
            reader.GetNext()
        except tb_errors.OutOfRangeError:
            break
        except tb_errors.DataLossError as e:  # what TensorBoard reports as data loss
            pytest.fail("data loss in %s after %d records: %s" % (path, len(records), e))
        records.append(reader.record())
    # TFRecord: 8-byte length, 4-byte CRC, data, 4-byte CRC. Nothing may follow the last record.
    assert sum(len(r) + 16 for r in records) == os.path.getsize(path), "%s: bytes after the last record" % path
    return records


def accumulator(run_dir: str) -> pea.EventAccumulator:
    """TensorBoard's per-run reader, keeping every event (no reservoir sampling)."""
    acc = pea.EventAccumulator(run_dir, size_guidance={pea.TENSORS: 0})
    acc.Reload()
    return acc


def csv_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def expected_tag(row: Dict[str, str]) -> str:
    tag = row["key"] if not row["context"] else row["context"] + "/" + row["key"]
    if row["source"]:
        tag += "/" + row["source"]
    if row["rank"] != "0":
        tag += "/rank" + row["rank"]
    return tag


def as_float32(v: float) -> float:
    """What TensorBoard holds of a scalar: the float32 nearest the double (inf past its range)."""
    try:
        return struct.unpack("<f", struct.pack("<f", v))[0]
    except OverflowError:
        return math.copysign(math.inf, v)


def same_value(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == as_float32(b)


def check_scalars(run_dir: str) -> int:
    """Every metrics.csv row comes back from TensorBoard exactly once, with its tag, step (its row
    number when it has none), value (the double as float32: what TensorBoard holds) and wall time
    (the row's millisecond)."""
    rows = metric_rows(run_dir)
    acc = accumulator(run_dir)
    got: Dict[str, List[Tuple[int, float, float]]] = {}
    for tag in acc.Tags()[pea.TENSORS]:
        meta = acc.SummaryMetadata(tag)
        if meta.plugin_data.plugin_name != "scalars":
            continue
        got[tag] = [(e.step, tensor_util.make_ndarray(e.tensor_proto).item(), e.wall_time) for e in acc.Tensors(tag)]
    want: Dict[str, List[Tuple[int, float, float]]] = {}
    for i, r in enumerate(rows):
        step = int(r["step"]) if r["step"] else i
        want.setdefault(expected_tag(r), []).append((step, float(r["value"]), csv_time(r["time"])))
    assert sorted(got) == sorted(want)
    for tag, points in want.items():
        assert len(got[tag]) == len(points), "%s: %d events for %d rows" % (tag, len(got[tag]), len(points))
        for (s1, v1, t1), (s2, v2, t2) in zip(sorted(got[tag]), sorted(points)):
            assert s1 == s2 and same_value(v1, v2), (tag, s1, v1, s2, v2)
            # The CSV truncates the time to the ms; a double holds seconds since 1970 to ~0.24 µs.
            assert t2 - 1e-6 <= t1 < t2 + 0.001 + 1e-6, (tag, t1, t2)
    return len(rows)


def log_lines(run_dir: str) -> List[str]:
    parts = sorted(glob.glob(os.path.join(run_dir, "main.[0-9]*.log"))) + [os.path.join(run_dir, "main.log")]
    text = "".join(read_text(p) for p in parts if os.path.exists(p))
    return [line for line in text.split("\n") if line and not line.startswith("    ")]


def check_text(run_dir: str) -> None:
    acc = accumulator(run_dir)
    lines = log_lines(run_dir)
    if not lines:
        assert "logs/main.log" not in acc.Tags()[pea.TENSORS]
        return
    events = acc.Tensors("logs/main.log")
    assert acc.SummaryMetadata("logs/main.log").plugin_data.plugin_name == "text"
    assert sorted(e.step for e in events) == list(range(len(lines)))
    texts = {e.step: tensor_util.make_ndarray(e.tensor_proto).item().decode() for e in events}
    for i, line in enumerate(lines):
        # main.log: "<time> <LEVEL> [rank R] logger: message"; the text event: the same after the
        # time, as a Markdown code block (each line indented four spaces).
        assert texts[i].split("\n")[0] == "    " + line.split(" ", 1)[1], (texts[i], line)


def hparams_of(run_dir: str):
    acc = accumulator(run_dir)
    start = plugin_data_pb2.HParamsPluginData.FromString(
        acc.SummaryMetadata("_hparams_/session_start_info").plugin_data.content).session_start_info
    end = plugin_data_pb2.HParamsPluginData.FromString(
        acc.SummaryMetadata("_hparams_/session_end_info").plugin_data.content).session_end_info
    values = {}
    for k, v in start.hparams.items():
        kind = v.WhichOneof("kind")
        values[k] = getattr(v, kind)
    return values, end


# -- producing -----------------------------------------------------------------------------------


CONFIG = {"lr": 0.001, "optimizer": {"type": "AdamW", "betas": [0.9, 0.999]}, "epochs": 3, "amp": True,
          "name": "yes"}


def log_ranked_run(socket_path: str, experiment: str) -> None:
    """Two ranks of one run: contexts, a source with a space, a step-less sample, NaN, log lines."""
    runs = []
    for rank in (0, 1):
        os.environ.update({"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank), "LOGD_RUN_ID": experiment})
        try:
            runs.append(logd.Run(experiment=experiment, name="ddp", config=CONFIG if rank == 0 else None,
                                 socket=socket_path))
        finally:
            for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOGD_RUN_ID"):
                os.environ.pop(k, None)
    for step in range(300):
        for rank, run in enumerate(runs):
            run.log_metric("loss", 1.0 / (step + 1) + rank, step)
            if step % 50 == 0:
                run.log_metric("grad_norm", 0.1 * step, step, "training", "encoder.block 1")
    runs[0].log_metric("accuracy", 0.9731, 299, logd.VALIDATION)
    runs[0].log_metric("rows", 7.0, context="preprocessing")  # no step
    runs[1].log_metric("odd", float("nan"), 3, logd.TESTING)
    # Past float32's range (TensorBoard shows inf); the largest step TensorBoard's HParams tab takes
    # (its MetricValue.training_step is an int32: a step of 2**31 or more makes it fail, HTTP 500).
    runs[0].log_metric("big", 1e300, 2**31 - 1)
    runs[0].log("epoch 1 starting: lr_scale *2*", "INFO", "train")
    runs[1].log("line one\nline two", logging.WARNING, "data")
    for run in runs:
        report = run.finish(timeout=20)
        assert report.completed and report.undelivered == 0, report


def test_every_scalar_text_and_hparams_come_back_through_tensorboards_reader(daemon):
    log_ranked_run(daemon.socket, "tb-ranks")
    d = daemon.run_dir("tb-ranks")
    files = event_files(d)
    assert len(files) == 1 and re.fullmatch(r"events\.out\.tfevents\.\d+\.[A-Za-z0-9_-]+\.logd\.000001",
                                            os.path.basename(files[0])), files
    records = read_records(files[0])
    first = event_pb2.Event.FromString(records[0])
    assert first.file_version == "brain.Event:2"

    n = check_scalars(d)
    assert n == 2 * 300 + 2 * 6 + 4
    acc = accumulator(d)
    tags = set(acc.Tags()[pea.TENSORS])
    assert {"training/loss", "training/loss/rank1", "training/grad_norm/encoder.block 1",
            "training/grad_norm/encoder.block 1/rank1", "validation/accuracy", "preprocessing/rows",
            "testing/odd/rank1", "training/big"} <= tags
    check_text(d)

    hp, end = hparams_of(d)
    assert hp == {"lr": 0.001, "optimizer.type": "AdamW", "optimizer.betas": "[0.9,0.999]", "epochs": 3.0,
                  "amp": True, "name": "yes"}
    assert end.status == 1  # STATUS_SUCCESS: the run finished

    # The data provider the Scalars and HParams tabs use lists the run and its tags.
    mux = pem.EventMultiplexer()
    mux.AddRunsFromDirectory(daemon.root)
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, daemon.root)
    ctx = tb_context.RequestContext()
    scalars = provider.list_scalars(ctx, experiment_id="", plugin_name="scalars")
    [run_name] = scalars
    assert run_name == os.path.relpath(d, daemon.root)
    assert "training/loss/rank1" in scalars[run_name]
    series = provider.read_scalars(ctx, experiment_id="", plugin_name="scalars", downsample=10000,
                                   run_tag_filter=None)[run_name]["training/loss"]
    assert [p.step for p in series] == list(range(300)) and series[-1].value == as_float32(1.0 / 300)
    assert "_hparams_/session_start_info" in provider.list_tensors(ctx, experiment_id="", plugin_name="hparams")[run_name]


def test_kill9_mid_run_and_resend_leave_every_event_once_and_no_data_loss(daemon):
    run = logd.Run(experiment="tb-kill", name="k", config={"lr": 0.1}, socket=daemon.socket)
    n = 60000
    for step in range(n // 3):
        run.log_metric("loss", float(step), step)
    run.log("before the crash")
    assert run.flush(timeout=20)
    # Live: what a flush acknowledged is in the event files already, whole, while the run goes on.
    live = daemon.run_dir("tb-kill")
    for f in event_files(live):
        read_records(f)
    assert [e.step for e in accumulator(live).Tensors("training/loss")] == list(range(n // 3))
    for step in range(n // 3, 2 * n // 3):  # some in flight when logd dies
        run.log_metric("loss", float(step), step)
        if step % 1000 == 0:
            run.log("step %d" % step)
    daemon.kill9()
    for step in range(2 * n // 3, n):  # logged with no daemon at all
        run.log_metric("loss", float(step), step)
    run.log("while the daemon was down")
    daemon.start()
    report = run.finish(timeout=30)
    assert report.completed and report.undelivered == 0 and report.dropped == 0, report
    d = daemon.run_dir("tb-kill")
    for f in event_files(d):
        read_records(f)  # every file reads to its end with no data loss
    assert check_scalars(d) == n
    assert sorted(e.step for e in accumulator(d).Tensors("training/loss")) == list(range(n))
    check_text(d)
    hp, end = hparams_of(d)
    assert hp == {"lr": 0.1} and end.status == 1


def test_rotation_keeps_events_in_order_across_segments(tmpdir_short):
    from conftest import Daemon, logd_binary

    binary = logd_binary()
    if binary is None:
        pytest.skip("no logd binary")
    config = os.path.join(tmpdir_short, "logd.yaml")
    with open(config, "w") as f:
        f.write("rotate_bytes: 65536\n")
    d = Daemon(binary, tmpdir_short)
    start_with_config(d, config)
    try:
        run = logd.Run(experiment="tb-rotate", name="r", socket=d.socket)
        for step in range(20000):
            run.log_metric("loss", step * 0.5, step)
        assert run.finish(timeout=30).completed
        rd = d.run_dir("tb-rotate")
        files = event_files(rd)
        assert len(files) >= 3 and [int(f.rsplit(".", 1)[1]) for f in files] == list(range(1, len(files) + 1))
        for f in files:
            assert event_pb2.Event.FromString(read_records(f)[0]).file_version == "brain.Event:2"
        assert check_scalars(rd) == 20000
    finally:
        d.stop()


def start_with_config(d, config: str, env=None) -> None:
    err = open(d.log_path, "ab")
    d.proc = subprocess.Popen([d.binary, "--config", config, "--socket", d.socket, "--data-root", d.root,
                               "--log-level", "warning"], stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                              env=env)
    err.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert d.proc.poll() is None, d.stderr()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(d.socket)
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("logd did not start: " + d.stderr())


def test_tensorboard_false_writes_no_event_files(tmpdir_short):
    from conftest import Daemon, logd_binary

    binary = logd_binary()
    if binary is None:
        pytest.skip("no logd binary")
    config = os.path.join(tmpdir_short, "logd.yaml")
    with open(config, "w") as f:
        f.write("tensorboard: false\n")
    d = Daemon(binary, tmpdir_short)
    start_with_config(d, config)
    try:
        run = logd.Run(experiment="tb-off", name="off", socket=d.socket)
        run.log_metric("loss", 1.0, 1)
        assert run.finish(timeout=20).completed
        assert event_files(d.run_dir("tb-off")) == []
    finally:
        d.stop()


# -- logctl export -------------------------------------------------------------------------------


def logctl_binary() -> str:
    from conftest import logd_binary

    binary = logd_binary()
    if binary is None:
        pytest.skip("no logd binary")
    path = os.path.join(os.path.dirname(binary), "logctl")
    if not os.path.exists(path):
        pytest.skip("no logctl beside logd")
    return path


def test_logctl_export_writes_the_same_events_for_a_run_on_disk(tmpdir_short):
    from conftest import Daemon, logd_binary

    logctl = logctl_binary()
    config = os.path.join(tmpdir_short, "logd.yaml")
    with open(config, "w") as f:
        f.write("tensorboard: false\n")  # a run written with no event files, as before this feature
    d = Daemon(logd_binary(), tmpdir_short)
    start_with_config(d, config)
    try:
        log_ranked_run(d.socket, "tb-export")
    finally:
        d.stop()
    rd = d.run_dir("tb-export")
    assert event_files(rd) == []
    out = os.path.join(tmpdir_short, "tb")
    p = subprocess.run([logctl, "export", "tensorboard", "tb-export", "--data-root", d.root, "--out", out],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    exported = os.path.join(out, os.path.relpath(rd, d.root))
    files = event_files(exported)
    assert len(files) == 1 and "logd-export" in os.path.basename(files[0])
    read_records(files[0])
    # The exported directory is read against the run's own metrics.csv and main.log.
    for name in ("metrics.csv", "main.log"):
        shutil.copy(os.path.join(rd, name), os.path.join(exported, name))
    assert check_scalars(exported) == 2 * 300 + 2 * 6 + 4
    check_text(exported)
    hp, end = hparams_of(exported)
    assert hp["optimizer.type"] == "AdamW" and end.status == 1
    assert "1 run" in p.stderr

    # Into the run directory itself (no --out); a second export skips it (exit 0), writing nothing twice.
    p = subprocess.run([logctl, "export", "tensorboard", os.path.relpath(rd, d.root), "--data-root", d.root],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert len(event_files(rd)) == 1
    p = subprocess.run([logctl, "export", "tensorboard", os.path.relpath(rd, d.root), "--data-root", d.root],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "already exported" in p.stderr and "0 runs, 1 skipped" in p.stderr, p.stderr
    assert len(event_files(rd)) == 1
    # --force replaces the earlier export; a run with logd's live files is never touched.
    p = subprocess.run([logctl, "export", "tensorboard", os.path.relpath(rd, d.root), "--data-root", d.root, "--force"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "exported 1 run" in p.stderr, p.stderr
    assert len(event_files(rd)) == 1


# -- a headless TensorBoard --------------------------------------------------------------------


def test_headless_tensorboard_serves_the_runs_and_tags(daemon, tmpdir_short):
    """`tensorboard --logdir <data root>` on loopback, with its default loader (the Rust data server
    when tensorboard-data-server is installed, as pip installs it), lists logd's runs, their scalar
    and text tags, every scalar point, and the hparams of the run."""
    log_ranked_run(daemon.socket, "tb-serve")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tb = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    if not os.path.exists(tb):
        pytest.skip("no tensorboard command")
    log = open(os.path.join(tmpdir_short, "tb.log"), "wb")
    proc = subprocess.Popen([tb, "--logdir", daemon.root, "--host", "127.0.0.1", "--port", str(port),
                             "--reload_interval", "1"],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    log.close()
    try:
        base = "http://127.0.0.1:%d" % port
        runs: List[str] = []
        tags: Dict[str, Dict[str, object]] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # poll until it has loaded the run
            assert proc.poll() is None, read_text(os.path.join(tmpdir_short, "tb.log"))
            try:
                runs = json.load(urllib.request.urlopen(base + "/data/runs", timeout=5))
                tags = json.load(urllib.request.urlopen(base + "/data/plugin/scalars/tags", timeout=5))
            except OSError:
                pass
            if runs and runs[0] in tags:
                break
            time.sleep(0.2)
        run_name = os.path.relpath(daemon.run_dir("tb-serve"), daemon.root)
        assert runs == [run_name]
        assert {"training/loss", "training/loss/rank1", "validation/accuracy"} <= set(tags[run_name])
        query = urllib.parse.urlencode({"run": run_name, "tag": "training/loss/rank1"})
        points = json.load(urllib.request.urlopen(base + "/data/plugin/scalars/scalars?" + query, timeout=5))
        assert [p[1] for p in points] == list(range(300))  # [wall_time, step, value]
        assert points[0][2] == as_float32(1.0 + 1)
        text = json.load(urllib.request.urlopen(base + "/data/plugin/text/tags", timeout=5))
        assert text[run_name] == ["logs/main.log"]
        request = urllib.request.Request(
            base + "/data/plugin/hparams/session_groups", method="POST",
            data=json.dumps({"experimentName": "", "startIndex": 0, "sliceSize": 10, "colParams": [],
                             "allowedStatuses": ["STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING",
                                                 "STATUS_UNKNOWN"]}).encode(),
            headers={"Content-Type": "application/json"})
        [group] = json.load(urllib.request.urlopen(request, timeout=10))["sessionGroups"]
        assert group["hparams"]["optimizer.type"] == "AdamW" and group["hparams"]["lr"] == 0.001
        assert group["sessions"][0]["status"] == "STATUS_SUCCESS"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_export_turns_a_summary_writers_images_histograms_and_text_into_tensorboards_own(daemon, tmpdir_short,
                                                                                        monkeypatch, tmp_path):
    """What logd.SummaryWriter stores under artifacts/ comes back as TensorBoard images, histograms
    and text after `logctl export tensorboard`."""
    logctl = logctl_binary()
    monkeypatch.setenv("LOGD_SOCKET", daemon.socket)
    for name in ("LOGD_RUN_ID", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    w = logd.SummaryWriter("sw/a")
    chw = [[[0.0, 1.0], [0.5, 0.25]], [[0.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]]  # 3 x 2 x 2
    w.add_image("pics/one", chw, 3)
    w.add_histogram("weights", [float(i) for i in range(101)], 7)
    w.add_text("notes", "**bold** move", 2)
    w.add_scalar("loss", 0.5, 1)
    w.close()
    assert w.run.errors == 0, w.run.last_error
    rd = daemon.run_dir("sw")
    out = os.path.join(tmpdir_short, "tb")
    p = subprocess.run([logctl, "export", "tensorboard", "sw", "--data-root", daemon.root, "--out", out],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    acc = accumulator(os.path.join(out, os.path.relpath(rd, daemon.root)))
    image = acc.Tensors("pics/one")
    assert acc.SummaryMetadata("pics/one").plugin_data.plugin_name == "images"
    [event] = image
    width, height, png = tensor_util.make_ndarray(event.tensor_proto)
    assert event.step == 3 and (width, height) == (b"2", b"2")
    with open(os.path.join(rd, "artifacts", "images", "pics", "one", "3.png"), "rb") as f:
        assert png == f.read()
    assert acc.SummaryMetadata("weights").plugin_data.plugin_name == "histograms"
    [hist] = acc.Tensors("weights")
    buckets = tensor_util.make_ndarray(hist.tensor_proto)  # rows of [left edge, right edge, count]
    assert hist.step == 7 and buckets[:, 2].sum() == 101 and len(buckets) == 30
    [text] = acc.Tensors("notes")
    assert text.step == 2 and tensor_util.make_ndarray(text.tensor_proto).item() == b"**bold** move"
    assert [e.step for e in acc.Tensors("training/loss")] == [1]  # add_scalar: context "training"


def test_crash_right_before_a_checkpoint_cuts_the_event_file_back_and_continues_in_a_new_one(tmpdir_short):
    """logd SIGKILLs itself at its 4th `before-checkpoint` (debug builds' fault point): the files
    hold records the checkpoint does not cover. The restart cuts them back, writes on in the next
    segment, and the resend leaves every step once with no data loss in any file."""
    from conftest import Daemon, logd_binary

    binary = logd_binary()
    if binary is None:
        pytest.skip("no logd binary")
    config = os.path.join(tmpdir_short, "logd.yaml")
    with open(config, "w") as f:
        f.write("ack_interval_ms: 20\n")
    d = Daemon(binary, tmpdir_short)
    start_with_config(d, config, env=dict(os.environ, LOGD_FAULT_POINT="before-checkpoint:4"))
    try:
        run = logd.Run(experiment="tb-cut", name="c", socket=d.socket)
        step = 0
        deadline = time.monotonic() + 30
        while d.proc.poll() is None:  # log until logd reaches the fault point and dies
            assert time.monotonic() < deadline, "the fault point was not reached: " + d.stderr()
            for _ in range(500):
                run.log_metric("loss", float(step), step)
                step += 1
            run.flush(timeout=0.5)
        if "fault point before-checkpoint reached" not in d.stderr():
            pytest.skip("a release logd has no fault points")
        d.proc = None
        start_with_config(d, config)
        for _ in range(1000):
            run.log_metric("loss", float(step), step)
            step += 1
        report = run.finish(timeout=30)
        assert report.completed and report.undelivered == 0, report
        rd = d.run_dir("tb-cut")
        files = event_files(rd)
        assert len(files) >= 2, files  # the cut file stopped; writing went on in the next one
        for f in files:
            read_records(f)
        assert check_scalars(rd) == step
        assert sorted(e.step for e in accumulator(rd).Tensors("training/loss")) == list(range(step))
    finally:
        d.stop()
