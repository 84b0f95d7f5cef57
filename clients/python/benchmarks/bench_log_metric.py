#!/usr/bin/env python3
"""Cost of ``Run.log_metric`` per call, beside the floor measured in the same run.

The floor is the least any pure-Python client can do per sample: one ``struct.pack_into`` of a
33-byte METRIC frame into a preallocated ``bytearray``. ``log_metric`` adds the key lookup and
the clock; it appends ``key_id, step, timestamp, value`` to the run's pending list, and the
sender thread packs those into METRIC_BATCH frames (``FrameBuffer.drain``).

Three measurements, floor and client interleaved round by round so both see the same machine.
Each round's amortized batches follow a **warm-up** of the same interleaved batches, timed but
left out of the figures (1 s before the first round, ``--warmup``; 0.3 s before the others). A
burst of calls that starts while the sender is idle (it looks every 250 ms then) logs up to
250 ms of samples before the first drain: at this loop's ~3 M calls/s that is some 40 MB of
pending samples faulted into fresh memory, which made the round's log_metric 20-35% slower and,
depending on how many rounds it hit, moved the ratio by up to 0.5x from run to run. A training
loop logs orders of magnitude slower and never sees it; the warm-ups' own ratio is printed.

- **amortized**: batches of 1,000 calls timed together, per call. Floor and client batches
  alternate in adjacent pairs (each going first in every other pair), and the **ratio** is the
  median over the pairs of client / floor: each client batch is set against the floor batch
  timed next to it, in the same conditions. The figure to compare with the target (<= 2x the
  floor). Also printed: the median batch of each, and the ratio of those two medians, which on
  a machine whose load changes between rounds compares a floor median from one load with a
  client median from another (one run here: 2.07x from the medians, 1.63-2.42x per round). A
  batch that the sender's drain interrupted is slower; the median is the call as the training
  thread sees it.
- **CPU per sample, both threads**: process CPU time (``time.process_time_ns``) of a round of
  calls plus the drain that packs them, per call -- what the process pays in all, packing
  included -- beside the same for the floor loop.
- **packing alone**: the drain that turns pending samples into METRIC_BATCH frames, timed on its
  own (20,000 samples logged while the buffer lock keeps the sender out, then one drain), per
  sample, with and without a step; and the calls of that same loop, with no sender around.
- **per call**: every call timed on its own with ``perf_counter_ns``, for the tail
  (median, p99, p99.9). These include the timer's own cost, printed as ``timer``.

    PYTHONPATH=clients/python/src python3 clients/python/benchmarks/bench_log_metric.py
    ... --sink daemon --socket /path/to/logd.sock   # with a live daemon (sender thread busy)
"""

from __future__ import annotations

import argparse
import array
import gc
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import logd  # noqa: E402
from logd import _sender, wire  # noqa: E402

_perf = time.perf_counter_ns


def pct(sorted_values, q):
    i = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return sorted_values[i]


def floor_batch(n, buf, pack=wire.METRIC_FRAME.pack_into):
    t0 = _perf()
    for i in range(n):
        pack(buf, 0, 29, 0x22, 1, i, 1700000000000000000, 0.5)
    return _perf() - t0


def floor_cpu(n, buf, pack=wire.METRIC_FRAME.pack_into):
    t0 = time.process_time_ns()
    for i in range(n):
        pack(buf, 0, 29, 0x22, 1, i, 1700000000000000000, 0.5)
    return time.process_time_ns() - t0


def client_cpu(n, run, start):
    """Process CPU of ``n`` calls and of packing them (the drain the sender would do)."""
    log = run.log_metric
    settle = run._buf.settle
    t0 = time.process_time_ns()
    for i in range(start, start + n):
        log("loss", 0.5, i)
    settle()
    return time.process_time_ns() - t0


def packing(n, run, start, stepped):
    """(ns per call with the sender kept out, ns per sample to pack them)."""
    b = run._buf
    log = run.log_metric
    with b.lock:
        t0 = _perf()
        if stepped:
            for i in range(start, start + n):
                log("loss", 0.5, i)
        else:
            for i in range(start, start + n):
                log("loss", 0.5)
        t1 = _perf()
        b.drain()
        t2 = _perf()
    return (t1 - t0) / n, (t2 - t1) / n


def client_batch(n, run, start):
    log = run.log_metric
    t0 = _perf()
    for i in range(start, start + n):
        log("loss", 0.5, i)
    return _perf() - t0


class _Empty:
    def log_metric(self, key, value, step=None, context="training", source=None):
        pass


