#!/usr/bin/env python3
"""Structure-aware fuzzer of the RUNNING logd daemon, over its Unix socket.

Each case is a short conversation built from the protocol (docs/WIRE_PROTOCOL.md,
docs/CONTROL_PROTOCOL.md) with the Python client's codec: a valid HELLO, then records whose
fields take extreme values (INT64_MIN/MAX, 2^63-1 DROPS, huge or negative times, steps, sequence
numbers, key ids, ranks, sizes), control requests with wrong argument types and absurd timeouts,
status, byte-level mutations and truncated frames. After every case a ``sync`` (flush + status on
a fresh control connection) makes the daemon process what it got. After every batch the daemon is
stopped (SIGTERM or SIGKILL), what start-up reads back (checkpoints, active markers, run.yaml) is
sometimes poisoned, and it is started again on the same data root, so start-up recovery is
fuzzed as well.

A crash is: the process exits or traps (the Swift backtracer's "Swift runtime failure" /
"Fatal error"), start-up fails, SIGTERM does not drain to exit 0, or flush/status go unanswered.
Each new crash site (Sources/ file:line) is minimized (cases, then actions) and saved as an
action script (format: adversarial/actions.py) in vectors/fuzz-daemon/, which
adversarial/test_replay.py replays. Stats are printed every 10 s and at the end.

    adversarial/fuzz_daemon.py --seconds 600 [--logd PATH] [--seed N] [--out vectors/fuzz-daemon]
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import os
import random
import re
import shutil
import struct
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from actions import Action, Executor, render, replay  # noqa: E402
from harness import REPO, DaemonDied, Logd, logd_binary, wire  # noqa: E402

I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1
U64_MAX = (1 << 64) - 1
NS = 1_000_000_000

I64_EXTREMES = [0, 1, -1, 2, I64_MIN, I64_MIN + 1, I64_MAX, I64_MAX - 1, (1 << 31) - 1, -(1 << 31), 1 << 32,
                (1 << 53) + 1, -(1 << 53), 10 ** 18, -(10 ** 18), I64_MAX // 1_000_000, I64_MAX // 1000 + 1,
                9_223_372_036 * NS, -9_223_372_036 * NS, 9_223_372_036_854_775_000, -9_223_372_036_854_775_000,
                -1 * NS + 1, 999_999_999, -999_999_999, 4_102_444_800 * NS]
I64_EXTREMES = [v for v in I64_EXTREMES if I64_MIN <= v <= I64_MAX]
U64_EXTREMES = [0, 1, 2, U64_MAX, U64_MAX - 1, I64_MAX, I64_MAX + 1, I64_MAX - 1, (1 << 32) - 1, 1 << 32,
                (1 << 53), 10 ** 19]
U32_EXTREMES = [0, 1, 2, (1 << 32) - 1, (1 << 31) - 1, 1 << 31, 65535, 65536]
I32_EXTREMES = [0, 1, -1, (1 << 31) - 1, -(1 << 31), 65536, -65536, 4096]
DOUBLES = [0.0, -0.0, 1.5, float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 5e-324, 2.0 ** 63, -2.0 ** 63,
           1e19, 9.3e18]
NAMES = ["", "a", "r0", "run", "..", ".", "/", "a/b", "../../etc", "\x00", "x" * 255, "x" * 300, "ü" * 100,
         "\n", "con\rtrol", "-", "~", "名前", "\u202e", "a b", "*", "%s%n", "🙂" * 70, "\\", ":", "'\"", "#yaml: x",
         "- item", "{a: 1}", "&anchor", "!!python/object", "x" * 4096]
RUN_IDS = ["r0", "r1", "r2", "", "..", "r0/x", "x" * 4096]


class Gen:
    """Builds cases (lists of actions) from protocol structures with extreme field values."""

    def __init__(self, rng: random.Random):
        self.r = rng
        self.sessions = [rng.randbytes(16) for _ in range(6)] + [bytes(16), b"\xff" * 16]
        self.conn_counter = 0

    # -- value pickers -----------------------------------------------------------------------

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def i64(self, normal: Optional[int] = None) -> int:
        r = self.r.random()
        if normal is not None and r < 0.4:
            return normal
        if r < 0.8:
            return self.r.choice(I64_EXTREMES)
        return self.r.randint(I64_MIN, I64_MAX)

    def u64(self, normal: Optional[int] = None) -> int:
        r = self.r.random()
        if normal is not None and r < 0.4:
            return normal
        if r < 0.85:
            return self.r.choice(U64_EXTREMES)
        return self.r.randint(0, U64_MAX)

    def u32(self, normal: Optional[int] = None) -> int:
        if normal is not None and self.chance(0.5):
            return normal
        return self.r.choice(U32_EXTREMES) if self.chance(0.8) else self.r.randint(0, (1 << 32) - 1)

    def i32(self, normal: int = 0) -> int:
        if self.chance(0.5):
            return normal
        return self.r.choice(I32_EXTREMES) if self.chance(0.8) else self.r.randint(-(1 << 31), (1 << 31) - 1)

    def time_ns(self) -> int:
        return self.i64(normal=1_700_000_000 * NS + self.r.randint(0, 10 ** 12))

    def name(self) -> str:
        return self.r.choice(NAMES) if self.chance(0.5) else "k%d" % self.r.randint(0, 20)

    def double(self) -> float:
        return self.r.choice(DOUBLES) if self.chance(0.6) else self.r.uniform(-1e6, 1e6)

    def value(self, depth: int = 1) -> Any:
        r = self.r.random()
        if depth > 6 or r < 0.5:
            return self.r.choice([None, True, False, self.i64(), self.double(), self.name(),
                                  self.r.choice(I64_EXTREMES)])
        if r < 0.65:
            return [self.value(depth + 1) for _ in range(self.r.randint(0, 4))]
        return {self.name() + ("" if self.chance(0.5) else str(i)): self.value(depth + 1)
                for i in range(self.r.randint(0, 5))}

    def deep_value(self) -> Any:
        v: Any = self.r.choice([1, "x", None])
        for _ in range(self.r.choice([61, 62, 63])):
            v = {"a": v} if self.chance(0.5) else [v]
        return v

    # -- frames ------------------------------------------------------------------------------

    def hello(self, role: int) -> bytes:
        if role == wire.ROLE_PRODUCER:
            session = self.r.choice(self.sessions) if self.chance(0.6) else self.r.randbytes(16)
            first = self.r.choice([1, 1, 1, 2, 0]) if self.chance(0.6) else self.u64()
        else:
            session = bytes(16) if self.chance(0.8) else self.r.randbytes(16)
            first = 0 if self.chance(0.8) else self.u64()
        minor = 0 if self.chance(0.8) else self.r.choice([1, 255])
        return wire.hello(role, self.u32(1234), session, first, self.name()[:4096], self.name()[:4096], minor=minor)

    def run_start(self) -> bytes:
        r = self.r
        return wire.run_start(
            r.choice(RUN_IDS) if self.chance(0.8) else self.name(), self.name(), self.name(),
            [self.name() for _ in range(r.randint(0, 3))], self.i32(0), self.i32(0), self.i32(1), self.name(),
            [self.name() for _ in range(r.randint(0, 3))], self.name(), self.name(), r.randint(0, 2),
            None if self.chance(0.3) else self.i64(42), self.time_ns() if self.chance(0.8) else 0)

    def key_id(self) -> int:
        return self.r.randint(0, 3) if self.chance(0.7) else self.u32()

    def record(self, minor: int) -> Tuple[bytes, bool]:
        """One producer frame; True when it needs a file descriptor."""
        r = self.r
        k = r.randint(0, 17)
        if k == 0:
            return wire.metric_key(self.key_id(), self.name(), self.name(), self.name()), False
        if k in (1, 2):
            return wire.metric(self.key_id(), self.i64(r.randint(0, 100)), self.time_ns(), self.double()), False
        if k == 3:
            n = r.choice([0, 1, 2, 5, 50])
            return wire.metric_batch([(self.key_id(), self.i64(i), self.time_ns(), self.double()) for i in range(n)]), False
        if k == 4:
            return wire.log(r.randint(0, 6), self.time_ns(), self.name(), self.name()), False
        if k == 5:
            if self.chance(0.05):  # one level too deep, by hand (the encoder refuses it)
                return wire.frame(wire.PARAMS, b"\x06\x01\x00\x00\x00" * 64 + b"\x00"), False
            return wire.params(self.value() if self.chance(0.9) else self.deep_value()), False
        if k in (6, 7):
            mode = r.choice([1, 2])
            return wire.artifact(self.name(), self.i64(r.randint(0, 9)), r.choice([1, 2]), mode, self.name(),
                                 self.name(), self.u64(18 * 10), r.randbytes(32) if self.chance(0.5) else bytes(32),
                                 self.time_ns()), mode == 1 and self.chance(0.9)
        if k == 8:
            return wire.model_info(self.name(), self.u64(1000), self.u64(4000), self.value()), False
        if k in (9, 10):
            mode = r.choice([1, 2])
            return wire.model_version(self.name(), self.name(), self.i64(r.randint(0, 9)), mode, self.name(),
                                      self.name(), self.u64(180), bytes(32), self.time_ns()), mode == 1 and self.chance(0.9)
        if k == 11:
            return wire.dataset(self.name(), self.name(), self.u64(60000), self.u32(32), self.u32(4), r.choice([True, False]),
                                self.u64(1875)), False
        if k == 12:
            return wire.drops(self.u64(r.randint(0, 10))), False
        if k == 13:
            return wire.flush(self.u64(r.randint(0, 10))), False
        if k == 14:
            return wire.run_end(r.randint(1, 3), self.time_ns()), False
        if k == 15:
            kind = r.randint(0x2A, 0x7F) if minor > 0 or self.chance(0.3) else r.randint(0x80, 0xFF)
            return wire.frame(kind, r.randbytes(r.randint(0, 40))), False
        if k == 16:
            return self.control_request(), False
        return self.run_start(), False

    def control_args(self) -> Any:
        r = self.r
        c = r.randint(0, 9)
        timeout_values = [self.i64(), -1, 0, 1, 10 ** 10, 10 ** 13, I64_MAX, I64_MIN, 9_223_372_037, 9_223_372_036_855,
                          1.5, float("nan"), "1000", None, True, [1], {"a": 1}]
        run_values = ["r0", "r1", "", "nope", 7, None, ["r0"], {"run_id": "r0"}, "x" * 5000]
        if c == 0:
            return {}
        if c <= 4:
            return {"timeout_ms": r.choice(timeout_values)}
        if c <= 6:
            return {"run_id": r.choice(run_values), "timeout_ms": r.choice(timeout_values)}
        if c == 7:
            return r.choice([1, "x", None, [], [{}], 1.5, True])
        if c == 8:
            return {self.name(): self.value() for _ in range(r.randint(1, 4))}
        return {"run_id": r.choice(run_values)}

    def control_request(self) -> bytes:
        verb = self.r.choice([1, 1, 2, 2, 2, 0, 3, 255])
        rid = self.u32(self.r.randint(1, 100))
        return wire.control_request(rid, verb, self.control_args())

    # -- mutation ----------------------------------------------------------------------------

    def mutate(self, data: bytes) -> bytes:
        b = bytearray(data)
        r = self.r
        m = r.randint(0, 7)
        if len(b) < 6 or m == 0:
            return bytes(b[: r.randint(0, max(0, len(b) - 1))])  # truncated frame
        if m == 1:
            for _ in range(r.randint(1, 4)):
                b[r.randrange(len(b))] = r.randrange(256)
        elif m == 2:
            i = r.randrange(5, len(b))
            v = r.choice(I64_EXTREMES + [x - (1 << 64) for x in U64_EXTREMES if x > I64_MAX])
            chunk = struct.pack("<q", v)
            b[i:i + 8] = chunk[: len(b) - i]
        elif m == 3:
            b[4] = r.randrange(256)  # kind
        elif m == 4:
            struct.pack_into("<I", b, 0, r.choice([0, 1, len(b) - 5, len(b) - 3, 1 << 20, (1 << 20) + 1, (1 << 32) - 1]))
        elif m == 5:
            i = r.randrange(5, len(b))
            b[i:i + 4] = struct.pack("<I", r.choice(U32_EXTREMES))[: len(b) - i]
        elif m == 6:
            b += r.randbytes(r.randint(1, 16))
            struct.pack_into("<I", b, 0, len(b) - 4)
        else:
            i = r.randrange(5, len(b))
            b[i] ^= 1 << r.randrange(8)
        return bytes(b)

    # -- cases -------------------------------------------------------------------------------

    def conn(self) -> str:
        self.conn_counter += 1
        return str(self.conn_counter % 4 + 1)

    def case(self) -> List[Action]:
        for _ in range(20):
            try:
                return self._case()
            except (wire.WireError, ValueError, TypeError, struct.error, OverflowError):
                continue  # a combination the encoder refuses: draw again
        return self.control_case()

    def _case(self) -> List[Action]:
        r = self.r.random()
        if r < 0.55:
            return self.producer_case()
        if r < 0.8:
            return self.control_case()
        if r < 0.9:
            return self.two_producers_case()
        return self.garbage_case()

    def producer_frames(self) -> List[Tuple[bytes, bool]]:
        hello = self.hello(wire.ROLE_PRODUCER)
        minor = hello[10]
        frames: List[Tuple[bytes, bool]] = [(hello, False)]
        if self.chance(0.9):
            frames.append((self.run_start(), False))
        for i in range(self.r.randint(0, 3)):
            frames.append((wire.metric_key(self.r.choice([0, 1, 2, 3]) if self.chance(0.8) else self.u32(),
                                           self.name(), self.r.choice(["training", "validation", self.name()]),
                                           self.name()), False))
        for _ in range(self.r.randint(0, 10)):
            frames.append(self.record(minor))
        if self.chance(0.5):
            frames.append((wire.drops(self.u64(3)), False))
        if self.chance(0.5):
            frames.append((wire.run_end(self.r.randint(1, 3), self.time_ns()), False))
        if self.chance(0.3):
            frames.append((wire.flush(self.u64(7)), False))
        if self.chance(0.15):
            i = self.r.randrange(len(frames))
            frames[i] = (self.mutate(frames[i][0]), frames[i][1])
        if self.chance(0.1):
            frames.append((self.mutate(self.record(minor)[0])[: self.r.randint(1, 8)], False))  # truncated tail
        return frames

    def producer_case(self) -> List[Action]:
        c = self.conn()
        out: List[Action] = [("sendfd" if fd else "send", c, f.hex()) for f, fd in self.producer_frames()]
        if self.chance(0.8):
            out.append(("close", c))
        return out

    def two_producers_case(self) -> List[Action]:
        a, b = self.conn(), self.conn()
        fa = [("sendfd" if fd else "send", a, f.hex()) for f, fd in self.producer_frames()]
        fb = [("sendfd" if fd else "send", b, f.hex()) for f, fd in self.producer_frames()]
        out: List[Action] = []
        while fa or fb:
            src = fa if (fa and (not fb or self.chance(0.5))) else fb
            out.append(src.pop(0))
        if self.chance(0.5):
            out += [("close", a), ("close", b)]
        return out

    def control_case(self) -> List[Action]:
        c = self.conn()
        out: List[Action] = [("send", c, self.hello(wire.ROLE_CONTROL).hex())]
        for _ in range(self.r.randint(1, 4)):
            f = self.control_request()
            if self.chance(0.1):
                f = self.mutate(f)
            out.append(("send", c, f.hex()))
        if self.chance(0.1):
            out.append(("send", c, wire.metric(1, 1, 1, 1.0).hex()))  # a data record on a control connection
        out.append(("close", c))
        return out

    def garbage_case(self) -> List[Action]:
        c = self.conn()
        frames = [f for f, _ in self.producer_frames()]
        blob = bytearray(b"".join(frames))
        for _ in range(self.r.randint(1, 6)):
            i = self.r.randrange(len(blob))
            blob[i] = self.r.randrange(256)
        if self.chance(0.5):
            blob = blob[: self.r.randint(1, len(blob))]
        return [("send", c, bytes(blob).hex()), ("close", c)]

    # -- config files ------------------------------------------------------------------------

    CONFIG_INTS = ["max_frame_bytes", "writer_queue_bytes", "rotate_bytes", "keep_log_segments", "ack_interval_ms",
                   "snapshot_interval_ms", "resume_grace_s", "rank_wait_s", "max_connections"]

    def config(self) -> bytes:
        """A config file whose integers sit at, just inside or just past the edges of their ranges."""
        edges = [0, 1, -1, 2, 4095, 4096, 10, 59999, 60000, 60001, 86400000, 2592000, 1 << 20, (1 << 20) + 1,
                 1 << 26, (1 << 26) + 1, 1 << 40, (1 << 40) + 1, 1048576, 1048577, (1 << 31) - 1, (1 << 63) - 1,
                 1 << 63, -(1 << 63)]
        keys = self.r.sample(self.CONFIG_INTS, self.r.randint(1, 4))
        # max_connections stays above what a case opens (4 clients + the sync's control
        # connection): a daemon that refuses a fifth connection is doing its job.
        lines = ["%s: %d" % (k, self.r.choice([v for v in edges if k != "max_connections" or not 0 < v < 16]))
                 for k in keys]
        if self.chance(0.2):
            lines.append(self.r.choice(["log_level: debug", "socket_group: \"\"", "x: 1", "rotate_bytes: 1_0", "a: &x 1"]))
        return ("\n".join(lines) + "\n").encode()

    # -- poisoning what start-up reads -------------------------------------------------------

    def poison(self, root: str) -> List[Action]:
        """``write`` actions that corrupt checkpoints, active markers or run.yaml in ``root``."""
        found: List[str] = []
        for dirpath, _, files in os.walk(root):
            for f in files:
                if f in (".logd-checkpoint", "run.yaml") or os.path.basename(dirpath) == "active":
                    found.append(os.path.relpath(os.path.join(dirpath, f), root))
        if not found:
            return []
        out: List[Action] = []
        for rel in self.r.sample(found, min(len(found), self.r.randint(1, 2))):
            with open(os.path.join(root, rel), "rb") as fh:
                data = fh.read()
            new = self.poison_bytes(rel, data)
            out.append(("write", glob_for(rel), new.hex()))
        return out

    def poison_bytes(self, rel: str, data: bytes) -> bytes:
        r = self.r
        if rel.endswith(".logd-checkpoint") and self.chance(0.8):
            try:
                recs = wire.decode_frames(data, max_frame=1 << 30)
                tree = recs[0]["params"]
                self.poison_tree(tree)
                return wire.params(tree)
            except Exception:
                pass
        if rel.endswith("run.yaml") and self.chance(0.5):
            return r.choice([b"", b"status: [\n", b"run_id: *x\n", b"\x00\xff" * 8, b"start_time: -999999999999\n",
                             data.replace(b"running", b"\xff\xfe")])
        if self.chance(0.3):
            return data[: r.randint(0, len(data))]
        b = bytearray(data) or bytearray(b"\x00")
        for _ in range(r.randint(1, 8)):
            b[r.randrange(len(b))] = r.randrange(256)
        if "active" in rel and self.chance(0.5):
            return r.choice([b"../../etc\n", b"/etc\n", b"\n", b"x" * 5000, b"nonexistent/dir\n"])
        return bytes(b)

    def poison_tree(self, tree: Any) -> None:
        """Sets some integers of a decoded checkpoint to extremes, or their types to wrong ones."""
        nodes: List[Tuple[Any, Any]] = []

        def walk(v: Any) -> None:
            if isinstance(v, dict):
                for k in list(v):
                    nodes.append((v, k))
                    walk(v[k])
            elif isinstance(v, list):
                for i in range(len(v)):
                    nodes.append((v, i))
                    walk(v[i])

        walk(tree)
        if not nodes:
            return
        ints = [(c, k) for c, k in nodes if isinstance(c[k], int) and not isinstance(c[k], bool)]
        for _ in range(self.r.randint(1, 3)):
            if ints and self.chance(0.7):
                c, k = self.r.choice(ints)
                c[k] = self.r.choice(I64_EXTREMES)
            else:
                c, k = self.r.choice(nodes)
                if isinstance(c[k], str) and self.chance(0.5) and c[k]:
                    s = c[k]
                    i = self.r.randrange(len(s))
                    c[k] = s[:i] + self.r.choice("0f-z ") + s[i + 1:]
                else:
                    c[k] = self.r.choice([None, "x", -1, I64_MIN, [], {}, 1.5, True])


def glob_for(rel: str) -> str:
    """A run directory's time stamp becomes ``*``: replays start runs at other times."""
    return re.sub(r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}", "*", rel)


