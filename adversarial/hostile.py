#!/usr/bin/env python3
"""Hostile clients against a running logd, with the daemon's peak RSS read from /proc.

Scenarios (issue 13's measurements; each runs beside a well-behaved producer, the "normal load"):

``partial``  1,000 clients each send HELLO and then most of a max-size frame, and stop.
``flush``    producers flood FLUSH barriers and never read the FLUSH_DONE replies.
``keys``     one run defines metric keys without end.
``params``   one run sends PARAMS with new keys without end.
``runs``     1,000 producers start a run each at once, same experiment and name (a sweep launcher).

Each attack goes on until the daemon refuses it (ERROR, or closes the connection), stops reading
it (backpressure: no progress for a few seconds), its RSS passes ``--stop-mib`` (fail fast: the
bound is already broken), or its own size/time cap. Then logd must still be alive and answer
status, and the normal producer must have every record acknowledged. Prints one line per scenario.

    adversarial/hostile.py [--logd PATH] [--bound-mib 256] {partial,flush,keys,params,all}

Exit status 1 when a scenario breaks the bound or the daemon.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import MIB, Logd, RawProducer, logd_binary, raise_fd_limit, status, wire  # noqa: E402

DEFAULT_BOUND_MIB = 256


class NormalLoad:
    """A well-behaved producer logging a metric every millisecond in its own thread."""

    def __init__(self, path: str, name: str = "normal"):
        self.p = RawProducer(path, "normal-" + name, "normal", "loss")
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.failure: Optional[str] = None

    def start(self) -> None:
        self.p.connect()
        self.thread.start()

    def _run(self) -> None:
        last = time.monotonic()
        while not self.stop_flag.is_set():
            if self.p.sock is None:
                self.failure = "the normal producer's connection was closed: %r" % (self.p.errors,)
                return
            if time.monotonic() - last >= 0.001 and len(self.p.held) < 100_000:
                self.p.metric()
                last = time.monotonic()
            self.p.pump(0.001)

    def finish(self, timeout: float = 60.0) -> Dict[str, Any]:
        """Stops logging, flushes, and waits until every record is acknowledged."""
        self.stop_flag.set()
        self.thread.join(10)
        sent = self.p.next_seq - 1
        self.p.send_flush(1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (self.p.acked < sent or 1 not in self.p.flush_done):
            if not self.p.pump(0.05):
                break
        out = {"normal_sent": sent, "normal_acked": self.p.acked, "normal_errors": self.p.errors,
               "normal_failure": self.failure}
        self.p.close()
        return out


class Attack:
    """Shared bookkeeping: RSS sampling, the stop conditions, the result."""

    def __init__(self, daemon: Logd, stop_mib: int, seconds: float):
        self.d = daemon
        self.stop_bytes = stop_mib * MIB
        self.deadline = time.monotonic() + seconds
        self.result: Dict[str, Any] = {"refused": False, "stalled": False, "over_limit": False, "capped": False}
        self.last_check = 0.0
        self.last_status = time.monotonic()
        self.refused_at_start: Optional[int] = None
        self.keep: List[socket.socket] = []

    def should_stop(self) -> bool:
        now = time.monotonic()
        if now > self.deadline:
            self.result["capped"] = True
            return True
        if now - self.last_check > 0.1:
            self.last_check = now
            if not self.d.alive():
                return True
            if self.d.memory()["VmRSS"] > self.stop_bytes:
                self.result["over_limit"] = True
                return True
        if now - self.last_status > 2:
            # Records refused and counted (the connection goes on) end the attack too.
            self.last_status = now
            try:
                refused = status(self.d.socket, timeout=5)["totals"].get("records_refused", 0)
            except (OSError, ConnectionError):
                return False
            if self.refused_at_start is None:
                self.refused_at_start = refused
            elif refused > self.refused_at_start + 10:
                self.result["refused_counted"] = True
                return True
        return False


def _send_some(s: socket.socket, data: memoryview) -> int:
    """Bytes sent (0 when the socket is full), or -1 once the daemon closed the connection."""
    try:
        return s.send(data)
    except (BlockingIOError, InterruptedError):
        return 0
    except OSError:
        return -1


def _refused(s: socket.socket) -> bool:
    """True when the daemon sent something (an ERROR) or closed: it refused this client."""
    try:
        data = s.recv(1 << 16)
        return True if not data else any(r["kind"] == "error" for r in _decode_all(data))
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


def _decode_all(data: bytes) -> List[dict]:
    try:
        return wire.StreamDecoder().feed(data)
    except wire.WireError as e:
        return e.records


def _producer_socket(path: str, run_id: str, session: Optional[bytes] = None, name: str = "sweep") -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(wire.hello(wire.ROLE_PRODUCER, os.getpid(), session or os.urandom(16), 1, "hostile", "1")
              + wire.run_start(run_id, "hostile", name, [], 0, 0, 1, "h", [], "/", "", wire.GIT_UNKNOWN, None,
                               time.time_ns()))
    s.setblocking(False)
    return s


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------


def partial_frames(d: Logd, a: Attack, clients: int = 1000, before_hello: bool = False) -> None:
    """``clients`` connections, each with most of a max-size frame (1 MiB) sent and then silence."""
    max_frame = 1 << 20
    body_part = max_frame - 4096
    frame = bytearray(struct.pack("<IBI", max_frame, wire.METRIC_BATCH, 37000)) + bytes(body_part - 4)
    socks: List[socket.socket] = []
    offsets: List[int] = []
    closed = 0
    for i in range(clients):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(d.socket)
        except OSError as e:
            a.result["connect_error"] = str(e)
            s.close()
            break
        if not before_hello:
            # HELLO only: the unfinished frame would be the session's first record. (Starting
            # 1,000 runs is the `runs` scenario's business.)
            s.sendall(wire.hello(wire.ROLE_PRODUCER, os.getpid(), os.urandom(16), 1, "hostile", "1"))
        s.setblocking(False)
        socks.append(s)
        offsets.append(0)
    view = memoryview(bytes(frame))
    last_progress = time.monotonic()
    while not a.should_stop():
        progressed = False
        done = 0
        for i, s in enumerate(socks):
            if offsets[i] >= len(view):
                done += 1
                continue
            n = _send_some(s, view[offsets[i]:offsets[i] + (1 << 18)])
            if n < 0:
                offsets[i] = len(view)  # refused: the daemon closed this client
                closed += 1
            elif n:
                offsets[i] += n
                progressed = True
        if done == len(socks):
            break
        if progressed:
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > 5:
            a.result["stalled"] = True  # the daemon stopped reading: a budget for partial frames
            break
        else:
            time.sleep(0.01)
    time.sleep(1)  # let the daemon read what is in its socket buffers
    a.result["clients"] = len(socks)
    a.result["bytes_sent"] = sum(offsets)  # counts refused clients as complete
    a.result["clients_refused"] = max(closed, sum(1 for s in socks if _refused(s)))
    a.result["refused"] = a.result["clients_refused"] > 0
    a.result["peak_rss"] = d.memory()["VmHWM"] if d.alive() else None
    for s in socks:
        s.close()


def flush_flood(d: Logd, a: Attack, connections: int = 64, max_flushes: int = 20_000_000) -> None:
    """FLUSH barriers without end from producers that never read their FLUSH_DONE replies."""
    socks = [_producer_socket(d.socket, "flush-%d" % i) for i in range(connections)]
    block = memoryview(b"".join(wire.flush(i) for i in range(10_000)))
    pending = [memoryview(b"") for _ in socks]
    sent = 0
    last_progress = time.monotonic()
    alive = list(range(len(socks)))
    while alive and sent < max_flushes and not a.should_stop():
        progressed = False
        for i in list(alive):
            if not pending[i]:
                pending[i] = block
            try:
                n = socks[i].send(pending[i])
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                alive.remove(i)
                a.result["refused"] = True
                continue
            if n:
                sent += n // 9
                pending[i] = pending[i][n:]
                progressed = True
        if progressed:
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > 5:
            a.result["stalled"] = True
            break
    time.sleep(1)
    a.result["flushes_sent"] = sent
    a.result["connections_refused"] = sum(1 for s in socks if _refused(s))
    a.result["refused"] = a.result["refused"] or a.result["connections_refused"] > 0
    a.result["peak_rss"] = d.memory()["VmHWM"] if d.alive() else None
    for s in socks:
        s.close()


def _stream(d: Logd, a: Attack, s: socket.socket, blocks: Callable[[int], bytes], counter: str, per_block: int,
            max_items: int) -> None:
    items = 0
    n_block = 0
    data = memoryview(b"")
    last_progress = time.monotonic()
    while items < max_items and not a.should_stop():
        if not data:
            data = memoryview(blocks(n_block))
            n_block += 1
            items += per_block
        try:
            n = s.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            a.result["refused"] = True
            break
        if n:
            data = data[n:]
            last_progress = time.monotonic()
        else:
            if _refused(s):
                a.result["refused"] = True
                break
            if time.monotonic() - last_progress > 5:
                a.result["stalled"] = True
                break
            time.sleep(0.002)
    time.sleep(1)
    a.result[counter] = items
    a.result["refused"] = a.result["refused"] or _refused(s)
    a.result["peak_rss"] = d.memory()["VmHWM"] if d.alive() else None
    s.close()


def keys_without_end(d: Logd, a: Attack, max_keys: int = 20_000_000) -> None:
    """One run defines new metric keys (about 100 bytes each) until refused or over the limit."""
    s = _producer_socket(d.socket, "keys")
    per = 5000
    pad = "x" * 64

    def block(n: int) -> bytes:
        base = n * per
        return b"".join(wire.metric_key(base + i + 1, "key-%d-%s" % (base + i, pad), "training", "src")
                        for i in range(per))

    _stream(d, a, s, block, "keys_sent", per, max_keys)


def params_without_end(d: Logd, a: Attack, max_keys: int = 50_000_000) -> None:
    """One run sends PARAMS whose maps hold new keys every time (the config only grows)."""
    s = _producer_socket(d.socket, "params")
    per = 4000

    def block(n: int) -> bytes:
        base = n * per
        return wire.params({"section-%d" % n: {"param-%d" % (base + i): base + i for i in range(per)}})

    _stream(d, a, s, block, "params_keys_sent", per, max_keys)


def runs_at_once(d: Logd, a: Attack, runs: int = 1000) -> None:
    """``runs`` producers start a run each at the same moment, with the same experiment and name
    (a sweep launcher), then stay connected: the other producers' acknowledgements must go on."""
    socks = []
    for i in range(runs):
        socks.append(_producer_socket(d.socket, "sweep-%d" % i))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not a.should_stop():
        time.sleep(0.1)
    a.result["runs_started"] = len(socks)
    a.result["peak_rss"] = d.memory()["VmHWM"] if d.alive() else None
    a.keep = socks  # closed by run_scenario after the normal load finished


