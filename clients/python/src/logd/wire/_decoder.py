"""The bounded incremental stream decoder. (part of ``logd.wire``; see its docstring)."""

from __future__ import annotations

import struct
from typing import Any, Callable, Dict, List, Optional, Tuple


from ._protocol import (  # noqa: F401
    ACK,
    ARTIFACT,
    CONTROL_REPLY,
    CONTROL_REQUEST,
    DATASET,
    DEFAULT_MAX_FRAME,
    DROPS,
    ERROR,
    ERROR_CODE_NAMES,
    FLUSH,
    FLUSH_DONE,
    HELLO,
    LOG,
    MAGIC,
    MAJOR,
    MAX_COUNT,
    MAX_DEPTH,
    METRIC,
    METRIC_BATCH,
    METRIC_BODY_BYTES,
    METRIC_KEY,
    MODEL_INFO,
    MODEL_VERSION,
    NAME_LIMIT,
    PARAMS,
    RUN_END,
    RUN_START,
    TEXT_LIMIT,
    WELCOME,
    WireError,
    _ARTIFACT_ROLE_NAMES,
    _F64,
    _FILE_TAIL,
    _GIT_DIRTY_NAMES,
    _I64,
    _LEVEL_NAMES,
    _METRIC_BODY,
    _MODE_NAMES,
    _RANKS,
    _REPLY_STATUS_NAMES,
    _ROLE_NAMES,
    _RUN_STATUS_NAMES,
    _U16,
    _U32,
    _U32_U8,
    _U64,
    _U64_U64,
    _VERB_NAMES,
)

# Decoding
# ---------------------------------------------------------------------------------------------


class _Reader:
    """Reads fields from one frame body, checking every length before use (section 9 order)."""

    __slots__ = ("b", "o", "n", "kind")

    def __init__(self, b: Any, kind: int):
        self.b = b
        self.o = 0
        self.n = len(b)
        self.kind = kind

    def truncated(self) -> WireError:
        return WireError("truncated_body", "frame of kind 0x%02x ends inside a field" % self.kind)

    def fixed(self, st: struct.Struct) -> Tuple[Any, ...]:
        o = self.o
        e = o + st.size
        if e > self.n:
            raise self.truncated()
        self.o = e
        return st.unpack_from(self.b, o)

    def u8(self) -> int:
        o = self.o
        if o >= self.n:
            raise self.truncated()
        self.o = o + 1
        return self.b[o]

    def enum(self, names: Dict[int, str], field: str) -> str:
        v = self.u8()
        name = names.get(v)
        if name is None:
            raise WireError("invalid_enum", "field %s has invalid value %d" % (field, v))
        return name

    def bool(self, field: str) -> bool:
        v = self.u8()
        if v > 1:
            raise WireError("invalid_enum", "field %s has invalid value %d" % (field, v))
        return v == 1

    def u32(self) -> int:
        return self.fixed(_U32)[0]

    def u64(self) -> int:
        return self.fixed(_U64)[0]

    def i64(self) -> int:
        return self.fixed(_I64)[0]

    def raw(self, size: int) -> bytes:
        o = self.o
        e = o + size
        if e > self.n:
            raise self.truncated()
        self.o = e
        return self.b[o:e]

    def string(self, field: str, limit: int) -> str:
        o = self.o
        if o + 4 > self.n:
            raise self.truncated()
        size = _U32.unpack_from(self.b, o)[0]
        if size > limit:
            raise WireError("string_too_long", "field %s is %d bytes, limit %d" % (field, size, limit))
        o += 4
        e = o + size
        if e > self.n:
            raise self.truncated()
        try:
            s = self.b[o:e].decode("utf-8")
        except UnicodeDecodeError:
            raise WireError("invalid_utf8", "field %s is not valid UTF-8" % field) from None
        self.o = e
        return s

    def name(self, field: str) -> str:
        return self.string(field, NAME_LIMIT)

    def text(self, field: str) -> str:
        return self.string(field, TEXT_LIMIT)

    def count(self, field: str, min_element: int) -> int:
        count = self.u32()
        if count > MAX_COUNT or count * min_element > self.n - self.o:
            raise WireError("collection_too_large",
                            "field %s claims %d elements, limit %d" % (field, count, MAX_COUNT))
        return count

    def strings(self, field: str, limit: int) -> List[str]:
        count = self.count(field, 4)
        return [self.string(field, limit) for _ in range(count)]

    def value(self, depth: int = 1) -> Any:
        if depth > MAX_DEPTH:
            raise WireError("nesting_too_deep", "value tree nests deeper than %d" % MAX_DEPTH)
        tag = self.u8()
        if tag == 0x05:
            return self.string("value.string", TEXT_LIMIT)
        if tag == 0x03:
            return self.fixed(_I64)[0]
        if tag == 0x04:
            return self.fixed(_F64)[0]
        if tag == 0x07:
            count = self.count("value.map", 5)
            d = depth + 1
            result: Dict[str, Any] = {}
            for _ in range(count):
                key = self.string("value.key", TEXT_LIMIT)
                result[key] = self.value(d)
            return result
        if tag == 0x06:
            count = self.count("value.list", 1)
            d = depth + 1
            return [self.value(d) for _ in range(count)]
        if tag == 0x00:
            return None
        if tag == 0x02:
            return True
        if tag == 0x01:
            return False
        raise WireError("invalid_enum", "field value.tag has invalid value %d" % tag)


