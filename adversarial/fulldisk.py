#!/usr/bin/env python3
"""Full-disk harness: logd's data root on a small tmpfs that runs out of space under load.

1. Mount a tmpfs (default 20 MiB) and fill most of it with a filler file; start logd with its
   data root there (socket outside it).
2. Producers (raw protocol, adversarial/harness.py RawProducer) stream METRIC records whose step
   and value are their sequence numbers, holding each frame until it is acknowledged.
3. The disk fills (ENOSPC). Producers keep trying for ``--full-seconds``; the harness records
   acknowledgements, logd's RSS at the start and end of that time, and what ``status`` says.
4. Space comes back (the filler is deleted, or with ``--grow`` the tmpfs is remounted larger).
   logd must resume by itself: every frame every producer holds gets acknowledged, without a
   restart (producers may reconnect, as the SDKs do).
5. logd is stopped and the metrics files are checked: every line whole (no torn CSV line), every
   acknowledged record present exactly once, no record twice.

Needs root (mount); without it, it prints a line and exits 77 (the tests skip).

    sudo adversarial/fulldisk.py [--logd PATH] [--size-mib 20] [--producers 4] [--grow]
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import MIB, DaemonDied, Logd, RawProducer, logd_binary, status, wire  # noqa: E402

EXPERIMENT = "fulldisk"
HEADER = "time,step,context,key,value,rank,source"


def can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


def mount_tmpfs(path: str, size_mib: int) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0755" % size_mib, "tmpfs", path], check=True)


def umount(path: str) -> None:
    subprocess.run(["umount", path], check=False, stderr=subprocess.DEVNULL)
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", path], check=False)


def check_files(root: str, producers: List[RawProducer], run_ids: List[str]) -> Dict[str, Any]:
    """Reads every metrics file of every producer's run; returns counts of what is wrong."""
    out: Dict[str, Any] = {"torn_lines": 0, "duplicates": 0, "missing_acked": 0, "directories": {}, "examples": []}
    for p, run_id in zip(producers, run_ids):
        dirs = sorted(glob.glob(os.path.join(root, EXPERIMENT, "*_" + run_id)) +
                      glob.glob(os.path.join(root, EXPERIMENT, "*_" + run_id + "[-_.]*")))
        out["directories"][run_id] = len(dirs)
        seen: Dict[int, int] = {}
        for d in dirs:
            files = sorted(glob.glob(os.path.join(d, "metrics.[0-9]*.csv"))) + [os.path.join(d, "metrics.csv")]
            for path in files:
                if not os.path.exists(path):
                    continue
                with open(path, "rb") as f:
                    data = f.read()
                text = data.decode("utf-8", "replace")
                lines = text.split("\n")
                if lines and lines[-1] == "":
                    lines.pop()
                elif lines:
                    out["torn_lines"] += 1  # the file ends inside a line
                    out["examples"].append("%s ends without a newline: %r" % (path, lines[-1][-80:]))
                    lines.pop()
                for n, line in enumerate(lines):
                    if n == 0 and line == HEADER:
                        continue
                    row = next(csv.reader(io.StringIO(line)), [])
                    if len(row) != 7 or row[3] != p.key:
                        out["torn_lines"] += 1
                        if len(out["examples"]) < 10:
                            out["examples"].append("%s line %d: %r" % (path, n + 1, line[:120]))
                        continue
                    try:
                        step = int(row[1])
                        if float(row[4]) != float(step):
                            raise ValueError
                    except ValueError:
                        out["torn_lines"] += 1
                        if len(out["examples"]) < 10:
                            out["examples"].append("%s line %d: %r" % (path, n + 1, line[:120]))
                        continue
                    seen[step] = seen.get(step, 0) + 1
        dups = sum(c - 1 for c in seen.values() if c > 1)
        missing = [s for s in range(2, p.acked + 1) if seen.get(s, 0) == 0]
        out["duplicates"] += dups
        out["missing_acked"] += len(missing)
        if missing and len(out["examples"]) < 10:
            out["examples"].append("%s: %d acknowledged records missing, first %r" % (run_id, len(missing), missing[:5]))
        if dups and len(out["examples"]) < 10:
            out["examples"].append("%s: %d rows twice, e.g. step %r" % (
                run_id, dups, [s for s, c in seen.items() if c > 1][:5]))
    return out