# ---------------------------------------------------------------------------------------------
# Minimization
# ---------------------------------------------------------------------------------------------


def same_crash(binary: str, actions: List[Action], site: str) -> bool:
    e = replay(binary, actions)
    return e is not None and e.site == site


def minimize(binary: str, units: List[List[Action]], site: str, budget_s: float, log: Any) -> List[Action]:
    """Delta-debugging over cases (units), then over single actions, keeping the same site."""
    deadline = time.monotonic() + budget_s
    trials = 0

    def flat(us: List[List[Action]]) -> List[Action]:
        return [a for u in us for a in u]

    def test(acts: List[Action]) -> bool:
        nonlocal trials
        trials += 1
        return same_crash(binary, acts, site)

    # 1. cases: drop chunks of decreasing size
    n = 2
    while len(units) >= 2 and time.monotonic() < deadline:
        chunk = max(1, len(units) // n)
        reduced = False
        for i in range(0, len(units), chunk):
            cand = units[:i] + units[i + chunk:]
            if cand and test(flat(cand)):
                units = cand
                n = max(n - 1, 2)
                reduced = True
                break
            if time.monotonic() > deadline:
                break
        if not reduced:
            if chunk == 1:
                break
            n = min(n * 2, len(units))
    actions = flat(units)
    # 2. single actions, last first (later frames depend on earlier ones)
    i = len(actions) - 1
    while i >= 0 and time.monotonic() < deadline:
        cand = actions[:i] + actions[i + 1:]
        if cand and test(cand):
            actions = cand
        i -= 1
    log("  minimized to %d actions in %d trials" % (len(actions), trials))
    return actions


# ---------------------------------------------------------------------------------------------
# Main loop
# ---------------------------------------------------------------------------------------------


def backtrace_lines(stderr: str, n: int = 8) -> List[str]:
    """The first frames of the crashed thread, for the regression file's header."""
    m = re.search(r"^Thread \d+[^\n]*crashed:$", stderr, re.M)
    if m is None:
        tail = [ln for ln in stderr.splitlines() if ln.strip()][-n:]
        return ["stderr: " + ln[:200] for ln in tail]
    lines = [ln for ln in stderr[m.start():].splitlines() if ln.strip()][: n + 1]
    return ["  " + ln.strip()[:200] for ln in lines]


def known_sites(out_dir: Path) -> Dict[str, Path]:
    sites: Dict[str, Path] = {}
    if out_dir.is_dir():
        for p in sorted(out_dir.glob("*.txt")):
            for line in p.read_text(errors="replace").splitlines():
                if line.startswith("# site: "):
                    sites[line[len("# site: "):].split()[0]] = p
    return sites


def slug(site: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", site.split("/")[-1]).strip("-").lower()


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--logd", default=logd_binary(), help="logd binary (default $LOGD_BIN, else .build/debug/logd)")
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("FUZZ_SECONDS", 120)))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--out", default=str(REPO / "vectors" / "fuzz-daemon"), help="where new crash inputs go")
    ap.add_argument("--batch", type=int, default=25, help="cases between two restarts")
    ap.add_argument("--generation", type=int, default=4, help="batches before a fresh data root")
    ap.add_argument("--minimize-seconds", type=float, default=120)
    ap.add_argument("--notes", default=None, help="also append each new crash site to this markdown file")
    ap.add_argument("--no-save", action="store_true", help="report crashes without writing files")
    args = ap.parse_args(argv)
    if not args.logd or not os.path.exists(args.logd):
        print("fuzz_daemon: no logd binary (set LOGD_BIN or --logd)", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    gen = Gen(rng)
    out_dir = Path(args.out)
    sites = known_sites(out_dir)
    start = time.monotonic()
    stats = {"executions": 0, "frames": 0, "restarts": 0, "crashes": 0, "new_sites": 0, "hangs": 0}
    found: List[Tuple[str, str, str]] = []

    def log(msg: str) -> None:
        print("[%6.1fs] %s" % (time.monotonic() - start, msg), flush=True)

    log("logd %s, seed %d, %.0f s, %d known sites" % (args.logd, seed, args.seconds, len(sites)))
    daemon = Logd(args.logd)
    ex = Executor(daemon)
    history: List[List[Action]] = []
    batches = 0
    last_report = time.monotonic()

    def fresh() -> None:
        nonlocal history, batches
        ex.drop_connections()
        daemon.wipe()
        history = []
        batches = 0

    streak = {"n": 0}  # crashes since the last case that passed

    def on_crash(e: DaemonDied) -> Optional[DaemonDied]:
        """Counts and records a crash; returns the next one when restarting crashes again."""
        stats["crashes"] += 1
        if e.kind == "hang":
            stats["hangs"] += 1
        key = e.site
        if key not in sites:
            save_new(e)
            fresh()
            return None
        log("crash at known site %s (%s)" % (key, e.message))
        streak["n"] += 1
        if e.kind.startswith("startup") or streak["n"] >= 3:
            fresh()  # a data root that traps at start-up for a known reason: start over
            return None
        # Go on with the same data root, as after a kill -9 at this point (the crashing case is
        # replaced by a kill in the history, so later findings replay without the known crash).
        history[-1] = [("kill",)]
        ex.drop_connections()
        try:
            ex.do(("start",))
        except DaemonDied as e2:
            history.append([("start",)])
            return e2
        history.append([("start",)])
        return None

    def save_new(e: DaemonDied) -> None:
        key = e.site
        log("NEW crash: %s at %s: %s" % (e.kind, key, e.message))
        acts = minimize(args.logd, [list(u) for u in history], key, args.minimize_seconds, log)
        check = replay(args.logd, acts)
        note = ""
        if check is None or check.site != key:
            log("  (minimized input does not reproduce; keeping the whole history)")
            acts = [a for u in history for a in u]
            if replay(args.logd, acts) is None:
                note = " (did not reproduce in a replay: timing-dependent)"
        stats["new_sites"] += 1
        digest = hashlib.sha256(render(acts, []).encode()).hexdigest()[:8]
        path = out_dir / ("%s-%s.txt" % (slug(key), digest))
        sites[key] = path
        header = ["logd daemon fuzz regression (format: adversarial/actions.py)",
                  "site: %s" % key, "failure: %s: %s%s" % (e.kind, e.message, note),
                  "found by adversarial/fuzz_daemon.py seed %d" % seed] + backtrace_lines(e.stderr)
        text = render(acts, header)
        if not args.no_save:
            out_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            log("  saved %s (%d actions)" % (path, len(acts)))
        found.append((key, e.message + note, str(path)))
        if args.notes:
            with open(args.notes, "a") as f:
                f.write("\n## %s\n\n%s: %s%s  \nInput: `%s` (%d actions)\n" % (key, e.kind, e.message, note, path, len(acts)))

    try:
        while time.monotonic() - start < args.seconds:
            unit: List[Action] = []
            try:
                if batches >= args.generation:
                    fresh()
                if len(history) % (args.batch + 1) == args.batch:
                    # end of a batch: restart on the same data root, sometimes with poisoned state
                    unit = [("kill",) if rng.random() < 0.4 else ("stop",)]
                    ex.do(unit[0])
                    if rng.random() < 0.35:
                        unit += gen.poison(daemon.root)
                        for a in unit[1:]:
                            ex.do(a)
                    if rng.random() < 0.15:
                        c = ("config", gen.config().hex())
                        unit.append(c)
                        ex.do(c)
                    elif daemon.config_path is not None:
                        unit.append(("config", ""))
                        ex.do(("config", ""))
                    unit.append(("start",))
                    ex.do(("start",))
                    stats["restarts"] += 1
                    batches += 1
                    history.append(unit)
                    continue
                unit = gen.case() + [("sync",)]
                history.append(unit)
                ex.play(unit)
                stats["executions"] += 1
                streak["n"] = 0
            except DaemonDied as e:
                if unit and (not history or history[-1] is not unit):
                    history.append(unit)
                err: Optional[DaemonDied] = e
                while err is not None:
                    err = on_crash(err)
            if time.monotonic() - last_report > 10:
                last_report = time.monotonic()
                el = time.monotonic() - start
                log("executions %d (%.1f/s), frames %d, restarts %d, crashes %d, new sites %d" % (
                    stats["executions"], stats["executions"] / el, ex.frames, stats["restarts"], stats["crashes"],
                    stats["new_sites"]))
    finally:
        ex.close()
        daemon.cleanup()
    el = time.monotonic() - start
    stats["frames"] = ex.frames
    print("fuzz-daemon: %d executions in %.0f s (%.1f/s), %d frames, %d restarts (%d config files refused), "
          "%d crashes (%d hangs), %d new crash sites, seed %d" % (
              stats["executions"], el, stats["executions"] / max(el, 1e-9), ex.frames, stats["restarts"],
              ex.config_refusals, stats["crashes"], stats["hangs"], stats["new_sites"], seed))
    for key, msg, path in found:
        print("  %s  %s  %s" % (key, msg, path))
    return 1 if stats["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
