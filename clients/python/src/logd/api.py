"""Module-level functions with yProv4ML's names, acting on the current run.

Switching from yProv4ML is a one-line change (``import logd as prov4ml``) for its 1.x, 2.x and
3.x APIs. The generations disagree on argument order: 1.x puts the object first
(``log_model(model, name)``, ``log_dataset(dataset, label)``, ``save_model_version(model, name,
context, step, timestamp)``, ``log_artifact(path, context, step, timestamp)``), 2.x and 3.x put the
name first (``log_model(name, model)``, ``log_dataset(label, dataset)``,
``log_artifact(name, path)``). Each call is told apart by the types of its arguments (a name is a
``str``, a model or data set is not; a context is an Enum; a step is an ``int``, a flag a
``bool``). A call whose types fit two readings is counted in ``run.errors``, warned about once,
and recorded the way the newest generation reads it: nothing is guessed silently.

Timestamps are milliseconds since the epoch as in yProv4ML (seconds, microseconds and
nanoseconds are recognised by their magnitude). clients/python/README.md, "Switching from
yProv4ML", lists what maps where.

With no current run every function does nothing and warns once; none raises into the training
loop.
"""

from __future__ import annotations

import contextlib
import datetime as _datetime
import enum
import logging
import os
import re
import tempfile
import threading
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from . import wire
from .run import ENDED_HOOKS, Context, DeliveryReport, Run, context_name

__all__ = [
    "CompressorType",
    "Contexts",
    "LoggingItemKind",
    "MetricsType",
    "ProvMLLogger",
    "ProvenanceTrackedFunction",
    "ProvenanceTrackedModel",
    "WeightDistributionTrackedModel",
    "create_context",
    "current_run",
    "end_run",
    "flush",
    "get_artifacts_dir",
    "get_run_dir",
    "log_artifact",
    "log_carbon_metrics",
    "log_context",
    "log_current_execution_time",
    "log_dataset",
    "log_execution_command",
    "log_execution_end_time",
    "log_execution_start_time",
    "log_flops_per_batch",
    "log_flops_per_epoch",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_model_memory_footprint",
    "log_param",
    "log_params",
    "log_provenance_documents",
    "log_source_code",
    "log_system_metrics",
    "save_model_version",
    "start_run",
    "start_run_ctx",
]

_log = logging.getLogger("logd")
_current: Optional[Run] = None
_lock = threading.Lock()
_warned = False
_MISSING = object()

#: yProv4ML 3.x's name for the context enum.
Contexts = Context


class MetricsType(enum.Enum):
    """yProv4ML's metric file formats. Accepted and ignored: logd writes metrics.csv."""

    CSV = "csv"
    ZARR = "zarr"
    NETCDF = "netcdf"
    NC = "nc"


class CompressorType(enum.Enum):
    """yProv4ML's metric file compressors. Accepted and ignored."""

    NONE = "none"
    ZIP = "zip"
    LZ4 = "lz4"
    ZSTD = "zstd"
    GZIP = "gzip"
    BLOSC_ZSTD = "blosc_zstd"
    BLOSC_LZ4 = "blosc_lz4"


class LoggingItemKind(enum.Enum):
    """yProv4ML's metric sources; a member given as ``source`` is recorded as its value."""

    METRIC = "metric"
    FLOPS_PER_BATCH = "flops_pb"
    FLOPS_PER_EPOCH = "flops_pe"
    SYSTEM_METRIC = "system"
    CARBON_METRIC = "carbon"
    EXECUTION_TIME = "execution_time"
    MODEL_VERSION = "model_version"
    FINAL_MODEL_VERSION = "model_version_final"
    PARAMETER = "param"


# -- the current run --------------------------------------------------------------------------


