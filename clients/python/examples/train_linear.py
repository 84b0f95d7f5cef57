#!/usr/bin/env python3
"""Fit a line with plain-Python SGD and log it to logd -- no dependencies at all.

Shows the yProv4ML-style module functions (``logd.log_metric(key, value, context, step)``),
the ``logging`` handler, a checkpoint per epoch, an artifact and a data set description.

    logd &
    python3 clients/python/examples/train_linear.py
    logctl runs
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import tempfile

import logd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--experiment", default="examples")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    xs = [rng.uniform(-3, 3) for _ in range(args.samples)]
    data = [(x, 2.5 * x - 1.0 + rng.gauss(0, 0.3)) for x in xs]
    split = int(0.8 * len(data))
    train, val = data[:split], data[split:]

    run = logd.start_run(experiment=args.experiment, name="linear-sgd", seed=args.seed,
                   config={"model": {"type": "linear", "init": 0.0}, "optimizer": {"type": "SGD", "lr": args.lr},
                           "epochs": args.epochs})
    log = logd.set_logger()  # follows the current run
    run.log_dataset(train, "line-train", batch_size=1, shuffle=True)  # any sized object works
    logd.log_dataset(val, "line-val", logd.VALIDATION)

    w = b = 0.0
    step = 0
    with tempfile.TemporaryDirectory() as tmp:
        for epoch in range(args.epochs):
            rng.shuffle(train)
            for x, y in train:
                err = (w * x + b) - y
                w -= args.lr * 2 * err * x
                b -= args.lr * 2 * err
                logd.log_metric("loss", err * err, logd.Context.TRAINING, step=step)
                step += 1
            mse = sum(((w * x + b) - y) ** 2 for x, y in val) / len(val)
            logd.log_metric("mse", mse, logd.Context.VALIDATION, step=step)
            log.info("epoch %d: w=%.3f b=%.3f validation mse %.4f", epoch + 1, w, b, mse)
            ckpt = os.path.join(tmp, "linear.json")
            with open(ckpt, "w") as f:
                json.dump({"w": w, "b": b, "epoch": epoch + 1}, f)
            # The same file is rewritten every epoch: snapshot it, so each version keeps its epoch.
            logd.save_model_version(ckpt, "linear", logd.Context.TRAINING, step=step, snapshot=True)
        logd.log_artifact("fit.json", json.dumps({"w": w, "b": b, "val_mse": mse}))
    logd.log_param("result", {"w": round(w, 4), "b": round(b, 4)})
    report = logd.end_run()
    logging.getLogger().handlers.clear()
    print("fitted y = %.3f x + %.3f; %s" % (w, b, report))


if __name__ == "__main__":
    main()
