"""``LoggingHandler``: the standard ``logging`` module into the run's main.log.

The CS230 ``set_logger`` in one line::

    logging.getLogger().addHandler(logd.LoggingHandler(run))

or ``logd.set_logger(run)``, which also keeps printing to the terminal.
"""

from __future__ import annotations

import logging
import sys
from typing import Optional

from .run import Run


class LoggingHandler(logging.Handler):
    """Sends each record to a run as a LOG line: the record's level, its own time, the logger's
    name, and the formatted message (with the traceback, if any). Never raises into the caller.
    ``run=None`` logs into the current run (``logd.start_run``) at the time of each record."""

    def __init__(self, run: Optional[Run] = None, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.run = run
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        run = self.run
        if run is None:
            from .api import current_run
            run = current_run()
            if run is None:
                return
        try:
            message = self.format(record)
            run.log(message, record.levelno, record.name, int(record.created * 1e9))
        except Exception:
            self.handleError(record)


def set_logger(run: Optional[Run] = None, level: int = logging.INFO, console: bool = True) -> logging.Logger:
    """Configures the root logger to write into the run's main.log (and, with ``console``, to the
    terminal as ``%(asctime)s:%(levelname)s: %(message)s``). Returns the root logger."""
    root = logging.getLogger()
    root.setLevel(level)
    if not any(isinstance(h, LoggingHandler) and h.run is run for h in root.handlers):
        root.addHandler(LoggingHandler(run))
    if console and not any(getattr(h, "_logd_console", False) for h in root.handlers):
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("%(asctime)s:%(levelname)s: %(message)s"))
        stream._logd_console = True  # type: ignore[attr-defined]
        root.addHandler(stream)
    return root