def _d_hello(r: _Reader) -> dict:
    if r.n < 4:
        raise r.truncated()
    if r.b[:4] != MAGIC:
        raise WireError("bad_magic", "handshake does not start with LOGD")
    r.o = 4
    major = r.u8()
    minor = r.u8()
    if major != MAJOR:
        raise WireError("unsupported_version", "unsupported protocol version %d.%d" % (major, minor))
    role = r.enum(_ROLE_NAMES, "hello.role")
    r.u8()  # reserved
    pid = r.u32()
    session = r.raw(16).hex()
    first_seq = r.u64()
    client_name = r.name("hello.client_name")
    client_version = r.name("hello.client_version")
    return {"kind": "hello", "major": major, "minor": minor, "role": role, "pid": pid,
            "session": session, "first_seq": first_seq, "client_name": client_name,
            "client_version": client_version}


def _d_welcome(r: _Reader) -> dict:
    major = r.u8()
    minor = r.u8()
    if major != MAJOR:
        raise WireError("unsupported_version", "unsupported protocol version %d.%d" % (major, minor))
    r.fixed(_U16)  # reserved
    durable = r.u64()
    max_frame = r.u32()
    return {"kind": "welcome", "major": major, "minor": minor, "durable_through": durable,
            "max_frame_bytes": max_frame, "daemon_version": r.name("welcome.daemon_version")}


def _d_ack(r: _Reader) -> dict:
    return {"kind": "ack", "durable_through": r.u64()}


def _d_flush(r: _Reader) -> dict:
    return {"kind": "flush", "token": r.u64()}


def _d_flush_done(r: _Reader) -> dict:
    token = r.u64()
    status = r.enum(_REPLY_STATUS_NAMES, "flush_done.status")
    return {"kind": "flush_done", "token": token, "status": status, "durable_through": r.u64()}


def _d_error(r: _Reader) -> dict:
    code = r.fixed(_U16)[0]
    if code not in ERROR_CODE_NAMES:
        raise WireError("invalid_enum", "field error.code has invalid value %d" % code)
    return {"kind": "error", "code": code, "message": r.text("error.message")}


def _d_metric_key(r: _Reader) -> dict:
    key_id = r.u32()
    key = r.name("metric_key.key")
    context = r.name("metric_key.context")
    return {"kind": "metric_key", "id": key_id, "key": key, "context": context,
            "source": r.name("metric_key.source")}


def _d_control_request(r: _Reader) -> dict:
    request_id, verb = r.fixed(_U32_U8)
    verb_name = _VERB_NAMES.get(verb) or "verb_%d" % verb
    return {"kind": "control_request", "request_id": request_id, "verb": verb_name,
            "arguments": r.value()}


def _d_control_reply(r: _Reader) -> dict:
    request_id = r.u32()
    status = r.enum(_REPLY_STATUS_NAMES, "control_reply.status")
    return {"kind": "control_reply", "request_id": request_id, "status": status, "body": r.value()}


def _d_drops(r: _Reader) -> dict:
    return {"kind": "drops", "total": r.u64()}


