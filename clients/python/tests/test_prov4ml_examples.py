"""yProv4ML users' code with only the import changed (``import logd as prov4ml``), against the real
logd: each test makes the calls one of yProv4ML's examples makes, in the same order, for the API
generation that example was written for (1.x object-first, 2.x name-first with ``Context``
enums, 3.x name-first with string contexts and the tracked-model wrappers), on small synthetic
data with duck-typed stand-ins for torch objects, and checks what lands on disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List

import pytest
import yaml

import logd as prov4ml
from conftest import metric_rows


# -- stand-ins for torch objects (what logd's helpers read) -----------------------------------


class Param:
    def __init__(self, values: List[List[float]]) -> None:
        self.values = values
        self.shape = (len(values), len(values[0])) if values and isinstance(values[0], list) else (len(values),)
        self.dtype = "torch.float32"
        self.requires_grad = True

    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def element_size(self) -> int:
        return 4

    def flatten(self) -> "Param":
        return self

    def tolist(self) -> Any:
        return self.values


class Linear:
    def __init__(self, weights: List[List[float]], bias: List[float]) -> None:
        self.weight = Param(weights)
        self.bias = Param(bias)

    def parameters(self, recurse: bool = True):
        return iter([self.weight, self.bias])

    def named_parameters(self, recurse: bool = True):
        return iter([("weight", self.weight), ("bias", self.bias)])

    def named_children(self):
        return iter([])


class TinyNet:
    """Two linear layers: fc1 (2x3 weights), fc2 (1x2)."""

    def __init__(self) -> None:
        self.fc1 = Linear([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], [0.0, 0.0])
        self.fc2 = Linear([[1.0, -1.0]], [0.5])
        self.training = True

    def parameters(self, recurse: bool = True):
        return iter([self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias])

    def named_children(self):
        return iter([("fc1", self.fc1), ("fc2", self.fc2)])

    def named_modules(self):
        return iter([("", self), ("fc1", self.fc1), ("fc2", self.fc2)])

    def train(self) -> None:
        self.training = True

    def eval(self) -> None:
        self.training = False

    def __call__(self, x: float) -> float:
        return x * 0.5


class RandomSampler:
    """Named like torch's: a class name containing "Random" means shuffling."""


