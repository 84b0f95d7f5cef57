"""yProv4ML's helpers through logd: carbon (codecarbon), GPU (nvidia-ml-py), FLOPs (fvcore),
directories and models given to log_artifact, execution times, ProvenanceTrackedModel.

The optional libraries are replaced by small stand-ins in ``sys.modules`` where a test needs one
present, and hidden where it needs one absent, so each path runs whatever is installed.
"""

from __future__ import annotations

import os
import sys
import types

import pytest
import yaml

import logd as prov4ml
from logd import system_metrics
from conftest import metric_rows


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.fixture(autouse=True)
def no_current_run():
    yield
    prov4ml.end_run(timeout=5)


class FakeTracker:
    """codecarbon's EmissionsTracker: stop() returns kg CO2 and fills final_emissions_data."""

    started = 0

    made = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.n = 0
        FakeTracker.made.append(kwargs)

    def start(self):
        FakeTracker.started += 1

    def stop(self):
        self.n += 1
        self.final_emissions_data = types.SimpleNamespace(
            emissions_rate=0.5, cpu_power=10.0 * self.n, gpu_power=0.0, ram_power=3.0, cpu_energy=0.01 * self.n,
            gpu_energy=0.0, ram_energy=0.002, energy_consumed=0.012 * self.n)
        return 0.001 * self.n


def test_carbon_metrics_through_codecarbon(daemon, monkeypatch):
    fake = types.ModuleType("codecarbon")
    fake.EmissionsTracker = FakeTracker
    fake.OfflineEmissionsTracker = FakeTracker
    monkeypatch.setitem(sys.modules, "codecarbon", fake)
    run = prov4ml.start_run(experiment_name="carbon", socket=daemon.socket)
    for epoch in range(2):
        prov4ml.log_carbon_metrics(prov4ml.Context.TRAINING, step=epoch)
    assert run.errors == 0, run.last_error
    tracker = run._prov4ml["carbon_tracker"]
    prov4ml.end_run()
    assert tracker.n == 3 and "carbon_tracker" not in run._prov4ml  # stopped with the run
    rows = [r for r in metric_rows(daemon.run_dir("carbon"))]
    got = {(r["key"], r["step"]): float(r["value"]) for r in rows}
    assert {r["source"] for r in rows} == {"codecarbon"}
    assert {k for k, _ in got} == set(system_metrics.CARBON_KEYS)
    assert got[("emissions", "0")] == pytest.approx(0.001) and got[("emissions", "1")] == pytest.approx(0.002)
    assert got[("cpu_power", "1")] == pytest.approx(20.0) and got[("energy_consumed", "0")] == pytest.approx(0.012)


def test_carbon_metrics_without_codecarbon_are_counted_and_warned_once(daemon, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "codecarbon", None)  # import fails
    run = prov4ml.start_run(experiment_name="nocarbon", socket=daemon.socket)
    for epoch in range(3):
        prov4ml.log_carbon_metrics(prov4ml.Context.TRAINING, step=epoch)
    assert run.errors == 3 and "codecarbon" in run.last_error
    assert sum("log_carbon_metrics" in r.getMessage() for r in caplog.records) == 1
    prov4ml.end_run()
    assert metric_rows(daemon.run_dir("nocarbon")) == []


def test_disable_codecarbon_is_honoured(daemon, monkeypatch):
    fake = types.ModuleType("codecarbon")
    fake.EmissionsTracker = FakeTracker
    monkeypatch.setitem(sys.modules, "codecarbon", fake)
    run = prov4ml.start_run(experiment_name="disabled", disable_codecarbon=True, socket=daemon.socket)
    prov4ml.log_carbon_metrics(prov4ml.Context.TRAINING, step=0)
    assert run.errors == 1 and "disable_codecarbon" in run.last_error
    prov4ml.end_run()