def _d_run_start(r: _Reader) -> dict:
    run_id = r.name("run_start.run_id")
    experiment = r.name("run_start.experiment")
    name = r.name("run_start.name")
    tags = r.strings("run_start.tags", NAME_LIMIT)
    rank, local_rank, world_size = r.fixed(_RANKS)
    host = r.name("run_start.host")
    command_line = r.strings("run_start.command_line", TEXT_LIMIT)
    working_directory = r.text("run_start.working_directory")
    git_commit = r.name("run_start.git_commit")
    git_dirty = r.enum(_GIT_DIRTY_NAMES, "run_start.git_dirty")
    has_seed = r.bool("run_start.has_seed")
    seed = r.i64()
    start_time = r.i64()
    return {"kind": "run_start", "run_id": run_id, "experiment": experiment, "name": name,
            "tags": tags, "rank": rank, "local_rank": local_rank, "world_size": world_size,
            "host": host, "command_line": command_line, "working_directory": working_directory,
            "git_commit": git_commit, "git_dirty": git_dirty, "seed": seed if has_seed else None,
            "start_time": start_time}


def _d_params(r: _Reader) -> dict:
    return {"kind": "params", "params": r.value()}


def _d_metric(r: _Reader) -> dict:
    key_id, step, ts, value = r.fixed(_METRIC_BODY)
    return {"kind": "metric", "key_id": key_id, "step": step, "timestamp": ts, "value": value}


def _d_metric_batch(r: _Reader) -> dict:
    count = r.count("metric_batch.count", METRIC_BODY_BYTES)
    o = r.o
    e = o + METRIC_BODY_BYTES * count
    r.o = e
    return {"kind": "metric_batch", "metrics": [
        {"key_id": k, "step": s, "timestamp": t, "value": v}
        for k, s, t, v in _METRIC_BODY.iter_unpack(r.b[o:e])
    ]}


def _d_log(r: _Reader) -> dict:
    level = r.enum(_LEVEL_NAMES, "log.level")
    ts = r.i64()
    logger = r.name("log.logger")
    return {"kind": "log", "level": level, "timestamp": ts, "logger": logger,
            "message": r.text("log.message")}


def _d_artifact(r: _Reader) -> dict:
    context = r.name("artifact.context")
    step = r.i64()
    role = r.enum(_ARTIFACT_ROLE_NAMES, "artifact.role")
    mode = r.enum(_MODE_NAMES, "artifact.mode")
    file_name = r.name("artifact.file_name")
    original_path = r.text("artifact.original_path")
    size, sha, ts = r.fixed(_FILE_TAIL)
    return {"kind": "artifact", "context": context, "step": step, "role": role, "mode": mode,
            "file_name": file_name, "original_path": original_path, "size": size,
            "sha256": sha.hex(), "timestamp": ts}


def _d_model_info(r: _Reader) -> dict:
    name = r.name("model_info.name")
    parameter_count, memory_bytes = r.fixed(_U64_U64)
    return {"kind": "model_info", "name": name, "parameter_count": parameter_count,
            "memory_bytes": memory_bytes, "layers": r.value()}


def _d_model_version(r: _Reader) -> dict:
    model_name = r.name("model_version.model_name")
    context = r.name("model_version.context")
    step = r.i64()
    mode = r.enum(_MODE_NAMES, "model_version.mode")
    file_name = r.name("model_version.file_name")
    original_path = r.text("model_version.original_path")
    size, sha, ts = r.fixed(_FILE_TAIL)
    return {"kind": "model_version", "model_name": model_name, "context": context, "step": step,
            "mode": mode, "file_name": file_name, "original_path": original_path, "size": size,
            "sha256": sha.hex(), "timestamp": ts}


def _d_dataset(r: _Reader) -> dict:
    label = r.name("dataset.label")
    context = r.name("dataset.context")
    samples = r.u64()
    batch_size = r.u32()
    workers = r.u32()
    shuffle = r.bool("dataset.shuffle")
    return {"kind": "dataset", "label": label, "context": context, "samples": samples,
            "batch_size": batch_size, "workers": workers, "shuffle": shuffle, "batches": r.u64()}


def _d_run_end(r: _Reader) -> dict:
    status = r.enum(_RUN_STATUS_NAMES, "run_end.status")
    return {"kind": "run_end", "status": status, "timestamp": r.i64()}