def start_run(*args: Any, **kwargs: Any) -> Run:
    """Starts a run and makes it the current one (``with logd.start_run(...) as run:`` finishes it
    on exit: "finished", "failed" on an exception, "killed" on Ctrl-C).

    logd's arguments (``experiment``, ``name``, ``config``, ``tags``, ``seed``, ``run_id``,
    ``socket``, ``sink``, ``buffer_bytes``; positionally in that order) and yProv4ML's:
    ``experiment_name`` is the experiment directory; ``rank`` is this process's rank;
    ``collect_all_processes=False`` (passed explicitly) records nothing on ranks other than 0,
    as yProv4ML does; ``use_run_id`` makes the run id ``<experiment>-<use_run_id>`` so processes
    that pass the same one share a run. ``prov_user_namespace``, ``provenance_save_dir``,
    ``save_after_n_logs``, ``metrics_file_type``, ``csv_separator``, ``use_compressor`` and
    ``disable_codecarbon`` are accepted; logd's own files do not need them. yProv4ML 1.x's
    positional ``start_run(namespace, experiment_name)`` is recognised by a namespace-looking
    first argument (``www.…`` or ``…://…``)."""
    global _current
    positional: List[Any] = list(args)
    if positional and isinstance(positional[0], str) and (positional[0].startswith("www.") or "://" in positional[0]):
        # 1.x: (prov_user_namespace, experiment_name, provenance_save_dir, collect_all_processes,
        # save_after_n_logs, rank)
        for name, value in zip(("prov_user_namespace", "experiment_name", "provenance_save_dir",
                                "collect_all_processes", "save_after_n_logs", "rank"), positional):
            kwargs.setdefault(name, value)
        positional = []
    for name, value in zip(("experiment", "name", "config", "tags", "seed", "run_id", "socket", "sink",
                            "buffer_bytes"), positional):
        kwargs.setdefault(name, value)
    experiment = kwargs.pop("experiment", None)
    experiment_name = kwargs.pop("experiment_name", None)
    if experiment is None:
        experiment = experiment_name if experiment_name is not None else "default"
    experiment = str(experiment)
    run_id = kwargs.pop("run_id", None)
    use_run_id = kwargs.pop("use_run_id", None)
    if run_id is None and use_run_id is not None:
        run_id = "%s-%s" % (experiment, use_run_id)
    rank = kwargs.pop("rank", None)
    collect_all = kwargs.pop("collect_all_processes", None)
    sink = kwargs.pop("sink", "daemon")
    saved = os.environ.get("RANK")
    if rank is not None:
        os.environ["RANK"] = str(int(rank))
    try:
        from . import _process
        this_rank = _process.ranks()[0]
        if collect_all is False and this_rank != 0:
            sink = "none"  # yProv4ML records rank 0 only unless collect_all_processes=True
        run = Run(experiment=experiment, name=str(kwargs.pop("name", "run")), config=kwargs.pop("config", None),
                  tags=kwargs.pop("tags", ()), seed=kwargs.pop("seed", None), run_id=run_id,
                  socket=kwargs.pop("socket", None), sink=sink, buffer_bytes=kwargs.pop("buffer_bytes", 64 << 20))
    finally:
        if rank is not None:
            if saved is None:
                os.environ.pop("RANK", None)
            else:
                os.environ["RANK"] = saved
    run._prov4ml = {"disable_codecarbon": bool(kwargs.get("disable_codecarbon", False)),  # type: ignore[attr-defined]
                    "started": time.time()}
    with _lock:
        _current = run
    return run


@contextlib.contextmanager
def start_run_ctx(*args: Any, **kwargs: Any) -> Iterator[Run]:
    """yProv4ML 1.x's context manager: ``with prov4ml.start_run_ctx(...):``."""
    for k in ("create_graph", "create_svg", "crate_ro_crate"):
        kwargs.pop(k, None)
    run = start_run(*args, **kwargs)
    try:
        yield run
    except KeyboardInterrupt:
        run.finish("killed")
        raise
    except BaseException:
        run.finish("failed")
        raise
    else:
        run.finish("finished")


def current_run() -> Optional[Run]:
    """The run the module-level functions log into (the last ``start_run``), if any."""
    return _current


def end_run(*args: Any, **kwargs: Any) -> Optional[DeliveryReport]:
    """Finishes the current run (see ``Run.finish``) and returns its delivery report.
    ``end_run(status="finished", timeout=10.0)``; yProv4ML's ``create_graph``, ``create_svg``,
    ``crate_ro_crate`` and ``create_card`` are accepted (prov.json is the daemon's)."""
    global _current
    status: Any = kwargs.pop("status", "finished")
    timeout = float(kwargs.pop("timeout", 10.0))
    if args and isinstance(args[0], str):
        status = args[0]
        if len(args) > 1 and isinstance(args[1], (int, float)) and not isinstance(args[1], bool):
            timeout = float(args[1])
    with _lock:
        run, _current = _current, None
    if run is None:
        return None
    tracker = getattr(run, "_prov4ml", {}).pop("carbon_tracker", None)
    if tracker is not None:  # codecarbon measures on a thread of its own: stop it with the run
        try:
            tracker.stop()
        except Exception:
            pass
    return run.finish(status, timeout)


def log_provenance_documents(*args: Any, **kwargs: Any) -> Optional[DeliveryReport]:
    """yProv4ML's itwinai name for ``end_run``."""
    return end_run(**{k: v for k, v in kwargs.items() if k in ("status", "timeout")})


def _forget(run: Run) -> None:
    """A finished run stops being the current one (``Run.finish`` calls this)."""
    global _current
    with _lock:
        if _current is run:
            _current = None


ENDED_HOOKS.append(_forget)


def _run() -> Optional[Run]:
    global _warned
    run = _current
    if run is None and not _warned:
        _warned = True
        _log.warning("logd: no current run (call logd.start_run first); not logged")
    return run


def flush(timeout: float = 10.0) -> bool:
    run = _run()
    return run.flush(timeout) if run is not None else True


def _run_directory(run: Run) -> Optional[str]:
    """The run's directory as logd reports it (``status``), or None."""
    if run.sink != "daemon":
        return None
    try:
        from . import control
        st = control.status(socket=run.socket_path, timeout=5.0)
        for r in st.get("runs", []):
            if r.get("run_id") == run.run_id:
                return os.path.join(st["data_root"], r["directory"])
    except Exception:
        return None
    return None


def get_run_dir() -> Optional[str]:
    """yProv4ML's ``get_run_dir``: the current run's directory (asks logd), or None."""
    run = _run()
    return _run_directory(run) if run is not None else None


def get_artifacts_dir() -> Optional[str]:
    """yProv4ML's ``get_artifacts_dir``: ``<run directory>/artifacts``, or None."""
    d = get_run_dir()
    return os.path.join(d, "artifacts") if d else None


# -- argument translation ---------------------------------------------------------------------


