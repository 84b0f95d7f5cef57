#!/usr/bin/env python3
"""Instructions per METRIC record: logd beside a C floor, counted by callgrind (issue 18).

Instruction counts do not depend on the machine's load, so this is the figure to compare
across commits. Each side ingests the same byte stream (wire-producer --dump) twice, with N1
and N2 metrics; the difference divided by N2 - N1 is the cost of one record, free of start-up,
run creation and shutdown. logd runs whole (loop, writer, fsyncs, the per-key files and
snapshots at the run's end: every thread counted) and makes every record durable before it is
stopped; the floor (bench/floor.c) decodes the frames and writes the byte-identical CSV lines,
which this script checks against logd's metrics.csv.

Also measured (logd only, the ratio is against the one-key, one-producer figure): one producer
cycling over --keys keys, and --producers producers (ranks of one run, one connection each).

Time-driven work (the durability point every ack_interval_ms, snapshot rewrites every
snapshot_interval_ms) is left out unless --with-timers: callgrind runs logd ~50x slower, so a
second of real time holds ~50x fewer records and that work would count ~50x per record, and
vary with the machine. docs/PERFORMANCE.md gives its cost per second separately.

    make bench-instructions                      # release build, then this script
    python3 bench/instructions.py --bin .build/release --floor /tmp/floor [--config 'tensorboard: false']
"""

import argparse
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time


def callgrind_total(path):
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def valgrind(out, argv):
    return ["valgrind", "--tool=callgrind", "--quiet", f"--callgrind-out-file={out}", *argv]


def run_floor(floor, stream, tmp, tag):
    out_csv = os.path.join(tmp, f"floor-{tag}.csv")
    cg = os.path.join(tmp, f"floor-{tag}.cg")
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    proc = subprocess.Popen(valgrind(cg, [floor, out_csv]), stdin=b)
    b.close()
    with open(stream, "rb") as f:
        a.sendall(f.read())
    a.shutdown(socket.SHUT_WR)
    if proc.wait(timeout=600) != 0:
        raise RuntimeError("floor failed")
    a.close()
    return callgrind_total(cg), out_csv


