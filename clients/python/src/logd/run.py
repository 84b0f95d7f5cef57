"""``Run``: one training process's part in a run, and the hot path.

A call packs one frame into the run's ``FrameBuffer`` and returns; a background thread (the
``Sender``) moves frames to logd. Nothing here waits on a socket, and no call raises into the
training loop: a bad argument is counted (``errors``), remembered (``last_error``) and warned
about once, and the call does nothing else.

Threading: every public method may be called from any thread. The buffer's lock is held only
while a frame is packed. After ``os.fork()`` the child's runs start their own producer session
(a new RUN_START with the same run id) on first use, so DataLoader workers never write into
the parent's stream.
"""

from __future__ import annotations

import atexit
import enum
import gc
import hashlib
import logging
import os
import stat
import struct
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _process, wire
from ._buffer import FrameBuffer
from ._sender import Sender

#: Called with each run as it ends (``finish``, exit, a signal). The module-level API registers
#: here, so this module never imports it (no import circle).
ENDED_HOOKS: List[Callable[["Run"], None]] = []

__all__ = ["Context", "Run", "DeliveryReport", "TRAINING", "VALIDATION", "TESTING"]

_log = logging.getLogger("logd")

_F64 = struct.Struct("<d")
_I64 = struct.Struct("<q")
_time_ns = time.time_ns
NO_STEP = wire.NO_STEP


class Context(str, enum.Enum):
    """The standard contexts (yProv4ML's names). Any string, or a member of your own ``Enum``
    (its name, lower-cased), works as a custom context."""

    TRAINING = "training"
    VALIDATION = "validation"
    TESTING = "testing"


TRAINING = Context.TRAINING
VALIDATION = Context.VALIDATION
TESTING = Context.TESTING


def context_name(context: Any) -> str:
    """The wire name of a context: a string as is, ``Context.X`` its value, another Enum
    member its name in lower case (``MyContext.PREPROCESSING`` -> ``preprocessing``)."""
    if isinstance(context, Context):
        return context.value
    if isinstance(context, enum.Enum):
        return context.value if isinstance(context.value, str) else context.name.lower()
    if context is None:
        return "training"
    return str(context)


_LEVELS = {"TRACE": 0, "DEBUG": 1, "INFO": 2, "NOTICE": 3, "WARNING": 4, "WARN": 4, "ERROR": 5,
           "CRITICAL": 6, "FATAL": 6}


def wire_level(level: Union[int, str]) -> int:
    """A level name (``"INFO"``, case-insensitive) or a ``logging`` number (``logging.INFO``)."""
    if isinstance(level, str):
        return _LEVELS.get(level.upper(), 2)
    n = int(level)
    if n < logging.DEBUG:
        return 0
    if n < logging.INFO:
        return 1
    if n < 25:
        return 2
    if n < logging.WARNING:
        return 3
    if n < logging.ERROR:
        return 4
    if n < logging.CRITICAL:
        return 5
    return 6


_STATUSES = {"finished": 1, "failed": 2, "killed": 3}


class DeliveryReport:
    """What became of the records a run logged (``finish`` returns one)."""

    __slots__ = ("logged", "acknowledged", "dropped", "completed")

    def __init__(self, logged: int, acknowledged: int, dropped: int, completed: bool) -> None:
        self.logged = logged  #: records logged, dropped ones included
        self.acknowledged = acknowledged  #: records logd has on disk (fsynced)
        self.dropped = dropped  #: records dropped because the buffer was full
        self.completed = completed  #: whether the last flush/finish reached its barrier in time

    @property
    def undelivered(self) -> int:
        """Records neither on disk nor dropped (the daemon was absent or too slow)."""
        return self.logged - self.dropped - self.acknowledged

    def __repr__(self) -> str:
        return "DeliveryReport(logged=%d, acknowledged=%d, dropped=%d, undelivered=%d, completed=%s)" % (
            self.logged, self.acknowledged, self.dropped, self.undelivered, self.completed)