def _ambiguous(run: Run, call: str, readings: str) -> None:
    """Counted in ``run.errors`` and warned once per call kind; the caller records the call
    the way yProv4ML's newest generation reads it."""
    run._bad_call(call, ValueError("ambiguous arguments: %s" % readings))


def _ctx(context: Any) -> Any:
    """yProv4ML's ``None`` context (the run's own) is logd's default, training."""
    return Context.TRAINING if context is None else context


def _source(source: Any) -> Optional[str]:
    if source is None or type(source) is str:
        return source
    if isinstance(source, enum.Enum):
        return str(source.value)
    return str(source)


def timestamp_ns(ts: Any) -> int:
    """A yProv4ML timestamp (milliseconds since the epoch; seconds, microseconds and nanoseconds
    recognised by magnitude; or a ``datetime``) in nanoseconds."""
    if isinstance(ts, _datetime.datetime):
        return int(ts.timestamp() * 1e9)
    t = float(ts)
    a = abs(t)
    if a >= 1e17:
        return int(t)
    if a >= 1e14:
        return int(t * 1e3)
    if a >= 1e11:
        return int(t * 1e6)
    return int(t * 1e9)


def _number(value: Any) -> float:
    if isinstance(value, (float, int)):
        return float(value)
    item = getattr(value, "item", None)
    if callable(item):
        return float(item())
    return float(value)


def _is_context(x: Any) -> bool:
    return isinstance(x, enum.Enum) and not isinstance(x, (MetricsType, CompressorType, LoggingItemKind))


def _is_file(x: Any) -> bool:
    try:
        return isinstance(x, (str, os.PathLike)) and os.path.isfile(x)
    except (TypeError, ValueError):
        return False


def _name_and_object(run: Run, call: str, args: List[Any], kwargs: Dict[str, Any], obj_kw: Sequence[str],
                     name_kw: Sequence[str], default_name: str) -> Tuple[Any, Any, List[Any]]:
    """(object, name, remaining positional arguments) from either order: 1.x's
    ``(object, name, ...)`` or 2.x/3.x's ``(name, object, ...)``."""
    obj = _MISSING
    name = _MISSING
    for k in obj_kw:
        if k in kwargs:
            obj = kwargs.pop(k)
    for k in name_kw:
        if k in kwargs:
            name = kwargs.pop(k)
    rest = list(args)
    if obj is not _MISSING and name is not _MISSING:
        return obj, name, rest
    if obj is not _MISSING:  # name positional
        return obj, rest.pop(0) if rest and isinstance(rest[0], str) else default_name, rest
    if name is not _MISSING:  # object positional
        return (rest.pop(0) if rest else None), name, rest
    if not rest:
        return None, default_name, rest
    a0 = rest.pop(0)
    if not rest:  # one positional argument: a name alone, or the object (a checkpoint path too)
        if isinstance(a0, str) and not _is_file(a0):
            return None, a0, rest
        return a0, default_name, rest
    a1 = rest[0]
    if _is_context(a1) or a1 is None:  # (object or name, context, ...): one of the two was left out
        if isinstance(a0, str) and not _is_file(a0):
            return None, a0, rest
        return a0, default_name, rest
    if isinstance(a0, str) and not isinstance(a1, str):
        rest.pop(0)
        return a1, a0, rest  # 2.x / 3.x: (name, object)
    if not isinstance(a0, str) and isinstance(a1, str):
        rest.pop(0)
        return a0, a1, rest  # 1.x: (object, name)
    if isinstance(a0, str) and isinstance(a1, str):
        rest.pop(0)
        f0, f1 = _is_file(a0), _is_file(a1)
        if f0 and not f1:
            return a0, a1, rest  # (checkpoint path, name)
        if f1 and not f0:
            return a1, a0, rest  # (name, checkpoint path)
        _ambiguous(run, call, "two strings: (name, object) or (object, name); (name, object)")
        return a1, a0, rest
    return a0, default_name, rest  # neither is a name