SCENARIOS: Dict[str, Callable[..., None]] = {
    "partial": partial_frames,
    "flush": flush_flood,
    "keys": keys_without_end,
    "params": params_without_end,
    "runs": runs_at_once,
}


def run_scenario(binary: str, name: str, bound_mib: int = DEFAULT_BOUND_MIB, stop_mib: Optional[int] = None,
                 seconds: float = 90.0, **kwargs: Any) -> Dict[str, Any]:
    """Runs one scenario on a fresh logd with default settings; returns the measurements."""
    raise_fd_limit(8192)
    d = Logd(binary)
    try:
        d.start()
        base = d.memory()
        normal = NormalLoad(d.socket, name)
        normal.start()
        time.sleep(0.2)
        a = Attack(d, stop_mib or 2 * bound_mib, seconds)
        SCENARIOS[name](d, a, **kwargs)
        r = dict(a.result)
        r["scenario"] = name
        r["baseline_rss"] = base["VmRSS"]
        r["alive"] = d.alive()
        if r["alive"]:
            r["peak_rss"] = d.memory()["VmHWM"]
            r.update(normal.finish(timeout=120))
            r["rss_after"] = d.memory()["VmRSS"]
            st = status(d.socket)
            r["status_ok"] = st["pid"] == d.pid
            r["malformed_frames"] = st["totals"].get("malformed_frames")
            r["records_refused"] = st["totals"].get("records_refused", 0)
        else:
            normal.stop_flag.set()
            r["death"] = str(d.death("exit"))
        for s in a.keep:
            s.close()
        r["bound"] = bound_mib * MIB
        r["ok"] = bool(r["alive"] and r.get("peak_rss") is not None and r["peak_rss"] <= r["bound"]
                       and r.get("normal_acked") == r.get("normal_sent") and not r.get("normal_errors")
                       and not r.get("normal_failure"))
        return r
    finally:
        d.cleanup()


