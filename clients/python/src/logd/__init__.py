"""logd for Python: log params, metrics, text, artifacts, models and datasets of a training run
to the local logd daemon, at about a microsecond per call.

    import logd

    with logd.start_run(experiment="mnist", name="baseline", config={"lr": 1e-3}) as run:
        for step in range(1000):
            run.log_metric("loss", loss, step)

See clients/python/README.md. Pure Python, no required dependencies; the wire protocol is
docs/WIRE_PROTOCOL.md in the logd repository.
"""

from __future__ import annotations

from . import api, control  # api: bound by the imports below anyway; named here for type checkers
from ._sender import CLIENT_VERSION as __version__
from .api import (
    current_run,
    end_run,
    flush,
    log_artifact,
    log_dataset,
    log_metric,
    log_metrics,
    log_model,
    log_param,
    log_params,
    save_model_version,
    start_run,
)
from .api import *  # noqa: F401,F403  yProv4ML's whole module-level API (api.__all__)
from .frames import RunData, RunNotFound, load_metrics, load_runs, read_experiment, read_run  # pandas: lazily
from .logging_handler import LoggingHandler, set_logger
from .run import TESTING, TRAINING, VALIDATION, Context, DeliveryReport, Run, set_gc_freeze_on_fork
from .tensorboard import GlobalSummaryWriter, SummaryWriter

__all__ = [
    "Context",
    "DeliveryReport",
    "GlobalSummaryWriter",
    "LoggingHandler",
    "Run",
    "SummaryWriter",
    "TESTING",
    "TRAINING",
    "VALIDATION",
    "__version__",
    "current_run",
    "end_run",
    "flush",
    "log_artifact",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "save_model_version",
    "set_gc_freeze_on_fork",
    "set_logger",
    "start_run",
]
__all__ += [_n for _n in api.__all__ if _n not in __all__]  # yProv4ML's module-level API
__all__ += ["RunData", "RunNotFound", "load_metrics", "load_runs", "read_experiment", "read_run"]