class Loader:
    """A DataLoader look-alike."""

    def __init__(self, samples: int, batch_size: int, shuffle: bool) -> None:
        self.dataset = list(range(samples))
        self.batch_size = batch_size
        self.num_workers = 0
        self.sampler = RandomSampler() if shuffle else object()

    def __len__(self) -> int:
        return -(-len(self.dataset) // self.batch_size)

    def __iter__(self):
        for i in range(len(self)):
            yield float(i), float(i % 10)


class MSELoss:
    def __call__(self, y_hat: float, y: float) -> float:
        return (y_hat - y) ** 2


class Compose:
    def __repr__(self) -> str:
        return "Compose(\n    ToTensor()\n)"


# -- helpers ----------------------------------------------------------------------------------


def load_yaml(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def rows_by(d: str) -> Dict[tuple, List[Dict[str, str]]]:
    out: Dict[tuple, List[Dict[str, str]]] = {}
    for r in metric_rows(d):
        out.setdefault((r["context"], r["key"]), []).append(r)
    return out


def has_codecarbon() -> bool:
    try:
        import codecarbon  # noqa: F401
        return True
    except ImportError:
        return False


@pytest.fixture(autouse=True)
def no_current_run():
    yield
    prov4ml.end_run(timeout=5)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def checkpoint(path, content: bytes) -> str:
    with open(path, "wb") as f:
        f.write(content)
    return str(path)


# -- yProv4ML 1.x: object first, Context enums, timestamps in ms --------------------------------


def test_1x_example_object_first_calls(daemon, workdir, caplog):
    """The 1.x README/API page: log_dataset(dataset, label), save_model_version(model, name,
    context, step, timestamp), log_artifact(path, context, step, timestamp), log_model(model, name),
    Context.EVALUATION, log_carbon_metrics, log_current_execution_time."""
    run = prov4ml.start_run(prov_user_namespace="www.example.org", experiment_name="experiment_name",
                            provenance_save_dir="prov", save_after_n_logs=100, socket=daemon.socket)
    prov4ml.log_param("lr", 0.001)
    train = Loader(100, 16, True)
    prov4ml.log_dataset(train, "train_dataset")
    model = TinyNet()
    loss_fn = MSELoss()
    t0_ms = int(time.time() * 1000)
    for epoch in range(3):
        for x, y in train:
            loss = loss_fn(model(x), y)
        prov4ml.log_metric("MSE_train", loss, context=prov4ml.Context.TRAINING, step=epoch)
        prov4ml.log_metric("MSE_eval", loss / 2, prov4ml.Context.EVALUATION, epoch)
        prov4ml.log_system_metrics(prov4ml.Context.TRAINING, step=epoch)
        prov4ml.log_carbon_metrics(prov4ml.Context.TRAINING, step=epoch)
        prov4ml.log_current_execution_time("train_epoch_time", prov4ml.Context.TRAINING, epoch)
        ckpt = checkpoint(workdir / ("mnist_model_version_%d.pth" % epoch), b"weights %d" % epoch)
        prov4ml.save_model_version(ckpt, "mnist_model_version", prov4ml.Context.TRAINING, epoch, t0_ms + epoch)
    report_file = checkpoint(workdir / "report.txt", b"accuracy 0.9\n")
    assert prov4ml.log_artifact(report_file, prov4ml.Context.TESTING, 3, t0_ms)
    prov4ml.log_model(model, "mnist_model_final", log_as_artifact=False)
    errors = run.errors
    prov4ml.end_run(create_graph=True, create_svg=True)

    d = daemon.run_dir("experiment_name")  # experiment_name is the experiment directory
    rows = rows_by(d)
    assert [r["step"] for r in rows[("training", "MSE_train")]] == ["0", "1", "2"]
    assert [r["step"] for r in rows[("evaluation", "MSE_eval")]] == ["0", "1", "2"]
    for key in ("cpu_usage_pct", "ram_usage_pct", "ram_usage_gb", "disk_usage_pct", "disk_usage_gb"):
        assert [r["step"] for r in rows[("training", key)]] == ["0", "1", "2"], key
    assert {r["source"] for r in rows[("training", "cpu_usage_pct")]} <= {"procfs", "psutil"}
    times = [float(r["value"]) for r in rows[("training", "train_epoch_time")]]
    assert all(abs(t - time.time()) < 600 for t in times)  # seconds since the epoch, as yProv4ML
    assert {r["source"] for r in rows[("training", "train_epoch_time")]} == {"execution_time"}
    meta = load_yaml(os.path.join(d, "run.yaml"))
    assert meta["datasets"] == [{"label": "train_dataset", "context": "training", "samples": 100, "batch_size": 16,
                                 "workers": 0, "shuffle": True, "batches": 7}]
    # The 1.x positional artifact call stores the file, not the text "Context.TESTING".
    with open(os.path.join(d, "artifacts", "report.txt"), "rb") as f:
        assert f.read() == b"accuracy 0.9\n"
    arts = {a["file_name"]: a for a in meta["artifacts"]}
    assert arts["report.txt"]["context"] == "testing" and arts["report.txt"]["step"] == 3
    model_yaml = load_yaml(os.path.join(d, "models", "mnist_model_version", "model.yaml"))
    versions = model_yaml["versions"]
    assert [v["step"] for v in versions] == [0, 1, 2], versions  # millisecond timestamps keep every version
    for i, v in enumerate(versions):
        with open(os.path.join(d, v["path"]), "rb") as f:
            assert f.read() == b"weights %d" % i
    final = load_yaml(os.path.join(d, "models", "mnist_model_final", "model.yaml"))
    assert final["parameter_count"] == 11
    if not has_codecarbon():
        assert errors == 3, run.last_error  # one per log_carbon_metrics call, warned once
        warnings = [r for r in caplog.records if "log_carbon_metrics" in r.getMessage()]
        assert len(warnings) == 1 and "codecarbon" in warnings[0].getMessage()
        assert not any(k == "emissions" for _, k in rows)
    assert meta["status"] == "finished"


def test_1x_positional_start_run_and_start_run_ctx(daemon, workdir):
    with prov4ml.start_run_ctx("www.example.org", "ctx_experiment", "prov", socket=daemon.socket) as run:
        prov4ml.log_metric("loss", 1.0, prov4ml.Context.TRAINING, 0)
    assert run.finished and run.experiment == "ctx_experiment"
    meta = load_yaml(os.path.join(daemon.run_dir("ctx_experiment"), "run.yaml"))
    assert meta["status"] == "finished"


# -- yProv4ML 2.x: name first, Context enums, created contexts -------------------------------


def test_2x_example_name_first_with_context_enums(daemon, workdir):
    """The 2.x examples (prov4ml_torch.py, prov4ml_hpc.py): create_context, log_param with a
    context, log_dataset(label, loader), save_model_version(name, model, Context.MODELS, epoch),
    log_model(name, model, log_model_layers=True, is_input=False), log_source_code(path),
    log_execution_command, MetricsType."""
    script = workdir / "prov4ml_hpc.py"
    script.write_text("print('training')\n")
    run = prov4ml.start_run(prov_user_namespace="www.example.org", experiment_name="MetricsType.ZARR_False",
                            provenance_save_dir="prov", save_after_n_logs=1, collect_all_processes=True,
                            disable_codecarbon=True, metrics_file_type=prov4ml.MetricsType.ZARR, use_compressor=False,
                            socket=daemon.socket)
    prov4ml.log_source_code(str(script))
    prov4ml.log_execution_command(cmd="python", path="prov4ml_hpc.py")
    prov4ml.create_context("TRAINING_LOD2", prov4ml.Context.TRAINING)
    prov4ml.create_context("TRAINING_LOD3", prov4ml.Context.TRAINING_LOD2)
    model = TinyNet()
    prov4ml.log_param("dataset transformation", Compose())
    train, val = Loader(80, 16, True), Loader(80, 16, False)
    prov4ml.log_dataset("train_dataset", train)
    prov4ml.log_dataset("val_dataset", val)
    prov4ml.log_param("optimizer", "Adam")
    prov4ml.log_param("loss_fn", "MSELoss", prov4ml.Context.TRAINING_LOD2)
    loss_fn = MSELoss()
    for epoch in range(2):
        model.train()
        for x, y in train:
            loss = loss_fn(model(x), y)
            prov4ml.log_metric("MSE", loss, context=prov4ml.Context.TRAINING, step=epoch)
            prov4ml.log_system_metrics(prov4ml.Context.TRAINING, step=epoch)
        ckpt = checkpoint(workdir / "mnist_model_version.pt", b"epoch %d" % epoch)
        prov4ml.save_model_version("mnist_model_version", ckpt, prov4ml.Context.MODELS, epoch)
        model.eval()
        for x, y in val:
            prov4ml.log_metric("MSE", loss_fn(model(x), y), prov4ml.Context.VALIDATION, step=epoch)
    prov4ml.log_model("mnist_model_final", model, log_model_layers=True, is_input=False)
    assert run.errors == 0, run.last_error
    prov4ml.end_run(create_graph=True, create_svg=True, crate_ro_crate=True)

    d = daemon.run_dir("MetricsType.ZARR_False")
    rows = rows_by(d)
    assert len(rows[("training", "MSE")]) == 10 and len(rows[("validation", "MSE")]) == 10
    assert {r["step"] for r in rows[("training", "MSE")]} == {"0", "1"}
    config = load_yaml(os.path.join(d, "config.yaml"))
    assert config["dataset transformation"] == "Compose(\n    ToTensor()\n)"
    assert config["optimizer"] == "Adam" and config["loss_fn"] == "MSELoss"
    assert config["execution_command"] == "python prov4ml_hpc.py"
    assert prov4ml.Context.TRAINING_LOD3.value == "training_lod3"
    meta = load_yaml(os.path.join(d, "run.yaml"))
    assert [(x["label"], x["samples"], x["shuffle"]) for x in meta["datasets"]] == [
        ("train_dataset", 80, True), ("val_dataset", 80, False)]  # labels, not "<DataLoader object ...>"
    arts = {a["file_name"]: a for a in meta["artifacts"]}
    assert arts["prov4ml_hpc.py"]["role"] == "input"
    with open(os.path.join(d, "artifacts", "prov4ml_hpc.py")) as f:
        assert f.read() == "print('training')\n"
    versions = load_yaml(os.path.join(d, "models", "mnist_model_version", "model.yaml"))["versions"]
    assert [(v["context"], v["step"]) for v in versions] == [("models", 0), ("models", 1)]
    final = load_yaml(os.path.join(d, "models", "mnist_model_final", "model.yaml"))
    assert final["parameter_count"] == 11 and [x["name"] for x in final["layers"]] == ["fc1", "fc2"]


# -- yProv4ML 3.x: name first, string contexts, wrappers --------------------------------------


def test_3x_example_wrappers_and_string_contexts(daemon, workdir):
    """The 3.x examples (prov4ml_wrappers.py, prov4ml_torch.py): string contexts,
    WeightDistributionTrackedModel + log_epoch, ProvenanceTrackedFunction, log_context,
    log_artifact(name, path, context=..., is_input=True), log_source_code()."""
    run = prov4ml.start_run(prov_user_namespace="www.example.org", experiment_name="example",
                            provenance_save_dir="prov", save_after_n_logs=100, collect_all_processes=False,
                            metrics_file_type="csv", use_compressor=False, socket=daemon.socket)
    prov4ml.log_execution_command(cmd="python", path="prov4ml_torch.py")
    prov4ml.log_param("dataset transformation", Compose())
    model = prov4ml.WeightDistributionTrackedModel("mnist_model", TinyNet())
    prov4ml.log_model("mnist_model", model, context="Training")
    train, val = Loader(64, 32, True), Loader(32, 32, False)
    prov4ml.log_dataset("train_dataset", train, context="Training")
    prov4ml.log_dataset("val_dataset", val, context="Validation")
    prov4ml.log_param("optimizer", "Adam")
    loss_fn = prov4ml.ProvenanceTrackedFunction(MSELoss(), context="Training")
    prov4ml.log_context("TrainingButDifferent", "Training")
    val_loss_fn = prov4ml.ProvenanceTrackedFunction(MSELoss(), context="Validation")
    for epoch in range(3):
        model.train()
        for x, y in train:
            loss = loss_fn(model(x), y)
            prov4ml.log_metric("MSE", loss, context="Training", step=epoch)
            prov4ml.log_system_metrics("Training", step=epoch)
        stats = model.log_epoch(epoch)
        model.eval()
        for x, y in val:
            loss = val_loss_fn(model(x), y)
            prov4ml.log_metric("MSE", loss, context="Validation", step=epoch)
    notes = checkpoint(workdir / "labels.csv", b"id,label\n1,cat\n")
    assert prov4ml.log_artifact("labels", notes, context="Training", is_input=True)
    assert run.errors == 0, run.last_error
    prov4ml.end_run(create_graph=True, create_svg=True, crate_ro_crate=True)

    d = daemon.run_dir("example")
    rows = rows_by(d)
    assert len(rows[("Training", "MSE")]) == 6 and len(rows[("Validation", "MSE")]) == 3
    # ProvenanceTrackedFunction: metric and source = the function's class name, step = call number.
    assert [r["step"] for r in rows[("Training", "MSELoss")]] == ["0", "1", "2", "3", "4", "5"]
    assert {r["source"] for r in rows[("Training", "MSELoss")]} == {"MSELoss"}
    # Weight distributions per layer and epoch.
    assert stats["fc1"]["min"] == pytest.approx(0.1) and stats["fc1"]["max"] == pytest.approx(0.6)
    assert stats["fc1"]["p50"] == pytest.approx(0.35) and stats["fc2"]["mean"] == pytest.approx(0.0)
    for stat in ("mean", "std", "min", "max", "p25", "p50", "p75"):
        got = [(r["source"], r["step"]) for r in rows[("training", "weight_" + stat)]]
        assert sorted(got) == sorted((s, str(e)) for s in ("mnist_model.fc1", "mnist_model.fc2") for e in range(3)), stat
    fc1_means = [float(r["value"]) for r in rows[("training", "weight_mean")] if r["source"] == "mnist_model.fc1"]
    assert fc1_means == [pytest.approx(0.35)] * 3
    meta = load_yaml(os.path.join(d, "run.yaml"))
    assert [(x["label"], x["context"]) for x in meta["datasets"]] == [("train_dataset", "Training"),
                                                                      ("val_dataset", "Validation")]
    arts = {a["file_name"]: a for a in meta["artifacts"]}
    assert (arts["labels.csv"]["role"], arts["labels.csv"]["context"]) == ("input", "Training")
    info = load_yaml(os.path.join(d, "models", "mnist_model", "model.yaml"))
    assert info["parameter_count"] == 11  # the wrapper is measured as the model it wraps


def test_3x_log_source_code_without_a_path_records_the_script_and_git_diff(daemon, tmp_path):
    """log_source_code() in a script inside a git checkout with uncommitted changes: the script
    and git_diff.patch as input artifacts, source_code = <remote>/<commit>."""
    repo = tmp_path / "proj"
    repo.mkdir()
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@e")
    script = repo / "train.py"
    script.write_text(
        "import sys\n"
        "sys.path.insert(0, %r)\n"
        "import logd as prov4ml\n"
        "prov4ml.start_run(experiment_name='src', socket=%r)\n"
        "prov4ml.log_source_code()\n"
        "prov4ml.end_run()\n" % (os.path.join(os.path.dirname(prov4ml.__file__), ".."), daemon.socket))
    for cmd in (["git", "init", "-q"], ["git", "remote", "add", "origin", "https://example.org/proj.git"],
                ["git", "add", "train.py"], ["git", "commit", "-q", "-m", "x"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True)
    with open(script, "a") as f:
        f.write("# uncommitted change\n")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    subprocess.run([sys.executable, str(script)], cwd=repo, check=True, timeout=60)
    d = daemon.run_dir("src")
    arts = {a["file_name"]: a for a in load_yaml(os.path.join(d, "run.yaml"))["artifacts"]}
    assert set(arts) == {"train.py", "git_diff.patch"} and all(a["role"] == "input" for a in arts.values())
    with open(os.path.join(d, "artifacts", "git_diff.patch")) as f:
        assert "+# uncommitted change" in f.read()
    assert load_yaml(os.path.join(d, "config.yaml"))["source_code"] == "https://example.org/proj.git/" + commit


# -- argument translation -----------------------------------------------------------------------


def test_both_orders_are_told_apart_and_ambiguous_calls_are_counted(daemon, workdir, caplog):
    run = prov4ml.start_run(experiment_name="orders", socket=daemon.socket)
    loader = Loader(50, 10, False)
    prov4ml.log_dataset(loader, "object_first")
    prov4ml.log_dataset("name_first", loader)
    ckpt = checkpoint(workdir / "w.pt", b"w")
    assert prov4ml.save_model_version(ckpt, "m_object_first")  # 1.x (model, name)
    assert prov4ml.save_model_version("m_name_first", ckpt)  # 2.x/3.x (name, model)
    assert prov4ml.log_artifact("named", ckpt)  # (name, path): the file
    assert run.errors == 0, run.last_error
    prov4ml.log_dataset("a_label", "another_label")  # two strings: ambiguous
    assert run.errors == 1 and "ambiguous" in run.last_error
    assert prov4ml.log_artifact("report", "missing/report.txt")  # a path that is not a file, or content?
    assert run.errors == 2 and "ambiguous" in run.last_error
    prov4ml.end_run()
    d = daemon.run_dir("orders")
    meta = load_yaml(os.path.join(d, "run.yaml"))
    assert [(x["label"], x["samples"]) for x in meta["datasets"]] == [
        ("object_first", 50), ("name_first", 50), ("a_label", 0)]
    assert sorted(os.listdir(os.path.join(d, "models"))) == ["m_name_first", "m_object_first"]
    with open(os.path.join(d, "artifacts", "w.pt"), "rb") as f:
        assert f.read() == b"w"
    assert sum("ambiguous" in r.getMessage() for r in caplog.records) == 2


def test_millisecond_timestamps_and_numbers_of_every_kind(daemon, workdir):
    run = prov4ml.start_run(experiment_name="ms", socket=daemon.socket)
    ts_ms = 1_700_000_000_123
    prov4ml.log_metric("loss", 0.5, "training", 1, None, ts_ms)  # 3.x: timestamp in ms
    prov4ml.log_metric("acc", Scalar(0.75), "training", 1)  # a 0-d tensor
    prov4ml.log_metric("bad", [1, 2, 3], "training", 1)  # not a number: counted
    assert run.errors == 1
    prov4ml.end_run()
    rows = rows_by(daemon.run_dir("ms"))
    assert rows[("training", "loss")][0]["time"] == "2023-11-14T22:13:20.123Z"
    assert rows[("training", "acc")][0]["value"] == "0.75"
    assert ("training", "bad") not in rows


class Scalar:
    def __init__(self, v: float) -> None:
        self.v = v

    def item(self) -> float:
        return self.v


def test_collect_all_processes_false_records_rank_zero_only(daemon, workdir):
    run = prov4ml.start_run(experiment_name="ranked", rank=1, collect_all_processes=False, socket=daemon.socket)
    prov4ml.log_metric("loss", 1.0, "training", 0)
    assert run.sink == "none" and "RANK" not in os.environ
    prov4ml.end_run()
    assert daemon.run_dirs("ranked") == []


def test_ddp_ranks_share_one_run_with_use_run_id(daemon, workdir):
    """Two processes as DDP ranks (yProv4ML's collect_all_processes=True, same use_run_id): one
    run directory, one prov.json with both ranks."""
    src = os.path.join(os.path.dirname(prov4ml.__file__), "..")
    code = ("import sys; sys.path.insert(0, %r)\n"
            "import logd as prov4ml\n"
            "rank = int(sys.argv[1])\n"
            "prov4ml.start_run(experiment_name='ddp', rank=rank, collect_all_processes=True, use_run_id=7, socket=%r)\n"
            "prov4ml.flush()\n"
            "import os, time\n"
            "open(os.path.join(sys.argv[2], str(rank)), 'w').close()\n"
            "deadline = time.monotonic() + 60\n"  # a barrier: both ranks are in the run before either ends
            "while len(os.listdir(sys.argv[2])) < 2 and time.monotonic() < deadline: time.sleep(0.01)\n"
            "prov4ml.log_param('rank_%%d' %% rank, rank)\n"
            "for e in range(3): prov4ml.log_metric('loss_r%%d' %% rank, 1.0 / (e + 1), prov4ml.Context.TRAINING, e)\n"
            "prov4ml.end_run()\n") % (src, daemon.socket)
    env = dict(os.environ, WORLD_SIZE="2")
    barrier = workdir / "barrier"
    barrier.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", code, str(r), str(barrier)], env=env) for r in (0, 1)]
    assert [p.wait(60) for p in procs] == [0, 0]
    d = daemon.run_dir("ddp")
    assert {r["key"]: r["rank"] for r in metric_rows(d)} == {"loss_r0": "0", "loss_r1": "1"}
    assert load_yaml(os.path.join(d, "config.yaml")) == {"rank_0": 0, "rank_1": 1}
    with open(os.path.join(d, "prov.json")) as f:
        doc = json.load(f)
    root = list(doc["activity"])[0]
    ranks = {i: a["yprov:global_rank"]["$"] for i, a in doc["activity"].items() if a.get("prov:type") == "provml:RankExecution"}
    assert ranks == {root + "//GR0": "0", root + "//GR1": "1"}
    informed = {(r["prov:informed"], r["prov:informant"]) for r in doc["wasInformedBy"].values()}
    assert {(i, root) for i in ranks} <= informed
    assert doc["activity"][root]["yprov:runtime_type"] == "distributed"


def test_no_run_helpers_do_nothing(daemon, monkeypatch):
    monkeypatch.setenv("LOGD_SOCKET", daemon.socket)
    prov4ml.log_system_metrics(prov4ml.Context.TRAINING, 0)
    prov4ml.log_carbon_metrics(prov4ml.Context.TRAINING, 0)
    prov4ml.log_current_execution_time("t", prov4ml.Context.TRAINING, 0)
    assert prov4ml.log_source_code() is False
    assert prov4ml.WeightDistributionTrackedModel("m", TinyNet()).log_epoch(0) == {}
    assert prov4ml.get_run_dir() is None
    assert [n for n in os.listdir(daemon.root) if not n.startswith(".")] == []


def test_get_run_dir_is_the_run_directory(daemon, workdir):
    prov4ml.start_run(experiment_name="where", socket=daemon.socket)
    prov4ml.log_metric("x", 1.0)
    assert prov4ml.flush()
    d = prov4ml.get_run_dir()
    assert d == daemon.run_dir("where")
    assert prov4ml.get_artifacts_dir() == os.path.join(d, "artifacts")
    prov4ml.end_run()


def test_3x_plot_example_in_a_script(daemon, tmp_path):
    """yProv4ML's plot_example.py (no torch): log_source_code(), a file written by the script,
    log_artifact("tmp", "tmp.png"); run as a script in its own directory, as a user runs it."""
    script = tmp_path / "plot_example.py"
    script.write_text(
        "import sys\n"
        "sys.path.insert(0, %r)\n"
        "import logd as yprov4ml\n"
        "yprov4ml.start_run(prov_user_namespace='www.example.org', experiment_name='plot_example',\n"
        "                   provenance_save_dir='prov', collect_all_processes=False, disable_codecarbon=True,\n"
        "                   socket=%r)\n"
        "yprov4ml.log_source_code()\n"
        "data = [1, 2, 3, 4, 5]\n"
        "with open('tmp.png', 'wb') as f:\n"
        "    f.write(bytes(data))\n"
        "yprov4ml.log_artifact('tmp', 'tmp.png')\n"
        "yprov4ml.end_run(create_graph=True, create_svg=True, crate_ro_crate=False)\n"
        % (os.path.join(os.path.dirname(prov4ml.__file__), ".."), daemon.socket))
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, check=True, timeout=60)
    d = daemon.run_dir("plot_example")
    meta = load_yaml(os.path.join(d, "run.yaml"))
    assert {(a["file_name"], a["role"]) for a in meta["artifacts"]} == {("plot_example.py", "input"), ("tmp.png", "output")}
    with open(os.path.join(d, "artifacts", "tmp.png"), "rb") as f:
        assert f.read() == bytes([1, 2, 3, 4, 5])
    assert meta["status"] == "finished"
