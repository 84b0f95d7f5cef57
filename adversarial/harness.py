"""Shared pieces of the adversarial tools: a logd process on a private socket and data root,
crash detection (Swift traps and their Sources/ file:line), RSS readings, a control client
and a raw producer that tracks acknowledgements exactly.

Standard library only, plus the Python client's codec (clients/python/src/logd/wire.py).
"""

from __future__ import annotations

import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "clients" / "python" / "src"))

from logd import wire  # noqa: E402

MIB = 1 << 20


def logd_binary() -> Optional[str]:
    """``$LOGD_BIN``, else the repository's debug build, else its release build."""
    env = os.environ.get("LOGD_BIN")
    if env:
        return env
    for kind in ("debug", "release"):
        p = REPO / ".build" / kind / "logd"
        if p.exists():
            return str(p)
    return None


def raise_fd_limit(want: int = 8192) -> int:
    """Raises this process's soft RLIMIT_NOFILE (children, logd included, inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, want), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


# ---------------------------------------------------------------------------------------------
# Crash sites
# ---------------------------------------------------------------------------------------------

_FRAME_SITE = re.compile(r" at (?:/\S*?)?/Sources/(\S+?\.swift):(\d+)")
_CRASHED_THREAD = re.compile(r"^Thread \d+[^\n]*crashed:$", re.M)
_FATAL_SITE = re.compile(r"(\S+?\.swift):(\d+): Fatal error")
_FAILURE = re.compile(r"\*\*\* (Swift runtime failure: [^*]+?) \*\*\*|Fatal error: ([^\n]*)")


def crash_site(stderr: str) -> Optional[Tuple[str, str]]:
    """(site, message) of the first Swift trap in ``stderr``, or None when there is none.

    ``site`` is the path under Sources/ and the line of the innermost frame of the crashed thread
    that lies in the project's own sources (``LogdCore/Support/TimeFormat.swift:13``), as the Swift
    runtime backtracer prints it; a "Fatal error" line without a backtrace gives its own file:line.
    """
    m = _FAILURE.search(stderr)
    if m is None and "Program crashed" not in stderr and "*** Signal" not in stderr:
        return None
    message = ""
    if m is not None:
        message = (m.group(1) or m.group(2) or "").strip()
    crashed = _CRASHED_THREAD.search(stderr)
    section = stderr[crashed.end():] if crashed is not None else stderr
    f = _FRAME_SITE.search(section)
    if f is not None:
        return "%s:%s" % (f.group(1), f.group(2)), message
    f = _FATAL_SITE.search(stderr)
    if f is not None:
        return "%s:%s" % (f.group(1), f.group(2)), message
    return "unknown", message or "crashed without a Swift backtrace"


# ---------------------------------------------------------------------------------------------
# The daemon
# ---------------------------------------------------------------------------------------------


class DaemonDied(Exception):
    """logd exited (or trapped) where it should have kept running."""

    def __init__(self, kind: str, site: str, message: str, stderr: str):
        super().__init__("%s at %s: %s" % (kind, site, message))
        self.kind = kind  # "trap", "exit", "startup", "hang"
        self.site = site
        self.message = message
        self.stderr = stderr


class Logd:
    """One logd process with its own socket and data root, restartable on the same paths."""

    def __init__(self, binary: str, base: Optional[str] = None, data_root: Optional[str] = None,
                 config: Optional[Dict[str, Any]] = None, log_level: str = "warning"):
        self.binary = binary
        self.own_base = base is None
        self.base = base or tempfile.mkdtemp(prefix="logd-adv-")
        self.socket = os.path.join(self.base, "logd.sock")
        self.root = data_root or os.path.join(self.base, "runs")
        self.err_path = os.path.join(self.base, "logd.err")
        self.config_path: Optional[str] = None
        if config:
            self.config_path = os.path.join(self.base, "logd.yaml")
            with open(self.config_path, "w") as f:
                for k, v in config.items():
                    f.write("%s: %s\n" % (k, v))
        self.log_level = log_level
        self.proc: Optional[subprocess.Popen] = None
        self._err_offset = 0
        self.starts = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> None:
        """Starts logd and waits until it accepts connections; DaemonDied if it does not."""
        if self.proc is not None and self.proc.poll() is None:
            return
        self._err_offset = os.path.getsize(self.err_path) if os.path.exists(self.err_path) else 0
        args = [self.binary, "--socket", self.socket, "--data-root", self.root, "--log-level", self.log_level]
        if self.config_path:
            args += ["--config", self.config_path]
        env = dict(os.environ)
        env.setdefault("SWIFT_BACKTRACE", "enable=yes,interactive=no,color=no")
        with open(self.err_path, "ab") as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise self.death("startup")
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(self.socket)
                return
            except OSError:
                time.sleep(0.01)
        raise DaemonDied("hang", "startup", "did not accept connections in %.0f s" % timeout, self.stderr())

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> Optional[int]:
        """Stops logd; returns its exit status (None when it was not running)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                self.proc = None
                raise DaemonDied("hang", "shutdown", "did not exit within %.0f s of signal %d" % (timeout, sig),
                                 self.stderr())
        return proc.returncode

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)

    def cleanup(self) -> None:
        try:
            self.stop(signal.SIGKILL)
        except DaemonDied:
            pass
        if self.own_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def wipe(self) -> None:
        """Removes the data root (daemon stopped first)."""
        self.cleanup_proc()
        shutil.rmtree(self.root, ignore_errors=True)

    def cleanup_proc(self) -> None:
        try:
            self.stop(signal.SIGKILL)
        except DaemonDied:
            pass

    # -- what went wrong ---------------------------------------------------------------------

    def stderr(self) -> str:
        """What this incarnation wrote to stderr."""
        try:
            with open(self.err_path, "rb") as f:
                f.seek(self._err_offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def death(self, kind: str) -> DaemonDied:
        """A DaemonDied describing why the process is gone (waits briefly for the backtracer)."""
        proc = self.proc
        if proc is not None:
            try:
                proc.wait(90)  # the Swift backtracer symbolicates before the process exits
            except subprocess.TimeoutExpired:
                pass
        err = self.stderr()
        site = crash_site(err)
        self.proc = None
        if site is not None:
            return DaemonDied("trap" if kind != "startup" else "startup-trap", site[0], site[1], err)
        code = proc.returncode if proc is not None else None
        lines = [ln for ln in err.splitlines() if ln.strip()]
        last = lines[-1] if lines else ""
        if code is not None and code < 0:
            return DaemonDied(kind, "signal-%d" % -code, last, err)
        return DaemonDied(kind, "exit-%s" % code, last, err)

    def trapped(self) -> bool:
        err = self.stderr()
        return "Fatal error" in err or "*** Signal" in err or "Program crashed" in err

    def check(self) -> None:
        """DaemonDied if logd has exited or printed a trap."""
        if self.proc is None or self.proc.poll() is not None or self.trapped():
            raise self.death("exit")

    # -- memory ------------------------------------------------------------------------------

    def memory(self) -> Dict[str, int]:
        """VmRSS and VmHWM (peak RSS) of logd, in bytes."""
        out: Dict[str, int] = {}
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0]) * 1024
        return out


