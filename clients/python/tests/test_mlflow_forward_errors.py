"""How logd's MLflow forwarder meets a server that says no (docs/MLFLOW.md, "Errors and outages").

A small stand-in for MLflow's REST API on loopback answers 429 and 503 to some requests and 400 to
any batch holding the metric ``refuse_me``. logd must retry the first two until they pass, and
split the refused batch down to that one record, set it aside (counted, logged once, named in
status) and forward every other row exactly once. The real server is in test_mlflow_forward.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List
from urllib.parse import parse_qs, urlparse

import pytest

from conftest import REPO, logd_binary

BINARY = logd_binary()
if BINARY is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("no logd binary (LOGD_BIN) under CI")
    pytest.skip("no logd binary (set LOGD_BIN)", allow_module_level=True)


class Stub:
    """The calls the forwarder makes, with scripted failures."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.experiment = False
        self.run: Dict[str, Any] = {}
        self.metrics: List[tuple] = []
        self.params: Dict[str, str] = {}
        self.tags: Dict[str, str] = {}
        self.status = ""
        self.artifacts: Dict[str, bytes] = {}
        self.metric_batches = 0
        self.answers: Dict[int, int] = {}

    def handle(self, method: str, path: str, query: dict, body: bytes) -> tuple:
        if method == "PUT" and path.startswith("/api/2.0/mlflow-artifacts/artifacts/"):
            self.artifacts[path[len("/api/2.0/mlflow-artifacts/artifacts/"):]] = body
            return 200, {}
        req = json.loads(body) if body else {}
        api = path[len("/api/2.0/mlflow/"):]
        if api == "experiments/get-by-name":
            if not self.experiment:
                return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such experiment"}
            return 200, {"experiment": {"experiment_id": "1", "lifecycle_stage": "active"}}
        if api == "experiments/create":
            self.experiment = True
            return 200, {"experiment_id": "1"}
        if api == "runs/search":
            return 200, {"runs": [{"info": self.run}]} if self.run else {}
        if api == "runs/create":
            self.run = {"run_id": "r1", "start_time": req["start_time"], "artifact_uri": "mlflow-artifacts:/1/r1/artifacts"}
            self.tags.update({t["key"]: t["value"] for t in req.get("tags", [])})
            return 200, {"run": {"info": self.run}}
        if api == "runs/log-batch":
            metrics = req.get("metrics", [])
            self.metric_batches += 1 if metrics else 0
            if metrics and self.metric_batches in (1, 3):  # a rate limit, then a restarting proxy
                return (429 if self.metric_batches == 1 else 503), {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}
            if any(m["key"] == "refuse_me" for m in metrics):
                return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "refuse_me is refused"}
            self.metrics += [(m["key"], m["step"], m["timestamp"], m["value"]) for m in metrics]
            self.params.update({p["key"]: p["value"] for p in req.get("params", [])})
            self.tags.update({t["key"]: t["value"] for t in req.get("tags", [])})
            return 200, {}
        if api == "runs/get":
            return 200, {"run": {"info": self.run, "data": {"tags": [{"key": k, "value": v} for k, v in self.tags.items()]}}}
        if api == "runs/update":
            self.status = req["status"]
            return 200, {}
        return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": path}


def serve(stub: Stub) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self) -> None:
            url = urlparse(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with stub.lock:
                status, doc = stub.handle(self.command, url.path, parse_qs(url.query), body)
                stub.answers[status] = stub.answers.get(status, 0) + 1
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_429_and_503_are_retried_and_a_refused_metric_is_set_aside_alone() -> None:
    base = tempfile.mkdtemp(prefix="logd-mlflow-errors-")
    stub = Stub()
    server = serve(stub)
    sock, root = os.path.join(base, "logd.sock"), os.path.join(base, "runs")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LOGD_FAULT"))}
    env["MLFLOW_TRACKING_URI"] = "http://127.0.0.1:%d" % server.server_address[1]
    err = open(os.path.join(base, "logd.err"), "wb")
    logd = subprocess.Popen([BINARY, "--socket", sock, "--data-root", root, "--log-level", "info"],
                            env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    err.close()
    try:
        deadline = time.monotonic() + 15
        while not os.path.exists(sock):
            assert time.monotonic() < deadline and logd.poll() is None
            time.sleep(0.02)
        script = (
            "import sys; sys.path.insert(0, %r)\n"
            "import logd\n"
            "r = logd.Run(experiment='errors', name='e', run_id='err-1', config={'lr': 0.5})\n"
            "for s in range(2500):\n"
            "    r.log_metric('loss', s * 0.25, step=s)\n"
            "    if s == 1234:\n"
            "        r.log_metric('refuse_me', 1.0, step=s)\n"
            "sys.exit(0 if r.finish(timeout=60).undelivered == 0 else 3)\n") % str(REPO / "clients" / "python" / "src")
        assert subprocess.run([sys.executable, "-c", script], env=dict(os.environ, LOGD_SOCKET=sock), timeout=120).returncode == 0

        status_file = Path(root, ".logd", "forward-mlflow.json")

        def state() -> dict:
            try:
                return next(r for r in json.loads(status_file.read_text())["runs"] if r["run_id"] == "err-1")
            except (OSError, ValueError, StopIteration, KeyError):
                return {}

        deadline = time.monotonic() + 90
        while state().get("state") != "done":
            assert time.monotonic() < deadline, (state(), Path(base, "logd.err").read_text())
            time.sleep(0.1)

        with stub.lock:
            loss = [m for m in stub.metrics if m[0] == "loss"]
            assert sorted(m[1] for m in loss) == list(range(2500)), "every other row exactly once"
            assert [m for m in stub.metrics if m[0] != "loss"] == []
            assert stub.answers[429] == 1 and stub.answers[503] == 1
            assert stub.answers[400] >= 2, "the refused batch was split"
            assert stub.params == {"lr": "0.5"} and stub.status == "FINISHED"
            assert "config.yaml" in {k.rsplit("/", 1)[-1] for k in stub.artifacts}
        s = state()
        assert s["refused"] == 1 and s["behind"] == 0
        assert s["refused_names"] == ["metric refuse_me: refuse_me is refused"]
        log = Path(base, "logd.err").read_text()
        assert log.count("metric refuse_me refused") == 1, log
        assert "HTTP 429" in log and "retrying with backoff" in log
    finally:
        if logd.poll() is None:
            logd.send_signal(signal.SIGTERM)
            logd.wait(15)
        server.shutdown()
        server.server_close()
        shutil.rmtree(base, ignore_errors=True)
