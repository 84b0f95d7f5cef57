#!/usr/bin/env python3
"""Train a small classifier with PyTorch and log everything to logd.

Uses every part of the client: the run and its config, the ``logging`` handler, per-step
metrics, per-layer gradient norms, model and dataset info, a checkpoint per epoch
(``save_model_version``), an artifact, and a tensorboardX-style ``SummaryWriter``.

    logd &                                   # the daemon, with its defaults
    python3 clients/python/examples/train_torch.py --epochs 3
    logctl runs                              # then: logctl show <run id>

Needs torch (``pip install torch``); the data are synthetic, so nothing is downloaded.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import logd


def make_data(samples: int, features: int, classes: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, features, generator=g) * 3
    labels = torch.randint(0, classes, (samples,), generator=g)
    points = centers[labels] + torch.randn(samples, features, generator=g)
    return TensorDataset(points, labels)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--experiment", default="examples")
    args = ap.parse_args()

    config = {"model": {"hidden": 64, "layers": 2}, "optimizer": {"type": "SGD", "lr": args.lr, "momentum": 0.9},
              "data": {"samples": 4000, "features": 20, "classes": 4}, "epochs": args.epochs,
              "batch_size": args.batch_size}
    torch.manual_seed(args.seed)
    with logd.start_run(experiment=args.experiment, name="torch-classifier", config=config, seed=args.seed,
                        tags=["example", "torch"]) as run:
        logd.set_logger(run)  # logging.info(...) now also lands in the run's main.log
        writer = logd.SummaryWriter()  # joins the current run; tensorboardX-style calls work

        data = config["data"]
        train = make_data(data["samples"], data["features"], data["classes"], args.seed)
        val = make_data(data["samples"] // 4, data["features"], data["classes"], args.seed + 1)
        train_loader = DataLoader(train, batch_size=args.batch_size, shuffle=True)
        val_loader = DataLoader(val, batch_size=256)
        run.log_dataset(train_loader, "synthetic-train")
        run.log_dataset(val_loader, "synthetic-val", logd.VALIDATION)

        model = nn.Sequential(nn.Linear(data["features"], 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                              nn.Linear(64, data["classes"]))
        run.log_model(model, "classifier")
        opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()

        step = 0
        for epoch in range(args.epochs):
            model.train()
            for x, y in train_loader:
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                if step % 10 == 0:
                    run.log_gradient_norms(model, step)
                opt.step()
                run.log_metric("loss", loss.item(), step)
                writer.add_scalar("lr", opt.param_groups[0]["lr"], step)
                step += 1
            model.eval()
            correct = total = 0
            with torch.no_grad():
                for x, y in val_loader:
                    correct += (model(x).argmax(1) == y).sum().item()
                    total += len(y)
            accuracy = correct / total
            run.log_metric("accuracy", accuracy, step, logd.VALIDATION)
            logging.info("epoch %d: validation accuracy %.3f", epoch + 1, accuracy)
            run.save_model_version(model, "classifier", step=step)  # v1, v2, ... in models/classifier/

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "predictions.csv")
            with open(path, "w") as f:
                f.write("index,label\n" + "".join("%d,%d\n" % (i, int(p)) for i, p in
                                                   enumerate(model(val.tensors[0][:100]).argmax(1))))
            run.log_artifact(path)  # copied by logd into artifacts/ before the file goes away
            run.flush()
        writer.add_hparams({"lr": args.lr, "batch_size": args.batch_size}, {"final_accuracy": accuracy})
        writer.close()
    print("run %s finished: %s" % (run.run_id, run.report))


if __name__ == "__main__":
    main()
