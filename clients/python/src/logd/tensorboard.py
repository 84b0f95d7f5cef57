"""``SummaryWriter`` with tensorboardX's signatures, writing into a logd run.

``from logd import SummaryWriter`` replaces ``from tensorboardX import SummaryWriter`` (or
``torch.utils.tensorboard``) in an existing script:

- ``add_scalar(tag, value, global_step, walltime)`` -> metric ``tag`` at that step;
- ``add_scalars(main_tag, {tag: value}, ...)`` -> metrics ``main_tag/tag``;
- ``add_text(tag, text, global_step)`` -> a main.log line from logger ``tag``;
- ``add_hparams(hparams, metrics)`` -> config entry ``hparams`` and the metrics;
- the other ``add_*`` calls (histograms, images, graphs...) are accepted and ignored, with one
  warning each, so the script keeps running.

If a run is current (``logd.start_run``), the writer logs into it and ``close`` leaves it
open; otherwise the writer starts a run of its own (experiment and name from ``logdir``:
``runs/exp1`` -> experiment ``runs``, run ``exp1``) and ``close`` finishes it.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping, Optional

from .run import Run

_log = logging.getLogger("logd")


class SummaryWriter:
    def __init__(self, logdir: Optional[str] = None, comment: str = "", purge_step: Optional[int] = None,
                 max_queue: int = 10, flush_secs: int = 120, filename_suffix: str = "",
                 write_to_disk: bool = True, log_dir: Optional[str] = None, *, run: Optional[Run] = None,
                 context: str = "training", **kwargs: Any) -> None:
        from .api import current_run

        self.logdir = log_dir if log_dir is not None else logdir
        self.context = context
        self._warned: set = set()
        self._closed = False
        if run is None:
            run = current_run()
        self._owns_run = run is None
        if run is None:
            experiment, name = _names(self.logdir, comment)
            run = Run(experiment=experiment, name=name, sink="daemon" if write_to_disk else "none")
        self.run = run

    def get_logdir(self) -> Optional[str]:
        return self.logdir

    def add_scalar(self, tag: str, scalar_value: Any, global_step: Optional[int] = None,
                   walltime: Optional[float] = None, display_name: str = "", summary_description: str = "") -> None:
        try:
            value = _number(scalar_value)
            step = None if global_step is None else int(global_step)
        except Exception as exc:  # like Run.log_metric: counted, never raised into the loop
            self.run._bad_call("SummaryWriter.add_scalar(%r)" % (tag,), exc)
            return
        if walltime is None:
            self.run.log_metric(tag, value, step, self.context)
        else:
            try:
                ts = int(float(walltime) * 1e9)
            except Exception as exc:
                self.run._bad_call("SummaryWriter.add_scalar(%r) walltime" % (tag,), exc)
                return
            self.run._metric_at(tag, value, step, self.context, ts)

    def add_scalars(self, main_tag: str, tag_scalar_dict: Mapping[str, Any], global_step: Optional[int] = None,
                    walltime: Optional[float] = None) -> None:
        for tag, value in tag_scalar_dict.items():
            self.add_scalar("%s/%s" % (main_tag, tag), value, global_step, walltime)

    def add_text(self, tag: str, text_string: str, global_step: Optional[int] = None,
                 walltime: Optional[float] = None) -> None:
        try:
            text = str(text_string) if global_step is None else "step %d: %s" % (int(global_step), text_string)
            ts = None if walltime is None else int(float(walltime) * 1e9)
        except Exception as exc:
            self.run._bad_call("SummaryWriter.add_text(%r)" % (tag,), exc)
            return
        self.run.log(text, "INFO", tag, ts)

    def add_hparams(self, hparam_dict: Mapping[str, Any], metric_dict: Mapping[str, Any],
                    name: Optional[str] = None, global_step: Optional[int] = None) -> None:
        key = "hparams" if not name else "hparams_%s" % name
        self.run.log_params({key: dict(hparam_dict)})
        for tag, value in metric_dict.items():
            self.add_scalar(tag, value, global_step)

    def flush(self) -> None:
        """Returns once everything written so far is on disk (or after 10 s)."""
        self.run.flush(10.0)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_run:
            self.run.finish()
        else:
            self.run.flush(10.0)

    def __del__(self) -> None:
        # Dropped without close(): end its own run in the background; exit waits for delivery.
        try:
            if not self._closed and self._owns_run:
                self._closed = True
                self.run._end_in_background("finished")
        except Exception:
            pass

    def __enter__(self) -> "SummaryWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def __getattr__(self, name: str):
        if name.startswith("add_"):
            def ignored(*args: Any, **kwargs: Any) -> None:
                if name not in self._warned:
                    self._warned.add(name)
                    _log.warning("logd.SummaryWriter.%s is not supported; ignored", name)
            return ignored
        raise AttributeError(name)


def _number(value: Any) -> float:
    item = getattr(value, "item", None)  # a 0-d tensor or numpy scalar
    if callable(item):
        value = item()
    return float(value)


def _names(logdir: Optional[str], comment: str) -> "tuple[str, str]":
    if not logdir:
        return "runs", "tensorboard" + comment
    path = os.path.normpath(os.fspath(logdir))
    name = os.path.basename(path) or "tensorboard"
    parent = os.path.basename(os.path.dirname(path))
    return (parent or "tensorboard"), name + comment