def describe(r: Dict[str, Any]) -> str:
    def mib(v: Any) -> str:
        return "%.0f MiB" % (v / MIB) if isinstance(v, int) else str(v)

    how = [k for k in ("refused", "refused_counted", "stalled", "over_limit", "capped") if r.get(k)]
    if r.get("records_refused"):
        how.append("%d records refused (counted)" % r["records_refused"])
    sizes = {k: r[k] for k in ("clients", "clients_refused", "bytes_sent", "flushes_sent", "keys_sent",
                               "params_keys_sent", "runs_started") if k in r}
    return ("%-8s %s  peak RSS %s (bound %s, baseline %s)  ended by %s  %s  normal load %s/%s acked%s" % (
        r["scenario"], "OK  " if r["ok"] else "FAIL", mib(r.get("peak_rss")), mib(r["bound"]),
        mib(r.get("baseline_rss")), "+".join(how) or "-", sizes, r.get("normal_acked"), r.get("normal_sent"),
        "" if r["alive"] else "  DAEMON DIED: " + r.get("death", "")))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--logd", default=logd_binary())
    ap.add_argument("--bound-mib", type=int, default=DEFAULT_BOUND_MIB)
    ap.add_argument("--stop-mib", type=int, default=None, help="stop an attack once RSS passes this (default 2x bound)")
    ap.add_argument("--seconds", type=float, default=90)
    ap.add_argument("scenario", choices=sorted(SCENARIOS) + ["all"])
    args = ap.parse_args()
    if not args.logd:
        print("hostile: no logd binary (set LOGD_BIN or --logd)", file=sys.stderr)
        return 2
    names = sorted(SCENARIOS) if args.scenario == "all" else [args.scenario]
    failed = 0
    for name in names:
        r = run_scenario(args.logd, name, args.bound_mib, args.stop_mib, args.seconds)
        print(describe(r), flush=True)
        failed += not r["ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