def fake_pynvml(gpus: int) -> types.ModuleType:
    m = types.ModuleType("pynvml")
    m.NVML_TEMPERATURE_GPU = 0
    m.nvmlInit = lambda: None
    m.nvmlDeviceGetCount = lambda: gpus
    m.nvmlDeviceGetHandleByIndex = lambda i: i
    m.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=40 + h)
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=(1 << 30) * (h + 1), total=(1 << 30) * 4)
    m.nvmlDeviceGetPowerUsage = lambda h: 150000  # mW
    m.nvmlDeviceGetTemperature = lambda h, sensor: 60
    return m


def test_system_metrics_include_each_gpu_through_nvml(daemon, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(2))
    monkeypatch.setattr(system_metrics, "_nvml_state", {})
    run = prov4ml.start_run(experiment_name="gpu", socket=daemon.socket)
    prov4ml.log_system_metrics(prov4ml.Context.TRAINING, step=5)
    assert run.errors == 0, run.last_error
    prov4ml.end_run()
    rows = {(r["key"], r["source"]): r for r in metric_rows(daemon.run_dir("gpu"))}
    assert float(rows[("gpu_usage_pct", "nvml:0")]["value"]) == 40.0
    assert float(rows[("gpu_usage_pct", "nvml:1")]["value"]) == 41.0
    assert float(rows[("gpu_memory_usage_gb", "nvml:1")]["value"]) == 2.0
    assert float(rows[("gpu_memory_usage_pct", "nvml:0")]["value"]) == 25.0
    assert float(rows[("gpu_power", "nvml:0")]["value"]) == 150.0
    assert float(rows[("gpu_temperature_c", "nvml:1")]["value"]) == 60.0
    assert all(r["step"] == "5" and r["context"] == "training" for r in rows.values())
    cpu = float(rows[("cpu_usage_pct", "procfs")]["value"])
    assert 0.0 <= cpu <= 100.0


def test_system_metrics_without_nvml_have_no_gpu_rows(daemon, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setattr(system_metrics, "_nvml_state", {})
    prov4ml.start_run(experiment_name="nogpu", socket=daemon.socket)
    prov4ml.log_system_metrics("training", 0)
    prov4ml.end_run()
    keys = {r["key"] for r in metric_rows(daemon.run_dir("nogpu"))}
    assert keys == {"cpu_usage_pct", "ram_usage_pct", "ram_usage_gb", "disk_usage_pct", "disk_usage_gb"}


def test_flops_without_fvcore_are_counted(daemon, monkeypatch):
    monkeypatch.setitem(sys.modules, "fvcore", None)
    monkeypatch.setitem(sys.modules, "fvcore.nn", None)
    run = prov4ml.start_run(experiment_name="flops", socket=daemon.socket)
    prov4ml.log_flops_per_batch("flops", object(), (1, 2), prov4ml.Context.TRAINING, 0)
    prov4ml.log_flops_per_epoch("flops", object(), [(1, 2)], prov4ml.Context.TRAINING, 0)
    assert run.errors == 2 and "fvcore" in run.last_error
    prov4ml.end_run()


def test_directories_models_and_execution_times(daemon, tmp_path):
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "a.py").write_text("a = 1\n")
    (src / "pkg" / "b.py").write_text("b = 2\n")
    (src / ".hidden").write_text("x")
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"best")
    run = prov4ml.start_run(experiment_name="misc", socket=daemon.socket)
    prov4ml.log_execution_start_time()
    assert prov4ml.log_artifact("sources", str(src), context="Training")  # a directory
    assert prov4ml.log_artifact("best_model", str(ckpt), "Training", 7, True, True, False)  # 2.x flags: is_model
    prov4ml.ProvenanceTrackedModel(_Net())
    prov4ml.log_metric("x", 1.0, "training", 0, prov4ml.LoggingItemKind.SYSTEM_METRIC)
    prov4ml.log_execution_end_time()
    assert run.errors == 0, run.last_error
    prov4ml.end_run()
    d = daemon.run_dir("misc")
    meta = load_yaml(os.path.join(d, "run.yaml"))
    # A directory: as Run.log_artifact records one (an archive), else file by file.
    assert sorted(a["file_name"] for a in meta["artifacts"]) in (["src.tar"], ["a.py", "b.py"])
    versions = load_yaml(os.path.join(d, "models", "best_model", "model.yaml"))["versions"]
    assert [(v["step"], v["context"]) for v in versions] == [(7, "Training")]
    assert load_yaml(os.path.join(d, "models", "_Net", "model.yaml"))["parameter_count"] == 3
    config = load_yaml(os.path.join(d, "config.yaml"))
    assert config["execution_start_time"] <= config["execution_end_time"]
    assert [r["source"] for r in metric_rows(d)] == ["system"]