# ---------------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------------


def connect(path: str, timeout: float = 10.0) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


class Control:
    """A control connection: HELLO, WELCOME, then requests matched by id."""

    def __init__(self, path: str, timeout: float = 30.0):
        self.sock = connect(path, timeout)
        self.decoder = wire.StreamDecoder()
        self.pending: List[dict] = []
        self.next_id = 1
        self.sock.sendall(wire.hello(wire.ROLE_CONTROL, os.getpid(), bytes(16), 0, "logd-adversarial", "1"))
        rec = self._next()
        if rec["kind"] != "welcome":
            raise ConnectionError("expected WELCOME, got %r" % rec)

    def _next(self) -> dict:
        while not self.pending:
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("logd closed the control connection")
            self.pending.extend(self.decoder.feed(data))
        return self.pending.pop(0)

    def request(self, verb: int, arguments: Any = None) -> Tuple[str, Any]:
        rid = self.next_id
        self.next_id += 1
        self.sock.sendall(wire.control_request(rid, verb, {} if arguments is None else arguments))
        while True:
            rec = self._next()
            if rec["kind"] == "error":
                raise ConnectionError("ERROR %d: %s" % (rec["code"], rec["message"]))
            if rec["kind"] == "control_reply" and rec["request_id"] == rid:
                return rec["status"], rec["body"]

    def status(self) -> Dict[str, Any]:
        st, body = self.request(wire.VERB_STATUS)
        if st != "ok":
            raise ConnectionError("status answered %s: %r" % (st, body))
        return body

    def flush(self, timeout_ms: int = 10000) -> Tuple[str, Any]:
        return self.request(wire.VERB_FLUSH, {"timeout_ms": timeout_ms})

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "Control":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def status(path: str, timeout: float = 30.0) -> Dict[str, Any]:
    with Control(path, timeout) as c:
        return c.status()


