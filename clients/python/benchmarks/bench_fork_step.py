#!/usr/bin/env python3
"""Step time of a fork-based training loop with no logger, with logd and with tensorboardX.

What users feel is the step time of their loop, not nanoseconds per call. A PyTorch trainer
holds a large heap (torch alone is hundreds of thousands of objects) and forks DataLoader
workers; a worker whose garbage collector runs a full collection touches every object it
inherited and copy-on-write copies the pages. The stand-in needs no torch:

- the trainer builds ``--objects`` (10^6) container objects (lists, which the collector tracks) with the collector paused, as a big
  import does, so no full collection has examined them yet (``--heap fresh``); or runs
  ``gc.collect()`` after building them (``--heap settled``), the lucky case;
- every epoch it forks ``--workers`` (2) workers with ``multiprocessing`` (fork), as a
  non-persistent DataLoader does; the workers build batches of Python objects and keep the
  last few (prefetching), so their collector runs as a real worker's does;
- every step it takes a batch, does ``--compute`` microseconds of Python work, and logs three
  scalars with the mode's logger: ``none``; ``logd`` (``logd.SummaryWriter.add_scalar``,
  records sent to a live logd when ``--socket`` is given, else to the discard sink);
  ``tensorboardX`` (its ``SummaryWriter``, when installed).

Each (mode, round) is a fresh interpreter, modes interleaved within every round; the figure is
the median over ``--rounds`` (>= 5) of the loop's wall time, with the workers' CPU time beside.
With ``--torch`` (when torch is installed) the loop is a small CNN on torchvision FakeData with
a DataLoader of 2 workers, as in issue 21.

    PYTHONPATH=clients/python/src python3 clients/python/benchmarks/bench_fork_step.py
    ... --socket $LOGD_SOCKET --rounds 7 --json out.json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "src")


# -- one measured loop, in a fresh interpreter ----------------------------------------------------

_prefetched = collections.deque(maxlen=8)


def _make_batch(i):
    # A worker's Python allocations: the samples of a batch, kept a while (prefetching).
    rows = [(j, j * 0.5, str(j)) for j in range(20000)]
    _prefetched.append(rows)
    return sum(len(r[2]) for r in rows) + i


def _spin(us):
    end = time.perf_counter() + us * 1e-6
    x = 0
    while time.perf_counter() < end:
        x += 1
    return x


def child_standin(args):
    import gc
    import multiprocessing as mp

    gc.disable()
    heap = [[i] for i in range(args.objects)]  # 10^6 tracked objects the workers inherit
    gc.enable()
    if args.heap == "settled":
        gc.collect()
    writer = _writer(args)
    ctx = mp.get_context("fork")
    steps_per_epoch = args.steps // args.epochs
    t0 = time.perf_counter()
    step = 0
    for _ in range(args.epochs):
        with ctx.Pool(args.workers) as pool:
            for batch in pool.imap(_make_batch, range(steps_per_epoch), chunksize=1):
                _spin(args.compute)
                if writer is not None:
                    writer.add_scalar("loss", 1.0 / (step + 1), step)
                    writer.add_scalar("acc", batch * 1e-9, step)
                    writer.add_scalar("lr", 0.1, step)
                step += 1
    wall = time.perf_counter() - t0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if writer is not None:
        writer.close()
    del heap
    return {"wall_s": wall, "children_cpu_s": children.ru_utime + children.ru_stime}


def child_torch(args):
    import torch
    import torchvision
    from torch import nn

    writer = _writer(args)
    data = torchvision.datasets.FakeData(size=args.steps * 32, image_size=(3, 32, 32), num_classes=10,
                                         transform=torchvision.transforms.ToTensor())
    loader = torch.utils.data.DataLoader(data, batch_size=32, num_workers=args.workers)
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    for step, (x, y) in enumerate(loader):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if writer is not None:
            writer.add_scalar("loss", loss.item(), step)
    wall = time.perf_counter() - t0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if writer is not None:
        writer.close()
    return {"wall_s": wall, "children_cpu_s": children.ru_utime + children.ru_stime}


def _writer(args):
    if args.mode == "none":
        return None
    if args.mode == "logd":
        import logd

        run = logd.Run(experiment="bench", name="fork_step", sink="daemon" if args.socket else "none",
                       socket=args.socket)
        return logd.SummaryWriter(run=run)
    import atexit
    import shutil

    from tensorboardX import SummaryWriter

    logdir = tempfile.mkdtemp(prefix="tbx-bench-")
    atexit.register(shutil.rmtree, logdir, True)
    return SummaryWriter(logdir)


# -- the driver -----------------------------------------------------------------------------------

def measure(args, mode):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--mode", mode, "--objects", str(args.objects),
           "--heap", args.heap, "--workers", str(args.workers), "--steps", str(args.steps),
           "--epochs", str(args.epochs), "--compute", str(args.compute)]
    if args.socket:
        cmd += ["--socket", args.socket]
    if args.torch:
        cmd.append("--torch")
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE).stdout
    return json.loads(out.decode().strip().splitlines()[-1])


def available_modes(args):
    modes = ["none", "logd"]
    probe = subprocess.run([sys.executable, "-c", "import tensorboardX"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    if probe.returncode == 0 and not args.no_tensorboardx:
        modes.append("tensorboardX")
    return modes


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="none")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--objects", type=int, default=1_000_000)
    p.add_argument("--heap", choices=["fresh", "settled"], default="fresh")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--steps", type=int, default=240)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--compute", type=int, default=2000, help="microseconds of work per step")
    p.add_argument("--socket", default=None, help="a live logd (default: logd's discard sink)")
    p.add_argument("--torch", action="store_true", help="the PyTorch DataLoader loop (needs torch)")
    p.add_argument("--no-tensorboardx", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    if args.child:
        result = child_torch(args) if args.torch else child_standin(args)
        print(json.dumps(result))
        return
    modes = available_modes(args)
    results = {m: [] for m in modes}
    for r in range(args.rounds):
        order = modes[r % len(modes):] + modes[:r % len(modes)]  # rotate who goes first
        for m in order:
            results[m].append(measure(args, m))
    med = {m: statistics.median(x["wall_s"] for x in v) for m, v in results.items()}
    cpu = {m: statistics.median(x["children_cpu_s"] for x in v) for m, v in results.items()}
    what = "torch DataLoader" if args.torch else "stand-in, %s heap of %d objects" % (args.heap, args.objects)
    print("%s, %d workers, %d steps, %d rounds, %s, Python %s" % (
        what, args.workers, args.steps, len(results["none"]), platform.machine(), platform.python_version()))
    print("%-14s %12s %10s %16s" % ("mode", "loop wall s", "vs none", "workers CPU s"))
    for m in modes:
        print("%-14s %12.3f %9.3fx %16.3f" % (m, med[m], med[m] / med["none"], cpu[m]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "median_wall_s": med, "median_children_cpu_s": cpu,
                       "runs": results}, f, indent=1)


if __name__ == "__main__":
    main()