class Run:
    """A run as this process sees it. Start one with ``logd.start_run`` (or ``Run(...)``)."""

    def __init__(
        self,
        experiment: str = "default",
        name: str = "run",
        config: Optional[Mapping[str, Any]] = None,
        tags: Sequence[str] = (),
        seed: Optional[int] = None,
        run_id: Optional[str] = None,
        socket: Optional[str] = None,
        sink: str = "daemon",
        buffer_bytes: int = 64 << 20,
    ) -> None:
        """Captures the process (host, command line, working directory, git, ranks), logs
        RUN_START and ``config``, and starts sending.

        - ``run_id``: shared by DDP ranks; default ``LOGD_RUN_ID``, else the launcher's job id,
          else random.
        - ``socket``: logd's socket; default ``LOGD_SOCKET``, else
          ``$XDG_RUNTIME_DIR/logd/logd.sock``, else ``/tmp/logd-<uid>/logd.sock``.
        - ``sink``: ``"daemon"``; ``"memory"`` keeps the decoded records in ``records`` (for
          your tests); ``"none"`` discards them.
        - ``buffer_bytes``: bound on the records held until logd acknowledges them; past it the
          newest records are dropped and counted.
        """
        if sink not in ("daemon", "memory", "none"):
            raise ValueError("sink must be 'daemon', 'memory' or 'none', not %r" % (sink,))
        self.run_id = run_id or _process.run_id()
        self.experiment = experiment
        self.name = name
        self.sink = sink
        self.socket_path = socket or _process.default_socket()
        self.records: List[dict] = []  # sink == "memory": every frame logd would have received
        self.errors = 0
        self.last_error: Optional[str] = None
        self.rank, self.local_rank, self.world_size = _process.ranks()
        commit, dirty = _process.git_state()
        self._start_fields: Dict[str, Any] = dict(
            run_id=self.run_id, experiment=experiment, name=name, tags=[str(t) for t in tags],
            rank=self.rank, local_rank=self.local_rank, world_size=self.world_size,
            host=_process.host_name(), command_line=_process.command_line(),
            working_directory=_process.working_directory(), git_commit=commit, git_dirty=dirty,
            seed=None if seed is None else int(seed))
        self.seed = seed
        self._train_ids: Dict[str, int] = {}
        self._ids: Dict[Tuple[Any, Any, Any], int] = {}
        self._finished = False
        self._closed = False  # RUN_END is in the buffer: later calls are ignored
        self._stopped = False  # finish() has stopped the sender
        self._completed = False
        self._warned: set = set()
        self._pid = os.getpid()
        self._child_pending = False
        self._buf = FrameBuffer(buffer_bytes)
        self._buf.on_error = self._report_drain_errors
        # Where log_metric puts a sample: the pending list's extend, or a stand-in while this
        # is a forked child that has not started its session, or once the run is closed.
        # Changed only through _route, which also repoints the fast log_metric below.
        self._emit: Callable[[Tuple[Any, ...]], None] = self._buf.pending.extend
        self._route_fast: Callable[[Callable[[Tuple[Any, ...]], None]], None] = _no_route
        if type(self).log_metric is Run.log_metric:  # a subclass's own log_metric stays in charge
            fast, self._route_fast = _fast_log_metric(self._train_ids, self._emit, self._metric_slow)
            self.log_metric = fast  # type: ignore[method-assign]  # on purpose: see _fast_log_metric
        self._sender = self._make_sender()
        self._append(wire.run_start(start_time=_time_ns(), **self._start_fields))
        if config:
            self.log_params(config)
        _register(self)
        self._sender.start()

    def _make_sender(self) -> Sender:
        session = os.urandom(16)
        self.session = session.hex()
        if self.sink == "daemon":
            return Sender(self._buf, self.socket_path, session)
        if self.sink == "memory":
            return Sender(self._buf, None, session, sink=self.records.extend)
        return Sender(self._buf, None, session)

    # -- metrics: the hot path -------------------------------------------------------------------

    def log_metric(self, key: str, value: float, step: Optional[int] = None,
                   context: Any = "training", source: Optional[str] = None) -> None:
        """Logs one sample of metric ``key`` (in ``context``, from ``source``) at ``step``."""
        # A run's own log_metric is the closure _fast_log_metric installs on the instance (the
        # same steps with fewer lookups); this method serves Run.log_metric(run, ...) and a
        # subclass that calls super().log_metric.
        # The common call (a float, in training, from no source, a key seen before) appends four
        # items to the run's pending list and returns: no lock, no packing. The sender packs
        # them into METRIC_BATCH frames (FrameBuffer.drain). Everything else: _metric_slow.
        try:
            if type(value) is float and context == "training" and source is None:
                self._emit((self._train_ids[key], step, _time_ns(), value))
                return
        except Exception:  # a new or unhashable key, an odd context: the slow path says what
            pass
        self._metric_slow(key, value, step, context, source, None)

    def log_metrics(self, metrics: Mapping[str, float], step: Optional[int] = None,
                    context: Any = "training", source: Optional[str] = None) -> None:
        """Logs several metrics at the same step: ``{"loss": 0.3, "acc": 0.91}``."""
        for key, value in metrics.items():
            self.log_metric(key, value, step, context, source)

    def _metric_at(self, key: str, value: float, step: Optional[int], context: Any, timestamp_ns: int) -> None:
        """A sample with its own timestamp (tensorboardX's ``walltime``). Not the hot path."""
        self._metric_slow(key, value, step, context, None, timestamp_ns)

    def _metric_slow(self, key: Any, value: Any, step: Any, context: Any, source: Any,
                     timestamp_ns: Optional[int]) -> None:
        """Any metric call the fast path does not take: converts and checks the value (and the
        step) now, so that a bad one is reported by this call, and interns a new key."""
        try:
            if context == "training" and source is None:
                kid = self._train_ids.get(key)
            else:
                kid = self._ids.get((key, context, source))
        except Exception:  # an unhashable key or context: _intern says what is wrong
            kid = None
        if kid is None:
            kid = self._intern(key, context, source)
            if kid is None:
                return
        try:
            # As pack_into would: a float, or what has __float__ / __index__ (numpy, a 0-d
            # tensor) -- converted now, so a tensor changed in place later is not re-read.
            value = _F64.unpack(_F64.pack(value))[0]
            if step is not None:
                step = _I64.unpack(_I64.pack(step))[0]
            ts = _time_ns() if timestamp_ns is None else _I64.unpack(_I64.pack(timestamp_ns))[0]
        except Exception as exc:
            self._bad_call("log_metric(%r)" % (key,), exc)
            return
        self._emit((kid, step, ts, value))

    def _route(self, emit: Callable[[Tuple[Any, ...]], None]) -> None:
        """Points ``_emit`` and the fast ``log_metric`` at ``emit``."""
        self._emit = emit
        self._route_fast(emit)

    def _pending_closed(self, entry: Tuple[Any, ...]) -> None:
        """``_emit`` once RUN_END is in the buffer: a late sample is ignored."""

    def _pending_in_child(self, entry: Tuple[Any, ...]) -> None:
        """``_emit`` in a forked child before its first record: start the child's session."""
        b = self._buf
        with b.lock:
            if self._closed:
                return
            if self._child_pending:
                self._start_child_session()
            b.pending.extend(entry)

    def _report_drain_errors(self, what: str, exc: BaseException) -> None:
        self._bad_call(what, exc)

    def _intern(self, key: Any, context: Any, source: Any) -> Optional[int]:
        """The id of (key, context, source); defines it on first use. Slow path."""
        try:
            k, ctx, src = str(key), context_name(context), "" if source is None else str(source)
            with self._buf.lock:
                if self._child_pending:
                    self._start_child_session()
                kid = self._ids.get((k, ctx, src))
                if kid is None:
                    wire.metric_key(0, k, ctx, src)  # raises on a key the daemon would refuse
                    kid = len(self._buf.keys) + 1
                    self._buf.keys.append((kid, k, ctx, src))
                    self._ids[(k, ctx, src)] = kid
                self._ids[(key, context, source)] = kid
                if ctx == "training" and source is None:
                    self._train_ids[key] = kid
            return kid
        except Exception as exc:
            self._bad_call("metric key %r" % (key,), exc)
            return None

    # -- everything else: one frame per call --------------------------------------------------

    def _append(self, frame: bytes, fd: int = -1, force: bool = False) -> bool:
        b = self._buf
        with b.lock:
            if self._closed:
                if fd >= 0:
                    os.close(fd)
                return False
            if self._child_pending:
                self._start_child_session()
            before = b.active
            ok = b.append(frame, fd, force)  # drains the pending metrics first
            rolled = b.active is not before
        if rolled:
            self._sender.wake()
        if b.errors:
            b.report_errors()
        if not ok and fd >= 0:
            os.close(fd)
        return ok

    def _append_file_frame(self, frame: bytes, fd: int, copy: bool) -> bool:
        """A copy-mode frame carries its descriptor; a reference-mode one only needed it to hash."""
        if not copy:
            os.close(fd)
            fd = -1
        return self._append(frame, fd)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Merges ``params`` (nested dicts and lists) into the run's config.yaml: later values
        override earlier ones key by key. Values that are not plain data (paths, enums, numpy
        scalars, Namespaces, dataclasses...) are converted; anything else is written as text."""
        try:
            self._append(wire.params(wire.to_value(dict(params))))
        except Exception as exc:
            self._bad_call("log_params", exc)

    def log_param(self, key: str, value: Any) -> None:
        """Sets one top-level config entry."""
        self.log_params({str(key): value})

    def log(self, message: str, level: Union[int, str] = "INFO", logger: str = "main",
            timestamp_ns: Optional[int] = None) -> None:
        """Writes a line to the run's main.log. ``level``: a name or a ``logging`` number."""
        try:
            ts = _time_ns() if timestamp_ns is None else int(timestamp_ns)
            text = str(message)
            if len(text) > wire.TEXT_LIMIT // 4:  # a UTF-8 character takes at most 4 bytes
                raw = text.encode("utf-8", "replace")
                if len(raw) > wire.TEXT_LIMIT:
                    text = raw[:wire.TEXT_LIMIT - 3].decode("utf-8", "ignore") + "..."
            self._append(wire.log(wire_level(level), ts, str(logger)[:1024], text))
        except Exception as exc:
            self._bad_call("log", exc)

    def log_artifact(self, path: Union[str, "os.PathLike[str]"], context: Any = "training",
                     role: str = "output", copy: bool = True, step: Optional[int] = None,
                     timestamp_ns: Optional[int] = None, snapshot: bool = False) -> bool:
        """Records a file the run read (``role="input"``) or wrote (``"output"``). With ``copy``
        the open descriptor travels to logd, which copies the file into the run's artifacts/
        (it never opens your path itself); otherwise path, size and SHA-256 are recorded.

        logd copies from the descriptor shortly after the call, so the copy holds what the file
        holds *then*. Replacing the file (a new file renamed over it, or deleting it) is safe;
        rewriting it in place right away is not: pass ``snapshot=True`` and the client first
        copies it (in the kernel, beside the original) so the version is the file as it is now.
        A directory is stored as one uncompressed tar of its tree (``<name>.tar``), taken at
        the call. Returns False, and counts an error (``errors``, ``last_error``), when the path
        cannot be read or is neither a file nor a directory."""
        try:
            opened = self._open_file(path, hash_it=not copy, snapshot=snapshot and copy)
            if opened is None:
                return False
            fd, size, digest, absolute = opened
            name = os.path.basename(absolute) or "artifact"
            if os.path.isdir(absolute):
                name += ".tar"
            frame = wire.artifact(
                context_name(context), NO_STEP if step is None else int(step), _ARTIFACT_ROLES[role],
                wire.Mode.COPY if copy else wire.Mode.REFERENCE, name,
                absolute, size, digest, _time_ns() if timestamp_ns is None else int(timestamp_ns))
            return self._append_file_frame(frame, fd, copy)
        except Exception as exc:
            self._bad_call("log_artifact(%r)" % (path,), exc)
            return False

    def _log_bytes(self, name: str, data: bytes, step: Optional[int], context: Any = "training",
                   timestamp_ns: Optional[int] = None) -> bool:
        """Stores ``data`` as the artifact ``name`` (``images/<tag>/<step>.png``): the bytes go
        into an unnamed in-memory file whose descriptor travels to logd, as a copy-mode artifact."""
        fd = _memory_file(data)
        try:
            frame = wire.artifact(
                context_name(context), NO_STEP if step is None else int(step), wire.ArtifactRole.OUTPUT,
                wire.Mode.COPY, name, "", len(data), bytes(32),
                _time_ns() if timestamp_ns is None else int(timestamp_ns))
        except BaseException:
            os.close(fd)
            raise
        return self._append(frame, fd)

    def log_model(self, model: Any = None, name: str = "default", *, parameter_count: Optional[int] = None,
                  memory_bytes: Optional[int] = None, layers: Any = None, log_model_layers: bool = True,
                  log_as_artifact: bool = False, context: Any = "training", step: Optional[int] = None) -> None:
        """Describes a model. Pass a ``torch.nn.Module`` (or anything shaped like one) and its
        parameter count, memory and leaf layers are measured; or give the numbers yourself.
        ``log_as_artifact`` also saves its state_dict as the next version (``save_model_version``)."""
        try:
            info: Dict[str, Any] = {}
            if model is not None and not isinstance(model, str):
                from .torch_helpers import model_info
                info = model_info(model)
            elif isinstance(model, str) and name == "default":
                name = model
            count = parameter_count if parameter_count is not None else info.get("parameter_count", 0)
            memory = memory_bytes if memory_bytes is not None else info.get("memory_bytes", 0)
            if layers is None:
                layers = info.get("layers", []) if log_model_layers else []
            self._append(wire.model_info(str(name), int(count), int(memory), wire.to_value(layers)))
            if log_as_artifact and model is not None and not isinstance(model, str):
                self.save_model_version(model, name, context=context, step=step)
        except Exception as exc:
            self._bad_call("log_model(%r)" % (name,), exc)

    def save_model_version(self, model: Any, model_name: str, context: Any = "training",
                           step: Optional[int] = None, copy: bool = True,
                           timestamp_ns: Optional[int] = None, snapshot: bool = False) -> bool:
        """Saves a model file as the next version of ``model_name`` (logd numbers versions
        v1, v2, ... and never overwrites one). ``model`` is a path to a checkpoint you wrote, or
        a torch module, whose ``state_dict`` is saved with ``torch.save`` to a temporary file
        that is handed to logd by descriptor and removed at once. If you rewrite the same
        checkpoint path in place soon after (``torch.save`` to one name every epoch), pass
        ``snapshot=True`` (see ``log_artifact``)."""
        try:
            if isinstance(model, (str, bytes, os.PathLike)):
                opened = self._open_file(model, hash_it=not copy, snapshot=snapshot and copy)
                if opened is None:
                    return False
                fd, size, digest, original = opened
                file_name = os.path.basename(original) or model_name + ".pt"
                if os.path.isdir(original):
                    file_name += ".tar"
            else:
                if not copy:
                    raise ValueError("a model object can only be saved with copy=True")
                from .torch_helpers import save_state_dict
                tmp_fd, tmp = tempfile.mkstemp(prefix="logd-", suffix=".pt")
                os.close(tmp_fd)
                try:
                    save_state_dict(model, tmp)
                    opened = self._open_file(tmp, hash_it=False)
                finally:
                    os.unlink(tmp)
                if opened is None:
                    return False
                fd, size, digest, _ = opened
                file_name, original = str(model_name) + ".pt", ""
            frame = wire.model_version(
                str(model_name), context_name(context), NO_STEP if step is None else int(step),
                wire.Mode.COPY if copy else wire.Mode.REFERENCE, file_name, original, size, digest,
                _time_ns() if timestamp_ns is None else int(timestamp_ns))
            return self._append_file_frame(frame, fd, copy)
        except Exception as exc:
            self._bad_call("save_model_version(%r)" % (model_name,), exc)
            return False

    def log_dataset(self, dataset: Any, label: str, context: Any = "training", *,
                    samples: Optional[int] = None, batch_size: Optional[int] = None,
                    workers: Optional[int] = None, shuffle: Optional[bool] = None,
                    batches: Optional[int] = None) -> None:
        """Describes a data set and its loader. Pass a ``DataLoader`` / ``Dataset`` / ``Subset``
        (or anything sized) and samples, batch size, workers, shuffle and batches are read from
        it; keyword arguments override (pass ``None`` as ``dataset`` to give them all)."""
        try:
            info: Dict[str, Any] = {"samples": 0, "batch_size": 0, "workers": 0, "shuffle": False, "batches": 0}
            if dataset is not None:
                from .torch_helpers import data_info
                info.update(data_info(dataset))
            for k, v in (("samples", samples), ("batch_size", batch_size), ("workers", workers),
                         ("shuffle", shuffle), ("batches", batches)):
                if v is not None:
                    info[k] = v
            if batches is None and info["batches"] == 0 and info["batch_size"]:
                info["batches"] = -(-int(info["samples"]) // int(info["batch_size"]))
            self._append(wire.dataset(str(label), context_name(context), int(info["samples"]),
                                      int(info["batch_size"]), int(info["workers"]), bool(info["shuffle"]),
                                      int(info["batches"])))
        except Exception as exc:
            self._bad_call("log_dataset(%r)" % (label,), exc)

    def log_gradient_norms(self, model: Any, step: Optional[int] = None, norm_type: float = 2.0,
                           per: str = "parameter", context: Any = "training",
                           key: str = "grad_norm") -> Dict[str, float]:
        """Logs the gradient norm of every parameter (``per="module"``: every module) as metric
        ``key`` with the parameter's name as its source, and the norm over all of them as
        ``<key>_total``. Call it after ``loss.backward()``. Returns the norms."""
        try:
            from .torch_helpers import gradient_norms
            norms = gradient_norms(model, norm_type, per=per)
        except Exception as exc:
            self._bad_call("log_gradient_norms", exc)
            return {}
        for name, value in norms.items():
            if name == "total":
                self.log_metric(key + "_total", value, step, context)
            else:
                self.log_metric(key, value, step, context, name)
        return norms

    # -- barriers -------------------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """Waits until everything logged before this call is on disk and fsynced, or ``timeout``
        seconds pass. Returns whether it completed."""
        b = self._buf
        if not b.lock.acquire(timeout=max(0.05, min(1.0, timeout))):
            return False  # held by a thread a signal interrupted (see _end)
        try:
            if self._child_pending:
                return True  # a forked child that has logged nothing has nothing to flush
            if self._stopped:  # finished: nothing more will be sent
                return self._completed
            if b.pending:
                b.drain()  # the metrics logged before this call become frames now
            target = b.next_seq - 1
        finally:
            b.lock.release()
        if b.errors:
            b.report_errors()
        self._sender.request_flush()
        self._completed = b.wait_acked(target, time.monotonic() + max(0.0, timeout), time.monotonic)
        return self._completed

    def finish(self, status: Union[str, int] = "finished", timeout: float = 10.0) -> DeliveryReport:
        """Ends this process's part of the run: logs RUN_END, waits at most ``timeout`` seconds
        for delivery, stops the sender and reports what was delivered. Never hangs; a second
        call returns the same report."""
        deadline = time.monotonic() + max(0.0, timeout)
        self._end(status, deadline)
        self._complete(deadline)
        return self.report

    def _end(self, status: Union[str, int], deadline: float) -> None:
        """The first half of ``finish``: RUN_END into the buffer and the sender woken, no waiting
        for delivery (so that several runs ending at exit share one deadline)."""
        if self._finished:
            return
        self._finished = True
        for hook in ENDED_HOOKS:  # e.g. api: no longer the current run of the module-level functions
            hook(self)
        if self._child_pending:  # a forked child that never logged: nothing to end
            self._stopped = True
            _unregister(self)
            return
        try:
            code = _STATUSES[status] if isinstance(status, str) else int(status)
        except (KeyError, ValueError, TypeError):
            code = 1
        self._buf.settle()  # pending metrics become frames (or drops) before the drop total is read
        dropped = self._buf.dropped
        if dropped:  # the drop total must reach logd before RUN_END ends the run there
            left = deadline - time.monotonic()
            self._sender.wait_drops_sent(dropped, time.monotonic() + max(0.0, left) * 0.25)
        b = self._buf
        # A signal handler may have interrupted this process's own thread between taking and
        # releasing the lock (at exit, nothing else releases it): never wait forever for it.
        if not b.lock.acquire(timeout=max(0.05, min(1.0, deadline - time.monotonic()))):
            return
        try:  # RUN_END and closing in one hold: no other thread's record can follow it
            b.append(wire.run_end(code, _time_ns()), force=True)  # after the pending metrics
            self._closed = b.closed = True
            self._route(self._pending_closed)  # a late log_metric is ignored
        finally:
            b.lock.release()
        if b.errors:
            b.report_errors()
        self._sender.wake()

    def _complete(self, deadline: float) -> None:
        """The second half of ``finish``: wait (until ``deadline``) for delivery, stop the sender."""
        if self._stopped:
            return
        self.flush(max(0.0, deadline - time.monotonic()))
        self._sender.stop(join_timeout=max(0.1, min(2.0, deadline - time.monotonic())))
        self._stopped = True
        if self._sender.thread is None or not self._sender.thread.is_alive():
            self._buf.close_fds()  # what was never acknowledged will not be sent now
        _unregister(self)

    def _end_in_background(self, status: str = "finished") -> None:
        """Ends the run without waiting: the sender delivers the rest and then stops by itself
        (a ``SummaryWriter`` garbage-collected unclosed). Exit still waits for it."""
        if self._finished:
            return
        self._end(status, time.monotonic() + 1.0)
        if self._stopped:
            return

        def stopped() -> None:
            self._stopped = True
            self._buf.close_fds()
            _unregister(self)

        self._sender.stop_when_delivered(stopped)

    @property
    def report(self) -> DeliveryReport:
        """Delivery counters so far."""
        b = self._buf
        with b.lock:
            if b.pending:
                b.drain()  # pending metrics are numbered now, or dropped (and counted) now
            report = DeliveryReport(b.records + b.dropped, min(b.acked_records, b.records), b.dropped, self._completed)
        if b.errors:
            b.report_errors()
        return report

    @property
    def connected(self) -> bool:
        """Whether the sender is connected to logd right now."""
        return self._sender.connected

    @property
    def finished(self) -> bool:
        return self._finished

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish("finished")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.finish("killed")
        else:
            self.finish("failed")

    def __reduce__(self):
        """A Run passed to another process (``multiprocessing`` with spawn or forkserver, a
        Pool task's argument) arrives there as the same run: the receiving process opens a
        session of its own with the same run id, once, and ends it as it exits."""
        args = (self.run_id, self.experiment, self.name, self.socket_path, self.sink,
                self._start_fields.get("tags", []), self.seed, self._buf.capacity)
        return (_rejoin, args)

    def __repr__(self) -> str:
        return "Run(run_id=%r, experiment=%r, name=%r, session=%s)" % (
            self.run_id, self.experiment, self.name, self.session)

    # -- helpers --------------------------------------------------------------------------------

    def _bad_call(self, what: str, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = "%s: %s: %s" % (what, type(exc).__name__, exc)
        kind = (what.split("(")[0], type(exc))
        if kind not in self._warned:
            self._warned.add(kind)
            _log.warning("logd: %s (ignored; further errors of this kind are counted in run.errors)",
                         self.last_error)

    def _open_file(self, path: Any, hash_it: bool, snapshot: bool = False) -> Optional[Tuple[int, int, bytes, str]]:
        """(fd, size, sha256 or zeros, absolute path), or None with ``last_error`` set. With
        ``snapshot`` the fd is of an unnamed copy, which later writes to the path cannot change."""
        p = os.fsdecode(os.fspath(path))
        absolute = os.path.abspath(p)
        try:
            fd = os.open(p, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            self._bad_call("open(%r)" % (p,), OSError(exc.errno, "cannot open %s: %s" % (p, exc.strerror)))
            return None
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            os.close(fd)
            try:  # a directory travels as one uncompressed tar of its tree, taken now
                fd = _tar_of(p)
            except OSError as exc:
                self._bad_call("open(%r)" % (p,), exc)
                return None
            st = os.fstat(fd)
            snapshot = False  # the archive already is a copy nobody else can change
        elif not stat.S_ISREG(st.st_mode):
            os.close(fd)
            self._bad_call("open(%r)" % (p,), ValueError("%s is not a regular file or a directory" % p))
            return None
        if snapshot:
            try:
                copy_fd = _unnamed_copy(fd, os.path.dirname(absolute))
            finally:
                os.close(fd)
            fd = copy_fd
            st = os.fstat(fd)
        digest = bytes(32)
        if hash_it:
            h = hashlib.sha256()
            offset = 0
            while True:
                block = os.pread(fd, 1 << 20, offset)
                if not block:
                    break
                h.update(block)
                offset += len(block)
            digest = h.digest()
        return fd, st.st_size, digest, absolute

    # -- fork -----------------------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        """The parent's frames, socket and thread are the parent's. Keep the key table (ids stay
        valid), start empty, and open a session of our own on first use."""
        self._sender.abandon_after_fork()
        self._buf.reset_after_fork()
        self._pid = os.getpid()
        self._child_pending = True
        # The next metric starts the session (a closed run stays closed).
        self._route(self._pending_closed if self._closed else self._pending_in_child)

    def _start_child_session(self) -> None:
        """First record in a forked child (buffer lock held): a new session, a new RUN_START."""
        self._child_pending = False
        b = self._buf
        self._route(b.pending.extend)
        self._sender = self._make_sender()
        b.append(wire.run_start(start_time=_time_ns(), **self._start_fields), force=True)
        self._sender.start()
        _register_child_exit(self)
        _install_sigterm()


def _no_route(emit: Callable[[Tuple[Any, ...]], None]) -> None:
    """``Run._route_fast`` of a subclass that defines its own ``log_metric``: nothing to repoint."""


def _fast_log_metric(train_ids: Dict[str, int], emit: Callable[[Tuple[Any, ...]], None],
                     slow: Callable[..., None]) -> Tuple[Callable[..., None], Callable[[Callable[[Tuple[Any, ...]], None]], None]]:
    """A run's ``log_metric`` (installed on the instance, so ``run.log_metric`` finds it before
    the method) and the function that repoints it (``Run._route``).

    The same steps as ``Run.log_metric``, but everything the common call needs -- the key-id
    dict, the pending list's ``extend``, the clock, ``type`` and ``float`` -- is a closure
    variable (one indexed load each), not an attribute of ``self`` or a global, and there is no
    bound method to build; the default context is tested by identity first, by ``==`` only when
    it is another object (``Context.TRAINING``, a string built at run time). ``emit`` is a cell
    that ``route`` rebinds: a function taken from ``run.log_metric`` before a fork or ``finish``
    follows the run to its child's session or to the closed state, as the method would.

    Free-threaded builds: the sample is still one ``list.extend`` of one tuple (atomic), and the
    cell is read once per call, so a call sees either the old or the new ``emit``, as with an
    attribute; a sample that reaches the old list after the run closed is dropped by the drain
    (``FrameBuffer.closed``)."""
    _type = type
    _float = float
    time_ns = _time_ns
    training = "training"

    def log_metric(key: str, value: float, step: Optional[int] = None,
                   context: Any = training, source: Optional[str] = None) -> None:
        try:
            if _type(value) is _float and (context is training or context == training) and source is None:
                emit((train_ids[key], step, time_ns(), value))
                return
        except Exception:  # a new or unhashable key, an odd context: the slow path says what
            pass
        slow(key, value, step, context, source, None)

    def route(new_emit: Callable[[Tuple[Any, ...]], None]) -> None:
        nonlocal emit
        emit = new_emit

    log_metric.__doc__ = Run.log_metric.__doc__
    log_metric.__qualname__ = Run.log_metric.__qualname__
    log_metric.__module__ = Run.log_metric.__module__
    return log_metric, route


def _rejoin(run_id: str, experiment: str, name: str, socket: str, sink: str, tags: Sequence[str],
            seed: Optional[int], buffer_bytes: int) -> Run:
    """Unpickling a Run: this process's live run with that id, else a new session joining it."""
    for run in _live_runs():
        if run.run_id == run_id and run.socket_path == socket and not run._closed:
            return run
    if sink == "memory":
        sink = "none"  # the records would be in another process's list
    run = Run(experiment=experiment, name=name, tags=tags, seed=seed, run_id=run_id, socket=socket,
              sink=sink, buffer_bytes=buffer_bytes)
    _register_child_exit(run)
    return run


def _memory_file(data: bytes) -> int:
    """A read-only-from-now descriptor of an unnamed file holding ``data``."""
    try:
        fd = os.memfd_create("logd-artifact", getattr(os, "MFD_CLOEXEC", 1))
    except (AttributeError, OSError):
        fd, tmp = tempfile.mkstemp(prefix="logd-artifact-")
        os.unlink(tmp)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    except BaseException:
        os.close(fd)
        raise
    return fd


def _tar_of(directory: str) -> int:
    """An unnamed file holding an uncompressed tar of ``directory`` (members named from its
    basename, symlinks stored as links, never followed)."""
    import tarfile

    fd, tmp = tempfile.mkstemp(prefix="logd-dir-", suffix=".tar")
    os.unlink(tmp)
    try:
        with os.fdopen(os.dup(fd), "wb") as f:
            with tarfile.open(fileobj=f, mode="w") as tar:
                tar.add(directory, arcname=os.path.basename(os.path.abspath(directory)) or "artifact")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unnamed_copy(src: int, directory: str) -> int:
    """An fd of a copy of ``src`` that has no name: an O_TMPFILE beside the original
    (same file system, so the kernel may share blocks), else an unlinked file in the temp dir."""
    try:
        dst = os.open(directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
    except (AttributeError, OSError):
        tmp_fd, tmp = tempfile.mkstemp(prefix="logd-snapshot-")
        os.unlink(tmp)
        dst = tmp_fd
    try:
        size = os.fstat(src).st_size
        offset = 0
        while offset < size:
            try:
                n = os.copy_file_range(src, dst, size - offset, offset, offset)
            except (AttributeError, OSError):
                block = os.pread(src, 1 << 20, offset)
                n = os.pwrite(dst, block, offset) if block else 0
            if n <= 0:
                break
            offset += n
    except BaseException:
        os.close(dst)
        raise
    return dst


_ARTIFACT_ROLES = {"input": wire.ArtifactRole.INPUT, "output": wire.ArtifactRole.OUTPUT, 1: wire.ArtifactRole.INPUT, 2: wire.ArtifactRole.OUTPUT}


# -- live runs: exit and fork ------------------------------------------------------------------
#
# Every run that has not stopped its sender is held here, strongly: a Run or SummaryWriter the
# script forgot to close (local to main(), dropped, made in a thread that ended) still ends at
# exit with everything it logged. A run leaves the registry when its sender stops.

_runs: Dict[int, Run] = {}
_runs_lock = threading.Lock()
_uncaught: List[str] = []
_signalled: List[int] = []


def _register(run: Run) -> None:
    with _runs_lock:
        _runs[id(run)] = run
    _install_sigterm()


def _unregister(run: Run) -> None:
    with _runs_lock:
        if _runs.get(id(run)) is run:
            del _runs[id(run)]


def _live_runs() -> List[Run]:
    # Never waits long: a signal handler may call this while its own thread holds the lock.
    if not _runs_lock.acquire(timeout=1.0):
        return list(_runs.values())
    try:
        return list(_runs.values())
    finally:
        _runs_lock.release()


def exit_timeout() -> float:
    """Seconds the interpreter's exit waits for all unfinished runs together
    (``LOGD_EXIT_TIMEOUT``, default 5)."""
    try:
        return max(0.0, float(os.environ.get("LOGD_EXIT_TIMEOUT", "5")))
    except ValueError:
        return 5.0


def _exit_status() -> str:
    """How this process is ending: ``killed`` after SIGTERM or Ctrl-C, ``failed`` after an
    uncaught exception, else ``finished`` (``sys.exit(n)`` included, whatever ``n``)."""
    if _signalled:
        return "killed"
    last = getattr(sys, "last_type", None)  # set by the interpreter when it prints a traceback
    names = list(_uncaught) or ([last.__name__] if last is not None else [])
    if names:
        return "killed" if names[0] == "KeyboardInterrupt" else "failed"
    return "finished"


def _finish_all(runs: Sequence[Run]) -> None:
    """Ends every run first, then waits for all of them against one deadline."""
    status = _exit_status()
    deadline = time.monotonic() + exit_timeout()
    for run in runs:
        try:
            run._end(status, deadline)
        except Exception:
            pass
    for run in runs:
        try:
            run._complete(deadline)
        except Exception:
            pass


def _finish_all_at_exit() -> None:
    _finish_all(_live_runs())


_previous_excepthook = sys.excepthook


def _excepthook(exc_type, exc, tb) -> None:
    _uncaught.append(exc_type.__name__)
    _previous_excepthook(exc_type, exc, tb)


def _child_exit_finalizer() -> None:
    """multiprocessing children leave with ``os._exit`` after their finalizers, not atexit."""
    _finish_all([r for r in _live_runs() if r._pid == os.getpid()])


_child_finalizer_pid = 0


def _register_child_exit(run: Run) -> None:
    """End a multiprocessing child's sessions from its exit finalizers (once per process)."""
    global _child_finalizer_pid
    if _child_finalizer_pid == os.getpid():
        return
    mp_util = sys.modules.get("multiprocessing.util")
    # Registered in any process that uses multiprocessing (a spawned child unpickles its Run
    # before it knows it is a child); in a main process it ends the runs as atexit would.
    if mp_util is not None:
        try:
            mp_util.Finalize(None, _child_exit_finalizer, exitpriority=100)
            _child_finalizer_pid = os.getpid()
            # A spawned or forkserver child unpickles its arguments before Process._bootstrap
            # clears the finalizers: register again from its after-fork hooks, which run next.
            mp_util.register_after_fork(_AFTER_FORK_TOKEN, _reregister_child_exit)
        except Exception:
            pass


class _Token:
    pass


_AFTER_FORK_TOKEN = _Token()


def _reregister_child_exit(_token: Any) -> None:
    global _child_finalizer_pid
    _child_finalizer_pid = 0
    if any(r._pid == os.getpid() for r in _live_runs()):
        _register_child_exit(None)  # type: ignore[arg-type]


# SIGTERM (a scheduler's preemption, Pool.terminate, torchrun stopping its workers) would end
# the process at once, losing what is still buffered. While its action is the default, logd
# installs a handler that does nothing itself and a wakeup descriptor (signal.set_wakeup_fd)
# read by a thread of its own: on SIGTERM that thread ends every run of the process as "killed",
# waits for delivery (at most LOGD_EXIT_TIMEOUT) and exits the process with status 143, as
# promptly as the default action would and whatever the main thread is blocked in (a Python
# handler alone would wait for the main thread, which a signal that lands just before a
# blocking wait never wakes). A SIGTERM handler of the user's own is never replaced; a program
# that uses the wakeup descriptor itself (asyncio) keeps the default action. Forked children
# get the default action back until they log.

_sigterm_pid = 0  # the process whose handler, pipe and thread are installed
_sigterm_w = -1
_sigterm_r = -1


def _on_sigterm(signum, frame) -> None:
    """The Python-level handler: the logd-signal thread does the work, unless someone replaced
    the wakeup descriptor since (then it is done here, in the main thread)."""
    import signal as _signal
    if _sigterm_pid != os.getpid():  # a forked child before its at-fork hooks reset this
        _signal.signal(signum, _signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    try:
        old = _signal.set_wakeup_fd(-1)
        _signal.set_wakeup_fd(old, warn_on_full_buffer=False)
    except (ValueError, OSError):
        old = -2
    if old == _sigterm_w:
        return
    _signal.signal(signum, _signal.SIG_DFL)
    _signalled.append(signum)
    _finish_all([r for r in _live_runs() if r._pid == os.getpid() and not r._child_pending])
    os.kill(os.getpid(), signum)


def _signal_thread(r: int) -> None:
    import signal as _signal
    while True:
        try:
            data = os.read(r, 64)
        except InterruptedError:
            continue
        except OSError:
            return
        if not data:
            return
        if _signal.SIGTERM in data and _signal.getsignal(_signal.SIGTERM) is _on_sigterm \
                and _sigterm_pid == os.getpid():
            _signalled.append(_signal.SIGTERM)
            try:
                _finish_all([x for x in _live_runs() if x._pid == os.getpid() and not x._child_pending])
            finally:
                os._exit(128 + _signal.SIGTERM)


def _install_sigterm() -> None:
    global _sigterm_pid, _sigterm_w, _sigterm_r
    if _sigterm_pid == os.getpid() or os.environ.get("LOGD_HANDLE_SIGTERM", "1") == "0":
        return
    if threading.current_thread() is not threading.main_thread():
        return
    import signal as _signal
    _sigterm_pid = os.getpid()  # decided once per process
    try:
        if _signal.getsignal(_signal.SIGTERM) != _signal.SIG_DFL:
            return
        r, w = os.pipe()
        os.set_blocking(w, False)
        old = _signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        if old != -1:  # the program's own wakeup descriptor (asyncio): leave SIGTERM alone
            _signal.set_wakeup_fd(old)
            os.close(r)
            os.close(w)
            return
        _sigterm_w, _sigterm_r = w, r
        _signal.signal(_signal.SIGTERM, _on_sigterm)
        threading.Thread(target=_signal_thread, args=(r,), name="logd-signal", daemon=True).start()
    except (ValueError, OSError):  # not the main interpreter
        pass


def _reset_sigterm_in_child() -> None:
    """After fork: the default action back, and the parent's pipe closed (its thread is gone)."""
    global _sigterm_pid, _sigterm_w, _sigterm_r
    if _sigterm_w < 0:
        _sigterm_pid = 0
        return
    import signal as _signal
    try:
        if _signal.getsignal(_signal.SIGTERM) is _on_sigterm:
            _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)
        old = _signal.set_wakeup_fd(-1)
        if old != _sigterm_w:
            _signal.set_wakeup_fd(old)  # not ours any more: leave it
    except (ValueError, OSError):
        pass
    for fd in (_sigterm_w, _sigterm_r):
        try:
            os.close(fd)
        except OSError:
            pass
    _sigterm_w = _sigterm_r = -1
    _sigterm_pid = 0


FORK_START_WAIT_S = 1.0
"""Longest a fork waits for logd to acknowledge a run's RUN_START (see ``_wait_started``)."""


def _wait_started(runs: Sequence[Run]) -> None:
    """A child's session must reach logd after its parent's: a child that starts and ends its
    session before logd has seen the parent's could otherwise end the run there, and the
    parent's RUN_START would open a second directory. So a fork made in the first moments of a
    run waits (at most ``FORK_START_WAIT_S``) until the parent's RUN_START is on logd's socket:
    the child's connection is accepted, and its frames read, only after that. Not for the
    acknowledgement: logd acknowledges RUN_START once the run directory is durable, tens of
    milliseconds later. It never waits once the sender has found logd absent, nor later."""
    deadline = None
    for run in runs:
        if run.sink != "daemon" or run._child_pending or run._closed or run._pid != os.getpid():
            continue
        b, sender = run._buf, run._sender
        with b.lock:
            while b.acked < 1 and not sender.start_sent:
                if sender.connect_failures > 0 and not sender.connected:
                    break  # logd is absent: nothing to wait for
                if deadline is None:
                    deadline = time.monotonic() + FORK_START_WAIT_S
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                b.cond.wait(min(left, 0.001))


_fork_sigmask = None


def _block_sigterm_for_fork() -> None:
    """While logd's handler is installed, SIGTERM is blocked across fork(): one that reaches a
    new child before its at-fork hooks have put the default action back would otherwise be
    caught by the inherited handler and dropped by CPython's fork bookkeeping, leaving the
    child alive. Unblocked in both processes once the default action is back in the child."""
    global _fork_sigmask
    _fork_sigmask = None
    if _sigterm_w < 0 or _sigterm_pid != os.getpid():
        return
    import signal as _signal
    try:
        _fork_sigmask = _signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGTERM})
    except (AttributeError, OSError, ValueError):
        _fork_sigmask = None