def _context_step_tail(rest: List[Any], kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """The positional tail after the object and name, read by type: a context (Enum, or the
    first plain string), a source (a string after the context), a step (the first int), a
    timestamp (a second int), flags (bools, in the order the caller's generation lists them)."""
    out: Dict[str, Any] = {"flags": []}
    for x in rest:
        if isinstance(x, bool):
            out["flags"].append(x)
        elif _is_context(x) or (isinstance(x, str) and "context" not in out):
            out["context"] = x
        elif isinstance(x, (int, float)) or hasattr(x, "__index__"):
            if "step" not in out:
                out["step"] = x
            else:
                out["timestamp"] = x
        elif isinstance(x, str):
            out["source"] = x
        elif x is None:
            continue
        elif isinstance(x, enum.Enum):
            out["source"] = x
    for k in ("context", "step", "timestamp", "source"):
        if k in kwargs:
            out[k] = kwargs.pop(k)
    return out


# -- params and metrics -----------------------------------------------------------------------


def log_param(key: str, value: Any, context: Any = None, source: Any = None, is_input: bool = False, **_: Any) -> None:
    """One top-level entry of config.yaml. yProv4ML's ``context``, ``source`` and ``is_input``
    are accepted; config.yaml has no context."""
    run = _run()
    if run is not None:
        run.log_param(key, value)


def log_params(params: Mapping[str, Any], context: Any = None, **_: Any) -> None:
    run = _run()
    if run is not None:
        run.log_params(params)


def log_metric(key: str, value: Any, context: Any = None, step: Optional[int] = None, source: Any = None,
               timestamp: Any = None, **_: Any) -> None:
    """One sample of ``key`` in ``context`` (an Enum member, a string, or None for training) at
    ``step`` from ``source`` (a string or a ``LoggingItemKind``). ``timestamp``: milliseconds since
    the epoch, as yProv4ML (default: now)."""
    run = _current or _run()
    if run is None:
        return
    if timestamp is None and (type(value) is float or type(value) is int):
        run.log_metric(key, value, step, Context.TRAINING if context is None else context,
                       source if source is None or type(source) is str else _source(source))
        return
    _metric_slow(run, key, value, context, step, source, timestamp)


def _metric_slow(run: Run, key: Any, value: Any, context: Any, step: Any, source: Any, timestamp: Any) -> None:
    try:
        v = _number(value)
        st = wire.NO_STEP if step is None else int(step)
        ts = time.time_ns() if timestamp is None else timestamp_ns(timestamp)
    except Exception as exc:
        run._bad_call("log_metric(%r)" % (key,), exc)
        return
    kid = run._intern(key, _ctx(context), _source(source))
    if kid is None:
        return
    try:
        frame = wire.metric(kid, st, ts, v)
    except Exception as exc:
        run._bad_call("log_metric(%r)" % (key,), exc)
        return
    run._append(frame)


def log_metrics(metrics: Mapping[str, Any], context: Any = None, step: Optional[int] = None, source: Any = None,
                timestamp: Any = None, **_: Any) -> None:
    run = _run()
    if run is None:
        return
    for key, value in metrics.items():
        log_metric(key, value, context, step, source, timestamp)


def log_execution_start_time() -> None:
    """Param ``execution_start_time`` (ISO 8601), as yProv4ML 1.x/2.x."""
    log_param("execution_start_time", _datetime.datetime.now().astimezone().isoformat())


def log_execution_end_time() -> None:
    log_param("execution_end_time", _datetime.datetime.now().astimezone().isoformat())


def log_current_execution_time(label: str, context: Any = None, step: Optional[int] = None, **_: Any) -> None:
    """Metric ``label`` = the current time in seconds since the epoch, source
    ``execution_time`` (what yProv4ML records)."""
    log_metric(label, time.time(), context, step, LoggingItemKind.EXECUTION_TIME)


def log_execution_command(cmd: str, path: Optional[str] = None, **_: Any) -> None:
    log_param("execution_command", cmd if path is None else "%s %s" % (cmd, path))


# -- artifacts ----------------------------------------------------------------------------------


def log_artifact(*args: Any, **kwargs: Any) -> bool:
    """Records a file, or content, as an artifact. Every yProv4ML form:

    - ``log_artifact(path)``, ``log_artifact(path, context, step, timestamp)`` (1.x);
    - ``log_artifact(artifact_path, value, context, step, timestamp, log_copy_in_prov_directory)``
      where ``value`` is a path to the file, or the content itself (``str``/``bytes``/anything,
      written to a file named after ``artifact_path``);
    - ``log_artifact(artifact_name, artifact_path, context, [source,] step, log_copy_in_prov_directory,
      ..., is_model, is_input)`` (2.x, 3.x).

    ``is_input`` records it as an input; ``log_copy_in_prov_directory=False`` records path, size
    and SHA-256 without copying; ``is_model`` stores it as a version of the model named
    ``artifact_name``. Returns False (see ``run.last_error``) when nothing was recorded."""
    run = _run()
    if run is None:
        return False
    try:
        return _log_artifact(run, list(args), dict(kwargs))
    except Exception as exc:  # never into the training loop
        run._bad_call("log_artifact(%r)" % (args[0] if args else kwargs.get("artifact_path"),), exc)
        return False


def _log_artifact(run: Run, args: List[Any], kwargs: Dict[str, Any]) -> bool:
    copy = kwargs.pop("log_copy_in_prov_directory", True)
    is_input = bool(kwargs.pop("is_input", False))
    is_model = bool(kwargs.pop("is_model", False))
    snapshot = bool(kwargs.pop("snapshot", False))
    name: Any = kwargs.pop("artifact_name", _MISSING)
    path: Any = kwargs.pop("artifact_path", _MISSING)
    value: Any = kwargs.pop("value", _MISSING)
    content: Any = _MISSING
    if path is _MISSING:
        path = args.pop(0) if args else _MISSING
        if name is _MISSING and value is _MISSING and args:
            # What follows the first argument tells the generations apart.
            a1 = args[0]
            if a1 is None:
                args.pop(0)
            elif _is_context(a1):
                pass  # 1.x: (path, context, step, timestamp)
            elif isinstance(a1, os.PathLike) or _is_file(a1) or (isinstance(a1, str) and os.path.isdir(a1)):
                name, path = path, args.pop(0)  # 2.x/3.x (name, path), or (artifact_path, value=a path)
            elif isinstance(a1, str) and _is_file(path) and a1 in _context_names():
                pass  # 1.x with the context given by its name
            elif isinstance(a1, str):
                args.pop(0)
                if _looks_like_path(a1):
                    _ambiguous(run, "log_artifact(%r)" % (path,),
                               "(name, path) whose path %r is not a file, or (artifact_path, content); "
                               "recorded as content" % (a1,))
                content = a1
            else:
                content = args.pop(0)  # (artifact_path, value): bytes, numbers, dicts...
    elif name is _MISSING and args and isinstance(args[0], str):
        name = args.pop(0)  # log_artifact("name", artifact_path=...)
    if value is not _MISSING:
        if isinstance(value, os.PathLike) or _is_file(value):
            name, path = path, value
        else:
            content = value
    tail = _context_step_tail(args, kwargs)
    flags = tail["flags"]
    if flags:
        copy = flags[0]
        if len(flags) >= 3:
            is_model, is_input = flags[1], flags[2]
        elif len(flags) == 2:
            is_model = flags[1]
    context = _ctx(tail.get("context"))
    step = tail.get("step")
    step = None if step is None else int(step)
    ts = None if tail.get("timestamp") is None else timestamp_ns(tail["timestamp"])
    role = "input" if is_input else "output"
    if content is not _MISSING:
        data = content if isinstance(content, bytes) else str(content).encode("utf-8")
        with tempfile.TemporaryDirectory(prefix="logd-") as tmp:
            fname = os.path.basename(os.fspath(path)) if path not in (_MISSING, None) else "artifact"
            p = os.path.join(tmp, fname or "artifact")
            with open(p, "wb") as f:
                f.write(data)
            return run.log_artifact(p, context, role, True, step, ts)
    if path is _MISSING or path is None:
        raise ValueError("no artifact path")
    if is_model:
        model_name = name if isinstance(name, str) else os.path.splitext(os.path.basename(os.fspath(path)))[0]
        return run.save_model_version(path, model_name, context, step, bool(copy), ts, snapshot)
    errors = run.errors
    ok = run.log_artifact(path, context, role, bool(copy), step, ts, snapshot)
    if not ok and os.path.isdir(os.fspath(path)):
        ok = _log_directory(run, os.fspath(path), context, role, bool(copy), step, ts)
    elif not ok and run.errors == errors:  # refused (unreadable, missing): counted once here
        run._bad_call("log_artifact(%r)" % (path,), OSError(run.last_error or "not recorded"))
    return ok


def _log_directory(run: Run, directory: str, context: Any, role: str, copy: bool, step: Optional[int],
                   ts: Optional[int], limit: int = 10000) -> bool:
    """A directory as one artifact per regular file below it (hidden entries skipped)."""
    n = 0
    ok = True
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for f in sorted(files):
            if f.startswith(".") or n >= limit:
                continue
            n += 1
            ok = run.log_artifact(os.path.join(root, f), context, role, copy, step, ts) and ok
    return ok and n > 0


def _looks_like_path(s: str) -> bool:
    """One line with a directory separator, or a bare file name with an extension."""
    if not s or "\n" in s or len(s) > 4096:
        return False
    return os.sep in s or bool(re.match(r"^[\w.+-]+\.[A-Za-z0-9]{1,8}$", s))


def _context_names() -> set:
    return {m.value for m in Context} | {m.name for m in Context} | {"Context.%s" % m.name for m in Context}


# -- models and data sets ---------------------------------------------------------------------


def log_model(*args: Any, **kwargs: Any) -> None:
    """Records a model's info (parameter count, memory, layers with ``log_model_layers``) and saves
    it as a version (its ``state_dict`` with torch, or the checkpoint file when ``model`` is a
    path). Both orders: ``log_model(model, model_name="default", log_model_info=True,
    log_model_layers=False, log_as_artifact=True)`` (1.x) and ``log_model(model_name, model,
    context, [source,] log_model_info=True, log_model_layers=False, ..., is_input=False)``
    (2.x/3.x)."""
    run = _run()
    if run is None:
        return
    try:
        info = kwargs.pop("log_model_info", True)
        layers = kwargs.pop("log_model_layers", False)
        as_artifact = kwargs.pop("log_as_artifact", _MISSING)
        as_artifact = kwargs.pop("log_copy_in_prov_directory", as_artifact)
        kwargs.pop("is_input", None)
        kwargs.pop("other_attrs", None)
        model, name, rest = _name_and_object(run, "log_model", list(args), kwargs, ("model",), ("model_name",), "default")
        tail = _context_step_tail(rest, kwargs)
        flags = tail["flags"]
        if flags:
            info = flags[0]
            if len(flags) == 2:
                if "context" in tail:
                    layers = flags[1]  # name-first: (..., log_model_info, log_model_layers)
                else:
                    _ambiguous(run, "log_model(%r)" % (name,), "1.0's (info, as_artifact) or (info, layers); (info, layers)")
                    layers = flags[1]
            elif len(flags) >= 3:
                layers, as_artifact = flags[1], flags[2]
        context = _ctx(tail.get("context"))
        step = tail.get("step")
        name = str(name)
        if info or layers:
            if isinstance(model, (str, os.PathLike)):
                run.log_model(None, name, log_model_layers=False, context=context)
            else:
                run.log_model(model, name, log_model_layers=bool(layers), log_as_artifact=False, context=context)
        if as_artifact is False or model is None:
            return
        if isinstance(model, (str, bytes, os.PathLike)) or callable(getattr(model, "state_dict", None)):
            run.save_model_version(model, name, context, None if step is None else int(step))
        elif as_artifact is not _MISSING:
            run._bad_call("log_model(%r)" % (name,), TypeError("the model has no state_dict(); no version saved"))
    except Exception as exc:
        run._bad_call("log_model", exc)


def log_model_memory_footprint(model: Any, model_name: str = "default") -> None:
    """yProv4ML 1.x: the model's parameter count and memory, no version."""
    log_model(model, model_name, log_as_artifact=False)


def save_model_version(*args: Any, **kwargs: Any) -> bool:
    """Saves the next version of a model (v1, v2, … in models/<name>/): a torch module (its
    ``state_dict``) or a checkpoint path. Both orders: ``save_model_version(model, model_name,
    context, step, timestamp)`` (1.x) and ``save_model_version(model_name, model, context,
    [source,] step, incremental, is_input, ...)`` (2.x/3.x). ``timestamp`` in milliseconds."""
    run = _run()
    if run is None:
        return False
    try:
        snapshot = bool(kwargs.pop("snapshot", False))
        copy = bool(kwargs.pop("log_copy_in_prov_directory", kwargs.pop("copy", True)))
        for k in ("incremental", "is_input", "other_attrs"):
            kwargs.pop(k, None)
        model, name, rest = _name_and_object(run, "save_model_version", list(args), kwargs, ("model",),
                                             ("model_name",), "model")
        tail = _context_step_tail(rest, kwargs)
        step = tail.get("step")
        ts = None if tail.get("timestamp") is None else timestamp_ns(tail["timestamp"])
        if model is None:
            raise ValueError("no model")
        return run.save_model_version(model, str(name), _ctx(tail.get("context")),
                                      None if step is None else int(step), copy, ts, snapshot)
    except Exception as exc:
        run._bad_call("save_model_version", exc)
        return False


def log_dataset(*args: Any, **kwargs: Any) -> None:
    """Describes a data set (samples, batch size, workers, shuffle, batches). Both orders:
    ``log_dataset(dataset, label)`` (1.x) and ``log_dataset(dataset_label, dataset, context,
    [source,] log_dataset_info=True)`` (2.x/3.x)."""
    run = _run()
    if run is None:
        return
    try:
        with_info = kwargs.pop("log_dataset_info", True)
        kwargs.pop("other_attrs", None)
        dataset, label, rest = _name_and_object(run, "log_dataset", list(args), kwargs, ("dataset",),
                                                ("label", "dataset_label"), "dataset")
        tail = _context_step_tail(rest, kwargs)
        if tail["flags"]:
            with_info = tail["flags"][0]
        if isinstance(dataset, (str, bytes)):
            dataset = None  # a name is not a data set: its length is not a sample count
        run.log_dataset(dataset if with_info else None, str(label), _ctx(tail.get("context")))
    except Exception as exc:
        run._bad_call("log_dataset", exc)


# -- contexts -----------------------------------------------------------------------------------


def create_context(context: Any, is_subcontext_of: Any = None, **_: Any) -> Context:
    """yProv4ML 2.x: adds ``Context.<NAME>`` (value: the name in lower case) and returns it."""
    return _extend_context(context)


def log_context(context: Any, is_subcontext_of: Any = None, source_of_data: Any = None, **_: Any) -> Context:
    """yProv4ML 3.x's ``log_context``: the same as ``create_context``."""
    return _extend_context(context)


def _extend_context(context: Any) -> Context:
    if isinstance(context, Context):
        return context
    name = context.name if isinstance(context, enum.Enum) else str(context)
    existing = Context._member_map_.get(name)
    if existing is not None:
        return existing  # type: ignore[return-value]
    value = context_name(context).lower() if isinstance(context, enum.Enum) else name.lower()
    with _lock:
        member = Context._value2member_map_.get(value)
        if member is None:
            member = str.__new__(Context, value)
            member._name_ = name
            member._value_ = value
            # Enum sets __objclass__ on each member at runtime; typeshed does not declare it.
            member.__objclass__ = Context  # type: ignore[attr-defined]
            Context._member_map_[name] = member
            Context._member_names_.append(name)
            Context._value2member_map_[value] = member
        type.__setattr__(Context, name, member)
    return member  # type: ignore[return-value]


# yProv4ML 1.x's EVALUATION, 2.x's DATASETS and MODELS, beside logd's three.
for _name in ("EVALUATION", "DATASETS", "MODELS"):
    _extend_context(_name)


# -- system, carbon, flops, source code --------------------------------------------------------


def log_system_metrics(context: Any = None, step: Optional[int] = None, **_: Any) -> None:
    """CPU, memory and disk use (and GPU use, memory, power and temperature through nvidia-ml-py
    when it is installed and sees a GPU), with yProv4ML 3.x's names: ``cpu_usage_pct``,
    ``ram_usage_pct``, ``ram_usage_gb``, ``disk_usage_pct``, ``disk_usage_gb``, ``gpu_usage_pct``,
    ``gpu_memory_usage_pct``, ``gpu_memory_usage_gb``, ``gpu_power``, ``gpu_temperature_c``. The
    source is where the number came from (``procfs``, ``psutil``, ``nvml:<gpu index>``)."""
    run = _run()
    if run is None:
        return
    from . import system_metrics
    try:
        samples = system_metrics.sample()
    except Exception as exc:
        run._bad_call("log_system_metrics", exc)
        return
    ts = time.time_ns()
    for key, value, source in samples:
        _metric_slow(run, key, value, context, step, source, ts)


def log_carbon_metrics(context: Any = None, step: Optional[int] = None, **_: Any) -> None:
    """Energy and emissions since the previous call, through codecarbon when it is installed
    (``emissions``, ``emissions_rate``, ``cpu_power``, ``gpu_power``, ``ram_power``, ``cpu_energy``,
    ``gpu_energy``, ``ram_energy``, ``energy_consumed``; source ``codecarbon``). Without codecarbon
    (or with ``disable_codecarbon=True``) nothing is logged: the call is counted in ``run.errors``
    and warned about once."""
    run = _run()
    if run is None:
        return
    from . import system_metrics
    state = getattr(run, "_prov4ml", {})
    if state.get("disable_codecarbon"):
        run._bad_call("log_carbon_metrics", RuntimeError("disable_codecarbon=True was passed to start_run"))
        return
    try:
        values = system_metrics.carbon_sample(state)
    except Exception as exc:
        run._bad_call("log_carbon_metrics", exc)
        return
    ts = time.time_ns()
    for key, value in values:
        _metric_slow(run, key, value, context, step, "codecarbon", ts)


def _flops(run: Run, what: str, model: Any, data: Any, per_epoch: bool) -> Optional[float]:
    try:
        from fvcore.nn import FlopCountAnalysis
    except ImportError:
        run._bad_call(what, RuntimeError("counting FLOPs needs fvcore (pip install fvcore)"))
        return None
    try:
        if per_epoch:
            total = 0.0
            for batch in data:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                total += float(FlopCountAnalysis(model, x).total())
            return total
        x = data[0] if isinstance(data, (tuple, list)) else data
        return float(FlopCountAnalysis(model, x).total())
    except Exception as exc:
        run._bad_call(what, exc)
        return None


def log_flops_per_epoch(label: str, model: Any, dataset: Any, context: Any = None, step: Optional[int] = None,
                        **_: Any) -> None:
    """FLOPs of one pass over ``dataset`` (through fvcore; without it, counted and warned)."""
    run = _run()
    if run is not None:
        v = _flops(run, "log_flops_per_epoch", model, dataset, True)
        if v is not None:
            log_metric(label, v, context, step, LoggingItemKind.FLOPS_PER_EPOCH)


def log_flops_per_batch(label: str, model: Any, batch: Any, context: Any = None, step: Optional[int] = None,
                        **_: Any) -> None:
    run = _run()
    if run is not None:
        v = _flops(run, "log_flops_per_batch", model, batch, False)
        if v is not None:
            log_metric(label, v, context, step, LoggingItemKind.FLOPS_PER_BATCH)


def log_source_code(path: Any = None, use_git: bool = False, **_: Any) -> bool:
    """Records the source as input artifacts: ``path`` (a file, or every file below a
    directory), or without it the running script and the modules it loaded from its directory
    (yProv4ML 3.x). In a git checkout, also ``git_diff.patch`` (uncommitted changes against
    HEAD, when there are any) and the param ``source_code`` = ``<remote>/<commit>`` (what
    yProv4ML's ``use_git`` records; logd records it whether ``use_git`` is given or not)."""
    run = _run()
    if run is None:
        return False
    from . import system_metrics
    try:
        if isinstance(path, bool):  # log_source_code(True): 3.x's use_git, positionally
            path = None
        files = system_metrics.source_files(None if path is None else os.fspath(path))
        if path is not None and not files:
            raise FileNotFoundError("no source file at %s" % (path,))
        ok = True
        for f in files:
            ok = run.log_artifact(f, Context.TRAINING, "input", True) and ok
        remote, commit, diff = system_metrics.git_source(os.path.dirname(files[0]) if files else os.getcwd())
        if commit:
            run.log_param("source_code", "%s/%s" % (remote, commit) if remote else commit)
        if diff:
            with tempfile.TemporaryDirectory(prefix="logd-") as tmp:
                p = os.path.join(tmp, "git_diff.patch")
                with open(p, "wb") as fh:
                    fh.write(diff)
                ok = run.log_artifact(p, Context.TRAINING, "input", True) and ok
        return ok
    except Exception as exc:
        run._bad_call("log_source_code", exc)
        return False


# -- wrappers -----------------------------------------------------------------------------------


class ProvenanceTrackedFunction:
    """Calls ``func`` and logs each result as metric ``<func's class name>`` (source the same),
    step = the call's number, in ``context``."""

    def __init__(self, func: Any, context: Any = None) -> None:
        self.fn = func
        self.context = context
        self.source = type(func).__name__
        self.inc = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self.fn(*args, **kwargs)
        log_metric(self.source, result, self.context, self.inc, self.source)
        self.inc += 1
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fn, name)


