"""yProv4ML's own reading functions read logd's prov.json.

yProv4ML 3.x (the version on PyPI) reads a run's prov.json with ``yprov4ml.utils.getters``
(``list_activities``, ``list_entities``, ``get_parameter``, ``list_parameters``, ``list_metrics``,
``list_metric_paths``, ``get_metric``). The package itself cannot be installed here: it requires
torch, torchvision and lightning, which CI never installs. So the test downloads yProv4ML's
wheel from PyPI at test time (``pip download --no-deps``, nothing is committed) and loads
``getters.py`` from it by path: that module needs only pandas and xarray, and importing the
package the normal way would import torch through its ``__init__``. 1.x and 2.x's
``prov_getters`` read metric values inlined in prov.json, which cannot scale (see
docs/RUN_OUTPUTS.md, "prov.json"), and import torch at module level, so they are not exercised.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from typing import Any

import pytest
import yaml

import logd as prov4ml
from conftest import metric_rows

YPROV4ML_VERSION = "3.2.8"


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="module")
def getters(tmp_path_factory) -> Any:
    for module in ("pandas", "xarray"):
        try:
            __import__(module)
        except ImportError:
            _unavailable("yProv4ML's getters need %s (scripts/requirements-test.txt)" % module)
    d = tmp_path_factory.mktemp("yprov4ml")
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                        "--disable-pip-version-check", "yprov4ml==" + YPROV4ML_VERSION, "-d", str(d)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    wheels = [f for f in os.listdir(d) if f.endswith(".whl")]
    if r.returncode != 0 or not wheels:
        _unavailable("cannot download yprov4ml %s from PyPI: %s" % (YPROV4ML_VERSION, r.stdout.decode()[-500:]))
    with zipfile.ZipFile(os.path.join(d, wheels[0])) as z:
        source = z.read("yprov4ml/utils/getters.py")
    path = d / "yprov4ml_getters.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("yprov4ml_getters", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_yaml(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def leaves(tree: Any, prefix: str = "") -> dict:
    out = {}
    if isinstance(tree, dict) and tree:
        for k, v in tree.items():
            out.update(leaves(v, prefix + "." + k if prefix else k))
    else:
        out[prefix] = tree
    return out


class Loader:
    def __init__(self, n: int, batch: int) -> None:
        self.dataset = list(range(n))
        self.batch_size = batch
        self.num_workers = 2
        self.sampler = object()

    def __len__(self) -> int:
        return -(-len(self.dataset) // self.batch_size)


def test_yprov4ml_getters_find_every_metric_param_and_artifact(daemon, tmp_path, monkeypatch, getters):
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"weights")
    data = tmp_path / "train.csv"
    data.write_bytes(b"x,y\n1,2\n")
    prov4ml.start_run(prov_user_namespace="www.example.org", experiment_name="example", provenance_save_dir="prov",
                      socket=daemon.socket)
    prov4ml.log_param("optimizer", "Adam")
    prov4ml.log_params({"lr": 0.001, "model": {"layers": 3, "dropout": 0.1}, "amp": True})
    prov4ml.log_dataset("train_dataset", Loader(100, 32), context="Training")
    for epoch in range(4):
        prov4ml.log_metric("MSE", 1.0 / (epoch + 1), context="Training", step=epoch)
        prov4ml.log_metric("MSE", 2.0 / (epoch + 1), context="Validation", step=epoch)
        prov4ml.log_metric("grad_norm", 0.1 * epoch, prov4ml.Context.TRAINING, epoch, "encoder")
        prov4ml.save_model_version("mnist_model_version", str(ckpt), "Training", epoch)
    prov4ml.log_system_metrics("Training", step=0)
    assert prov4ml.log_artifact("train_data", str(data), context="Training", is_input=True)
    assert prov4ml.log_artifact("reference", str(data), context="Testing", log_copy_in_prov_directory=False)
    assert prov4ml.log_artifact("notes.txt", "free text")
    prov4ml.log_model("mnist_model_final", str(ckpt))
    prov4ml.end_run()

    d = daemon.run_dir("example")
    path = os.path.join(d, "prov.json")
    real = os.path.realpath(d)

    # Activities: the run first, then its contexts.
    activities = getters.list_activities(path)
    root = activities[0]
    assert getters.get_parameter(path, root, "yprov:experiment_name") == "example"
    assert getters.get_parameter(path, root, "experiment_dir") == real
    assert {"Training", "Validation", "training", "Testing"} <= set(activities)
    assert getters.get_parameter(path, "Training", "prov:startedAtTime")

    # Every metric key, with its context and source, pointing at the file that holds its samples.
    logged = {(r["key"], r["context"], r["source"] or "None") for r in metric_rows(d)}
    df = getters.list_metrics(path)
    assert set(zip(df["label"], df["context"], df["source"])) == logged
    df = getters.list_metrics(path, context="Training")
    assert set(df[["label", "context", "source", "yprov:file_size"]]["label"]) == {
        "MSE", "cpu_usage_pct", "ram_usage_pct", "ram_usage_gb", "disk_usage_pct", "disk_usage_gb"}
    assert set(getters.list_metrics(path, source="encoder")["label"]) == {"grad_norm"}
    paths = getters.list_metric_paths(path, context="Validation")
    assert paths == {"MSE//Validation": os.path.join(real, "metrics", "MSE_Validation_None.csv")}
    assert getters.get_parameter(path, "MSE//Validation", "logd:metricsFile") == os.path.join(real, "metrics.csv")

    # get_metric: the samples of each (key, context, source), exactly as logged, from the
    # per-key file logd derives from metrics.csv when the run ends.
    import math
    for key, context, source in logged:
        df = getters.get_metric(path, key, context, None if source == "None" else source)
        assert df is not None, (key, context, source)
        expected = [r for r in metric_rows(d) if (r["key"], r["context"], r["source"] or "None") == (key, context, source)]
        assert len(df) == len(expected) > 0, (key, context, source, df)
        assert list(df.columns[:3]) == ["epoch", "value", "timestep"], df.columns
        for (_, got), want in zip(df.iterrows(), expected):
            assert got["value"] == float(want["value"]) or math.isnan(got["value"]) and math.isnan(float(want["value"]))
            assert (str(int(got["epoch"])) if not math.isnan(got["epoch"]) else "") == want["step"]
            assert got["timestep"] == want["time"] and str(got["rank"]) == want["rank"]
    mse = getters.get_metric(path, "MSE", "Validation")
    assert list(mse.value) == [2.0, 1.0, 2.0 / 3, 0.5] and list(mse.epoch) == [0, 1, 2, 3]
    assert list(getters.get_metric(path, "MSE", "Training").value) == [1.0, 0.5, 1.0 / 3, 0.25]
    assert list(getters.get_metric(path, "grad_norm", "training", "encoder").value) == [0.1 * e for e in range(4)]

    # Every param (each leaf of config.yaml), with its value.
    config = leaves(load_yaml(os.path.join(d, "config.yaml")))
    params = {getters.get_parameter(path, e, "prov:label"): getters.get_parameter(path, e, "prov:value")
              for e in getters.list_entities(path, "provml:HyperParameter")}
    assert set(params) == set(config) == {"optimizer", "lr", "model.layers", "model.dropout", "amp"}
    assert params["optimizer"] == "Adam" and params["lr"] == "0.001" and params["model.layers"] == "3"
    assert params["amp"] == "true"

    # Every artifact, the stored copy at dcterms:identifier.
    meta = load_yaml(os.path.join(d, "run.yaml"))
    artifacts = sorted((getters.get_parameter(path, e, "prov:label"), getters.get_parameter(path, e, "dcterms:identifier"))
                       for e in getters.list_entities(path, "provml:Artifact"))
    assert [a for a, _ in artifacts] == sorted(a["file_name"] for a in meta["artifacts"]) == [
        "notes.txt", "train.csv", "train.csv"]
    assert artifacts == sorted([("notes.txt", os.path.join(real, "artifacts", "notes.txt")),
                                ("train.csv", os.path.join(real, "artifacts", "train.csv")),
                                ("train.csv", str(data))])  # the reference-mode one: its original path
    with open(os.path.join(real, "artifacts", "notes.txt")) as f:
        assert f.read() == "free text"

    # Models and their versions; the data set's statistics.
    models = {getters.get_parameter(path, e, "prov:label") for e in getters.list_entities(path, "provml:Model")}
    assert models == {"mnist_model_version", "mnist_model_version_v1", "mnist_model_version_v2", "mnist_model_version_v3",
                      "mnist_model_version_v4", "mnist_model_final", "mnist_model_final_v1"}
    assert getters.get_parameter(path, "train_dataset//Training", "yprov:train_dataset_stat_batch_size") == "32"
    assert getters.get_parameter(path, "train_dataset//Training", "train_dataset_stat_total_samples") == "100"
    assert getters.list_parameters(path, "train_dataset//Training")["prov:type"] == "provml:Dataset"


def test_yprov4ml_get_metric_picks_the_key_not_a_longer_one_ending_in_it(daemon, tmp_path, monkeypatch, getters):
    # get_metric takes the first metric whose file path contains `<key>_<context>_<source>`:
    # `loss_Training_None` is inside `val_loss_Training_None`, so logd lists shorter names first.
    monkeypatch.chdir(tmp_path)
    prov4ml.start_run(experiment_name="suffixes", provenance_save_dir="prov", socket=daemon.socket)
    for step in range(3):
        prov4ml.log_metric("val_loss", 10.0 + step, context="Training", step=step)
        prov4ml.log_metric("loss", float(step), context="Training", step=step)
        prov4ml.log_metric("loss", 20.0 + step, context="Validation", step=step)
    prov4ml.end_run()
    path = os.path.join(daemon.run_dir("suffixes"), "prov.json")
    assert list(getters.get_metric(path, "val_loss", "Training").value) == [10.0, 11.0, 12.0]
    assert list(getters.get_metric(path, "loss", "Training").value) == [0.0, 1.0, 2.0]
    assert list(getters.get_metric(path, "loss", "Validation").value) == [20.0, 21.0, 22.0]
