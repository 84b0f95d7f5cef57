"""MLflow forwarding, measured beside its floor in the same run (docs/PERFORMANCE.md#mlflow-forwarding).

Starts a real ``mlflow server`` (SQLite backend, proxied artifacts) on loopback and two logd
instances, one forwarding to it (MLFLOW_TRACKING_URI) and one not. Prints:

1. the server's own ingest ceiling: ``runs/log-batch`` requests of 1,000 metrics posted directly,
   one at a time over one kept-alive connection (what any single client can get);
2. forwarded metrics/s: a producer logs N metrics into the forwarding logd; the time from its first
   call until the forwarder reports the run done (every row acknowledged by the server);
3. the Python client's ``log_metric`` cost with forwarding on (while the forwarder is sending that
   very run) and off, and the floor (one ``struct.pack_into``), as medians of batches of 1,000 calls.

    LOGD_BIN=.build/release/logd python3 clients/python/benchmarks/bench_mlflow_forward.py [--metrics 200000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
import logd  # noqa: E402
import logd.wire  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow(base: str, port: int) -> subprocess.Popen:
    exe = os.path.join(os.path.dirname(sys.executable), "mlflow")
    cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "mlflow"]
    log = open(os.path.join(base, "mlflow.log"), "ab")
    p = subprocess.Popen(cmd + ["server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                                "--backend-store-uri", "sqlite:///" + base + "/mlflow.db",
                                "--artifacts-destination", base + "/artifacts"],
                         stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=2):
                return p
        except OSError:
            time.sleep(0.2)
    raise SystemExit("mlflow server did not start")


def start_logd(binary: str, base: str, name: str, uri: str = "") -> tuple:
    d = os.path.join(base, name)
    os.makedirs(d)
    sock, root = d + "/logd.sock", d + "/runs"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    if uri:
        env["MLFLOW_TRACKING_URI"] = uri
    p = subprocess.Popen([binary, "--socket", sock, "--data-root", root, "--log-level", "warning"], env=env,
                         stdin=subprocess.DEVNULL)
    while not os.path.exists(sock):
        time.sleep(0.02)
    return p, sock, root


def api(conn: http.client.HTTPConnection, path: str, body: dict) -> dict:
    conn.request("POST", "/api/2.0/mlflow/" + path, json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    assert r.status == 200, data
    return json.loads(data or b"{}")


def direct_ceiling(port: int, batches: int, name: str) -> float:
    """Batches like the forwarder's (one key, a step and a millisecond per sample), posted one
    after another on one connection; three warm-up batches are not counted."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    exp = api(conn, "experiments/create", {"name": "direct-ceiling-" + name})["experiment_id"]
    run = api(conn, "runs/create", {"experiment_id": exp, "start_time": int(time.time() * 1000)})["run"]["info"]["run_id"]
    now = int(time.time() * 1000)
    bodies = [json.dumps({"run_id": run, "metrics": [
        {"key": "loss", "value": 1.0 / (b * 1000 + i + 1), "timestamp": now + b * 1000 + i, "step": b * 1000 + i}
        for i in range(1000)]}) for b in range(batches + 3)]

    def post(body: str) -> None:
        conn.request("POST", "/api/2.0/mlflow/runs/log-batch", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        assert r.status == 200

    for body in bodies[:3]:
        post(body)
    t0 = time.perf_counter()
    for body in bodies[3:]:
        post(body)
    return batches * 1000 / (time.perf_counter() - t0)


def call_cost(sock: str, n: int, name: str) -> tuple:
    """Median ns per log_metric over batches of 1,000 calls, and the time of the first call."""
    r = logd.Run(experiment="bench", name=name, socket=sock, run_id="bench-" + name, config={"round": name})
    first = time.monotonic()
    per = []
    lm = r.log_metric
    for b in range(n // 1000):
        t = time.perf_counter_ns()
        for i in range(b * 1000, b * 1000 + 1000):
            lm("loss", 0.5, i)
        per.append((time.perf_counter_ns() - t) / 1000)
    report = r.finish(timeout=120)
    assert report.undelivered == 0 and report.dropped == 0, report
    return statistics.median(per), first


def floor_cost(n: int) -> float:
    """One struct.pack_into of the METRIC frame, as bench_log_metric.py measures its floor."""
    buf = bytearray(64)
    pack = logd.wire.METRIC_FRAME.pack_into
    per = []
    for b in range(n // 1000):
        t = time.perf_counter_ns()
        for i in range(1000):
            pack(buf, 0, 29, 0x22, 1, i, 1700000000000000000, 0.5)
        per.append((time.perf_counter_ns() - t) / 1000)
    return statistics.median(per)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--metrics", type=int, default=200_000)
    ap.add_argument("--direct-batches", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    binary = os.environ.get("LOGD_BIN") or str(HERE.parents[2] / ".build" / "release" / "logd")
    base = tempfile.mkdtemp(prefix="logd-bench-mlflow-")
    procs = []
    try:
        port = free_port()
        server = start_mlflow(base, port)
        procs.append(server)
        uri = "http://127.0.0.1:%d" % port
        off = start_logd(binary, base, "off")
        on = start_logd(binary, base, "on", uri)
        procs += [off[0], on[0]]

        before = direct_ceiling(port, args.direct_batches, "before")
        floor = floor_cost(args.metrics)
        # Off and on take turns (this machine's speed drifts); each "on" run is forwarded while
        # the next calls are timed.
        offs, ons, first = [], [], None
        for i in range(args.rounds):
            offs.append(call_cost(off[1], args.metrics, "off-%d" % i)[0])
            cost, t = call_cost(on[1], args.metrics, "on-%d" % i)
            ons.append(cost)
            first = first if first is not None else t
        cost_off, cost_on = statistics.median(offs), statistics.median(ons)
        status = Path(on[2], ".logd", "forward-mlflow.json")
        while True:
            try:
                runs = json.loads(status.read_text()).get("runs", [])
                if sum(r["run_id"].startswith("bench-on-") and r["state"] == "done" for r in runs) == args.rounds:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        forwarded = args.rounds * args.metrics / (time.monotonic() - first)
        after = direct_ceiling(port, args.direct_batches, "after")
        ceiling = max(before, after)

        print("metrics: %d x %d rounds, mlflow %s, python %s" % (args.metrics, args.rounds, subprocess.run(
            [sys.executable, "-c", "import mlflow; print(mlflow.__version__)"], capture_output=True, text=True).stdout.strip(),
            sys.version.split()[0]))
        print("server ceiling (direct log-batch of 1000, one connection): %8.0f metrics/s  (before %.0f, after %.0f)"
              % (ceiling, before, after))
        print("forwarded by logd (first call to all acknowledged):         %8.0f metrics/s  (%.2f of the ceiling)"
              % (forwarded, forwarded / ceiling))
        print("log_metric, forwarding off: %6.0f ns/call (floor pack_into %.0f ns, %.2fx)" % (cost_off, floor, cost_off / floor))
        print("log_metric, forwarding on:  %6.0f ns/call (%.2fx of off)" % (cost_on, cost_on / cost_off))
    finally:
        for p in procs:
            if p.poll() is None:
                if p is procs[0]:
                    os.killpg(p.pid, signal.SIGKILL)
                else:
                    p.send_signal(signal.SIGTERM)
                p.wait(30)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