def _restore_sigmask_after_fork() -> None:
    global _fork_sigmask
    mask, _fork_sigmask = _fork_sigmask, None
    if mask is not None:
        import signal as _signal
        try:
            _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)
        except (OSError, ValueError):
            pass


def _before_fork() -> None:
    try:
        _wait_started(_live_runs())
    except Exception:
        pass
    _fork_gc_before()
    _block_sigterm_for_fork()
    _runs_lock.acquire()
    for run in list(_runs.values()):
        run._buf.lock.acquire()


def _after_fork_parent() -> None:
    for run in list(_runs.values()):
        run._buf.lock.release()
    _runs_lock.release()
    _fork_gc_after_parent()
    _restore_sigmask_after_fork()


def _after_fork_child() -> None:
    global _runs_lock, _child_finalizer_pid, _froze_for_fork
    _reset_sigterm_in_child()  # first: the default action back, then SIGTERM unblocked
    _restore_sigmask_after_fork()
    for run in list(_runs.values()):
        run._after_fork_in_child()  # replaces the (held) buffer lock with a fresh one
    _runs_lock = threading.Lock()
    _child_finalizer_pid = 0
    _froze_for_fork = False  # the child keeps the parent's objects frozen (see below)
    del _signalled[:]
    del _uncaught[:]