def components(n):
    """Amortized cost of the pieces a call is made of (ns per call), for the breakdown."""
    import threading

    out = {}
    e = _Empty().log_metric
    lock = threading.Lock()
    pending: list = []
    extend = pending.extend
    ids = {"loss": 1}
    t0 = _perf()
    for i in range(n):
        e("loss", 0.5, i)
    out["python_call"] = (_perf() - t0) / n
    t0 = _perf()
    for _ in range(n):
        time.time_ns()
    out["time_ns"] = (_perf() - t0) / n
    t0 = _perf()
    for _ in range(n):
        lock.acquire()
        lock.release()
    out["lock"] = (_perf() - t0) / n
    t0 = _perf()
    for _ in range(n):
        ids.get("loss")
    out["dict_get"] = (_perf() - t0) / n
    t0 = _perf()
    for i in range(n):
        extend((1, i, 1700000000000000000, 0.5))
    out["extend"] = (_perf() - t0) / n
    t0 = _perf()
    for _ in range(n):
        pass
    out["loop"] = (_perf() - t0) / n
    return out


def floor_each(n, buf, out, pack=wire.METRIC_FRAME.pack_into):
    for i in range(n):
        t0 = _perf()
        pack(buf, 0, 29, 0x22, 1, i, 1700000000000000000, 0.5)
        out.append(_perf() - t0)


def client_each(n, run, start, out):
    log = run.log_metric
    for i in range(start, start + n):
        t0 = _perf()
        log("loss", 0.5, i)
        out.append(_perf() - t0)


