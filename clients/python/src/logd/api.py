"""Module-level functions with yProv4ML's names and argument order, acting on the current run.

Switching from yProv4ML is a one-line change (``import logd as prov4ml``): ``start_run``,
``log_param``, ``log_params``, ``log_metric(key, value, context, step, source)``,
``log_metrics``, ``log_artifact``, ``log_model``, ``save_model_version``, ``log_dataset``,
``end_run``, and the contexts ``Context.TRAINING / VALIDATION / TESTING`` (or your own Enum).

With no current run every function does nothing and warns once; none raises into the training
loop.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from typing import Any, Mapping, Optional, Sequence

from .run import Context, DeliveryReport, Run

_current: Optional[Run] = None
_lock = threading.Lock()
_warned = False


def start_run(experiment: str = "default", name: str = "run", config: Optional[Mapping[str, Any]] = None,
              tags: Sequence[str] = (), seed: Optional[int] = None, run_id: Optional[str] = None,
              socket: Optional[str] = None, sink: str = "daemon", buffer_bytes: int = 64 << 20,
              **_ignored: Any) -> Run:
    """Starts a run and makes it the current one (``with logd.start_run(...) as run:`` finishes it
    on exit: "finished", "failed" on an exception, "killed" on Ctrl-C). Arguments as ``Run``.
    Unknown keyword arguments (yProv4ML's ``prov_user_namespace``, ``provenance_save_dir``...)
    are accepted and ignored, so an existing call keeps working."""
    global _current
    run = Run(experiment=experiment, name=name, config=config, tags=tags, seed=seed, run_id=run_id,
              socket=socket, sink=sink, buffer_bytes=buffer_bytes)
    with _lock:
        _current = run
    return run


def current_run() -> Optional[Run]:
    """The run the module-level functions log into (the last ``start_run``), if any."""
    return _current


def end_run(status: str = "finished", timeout: float = 10.0, **_ignored: Any) -> Optional[DeliveryReport]:
    """Finishes the current run (see ``Run.finish``) and returns its delivery report."""
    global _current
    with _lock:
        run, _current = _current, None
    return run.finish(status, timeout) if run is not None else None


def _forget(run: Run) -> None:
    """A finished run stops being the current one (``Run.finish`` calls this)."""
    global _current
    with _lock:
        if _current is run:
            _current = None


def _run() -> Optional[Run]:
    global _warned
    run = _current
    if run is None and not _warned:
        _warned = True
        logging.getLogger("logd").warning("logd: no current run (call logd.start_run first); not logged")
    return run


def log_param(key: str, value: Any) -> None:
    run = _run()
    if run is not None:
        run.log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    run = _run()
    if run is not None:
        run.log_params(params)


def log_metric(key: str, value: float, context: Any = Context.TRAINING, step: Optional[int] = None,
               source: Optional[str] = None) -> None:
    run = _current or _run()
    if run is not None:
        run.log_metric(key, value, step, context, source)


def log_metrics(metrics: Mapping[str, float], context: Any = Context.TRAINING, step: Optional[int] = None,
                source: Optional[str] = None) -> None:
    run = _run()
    if run is not None:
        run.log_metrics(metrics, step, context, source)


def log_artifact(artifact_path: Any, value: Any = None, context: Any = Context.TRAINING,
                 step: Optional[int] = None, timestamp: Optional[float] = None,
                 log_copy_in_prov_directory: bool = True, is_input: bool = False) -> bool:
    """yProv4ML's ``log_artifact``. ``value`` may be omitted (``artifact_path`` is the file), a
    path to the file, or the content itself (``str`` or ``bytes``), which is written to a file
    named after ``artifact_path`` and copied. ``timestamp`` in seconds since the epoch."""
    run = _run()
    if run is None:
        return False
    try:
        ts = None if timestamp is None else int(float(timestamp) * 1e9)
        role = "input" if is_input else "output"
        if value is None or isinstance(value, os.PathLike) or (isinstance(value, str) and os.path.isfile(value)):
            path = artifact_path if value is None else value
            return run.log_artifact(path, context, role, log_copy_in_prov_directory, step, ts)
        data = value if isinstance(value, bytes) else str(value).encode("utf-8")
        with tempfile.TemporaryDirectory(prefix="logd-") as tmp:
            path = os.path.join(tmp, os.path.basename(os.fspath(artifact_path)) or "artifact")
            with open(path, "wb") as f:
                f.write(data)
            return run.log_artifact(path, context, role, True, step, ts)
    except Exception as exc:  # never into the training loop
        run._bad_call("log_artifact(%r)" % (artifact_path,), exc)
        return False


def log_model(model: Any, model_name: str = "default", log_model_info: bool = True,
              log_model_layers: bool = False, log_as_artifact: bool = True) -> None:
    run = _run()
    if run is None:
        return
    if log_model_info or log_model_layers:
        run.log_model(model, model_name, log_model_layers=log_model_layers, log_as_artifact=False)
    if log_as_artifact:
        run.save_model_version(model, model_name)


def save_model_version(model: Any, model_name: str, context: Any = Context.TRAINING,
                       step: Optional[int] = None, timestamp: Optional[float] = None,
                       snapshot: bool = False) -> bool:
    """yProv4ML's ``save_model_version``: a torch module (its state_dict is saved) or a path."""
    run = _run()
    if run is None:
        return False
    try:
        ts = None if timestamp is None else int(float(timestamp) * 1e9)
    except Exception as exc:
        run._bad_call("save_model_version(%r)" % (model_name,), exc)
        return False
    return run.save_model_version(model, model_name, context, step, timestamp_ns=ts, snapshot=snapshot)


def log_dataset(dataset: Any, label: str, context: Any = Context.TRAINING) -> None:
    run = _run()
    if run is not None:
        run.log_dataset(dataset, label, context)


def flush(timeout: float = 10.0) -> bool:
    run = _run()
    return run.flush(timeout) if run is not None else True