_DECODERS: Dict[int, Callable[[_Reader], dict]] = {
    HELLO: _d_hello,
    WELCOME: _d_welcome,
    ACK: _d_ack,
    FLUSH: _d_flush,
    FLUSH_DONE: _d_flush_done,
    ERROR: _d_error,
    METRIC_KEY: _d_metric_key,
    CONTROL_REQUEST: _d_control_request,
    CONTROL_REPLY: _d_control_reply,
    DROPS: _d_drops,
    RUN_START: _d_run_start,
    PARAMS: _d_params,
    METRIC: _d_metric,
    METRIC_BATCH: _d_metric_batch,
    LOG: _d_log,
    ARTIFACT: _d_artifact,
    MODEL_INFO: _d_model_info,
    MODEL_VERSION: _d_model_version,
    DATASET: _d_dataset,
    RUN_END: _d_run_end,
}


class StreamDecoder:
    """Incremental decoder: feed bytes as they arrive, get back the records completed so far.

    Args:
        max_frame: the frame limit (largest accepted length prefix), default 1 MiB.
        skip_newer_minor: set (also later, as an attribute) once the peer announced a newer
            minor version: frames of unknown kinds are then skipped and reported as
            ``{"kind": "unknown", "raw_kind": K, "body_bytes": N}`` (so that sequence numbering
            can stay in step) instead of failing with ``unknown_kind``.

    ``feed`` raises ``WireError`` on the first bad frame; the records decoded before it in that
    call are in ``exc.records``. The decoder is then dead: later calls raise the same code.
    """

    __slots__ = ("max_frame", "skip_newer_minor", "_buf", "_dead")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME, skip_newer_minor: bool = False):
        if isinstance(max_frame, bool) or not isinstance(max_frame, int) or max_frame < 1:
            raise ValueError("max_frame must be a positive int")
        self.max_frame = max_frame
        self.skip_newer_minor = skip_newer_minor
        self._buf = bytearray()
        self._dead: Optional[WireError] = None

    @property
    def buffered(self) -> int:
        """Bytes fed that are not yet part of a returned record."""
        return len(self._buf)

    def _fail(self, exc: WireError) -> WireError:
        self._dead = exc
        self._buf = bytearray()
        return exc

    def _raise_dead(self) -> None:
        dead = self._dead
        assert dead is not None
        raise WireError(dead.code, "decoder already failed: " + dead.message)

    def feed(self, data: bytes) -> List[dict]:
        """Adds ``data`` to the stream; returns every record it completed, in order."""
        if self._dead is not None:
            self._raise_dead()
        buf = self._buf
        buf += data
        n = len(buf)
        pos = 0
        records: List[dict] = []
        limit = self.max_frame
        try:
            while n - pos >= 4:
                length = _U32.unpack_from(buf, pos)[0]
                if length == 0:
                    raise WireError("empty_frame", "frame length 0 (a frame holds at least its kind byte)")
                if length > limit:
                    raise WireError("frame_too_large",
                                    "frame length %d exceeds the limit of %d bytes" % (length, limit))
                end = pos + 4 + length
                if end > n:
                    break
                kind = buf[pos + 4]
                decode = _DECODERS.get(kind)
                if decode is None:
                    if not self.skip_newer_minor:
                        raise WireError("unknown_kind", "unknown frame kind 0x%02x" % kind)
                    records.append({"kind": "unknown", "raw_kind": kind, "body_bytes": length - 1})
                else:
                    r = _Reader(buf[pos + 5:end], kind)
                    rec = decode(r)
                    if r.o != r.n:
                        raise WireError("trailing_bytes", "frame of kind 0x%02x has %d bytes after its last field"
                                        % (kind, r.n - r.o))
                    records.append(rec)
                pos = end
        except WireError as exc:
            exc.records = records
            raise self._fail(exc)
        if pos:
            del buf[:pos]
        return records

    def finish(self) -> None:
        """Call at end of stream: ``truncated_stream`` if a partial frame is buffered."""
        if self._dead is not None:
            self._raise_dead()
        if self._buf:
            raise self._fail(WireError(
                "truncated_stream", "stream ended inside a frame (%d bytes buffered)" % len(self._buf)))


def decode_frames(data: bytes, max_frame: int = DEFAULT_MAX_FRAME, skip_newer_minor: bool = False) -> List[dict]:
    """Every record in ``data``, which must hold whole frames only (else ``truncated_stream``)."""
    d = StreamDecoder(max_frame=max_frame, skip_newer_minor=skip_newer_minor)
    records = d.feed(data)
    try:
        d.finish()
    except WireError as exc:
        exc.records = records
        raise
    return records