class _P:
    shape = (3,)
    dtype = "torch.float32"
    requires_grad = True

    def numel(self):
        return 3

    def element_size(self):
        return 4


class _Net:
    def parameters(self, recurse=True):
        return iter([_P()])

    def named_children(self):
        return iter([])


def test_lightning_logger_logs_into_the_current_run(daemon, monkeypatch):
    """ProvMLLogger with a stand-in for Lightning's Logger base class (lightning is not installed
    in CI): metrics by yProv4ML's context rule, at Lightning's step; hyperparameters as params."""
    class Logger:  # what lightning.pytorch.loggers.logger.Logger provides to subclasses
        def __init__(self):
            self.base_initialised = True

    mod = types.ModuleType("lightning.pytorch.loggers.logger")
    mod.Logger = Logger
    for name in ("lightning", "lightning.pytorch", "lightning.pytorch.loggers"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "lightning.pytorch.loggers.logger", mod)
    run = prov4ml.start_run(experiment_name="lightning", socket=daemon.socket)
    logger = prov4ml.ProvMLLogger()
    assert isinstance(logger, Logger) and logger.base_initialised and logger.name == "lightning_logs"
    logger.log_hyperparams({"lr": 0.0002, "batch_size": 64})
    logger.log_metrics({"MSE_training": 0.5, "MSE_validation": 0.6, "MSE_test": 0.7}, step=3)
    logger.finalize("success")
    assert run.errors == 0, run.last_error
    prov4ml.end_run()
    d = daemon.run_dir("lightning")
    assert {(r["key"], r["context"], r["step"]) for r in metric_rows(d)} == {
        ("MSE_training", "Training", "3"), ("MSE_validation", "Validation", "3"), ("MSE_test", "Test", "3")}
    assert load_yaml(os.path.join(d, "config.yaml")) == {"lr": 0.0002, "batch_size": 64}


def test_wrapper_modules_under_the_renamed_package():
    from logd.wrappers.indexed_dataset import IndexedDatasetWrapper
    from logd.wrappers.tracked_layers import WeightDistributionTrackedModel
    from logd.wrappers.tracked_function import ProvenanceTrackedFunction
    from logd.wrappers.tracked_model import ProvenanceTrackedModel
    ds = IndexedDatasetWrapper(["a", "b", "c"])
    assert len(ds) == 3 and ds[1] == (1, "b")
    assert WeightDistributionTrackedModel is prov4ml.WeightDistributionTrackedModel
    assert ProvenanceTrackedFunction is prov4ml.ProvenanceTrackedFunction
    assert ProvenanceTrackedModel is prov4ml.ProvenanceTrackedModel


def test_carbon_offline_with_a_country(daemon, monkeypatch):
    class Offline(FakeTracker):
        pass

    fake = types.ModuleType("codecarbon")
    fake.EmissionsTracker = FakeTracker
    fake.OfflineEmissionsTracker = Offline
    monkeypatch.setitem(sys.modules, "codecarbon", fake)
    monkeypatch.setenv("LOGD_CARBON_COUNTRY", "ITA")
    FakeTracker.made.clear()
    run = prov4ml.start_run(experiment_name="offline", socket=daemon.socket)
    prov4ml.log_carbon_metrics("training", 0)
    assert run.errors == 0, run.last_error
    tracker = run._prov4ml["carbon_tracker"]
    assert type(tracker) is Offline and FakeTracker.made == [{"country_iso_code": "ITA", "save_to_file": False,
                                                                "log_level": "error"}]
    prov4ml.end_run()