class RawProducer:
    """A producer that speaks the wire protocol itself and knows exactly what was acknowledged.

    Each data record is a METRIC of key ``key`` whose step and value are its sequence number, so
    a reader of metrics.csv can tell every record apart. Frames are held until acknowledged and
    re-sent after a reconnect (section 5 of WIRE_PROTOCOL.md), like the SDKs do.
    """

    def __init__(self, path: str, run_id: str, experiment: str, key: str, rank: int = 0,
                 world_size: int = 1, session: Optional[bytes] = None):
        self.path = path
        self.session = session or os.urandom(16)
        self.key = key
        self.start_frame = wire.run_start(run_id, experiment, run_id, [], rank, rank, world_size, "adv", ["adv"],
                                          "/", "", wire.GIT_UNKNOWN, None, time.time_ns())
        self.key_frame = wire.metric_key(1, key, "training", "")
        self.held: List[Tuple[int, bytes]] = []  # (seq, frame) not yet acknowledged
        self.next_seq = 1
        self.acked = 0
        self.sock: Optional[socket.socket] = None
        self.decoder = wire.StreamDecoder()
        self.errors: List[dict] = []
        self.flush_done: Dict[int, dict] = {}
        self._outbuf = bytearray()
        self.append(self.start_frame)

    def append(self, frame: bytes) -> int:
        seq = self.next_seq
        self.next_seq += 1
        self.held.append((seq, frame))
        if self.sock is not None:
            self._outbuf += frame
        return seq

    def metric(self) -> int:
        seq = self.next_seq
        return self.append(wire.metric(1, seq, time.time_ns(), float(seq)))

    def connect(self) -> None:
        self.close()
        self.decoder = wire.StreamDecoder()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.path)
        s.setblocking(False)
        self.sock = s
        first = self.held[0][0] if self.held else self.next_seq
        self._outbuf = bytearray(wire.hello(wire.ROLE_PRODUCER, os.getpid(), self.session, first, "adv-producer", "1"))
        # Keys are per connection and must follow the session's RUN_START.
        held = self.held
        if held and held[0][0] == 1:
            self._outbuf += held[0][1]
            held = held[1:]
        self._outbuf += self.key_frame
        for _, frame in held:
            self._outbuf += frame

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def pump(self, timeout: float = 0.0) -> bool:
        """Sends what it can and reads what came; False once the connection is gone."""
        s = self.sock
        if s is None:
            return False
        want_w = [s] if self._outbuf else []
        try:
            r, w, _ = select.select([s], want_w, [], timeout)
        except (OSError, ValueError):
            return False
        try:
            if w and self._outbuf:
                n = s.send(self._outbuf)
                del self._outbuf[:n]
            if r:
                data = s.recv(1 << 16)
                if not data:
                    self.close()
                    return False
                for rec in self.decoder.feed(data):
                    self._on(rec)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self.close()
            return False
        return True

    def _on(self, rec: dict) -> None:
        kind = rec["kind"]
        if kind in ("ack", "welcome", "flush_done"):
            durable = rec["durable_through"]
            if durable > self.acked:
                self.acked = durable
                while self.held and self.held[0][0] <= durable:
                    self.held.pop(0)
            if kind == "flush_done":
                self.flush_done[rec["token"]] = rec
        elif kind == "error":
            self.errors.append(rec)

    def send_flush(self, token: int) -> None:
        if self.sock is not None:
            self._outbuf += wire.flush(token)

    @property
    def unsent(self) -> int:
        return len(self._outbuf)
