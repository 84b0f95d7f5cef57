"""logd forwards runs to a real MLflow tracking server, exactly once (docs/MLFLOW.md, issue 16).

Two logd instances play two nodes of one job (own sockets and data roots) with four DDP ranks
sharing one run id: ranks 0 and 1 on node A, 2 and 3 on node B. Node A forwards through the
config file's ``forward:`` section, node B through ``MLFLOW_TRACKING_URI``. Node A is killed
(SIGKILL, at the named fault point ``forward-batch-acked``: the server acknowledged a batch the
cursor does not record yet), the server is stopped for 10 s while node A restarts and retries,
then started again. Afterwards, through MLflow's own client: one MLflow run, every metrics.csv
row of both nodes exactly once, params, tags, status, and artifacts with matching checksums.

Needs ``mlflow`` (scripts/requirements-test.txt) and a debug logd (the fault point). Skipped
without them, except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import calendar
import collections
import csv
import glob
import hashlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from conftest import REPO, logd_binary

CI = os.environ.get("CI") == "true"

try:
    from mlflow.tracking import MlflowClient
except ImportError:  # pragma: no cover - depends on the environment
    if CI:
        raise
    pytest.skip("mlflow is not installed (pip install -r scripts/requirements-test.txt)", allow_module_level=True)

BINARY = logd_binary()
if BINARY is None:
    if CI:
        raise RuntimeError("no logd binary (LOGD_BIN) under CI")
    pytest.skip("no logd binary (set LOGD_BIN)", allow_module_level=True)

RUN_ID = "mlflow-fwd-job-1"
EXPERIMENT = "mlflow-forward"
WORLD = 4
STEPS = 1500
LONG_KEY = "k" * 300
CONFIG = {"lr": 0.01, "model": {"depth": 4, "name": "mlp", "widths": [64, 32]}, "notes": "n" * 7000}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """`mlflow server` with a SQLite backend and proxied artifacts, in its own process group."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.port = free_port()
        self.uri = "http://127.0.0.1:%d" % self.port
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        exe = os.path.join(os.path.dirname(sys.executable), "mlflow")
        cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "mlflow"]
        cmd += ["server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
                "--backend-store-uri", "sqlite:///" + os.path.join(self.base, "mlflow.db"),
                "--artifacts-destination", os.path.join(self.base, "artifacts")]
        log = open(os.path.join(self.base, "mlflow-server.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True, cwd=self.base)
        log.close()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "mlflow server exited: " + self.log_tail()
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("mlflow server did not answer: " + self.log_tail())

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        # The server's workers share its process group (we started it as a session leader).
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(30)

    def log_tail(self) -> str:
        try:
            return Path(self.base, "mlflow-server.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""


class Node:
    """One logd ("a node") with its own socket and data root."""

    def __init__(self, base: str, name: str, uri: str, via_config: bool) -> None:
        self.dir = os.path.join(base, name)
        os.makedirs(self.dir)
        self.socket = os.path.join(self.dir, "logd.sock")
        self.root = os.path.join(self.dir, "runs")
        self.uri = uri
        self.via_config = via_config
        self.proc: Optional[subprocess.Popen] = None

    def start(self, fault: Optional[str] = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LOGD_FAULT"))}
        cmd = [BINARY, "--socket", self.socket, "--data-root", self.root, "--log-level", "info"]
        if self.via_config:
            cfg = os.path.join(self.dir, "logd.yaml")
            Path(cfg).write_text(textwrap.dedent("""\
                ack_interval_ms: 20
                # Node A's run says `running` until all 4 ranks end, and only 2 are here: after
                # its restart it would be marked crashed at the grace's end, mid-test.
                resume_grace_s: 600
                forward:
                  mlflow:
                    tracking_uri: %s
                    interval_ms: 100
                """ % self.uri))
            cmd += ["--config", cfg]
        else:
            env["MLFLOW_TRACKING_URI"] = self.uri
        if fault:
            env["LOGD_FAULT_POINT"] = fault
        log = open(os.path.join(self.dir, "logd.err"), "ab")
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "logd exited: " + self.stderr()
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(self.socket)
                return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("logd did not listen: " + self.stderr())

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def stderr(self) -> str:
        try:
            return Path(self.dir, "logd.err").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def run_dir(self) -> str:
        return self.run_dir_of(EXPERIMENT)

    def run_dir_of(self, experiment: str) -> str:
        dirs = glob.glob(os.path.join(self.root, experiment, "*"))
        assert len(dirs) == 1, dirs
        return dirs[0]

    def forward_status(self) -> dict:
        try:
            return json.loads(Path(self.root, ".logd", "forward-mlflow.json").read_text())
        except (OSError, ValueError):
            return {}

    def run_state(self) -> dict:
        for r in self.forward_status().get("runs", []):
            if r.get("run_id") == RUN_ID:
                return r
        return {}


PRODUCER = textwrap.dedent("""\
    import os, sys, math
    sys.path.insert(0, %(src)r)
    import logd
    rank = int(os.environ["RANK"])
    config = dict(%(config)r)
    if rank >= 2:
        # Node B's config differs in one param: MLflow refuses to change a param (HTTP 400).
        config["lr"] = 0.02
        config["node_b_only"] = True
    r = logd.Run(experiment=%(experiment)r, name="ddp", config=config, tags=["fwd", "ddp"], seed=7)
    for step in range(%(steps)d):
        r.log_metric("loss", 1.0 / (step + 1) + rank, step=step)
        r.log_metric("grad_norm", step * 0.5, step=step, source="layer1")
        if step %% 10 == 0:
            r.log_metric("accuracy", step / %(steps)d, step=step, context="validation")
    if rank == 0:
        r.log_metric("odd", float("nan"), step=1)
        r.log_metric("odd", float("inf"), step=2)
        r.log_metric("odd", float("-inf"), step=3)
        r.log_metric(%(long_key)r, 1.5, step=0)
        r.log_metric("bad key!", 2.5, step=0)
    path = os.path.join(%(tmp)r, "weights-%%d.bin" %% rank)
    with open(path, "wb") as f:
        f.write(os.urandom(200_000 + rank))
    if rank in (0, 2):
        r.log_artifact(path)
    report = r.finish(timeout=60)
    sys.exit(0 if report.undelivered == 0 else 3)
""")


def mlflow_key(context: str, key: str, rank: int, source: str) -> str:
    """docs/MLFLOW.md, "Metric keys"."""
    s = ("rank%d/" % rank if rank else "") + ("" if context == "training" else context + "/") + key
    s += "/" + source if source else ""
    return valid_name(s)


def valid_name(name: str) -> str:
    ok = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.- /:")
    b = bytes(c if c in ok else 0x5F for c in name.encode()) or b"_"

    def parts(x: bytes) -> bytes:
        return b"/".join({b"": b"_", b".": b"_", b"..": b"__"}.get(p, p) for p in x.split(b"/"))

    b = parts(b)
    if len(b) > 250:
        h = 0xCBF29CE484222325
        for c in b:
            h = ((h ^ c) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        b = parts(b[:233] + b"_" + ("%016x" % h).encode())
    return b.decode()


def csv_rows(run_dir: str) -> List[Dict[str, str]]:
    def num(p: str) -> int:
        return int(os.path.basename(p).split(".")[1])
    parts = sorted(glob.glob(os.path.join(run_dir, "metrics.[0-9]*.csv")), key=num)
    rows: List[Dict[str, str]] = []
    for p in parts + [os.path.join(run_dir, "metrics.csv")]:
        with open(p, newline="") as f:
            rows.extend(csv.DictReader(f))
    return rows


def ms(iso: str) -> int:
    t = time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) * 1000 + int(iso[20:23])


def norm(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):  # MLflow's SQL store keeps ±inf as ±max double
        v = math.copysign(1.7976931348623157e308, v)
    return repr(float(v))


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def wait_for(what: str, cond, timeout: float, nodes: List[Node]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s; status: %s\n%s" % (
        what, [n.forward_status() for n in nodes], "\n".join(n.stderr() for n in nodes)))


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="logd-mlflow-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def server():
    """One mlflow server for the module (it takes ~25 s to start here); tests may restart it."""
    base = tempfile.mkdtemp(prefix="logd-mlflow-server-")
    s = MlflowServer(base)
    s.start()
    yield s
    s.stop()
    shutil.rmtree(base, ignore_errors=True)


def test_two_nodes_forward_one_run_exactly_once_through_kill_and_outage(workdir: str, server: MlflowServer) -> None:
    a = Node(workdir, "node-a", server.uri, via_config=True)
    b = Node(workdir, "node-b", server.uri, via_config=False)
    producers: List[subprocess.Popen] = []
    try:
        if server.proc is None:
            server.start()
        # Node A dies right after the server acknowledged its third batch of metrics, before
        # its cursor records it: the restart sends that batch again.
        a.start(fault="forward-batch-acked:3")
        b.start()
        script = PRODUCER % dict(src=str(REPO / "clients" / "python" / "src"), config=CONFIG,
                                 experiment=EXPERIMENT, steps=STEPS, long_key=LONG_KEY, tmp=workdir)
        for rank in range(WORLD):
            node = a if rank < 2 else b
            env = dict(os.environ, LOGD_SOCKET=node.socket, LOGD_RUN_ID=RUN_ID, RANK=str(rank),
                       LOCAL_RANK=str(rank % 2), WORLD_SIZE=str(WORLD))
            producers.append(subprocess.Popen([sys.executable, "-c", script], env=env))

        assert a.proc is not None
        assert a.proc.wait(120) == -signal.SIGKILL, a.stderr()
        assert "fault point forward-batch-acked reached" in a.stderr()
        a.proc = None
        # The server goes away for 10 s while node A comes back and has rows left to send.
        server.stop()
        outage = time.monotonic()
        a.start()
        wait_for("node A to report the outage", lambda: a.run_state().get("state") == "retrying"
                 and a.forward_status().get("last_error"), 30, [a, b])
        for p in producers:
            assert p.wait(120) == 0
        time.sleep(max(0.0, 10 - (time.monotonic() - outage)))  # the outage lasts 10 s
        server.start()
        wait_for("both nodes to finish forwarding",
                 lambda: a.run_state().get("state") == "done" and b.run_state().get("state") == "done",
                 150, [a, b])

        client = MlflowClient(server.uri)
        exp = client.get_experiment_by_name(EXPERIMENT)
        runs = client.search_runs([exp.experiment_id], "tags.`logd.run_id` = '%s'" % RUN_ID)
        assert len(runs) == 1, [r.info.run_id for r in runs]
        run = runs[0]
        assert a.run_state()["mlflow_run_id"] == b.run_state()["mlflow_run_id"] == run.info.run_id
        assert run.info.status == "FINISHED"

        # Every metrics.csv row of both nodes, exactly once.
        expected: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        total = 0
        for node in (a, b):
            for row in csv_rows(node.run_dir()):
                key = mlflow_key(row["context"], row["key"], int(row["rank"]), row["source"])
                expected[key][(int(row["step"] or 0), ms(row["time"]), norm(float(row["value"])))] += 1
                total += 1
        assert total == WORLD * (STEPS * 2 + STEPS // 10) + 5
        assert all(c == 1 for counts in expected.values() for c in counts.values())
        assert "rank3/validation/accuracy" in expected and "grad_norm/layer1" in expected
        assert valid_name(LONG_KEY) in expected and len(valid_name(LONG_KEY)) == 250
        assert "bad key_" in expected
        assert set(run.data.metrics) == set(expected)
        for key, counts in expected.items():
            got = collections.Counter(
                (m.step, m.timestamp, norm(m.value)) for m in client.get_metric_history(run.info.run_id, key))
            assert got == counts, key

        # Params: the config flattened; the 7000-byte value cut with a marker; node B's changed
        # lr refused by MLflow (params are immutable) and named in that node's status.
        params = run.data.params
        assert params["model.depth"] == "4" and params["model.name"] == "mlp"
        assert params["model.widths"] == "[64,32]" and params["node_b_only"] == "true"
        assert params["notes"].startswith("n" * 5000) and "[logd: 7000 bytes, cut; whole value in config.yaml]" in params["notes"]
        assert len(params["notes"]) <= 6000
        assert params["lr"] in ("0.01", "0.02")
        loser = b if params["lr"] == "0.01" else a
        assert any(n.startswith("param lr") for n in loser.run_state()["refused_names"]), loser.run_state()

        tags = run.data.tags
        assert tags["logd.run_id"] == RUN_ID and tags["mlflow.runName"] == "ddp"
        assert tags["logd.world_size"] == "4" and tags["logd.seed"] == "7" and tags["logd.tags"] == "fwd,ddp"
        assert tags["logd.node.rank0.ranks"] == "0,1" and tags["logd.node.rank2.ranks"] == "2,3"
        assert tags["logd.node.rank0.status"] == tags["logd.node.rank2.status"] == "finished"

        # Artifacts: node A's at the top, node B's under nodes/rank2/, byte for byte.
        out = os.path.join(workdir, "download")
        for node, prefix in ((a, ""), (b, "nodes/rank2/")):
            local = node.run_dir()
            # (run.yaml and prov.json are left out: snapshots logd may rewrite after the upload
            # while the run lives on the node, see docs/MLFLOW.md.)
            names = ["config.yaml", "main.log"] + [
                os.path.relpath(p, local) for p in glob.glob(os.path.join(local, "artifacts", "**", "*"), recursive=True)
                if os.path.isfile(p)]
            assert any(n.startswith("artifacts/weights-") for n in names)
            for name in names:
                got = client.download_artifacts(run.info.run_id, prefix + name, out)
                assert sha256(got) == sha256(os.path.join(local, name)), prefix + name

        # logctl shows the forwarding state and the MLflow run id.
        logctl = os.path.join(os.path.dirname(BINARY), "logctl")
        if os.path.exists(logctl):
            status = subprocess.run([logctl, "status", "--socket", a.socket], capture_output=True, text=True, timeout=30)
            assert status.returncode == 0, status.stderr
            assert "forwarding to MLflow at %s: ok" % server.uri in status.stdout
            line = [ln for ln in status.stdout.splitlines() if ln.startswith(RUN_ID) and run.info.run_id in ln]
            assert line and " done " in line[0], status.stdout
            listed = subprocess.run([logctl, "runs", "--data-root", b.root, "--json"], capture_output=True, text=True, timeout=30)
            assert json.loads(listed.stdout)[0]["mlflow_run_id"] == run.info.run_id
    finally:
        for p in producers:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        a.stop()
        b.stop()


def test_a_node_that_created_a_losing_run_sends_everything_again_to_the_winner_and_deletes_its_own(
        workdir: str, server: MlflowServer) -> None:
    """Two nodes created MLflow runs for one run id at the same moment: the one that started first
    wins. Here the other node's run appears (earlier start) after this node has sent its rows to
    its own; at the run's end this node switches, sends every row again, and deletes its run."""
    if server.proc is None:
        server.start()
    experiment, run_id = "mlflow-race", "race-job-1"
    node = Node(workdir, "node", server.uri, via_config=False)
    node.start()
    script = textwrap.dedent("""\
        import sys, threading
        sys.path.insert(0, %r)
        import logd
        r = logd.Run(experiment=%r, name="race", run_id=%r, config={"lr": 0.1})
        for step in range(2000):
            r.log_metric("loss", 1.0 / (step + 1), step=step)
        r.flush()
        print("logged", flush=True)
        sys.stdin.readline()  # the test says when to end
        r.finish()
    """) % (str(REPO / "clients" / "python" / "src"), experiment, run_id)
    producer = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ, LOGD_SOCKET=node.socket),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert producer.stdout is not None and producer.stdout.readline().strip() == "logged"

        def state() -> dict:
            return next((r for r in node.forward_status().get("runs", []) if r.get("run_id") == run_id), {})

        wait_for("every row sent to the node's own run", lambda: state().get("state") == "caught up"
                 and state().get("behind") == 0, 60, [node])
        own = state()["mlflow_run_id"]
        client = MlflowClient(server.uri)
        exp = client.get_experiment_by_name(experiment)
        # "Another node's" run: same tag, an earlier start.
        other = client.create_run(exp.experiment_id, start_time=1000, tags={"logd.run_id": run_id}).info.run_id
        assert producer.stdin is not None
        producer.stdin.write("end\n")
        producer.stdin.flush()
        assert producer.wait(60) == 0
        wait_for("the node to finish on the other run", lambda: state().get("state") == "done"
                 and state().get("mlflow_run_id") == other, 60, [node])

        assert client.get_run(own).info.lifecycle_stage == "deleted"
        runs = client.search_runs([exp.experiment_id], "tags.`logd.run_id` = '%s'" % run_id)
        assert [r.info.run_id for r in runs] == [other]
        rows = csv_rows(node.run_dir_of(experiment))
        history = client.get_metric_history(other, "loss")
        assert sorted((m.step, m.timestamp, m.value) for m in history) == sorted(
            (int(r["step"]), ms(r["time"]), float(r["value"])) for r in rows)
        assert len(history) == 2000
        assert client.get_run(other).data.params == {"lr": "0.1"}
        assert client.get_run(other).info.status == "FINISHED"
        assert "deleted duplicate MLflow run %s" % own in node.stderr()
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait(5)
        node.stop()


def test_a_bad_forward_setting_stops_logd_at_start_naming_it(workdir: str) -> None:
    """A typo in the forward: section, or a tracking URI logd cannot post to, is a config error
    (exit 2) instead of a daemon that silently forwards nothing."""
    cfg = os.path.join(workdir, "logd.yaml")
    Path(cfg).write_text("forward:\n  mlflow:\n    tracking_url: http://127.0.0.1:1\n")
    base = [BINARY, "--socket", os.path.join(workdir, "s.sock"), "--data-root", os.path.join(workdir, "runs")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    r = subprocess.run(base + ["--config", cfg], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "forward.mlflow.tracking_url: unknown key" in r.stderr, r.stderr
    r = subprocess.run(base, env=dict(env, MLFLOW_TRACKING_URI="databricks"), capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "http:// or https://" in r.stderr, r.stderr
    # A valid section passes the daemon's own config checks beside its flat keys.
    Path(cfg).write_text("log_level: warning\nforward:\n  mlflow:\n    tracking_uri: http://127.0.0.1:1\n")
    r = subprocess.run(base + ["--config", cfg, "--print-config"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "log_level: \"warning\"" in r.stdout, r.stderr