# -- garbage collection around fork ------------------------------------------------------------
#
# A forked child (a DataLoader worker, a Pool worker) inherits the parent's whole heap. When the
# child's collector runs a full collection it touches every inherited object, and copy-on-write
# copies each page it touches: CPU and memory the training loop pays for in every worker. As
# CPython's gc.freeze documentation suggests, logd freezes the heap just before fork: the child
# starts with the parent's objects in the permanent generation, which its collector never
# scans; the parent unfreezes right after the fork and collects exactly as before.
# Trade-off: a cycle inherited from the parent that becomes garbage in the child is not freed
# in that child. Opt out with LOGD_GC_FREEZE_ON_FORK=0 or logd.set_gc_freeze_on_fork(False).

_gc_freeze_on_fork = os.environ.get("LOGD_GC_FREEZE_ON_FORK", "1") != "0"
_froze_for_fork = False


def set_gc_freeze_on_fork(enabled: bool) -> None:
    """Whether logd freezes the garbage collector's heap around ``fork()`` (default on)."""
    global _gc_freeze_on_fork
    _gc_freeze_on_fork = bool(enabled)


def _fork_gc_before() -> None:
    global _froze_for_fork
    _froze_for_fork = False
    # Never when the program manages freezing itself (its frozen objects stay frozen).
    if _gc_freeze_on_fork and gc.isenabled() and gc.get_freeze_count() == 0:
        gc.freeze()
        _froze_for_fork = True


def _fork_gc_after_parent() -> None:
    global _froze_for_fork
    if _froze_for_fork:
        _froze_for_fork = False
        gc.unfreeze()


atexit.register(_finish_all_at_exit)
sys.excepthook = _excepthook
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent,
                        after_in_child=_after_fork_child)