class _ModelProxy:
    """Forwards calls and attributes to the wrapped model (``parameters()``, ``train()``,
    ``state_dict()``, ``model(x)``), so a wrapped model is used as the model itself."""

    def __init__(self, model: Any) -> None:
        object.__setattr__(self, "model", model)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "model"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__ or name in type(self).__dict__:
            object.__setattr__(self, name, value)
        else:
            setattr(self.model, name, value)


class ProvenanceTrackedModel(_ModelProxy):
    """yProv4ML's activation-tracking wrapper: ``ProvenanceTrackedModel(model)`` or
    ``(model_label, model, context)``. Records the model's info once (``log_model`` without a
    version) and otherwise behaves as the model; activations are not recorded."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        label = kwargs.pop("model_label", None)
        model = kwargs.pop("model", None)
        rest = list(args)
        if rest and isinstance(rest[0], str):
            label = rest.pop(0)
        if model is None and rest:
            model = rest.pop(0)
        super().__init__(model)
        object.__setattr__(self, "model_name", label or type(model).__name__)
        object.__setattr__(self, "context", kwargs.pop("context", rest[0] if rest else None))
        if _current is not None:
            log_model(self.model_name, model, log_model_info=True, log_copy_in_prov_directory=False)


class WeightDistributionTrackedModel(_ModelProxy):
    """yProv4ML 3.x: ``WeightDistributionTrackedModel(model_label, model, context)``; each
    ``log_epoch(epoch)`` logs, for every layer that owns a weight, the distribution of its
    weights as metrics ``weight_mean``, ``weight_std``, ``weight_min``, ``weight_max``,
    ``weight_p25``, ``weight_p50``, ``weight_p75`` at step ``epoch``, source
    ``<model_label>.<layer name>``. Otherwise the model itself."""

    STATS = ("mean", "std", "min", "max", "p25", "p50", "p75")

    def __init__(self, model_label: Any, model: Any = None, context: Any = None, chunk_size: int = 64) -> None:
        if not isinstance(model_label, str) and isinstance(model, str):
            model_label, model = model, model_label
        super().__init__(model)
        object.__setattr__(self, "model_name", str(model_label))
        object.__setattr__(self, "context", context)
        object.__setattr__(self, "chunk_size", chunk_size)

    def log_epoch(self, epoch: int) -> Dict[str, Dict[str, float]]:
        """Logs and returns ``{layer: {stat: value}}``."""
        run = _run()
        if run is None:
            return {}
        from . import system_metrics
        try:
            stats = system_metrics.weight_distributions(self.model)
        except Exception as exc:
            run._bad_call("WeightDistributionTrackedModel.log_epoch", exc)
            return {}
        ts = time.time_ns()
        for layer, values in stats.items():
            for stat in self.STATS:
                if stat in values:
                    _metric_slow(run, "weight_" + stat, values[stat], self.context, epoch,
                                 "%s.%s" % (self.model_name, layer) if layer else self.model_name, ts)
        return stats

    def close(self) -> None:
        """yProv4ML writes its zarr store here; logd has nothing to close."""


# -- Lightning ------------------------------------------------------------------------------------

_logger_classes: Dict[Any, type] = {}


def _lightning_logger_base() -> type:
    for module in ("lightning.pytorch.loggers.logger", "pytorch_lightning.loggers.logger"):
        try:
            return __import__(module, fromlist=["Logger"]).Logger
        except (ImportError, AttributeError):
            continue
    raise ImportError("ProvMLLogger needs lightning (pip install lightning)")


class ProvMLLogger:
    """yProv4ML's Lightning logger: ``Trainer(logger=[prov4ml.ProvMLLogger()])``. Each metric
    Lightning logs goes to the current run at Lightning's step, in context ``Test`` when its
    name holds "test" or "evaluation", ``Validation`` when it holds "validation", else
    ``Training`` (yProv4ML's rule); hyperparameters go to config.yaml. The object is an instance
    of Lightning's ``Logger`` (lightning is imported when one is created)."""

    def __new__(cls, name: Optional[str] = "lightning_logs", version: Any = None, prefix: str = "",
                flush_logs_every_n_steps: int = 100) -> Any:
        base = _lightning_logger_base()
        # Built at runtime on whichever Lightning Logger is installed: typed as Any on purpose.
        sub: Any = _logger_classes.get(base)
        if sub is None:
            methods = {k: v for k, v in _ProvMLLoggerMethods.__dict__.items() if k not in ("__dict__", "__weakref__")}
            sub = type("ProvMLLogger", (base,), methods)
            _logger_classes[base] = sub
        obj = sub.__new__(sub)
        obj.__init__(name, version, prefix, flush_logs_every_n_steps)
        return obj


class _ProvMLLoggerMethods:
    def __init__(self, name: Optional[str] = "lightning_logs", version: Any = None, prefix: str = "",
                 flush_logs_every_n_steps: int = 100) -> None:
        lightning_logger: Any = type(self).__mro__[1]  # Lightning's Logger (see ProvMLLogger)
        lightning_logger.__init__(self)
        self._name = name or ""
        self._version = version
        self._prefix = prefix
        self._flush_logs_every_n_steps = flush_logs_every_n_steps

    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> Any:
        return self._version

    @property
    def save_dir(self) -> Optional[str]:
        return get_run_dir()

    @property
    def root_dir(self) -> Optional[str]:
        d = self.save_dir
        return os.path.join(d, self.name) if d else None

    @property
    def log_dir(self) -> Optional[str]:
        r = self.root_dir
        v = self.version if isinstance(self.version, str) else "version_%s" % (self.version,)
        return os.path.join(r, v) if r else None

    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
        for key, value in metrics.items():
            k = str(key)
            context = "Test" if ("evaluation" in k or "test" in k) else "Validation" if "validation" in k else "Training"
            log_metric(self._prefix + k, value, context, step)

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        items = vars(params) if not isinstance(params, Mapping) and hasattr(params, "__dict__") else params
        for key, value in dict(items).items():
            log_param(str(key), value)

    def finalize(self, status: str) -> None:
        flush()