def drive_producers(sock_path, producers, metrics, run_id):
    """`producers` connections (ranks of one run, DDP-like), each logging `metrics` METRIC
    frames of one key and RUN_END, then closing; replies are read and dropped as they come.
    Returns once logd's status counts every record (so a SIGTERM cannot come before logd has
    read them); no FLUSH, whose durability points would depend on timing (a FLUSH per producer
    made the figure 20x and unstable)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python", "src"))
    from logd import control, wire  # the Python client's codec and control client

    t0 = 1_700_000_000_000_000_000
    pending = {}
    for r in range(producers):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.monotonic() + 60
        while True:  # the socket file exists from bind(); listen() follows
            try:
                c.connect(sock_path)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        c.setblocking(False)
        out = bytearray()
        out += wire.hello(1, os.getpid(), os.urandom(16), 1, "bench", "0")
        out += wire.run_start(run_id, "bench", "many", [], r, r, producers, "benchhost", ["bench"], "/", "", 2, None, 0)
        out += wire.metric_key(0, "m0", "training", "")
        for i in range(metrics):
            out += wire.metric(0, i, t0 + i * 1_000_000, float(i))
        out += wire.run_end(1, t0 + metrics * 1_000_000)
        pending[c] = memoryview(bytes(out))
    conns = list(pending)
    while pending:
        for c in list(pending):
            try:
                while c.recv(65536):
                    pass
            except BlockingIOError:
                pass
            try:
                n = c.send(pending[c][:65536])
                pending[c] = pending[c][n:]
            except BlockingIOError:
                pass
            if not pending[c]:
                del pending[c]
        time.sleep(0.001)
    # Every RUN_START, metric and RUN_END counted in the daemon's totals (a run that ended
    # leaves the status's run list; the totals stay).
    expected = producers * (metrics + 2)
    deadline = time.monotonic() + 900
    while (taken := control.status(socket=sock_path, timeout=60).get("totals", {}).get("records", 0)) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"logd took {taken} of {expected} records")
        time.sleep(0.2)
    for c in conns:
        c.close()


def run_logd(bindir, produce, tmp, tag, config, producers=0):
    root = os.path.join(tmp, f"root-{tag}")
    sock = os.path.join(tmp, f"logd-{tag}.sock")
    cg = os.path.join(tmp, f"logd-{tag}.cg")
    argv = [os.path.join(bindir, "logd"), "--socket", sock, "--data-root", root, "--log-level", "warning"]
    if config:
        cfg = os.path.join(tmp, f"logd-{tag}.yaml")
        with open(cfg, "w") as f:
            f.write(config + "\n")
        argv += ["--config", cfg]
    proc = subprocess.Popen(valgrind(cg, argv))
    try:
        deadline = time.monotonic() + 120
        while not os.path.exists(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("logd did not start")
            time.sleep(0.05)
        if producers:
            drive_producers(sock, producers, produce, f"bench-{tag}")
        else:
            subprocess.run(
                [os.path.join(bindir, "wire-producer"), "--socket", sock, "--run-id", f"bench-{tag}", "--retry-seconds", "600", *produce],
                check=True,
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=900)
    csvs = glob.glob(os.path.join(root, "*", "*", "metrics.csv"))
    if len(csvs) != 1:
        raise RuntimeError(f"expected one metrics.csv, found {csvs}")
    return callgrind_total(cg), csvs[0]


def rows(csv_path):
    with open(csv_path, "rb") as f:
        return f.read().count(b"\n") - 1


def same_rows(floor_csv, logd_csv):
    with open(floor_csv, "rb") as f:
        floor = f.read()
    with open(logd_csv, "rb") as f:
        logd = f.read().split(b"\n", 1)[1]  # without the header
    return floor == logd


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=".build/release", help="folder with logd and wire-producer (release build)")
    ap.add_argument("--floor", required=True, help="the compiled bench/floor.c")
    ap.add_argument("--n1", type=int, default=20_000)
    ap.add_argument("--n2", type=int, default=120_000)
    ap.add_argument("--keys", type=int, default=10_000, help="also: one producer cycling over this many keys (0: skip)")
    ap.add_argument("--producers", type=int, default=1_000, help="also: this many producers of one run (0: skip)")
    ap.add_argument("--config", default="", help="YAML text given to logd (e.g. 'tensorboard: false')")
    ap.add_argument(
        "--with-timers", action="store_true",
        help="keep logd's time-driven work (the ack_interval_ms durability point, the snapshot_interval_ms rewrites); "
        "by default both are pushed past the run: under callgrind a second of real time holds ~50x fewer records, "
        "so that work would be counted ~50x per record (and vary with the machine's speed)",
    )
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()
    if not args.with_timers:
        # Durability then comes from each producer's FLUSH and the run's end, as it would for a
        # record in a second holding ~1 M records (one durability point per 50,000 records).
        args.config = "ack_interval_ms: 60000\nsnapshot_interval_ms: 86400000\n" + args.config
    results = {}
    span = args.n2 - args.n1
    with tempfile.TemporaryDirectory(prefix="logd-instr-") as tmp:
        for label, extra in (("METRIC frames", []), ("METRIC_BATCH of 100", ["--batch", "100"])):
            totals = {}
            for n in (args.n1, args.n2):
                stream = os.path.join(tmp, f"stream-{n}.bin")
                produce = ["--metrics", str(n), *extra]
                subprocess.run([os.path.join(args.bin, "wire-producer"), "--run-id", "dump", "--dump", stream, *produce], check=True)
                tag = f"{n}-{len(extra)}"
                floor_total, floor_csv = run_floor(args.floor, stream, tmp, tag)
                logd_total, logd_csv = run_logd(args.bin, produce, tmp, tag, args.config)
                if not same_rows(floor_csv, logd_csv):
                    raise SystemExit(f"floor and logd wrote different rows for {n} metrics ({label})")
                totals[n] = (floor_total, logd_total)
            floor_per = (totals[args.n2][0] - totals[args.n1][0]) / span
            logd_per = (totals[args.n2][1] - totals[args.n1][1]) / span
            results[label] = {"logd": round(logd_per), "floor": round(floor_per), "ratio": round(logd_per / floor_per, 2)}
        base = results["METRIC frames"]["logd"]
        if args.keys:
            totals = []
            for n in (args.n1, args.n2):
                total, path = run_logd(args.bin, ["--metrics", str(n), "--keys", str(args.keys)], tmp, f"keys-{n}", args.config)
                if rows(path) != n:
                    raise SystemExit(f"{rows(path)} rows for {n} metrics over {args.keys} keys")
                totals.append(total)
            per = (totals[1] - totals[0]) / span
            results[f"{args.keys:,} keys"] = {"logd": round(per), "vs 1 key, 1 producer": round(per / base, 2)}
        if args.producers:
            per_producer = (max(1, args.n1 // args.producers), max(2, args.n2 // args.producers))
            totals = []
            for m in per_producer:
                total, path = run_logd(args.bin, m, tmp, f"producers-{m}", args.config, producers=args.producers)
                if rows(path) != m * args.producers:
                    raise SystemExit(f"{rows(path)} rows, {m * args.producers} sent by {args.producers} producers")
                totals.append(total)
            per = (totals[1] - totals[0]) / (args.producers * (per_producer[1] - per_producer[0]))
            results[f"{args.producers:,} producers of one run"] = {"logd": round(per), "vs 1 key, 1 producer": round(per / base, 2)}
    print(f"{'workload (METRIC records)':<28} {'logd instr/record':>18} {'C floor':>8} {'ratio':>8}")
    for label, r in results.items():
        if "floor" in r:
            print(f"{label:<28} {r['logd']:>18,} {r['floor']:>8,} {r['ratio']:>7.2f}x")
        else:
            print(f"{label:<28} {r['logd']:>18,} {'':>8} {r['vs 1 key, 1 producer']:>7.2f}x  (vs 1 key, 1 producer)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
