"""The example scripts run against the real daemon and write what they promise; a snapshot
keeps each version of a checkpoint that is rewritten in place."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import logd
from conftest import metric_rows

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SRC = Path(__file__).resolve().parents[1] / "src"


def run_example(daemon, name, *args):
    env = {**os.environ, "LOGD_SOCKET": daemon.socket, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=300)
    out = done.stdout.decode("utf-8", "replace")
    assert done.returncode == 0, out
    return out


def test_linear_example(daemon):
    out = run_example(daemon, "train_linear.py", "--epochs", "3")
    assert "undelivered=0" in out
    d = daemon.run_dir("examples")
    rows = metric_rows(d)
    assert len([r for r in rows if r["key"] == "loss"]) == 3 * 1600
    assert [r["context"] for r in rows if r["key"] == "mse"] == ["validation"] * 3
    versions = [json.load(open(os.path.join(d, "models", "linear", "v%d" % v, "linear.json"))) for v in (1, 2, 3)]
    assert [v["epoch"] for v in versions] == [1, 2, 3]  # each version kept its own epoch
    fit = json.load(open(os.path.join(d, "artifacts", "fit.json")))
    assert abs(fit["w"] - 2.5) < 0.2 and abs(fit["b"] + 1.0) < 0.2
    meta = yaml.safe_load(open(os.path.join(d, "run.yaml")))
    assert {x["label"] for x in meta["datasets"]} == {"line-train", "line-val"}
    assert "validation mse" in open(os.path.join(d, "main.log")).read()


def test_torch_example(daemon):
    pytest.importorskip("torch")
    run_example(daemon, "train_torch.py", "--epochs", "2")
    d = daemon.run_dir("examples")
    rows = metric_rows(d)
    assert {"loss", "accuracy", "grad_norm", "grad_norm_total", "lr", "final_accuracy"} <= {r["key"] for r in rows}
    model = yaml.safe_load(open(os.path.join(d, "models", "classifier", "model.yaml")))
    assert model["parameter_count"] == 20 * 64 + 64 + 64 * 64 + 64 + 64 * 4 + 4
    assert [v["version"] for v in model["versions"]] == [1, 2]
    import torch
    state = torch.load(os.path.join(d, "models", "classifier", "v2", "classifier.pt"))
    assert state["0.weight"].shape == (64, 20)


def test_snapshot_keeps_each_version_of_a_file_rewritten_in_place(daemon, tmp_path):
    path = tmp_path / "ckpt.bin"
    run = logd.Run(experiment="snap", name="s", socket=daemon.socket)
    contents = [bytes([i]) * (100_000 + i) for i in range(5)]
    for i, data in enumerate(contents):
        with open(path, "r+b" if path.exists() else "wb") as f:  # same inode every time
            f.truncate(0)
            f.write(data)
        assert run.save_model_version(path, "m", step=i, snapshot=True)
        assert run.log_artifact(path, snapshot=True)
    inode = path.stat().st_ino
    report = run.finish(timeout=20)
    assert report.completed and path.stat().st_ino == inode
    d = daemon.run_dir("snap")
    for i, data in enumerate(contents):
        assert (Path(d) / "models" / "m" / ("v%d" % (i + 1)) / "ckpt.bin").read_bytes() == data
    meta = yaml.safe_load(open(os.path.join(d, "run.yaml")))
    assert [a["size"] for a in meta["artifacts"]] == [len(c) for c in contents]
