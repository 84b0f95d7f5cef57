#!/usr/bin/env python3
"""Instructions per METRIC record: logd beside a C floor, counted by callgrind (issue 18).

Instruction counts do not depend on the machine's load, so this is the figure to compare
across commits. Each side ingests the same byte stream (wire-producer --dump) twice, with N1
and N2 metrics; the difference divided by N2 - N1 is the cost of one record, free of start-up
and shutdown. logd runs whole (loop, writer, fsyncs: every thread counted) and must make every
record durable before it is stopped; the floor (bench/floor.c) decodes the frames and writes
the byte-identical CSV lines, which this script checks against logd's metrics.csv.

    make bench-instructions                      # release build, then this script
    python3 bench/instructions.py --bin .build/release --floor /tmp/floor [--json out.json]
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


def run_logd(bindir, stream_args, tmp, tag, config):
    root = os.path.join(tmp, f"root-{tag}")
    sock = os.path.join(tmp, f"logd-{tag}.sock")
    cg = os.path.join(tmp, f"logd-{tag}.cg")
    argv = [os.path.join(bindir, "logd"), "--socket", sock, "--data-root", root, "--log-level", "warning"]
    if config:
        cfg = os.path.join(tmp, f"logd-{tag}.yaml")
        with open(cfg, "w") as f:
            f.write(config)
        argv += ["--config", cfg]
    proc = subprocess.Popen(valgrind(cg, argv))
    try:
        deadline = time.monotonic() + 120
        while not os.path.exists(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("logd did not start")
            time.sleep(0.05)
        subprocess.run(
            [os.path.join(bindir, "wire-producer"), "--socket", sock, "--run-id", f"bench-{tag}", "--retry-seconds", "600", *stream_args],
            check=True,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=600)
    csvs = glob.glob(os.path.join(root, "*", "*", "metrics.csv"))
    if len(csvs) != 1:
        raise RuntimeError(f"expected one metrics.csv, found {csvs}")
    return callgrind_total(cg), csvs[0]


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
    ap.add_argument("--config", default="", help="YAML text given to logd (e.g. to switch an output off)")
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="logd-instr-") as tmp:
        for label, extra in (("METRIC frames", []), ("METRIC_BATCH of 100", ["--batch", "100"])):
            totals = {}
            for n in (args.n1, args.n2):
                stream = os.path.join(tmp, f"stream-{n}.bin")
                produce = ["--metrics", str(n), *extra]
                subprocess.run(
                    [os.path.join(args.bin, "wire-producer"), "--run-id", "dump", "--dump", stream, *produce], check=True
                )
                tag = f"{n}-{len(extra)}"
                floor_total, floor_csv = run_floor(args.floor, stream, tmp, tag)
                logd_total, logd_csv = run_logd(args.bin, produce, tmp, tag, args.config)
                if not same_rows(floor_csv, logd_csv):
                    raise SystemExit(f"floor and logd wrote different rows for {n} metrics ({label})")
                totals[n] = (floor_total, logd_total)
            span = args.n2 - args.n1
            floor_per = (totals[args.n2][0] - totals[args.n1][0]) / span
            logd_per = (totals[args.n2][1] - totals[args.n1][1]) / span
            results[label] = {"logd": round(logd_per), "floor": round(floor_per), "ratio": round(logd_per / floor_per, 2)}
    print(f"{'workload':<22} {'logd instr/record':>18} {'C floor':>8} {'ratio':>6}")
    for label, r in results.items():
        print(f"{label:<22} {r['logd']:>18,} {r['floor']:>8,} {r['ratio']:>5.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