def run(binary: str, size_mib: int = 20, free_mib: int = 3, producers: int = 4, full_seconds: float = 10.0,
        grow: bool = False, recover_timeout: float = 90.0, cap: int = 20_000,
        flood_mib: int = 1024, queue_bytes: int = 4 * MIB) -> Dict[str, Any]:
    base = tempfile.mkdtemp(prefix="logd-full-")
    mnt = os.path.join(base, "fs")
    os.mkdir(mnt)
    mount_tmpfs(mnt, size_mib)
    r: Dict[str, Any] = {"size_mib": size_mib, "producers": producers}
    # A small writer queue: backpressure (logd stops reading) must come soon after the disk fills.
    d = Logd(binary, base, data_root=os.path.join(mnt, "runs"), config={"writer_queue_bytes": queue_bytes})
    ps: List[RawProducer] = []
    try:
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * ((size_mib - free_mib) * MIB))
        d.start()
        run_ids = ["run%d" % i for i in range(producers)]
        ps = [RawProducer(d.socket, rid, EXPERIMENT, "p%d" % i) for i, rid in enumerate(run_ids)]
        for p in ps:
            p.connect()
        reconnects = 0

        def step(append: bool) -> None:
            nonlocal reconnects
            for p in ps:
                if p.sock is None:
                    p.connect()
                    reconnects += 1
                if append and len(p.held) < cap:
                    for _ in range(200):
                        p.metric()
                p.pump(0)

        # Fill: until acknowledgements stop moving while the producers still send.
        last_acked, last_move = -1, time.monotonic()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            step(True)
            acked = sum(p.acked for p in ps)
            if acked != last_acked:
                last_acked, last_move = acked, time.monotonic()
            elif time.monotonic() - last_move > 3:
                break
            d.check()
        r["full_reached"] = time.monotonic() < deadline
        r["acked_when_full"] = sum(p.acked for p in ps)
        # Full: the producers keep trying, and one more producer (its records are not checked)
        # streams new records as fast as logd takes them; memory must stay bounded.
        flood = RawProducer(d.socket, "flood", EXPERIMENT, "flood")
        flood.connect()
        frame = wire.metric(1, 1, time.time_ns(), 1.0)
        chunk = frame * 2000
        flooded = 0
        rss0 = d.memory()["VmRSS"]
        rss_mid = None
        t0 = time.monotonic()
        while time.monotonic() - t0 < full_seconds:
            if rss_mid is None and time.monotonic() - t0 >= full_seconds / 2:
                rss_mid = d.memory()["VmRSS"]
            step(True)
            if flooded < flood_mib * MIB and flood.sock is not None and flood.unsent < len(chunk):
                flood._outbuf += chunk  # not held: these records are not part of the oracle
                flooded += len(chunk)
            flood.pump(0)
            d.check()
        r["flood_bytes_taken"] = flooded - flood.unsent
        rss1 = d.memory()["VmRSS"]
        r["rss_growth_while_full"] = rss1 - rss0
        r["rss_growth_per_s_second_half"] = (rss1 - (rss_mid or rss0)) / (full_seconds / 2)
        r["peak_rss"] = d.memory()["VmHWM"]
        try:
            st = status(d.socket, timeout=10)
            r["status_answered_while_full"] = True
            r["backpressure_while_full"] = bool(st["writer"].get("backpressure"))
            r["status_while_full"] = {"writer": st.get("writer"), "write_errors": st["totals"].get("write_errors"),
                                      "disk_free_bytes": st.get("disk_free_bytes")}
            r["write_errors_seen"] = st["totals"].get("write_errors", 0) > 0
        except (OSError, ConnectionError) as e:
            # logctl status must work exactly now: it is how an operator sees the condition.
            r["status_answered_while_full"] = False
            r["status_while_full"] = "no answer: %s" % e
            r["backpressure_while_full"] = None
            r["write_errors_seen"] = None
        r["acked_after_full_time"] = sum(p.acked for p in ps)
        # Space returns.
        if grow:
            subprocess.run(["mount", "-o", "remount,size=%dm" % (size_mib * 10), mnt], check=True)
        else:
            os.unlink(filler)
        t1 = time.monotonic()
        while time.monotonic() - t1 < recover_timeout:
            step(False)
            if all(not p.held for p in ps):
                break
            d.check()
        r["resumed_by_itself"] = all(not p.held for p in ps)
        r["resume_seconds"] = time.monotonic() - t1
        r["unacked_left"] = sum(len(p.held) for p in ps)
        flood.close()
        r["reconnects"] = reconnects
        r["acked_total"] = sum(p.acked for p in ps)
        r["errors_from_logd"] = [e for p in ps for e in p.errors][:5]
        for p in ps:
            p.close()
        code = d.stop()
        r["exit_code"] = code
        r.update(check_files(d.root, ps, run_ids))
        r["ok"] = bool(r["full_reached"] and r["write_errors_seen"] and r["status_answered_while_full"] and r["resumed_by_itself"] and r["torn_lines"] == 0 and r["duplicates"] == 0
                       and r["missing_acked"] == 0 and code == 0 and r["peak_rss"] <= 256 * MIB)
        return r
    except DaemonDied as e:
        r["ok"] = False
        r["death"] = "%s at %s: %s" % (e.kind, e.site, e.message)
        return r
    finally:
        for p in ps:
            p.close()
        d.cleanup_proc()
        umount(mnt)
        shutil.rmtree(base, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--logd", default=logd_binary())
    ap.add_argument("--size-mib", type=int, default=20)
    ap.add_argument("--producers", type=int, default=4)
    ap.add_argument("--full-seconds", type=float, default=10)
    ap.add_argument("--grow", action="store_true", help="remount the tmpfs larger instead of deleting the filler")
    args = ap.parse_args()
    if not can_mount():
        print("fulldisk: needs root and mount(8); skipped")
        return 77
    if not args.logd:
        print("fulldisk: no logd binary (set LOGD_BIN or --logd)", file=sys.stderr)
        return 2
    r = run(args.logd, args.size_mib, producers=args.producers, full_seconds=args.full_seconds, grow=args.grow)
    for k, v in r.items():
        print("%-28s %s" % (k, v))
    return 0 if r.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