def timer_each(n, out):
    for _ in range(n):
        t0 = _perf()
        out.append(_perf() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=200_000, help="calls per round and kind (default 200000)")
    ap.add_argument("--rounds", type=int, default=10,
                    help="rounds (default 10: a burst of load on a shared machine lands in one or two of them)")
    ap.add_argument("--sink", choices=["none", "daemon"], default="none",
                    help="none: the sender acknowledges without a socket; daemon: a live logd")
    ap.add_argument("--socket", default=None, help="logd socket for --sink daemon")
    ap.add_argument("--warmup", type=float, default=1.0,
                    help="seconds of interleaved floor and client batches before the first round (default 1)")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()

    run = logd.Run(experiment="bench", name="log_metric", sink=args.sink, socket=args.socket,
                   buffer_bytes=1 << 30)
    run.log_metric("loss", 0.0, 0)  # intern the key outside the timed loops
    buf = bytearray(64)
    batch = 1000
    amort_floor, amort_client = [], []
    amort_rounds = []  # (floor, client) medians of each round's batches
    cpu_floor, cpu_client = [], []
    pack_floor, pack_calls, pack_stepped, pack_nostep = [], [], [], []
    # Per-call timings go into C arrays, not lists of ints: 600,000 int objects kept per round
    # would sit in the allocator's pools between the samples' own ints (the floor allocates
    # none), and made the next round's log_metric 20-35% slower than the rest.
    each_floor, each_client, each_timer = array.array("q"), array.array("q"), array.array("q")
    per_round = []
    warm_floor, warm_client = [], []
    step = 1
    gc.disable()
    try:
        for r in range(args.rounds):
            # Same loops, same order, not in the figures: 1 s before the first round; before
            # each other one, long enough for the sender (idle during the rounds' other parts,
            # so looking only every IDLE_INTERVAL_S) to look again and return to its busy cadence.
            warm_end = time.monotonic() + (args.warmup if r == 0 else _sender.IDLE_INTERVAL_S + 0.05)
            while time.monotonic() < warm_end:
                warm_floor.append(floor_batch(batch, buf) / batch)
                warm_client.append(client_batch(batch, run, step) / batch)
                step += batch
            for j in range(args.calls // batch):
                if j % 2:
                    amort_client.append(client_batch(batch, run, step) / batch)
                    amort_floor.append(floor_batch(batch, buf) / batch)
                else:
                    amort_floor.append(floor_batch(batch, buf) / batch)
                    amort_client.append(client_batch(batch, run, step) / batch)
                step += batch
            n = args.calls // batch
            amort_rounds.append((statistics.median(amort_floor[-n:]), statistics.median(amort_client[-n:])))
            for _ in range(5):
                pack_floor.append(floor_batch(20000, buf) / 20000)
                calls, packed = packing(20000, run, step, True)
                step += 20000
                pack_calls.append(calls)
                pack_stepped.append(packed)
                pack_nostep.append(packing(20000, run, step, False)[1])
                step += 20000
            cpu_floor.append(floor_cpu(args.calls, buf) / args.calls)
            cpu_client.append(client_cpu(args.calls, run, step) / args.calls)
            step += args.calls
            floor_each(args.calls, buf, each_floor)
            client_each(args.calls, run, step, each_client)
            step += args.calls
            timer_each(args.calls, each_timer)
            per_round.append(components(args.calls // 4))
            print("round %d/%d done" % (r + 1, args.rounds), file=sys.stderr, flush=True)
    finally:
        gc.enable()
    parts = {k: statistics.median(r[k] for r in per_round) for k in per_round[0]}
    flushed = run.flush(60)
    report = run.finish(timeout=60)

    each_floor = sorted(each_floor)
    each_client = sorted(each_client)
    each_timer = sorted(each_timer)
    result = {
        "python": platform.python_version(),
        "sink": args.sink,
        "calls": step - 1,
        "amortized_ns": {"floor_median": statistics.median(amort_floor),
                         "log_metric_median": statistics.median(amort_client),
                         "ratio_median_of_pairs": statistics.median(c / f for f, c in zip(amort_floor, amort_client)),
                         "rounds": [{"floor": f, "log_metric": c} for f, c in amort_rounds]},
        "warmup": {"calls": len(warm_client) * batch,
                   "floor_median_ns": statistics.median(warm_floor) if warm_floor else None,
                   "log_metric_median_ns": statistics.median(warm_client) if warm_client else None},
        "packing_alone_ns": {"floor_median": statistics.median(pack_floor),
                             "calls_median": statistics.median(pack_calls),
                             "pack_with_step_median": statistics.median(pack_stepped),
                             "pack_without_step_median": statistics.median(pack_nostep)},
        "cpu_per_sample_ns": {"floor_median": statistics.median(cpu_floor),
                              "log_metric_median": statistics.median(cpu_client)},
        "per_call_ns": {
            "timer_median": pct(each_timer, 0.5),
            "floor": {"median": pct(each_floor, 0.5), "p99": pct(each_floor, 0.99), "p999": pct(each_floor, 0.999)},
            "log_metric": {"median": pct(each_client, 0.5), "p99": pct(each_client, 0.99),
                           "p999": pct(each_client, 0.999)},
        },
        "components_ns": parts,
        "delivered": {"flushed": flushed, "acknowledged": report.acknowledged, "dropped": report.dropped,
                      "undelivered": report.undelivered},
    }
    a = result["amortized_ns"]
    e = result["per_call_ns"]
    print("python %s, sink %s, %d calls of log_metric" % (result["python"], args.sink, result["calls"]))
    w = result["warmup"]
    if w["calls"]:
        print("warm-ups, not in the figures (%d calls each; median batch): floor %.0f ns, log_metric %.0f ns, %.2fx" % (
            w["calls"], w["floor_median_ns"], w["log_metric_median_ns"], w["log_metric_median_ns"] / w["floor_median_ns"]))
    print("amortized (batches of %d, in adjacent floor/client pairs; median batch):" % batch)
    print("  floor (struct.pack_into)   %7.0f ns" % a["floor_median"])
    print("  log_metric                 %7.0f ns   %.2fx floor (median of the pairs' ratios)" % (
        a["log_metric_median"], a["ratio_median_of_pairs"]))
    print("  ratio of the two medians   %7.2fx" % (a["log_metric_median"] / a["floor_median"]))
    print("  each round's ratio         %s" % " ".join("%.2f" % (c / f) for f, c in amort_rounds))
    print("  pieces (each alone, median of rounds, loop %.0f ns included): python call %.0f, time.time_ns %.0f, "
          "dict.get %.0f, list.extend %.0f ns (a lock, which the call no longer takes: %.0f ns)" % (
              parts["loop"], parts["python_call"], parts["time_ns"], parts["dict_get"], parts["extend"], parts["lock"]))
    k = result["packing_alone_ns"]
    print("packing alone (batches of 20,000, sender kept out; median of rounds):")
    print("  floor (struct.pack_into)   %7.0f ns" % k["floor_median"])
    print("  log_metric calls           %7.0f ns   %.2fx floor" % (k["calls_median"], k["calls_median"] / k["floor_median"]))
    print("  packing, with a step       %7.0f ns   %.2fx floor" % (k["pack_with_step_median"],
                                                                   k["pack_with_step_median"] / k["floor_median"]))
    print("  packing, without a step    %7.0f ns   %.2fx floor" % (k["pack_without_step_median"],
                                                                   k["pack_without_step_median"] / k["floor_median"]))
    print("  calls + packing            %7.0f ns   %.2fx floor" % (
        k["calls_median"] + k["pack_with_step_median"],
        (k["calls_median"] + k["pack_with_step_median"]) / k["floor_median"]))
    c = result["cpu_per_sample_ns"]
    print("CPU per sample, both threads (packing into METRIC_BATCH included; median of rounds):")
    print("  floor (struct.pack_into)   %7.0f ns" % c["floor_median"])
    print("  log_metric + drain         %7.0f ns   %.2fx floor" % (c["log_metric_median"],
                                                                   c["log_metric_median"] / c["floor_median"]))
    print("per call (each timed; includes the timer, %d ns):" % e["timer_median"])
    print("                             median     p99   p99.9")
    for name in ("floor", "log_metric"):
        f = e[name]
        print("  %-25s %7d %7d %7d ns" % (name, f["median"], f["p99"], f["p999"]))
    print("  ratio log_metric / floor   %7.2f %7.2f %7.2f" % tuple(
        e["log_metric"][k] / e["floor"][k] for k in ("median", "p99", "p999")))
    print("delivered: %s" % report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
