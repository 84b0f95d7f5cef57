"""What the yProv4ML helpers measure: system use, carbon, weight distributions, source files.

Everything here runs only when the user calls the helper (never on the metric hot path), and
uses optional libraries only when they are installed: psutil (else Linux's /proc), nvidia-ml-py
(``pynvml``) for GPUs, codecarbon for energy and emissions, torch for tensors.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

_GB = float(1 << 30)
_cpu_lock = threading.Lock()
_last_cpu: Optional[Tuple[int, int]] = None  # (busy, total) jiffies at the previous sample


def _proc_cpu_percent() -> Optional[float]:
    """CPU use in % since the previous call (since boot on the first), from /proc/stat."""
    global _last_cpu
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != b"cpu":
        return None
    v = [int(x) for x in fields[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    total = sum(v[:8])
    busy = total - idle
    with _cpu_lock:
        prev, _last_cpu = _last_cpu, (busy, total)
    if prev is not None and total > prev[1]:
        return 100.0 * (busy - prev[0]) / (total - prev[1])
    return 100.0 * busy / total if total else None


def _proc_memory() -> Optional[Tuple[float, float]]:
    """(used bytes, total bytes) from /proc/meminfo (used = total - available)."""
    try:
        info: Dict[str, int] = {}
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2:
                    info[parts[0].rstrip(b":").decode()] = int(parts[1]) * 1024
        total = info["MemTotal"]
        available = info.get("MemAvailable", info.get("MemFree", 0))
        return float(total - available), float(total)
    except (OSError, KeyError, ValueError):
        return None


def sample() -> List[Tuple[str, float, str]]:
    """``[(key, value, source)]``: CPU, RAM and disk, then each GPU nvidia-ml-py sees."""
    out: List[Tuple[str, float, str]] = []
    try:
        import psutil
    except ImportError:
        psutil = None
    cpu = _proc_cpu_percent()
    mem = _proc_memory()
    if cpu is not None and mem is not None:
        src = "procfs"
    elif psutil is not None:
        src = "psutil"
        cpu = psutil.cpu_percent(interval=None)
        vm = psutil.virtual_memory()
        mem = (float(vm.total - vm.available), float(vm.total))
    else:
        raise RuntimeError("system metrics need Linux's /proc or psutil")
    out.append(("cpu_usage_pct", float(cpu), src))
    used, total = mem
    out.append(("ram_usage_pct", 100.0 * used / total if total else 0.0, src))
    out.append(("ram_usage_gb", used / _GB, src))
    try:
        du = shutil.disk_usage(os.getcwd())
        out.append(("disk_usage_pct", 100.0 * du.used / du.total if du.total else 0.0, "statvfs"))
        out.append(("disk_usage_gb", du.used / _GB, "statvfs"))
    except OSError:
        pass
    out.extend(gpu_sample())
    return out


_nvml_state: Dict[str, Any] = {}


def gpu_sample() -> List[Tuple[str, float, str]]:
    """Per GPU (source ``nvml:<index>``): use, memory, power (W) and temperature (°C). Empty
    without nvidia-ml-py or without a GPU."""
    if _nvml_state.get("failed"):
        return []
    try:
        import pynvml
        if not _nvml_state.get("init"):
            pynvml.nvmlInit()
            _nvml_state["init"] = True
        count = pynvml.nvmlDeviceGetCount()
    except Exception:
        _nvml_state["failed"] = True
        return []
    out: List[Tuple[str, float, str]] = []
    for i in range(count):
        src = "nvml:%d" % i
        try:
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
        except Exception:
            continue
        for key, read in (
            ("gpu_usage_pct", lambda h: float(pynvml.nvmlDeviceGetUtilizationRates(h).gpu)),
            ("gpu_memory_usage_pct", lambda h: _mem_pct(pynvml.nvmlDeviceGetMemoryInfo(h))),
            ("gpu_memory_usage_gb", lambda h: pynvml.nvmlDeviceGetMemoryInfo(h).used / _GB),
            ("gpu_power", lambda h: pynvml.nvmlDeviceGetPowerUsage(h) / 1000.0),
            ("gpu_temperature_c", lambda h: float(pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU))),
        ):
            try:
                out.append((key, read(h), src))
            except Exception:
                continue  # not supported on this device
    return out


def _mem_pct(m: Any) -> float:
    return 100.0 * m.used / m.total if m.total else 0.0


# -- carbon -------------------------------------------------------------------------------------

CARBON_KEYS = ("emissions", "emissions_rate", "cpu_power", "gpu_power", "ram_power", "cpu_energy",
               "gpu_energy", "ram_energy", "energy_consumed")


def carbon_sample(state: Dict[str, Any]) -> List[Tuple[str, float]]:
    """Energy and emissions measured by codecarbon since the previous call (the first call
    starts the measurement and reports what it measured so far). Raises when codecarbon is not
    installed."""
    try:
        import codecarbon
    except ImportError:
        raise RuntimeError("carbon metrics need codecarbon (pip install codecarbon)") from None
    tracker = state.get("carbon_tracker")
    if tracker is None:
        country = os.environ.get("LOGD_CARBON_COUNTRY")
        if country:
            tracker = codecarbon.OfflineEmissionsTracker(country_iso_code=country, save_to_file=False,
                                                         log_level="error")
        else:
            tracker = codecarbon.EmissionsTracker(save_to_file=False, log_level="error")
        tracker.start()
        state["carbon_tracker"] = tracker
    emissions = tracker.stop()
    data = getattr(tracker, "final_emissions_data", None)
    tracker.start()
    out: List[Tuple[str, float]] = []
    for key in CARBON_KEYS:
        v = emissions if key == "emissions" else getattr(data, key, None)
        if v is not None:
            try:
                out.append((key, float(v)))
            except (TypeError, ValueError):
                continue
    return out


# -- weight distributions -----------------------------------------------------------------------

_WEIGHTED = ("Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
             "Embedding", "LayerNorm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "GroupNorm", "Bilinear")


def _weights_of(module: Any) -> List[Any]:
    named = getattr(module, "named_parameters", None)
    if callable(named):
        try:
            return [p for n, p in named(recurse=False) if "weight" in n]
        except TypeError:
            pass
    w = getattr(module, "weight", None)
    return [w] if w is not None else []


def _stats(values: Sequence[float]) -> Dict[str, float]:
    xs = sorted(values)
    n = len(xs)
    mean = sum(xs) / n
    var = sum((x - mean) ** 2 for x in xs) / (n - 1) if n > 1 else 0.0

    def q(p: float) -> float:  # linear interpolation, as torch.quantile
        pos = p * (n - 1)
        lo = int(math.floor(pos))
        hi = min(lo + 1, n - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

    return {"mean": mean, "std": math.sqrt(var), "min": xs[0], "max": xs[-1], "p25": q(0.25), "p50": q(0.5),
            "p75": q(0.75)}


def _tensor_stats(tensors: List[Any]) -> Dict[str, float]:
    if all(hasattr(t, "detach") for t in tensors):
        import torch
        w = torch.cat([t.detach().float().cpu().flatten() for t in tensors])
        s = w
        if s.numel() > (1 << 24):  # torch.quantile's limit: an evenly strided sample
            s = s[:: s.numel() // (1 << 24) + 1]
        q = torch.quantile(s, torch.tensor([0.25, 0.5, 0.75]))
        return {"mean": float(w.mean()), "std": float(w.std()) if w.numel() > 1 else 0.0, "min": float(w.min()),
                "max": float(w.max()), "p25": float(q[0]), "p50": float(q[1]), "p75": float(q[2])}
    values: List[float] = []
    for t in tensors:
        flat = t.flatten().tolist() if hasattr(t, "flatten") else t
        stack = [flat]
        while stack:
            x = stack.pop()
            if isinstance(x, (list, tuple)):
                stack.extend(x)
            else:
                values.append(float(x))
    return _stats(values)


def weight_distributions(model: Any) -> Dict[str, Dict[str, float]]:
    """``{layer name: {mean, std, min, max, p25, p50, p75}}`` of the weights of every layer that
    owns a trainable weight (torch's Linear, Conv, Embedding, norm layers; any module with a
    ``weight`` for duck-typed models)."""
    modules = list(model.named_modules()) if callable(getattr(model, "named_modules", None)) else [("", model)]
    out: Dict[str, Dict[str, float]] = {}
    for name, module in modules:
        kind = type(module).__name__
        weights = _weights_of(module)
        if not weights:
            continue
        if "torch" in sys.modules and type(module).__module__.startswith("torch") and kind not in _WEIGHTED:
            continue
        if not any(getattr(w, "requires_grad", True) for w in weights):
            continue
        out[str(name)] = _tensor_stats(weights)
    return out


# -- source code ------------------------------------------------------------------------------


def source_files(path: Optional[str], limit: int = 1000) -> List[str]:
    """``path`` itself, or the regular files below it; without a path the running script and
    the Python modules it loaded from the script's directory (yProv4ML 3.x's choice)."""
    if path is not None:
        if os.path.isfile(path):
            return [os.path.abspath(path)]
        out: List[str] = []
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
            for f in sorted(files):
                if not f.startswith(".") and len(out) < limit:
                    out.append(os.path.abspath(os.path.join(root, f)))
        return out
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv and sys.argv[0] else None)
    if not script or not os.path.isfile(script):
        return []
    script = os.path.abspath(script)
    root = os.path.dirname(script)
    files = [script]
    for m in list(sys.modules.values()):
        mod_file = getattr(m, "__file__", None)
        if not mod_file or not mod_file.endswith(".py"):
            continue
        mod_file = os.path.abspath(mod_file)
        if (mod_file != script and mod_file.startswith(root + os.sep) and "site-packages" not in mod_file
                and mod_file not in files):
            files.append(mod_file)
        if len(files) >= limit:
            break
    return files


def _git(args: List[str], cwd: str) -> Optional[bytes]:
    try:
        r = subprocess.run(["git"] + args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


def git_source(directory: str) -> Tuple[Optional[str], Optional[str], bytes]:
    """(remote URL, HEAD commit, ``git diff HEAD`` output) of the checkout holding
    ``directory``; Nones and b"" outside one."""
    commit = _git(["rev-parse", "HEAD"], directory)
    if not commit:
        return None, None, b""
    remote = _git(["config", "--get", "remote.origin.url"], directory)
    diff = _git(["diff", "HEAD", "--no-color", "--no-ext-diff"], directory) or b""
    return (remote.decode("utf-8", "replace").strip() if remote else None,
            commit.decode("ascii", "replace").strip(), diff)
