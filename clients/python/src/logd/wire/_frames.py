"""Frame encoders, and records in the JSON rendering turned into frames. (part of ``logd.wire``; see its docstring)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from itertools import starmap
from typing import Any, Dict, Optional, Tuple


from ._protocol import (  # noqa: F401
    ACK,
    ARTIFACT,
    ARTIFACT_ROLES,
    CANONICAL_NAN,
    CONTROL_REPLY,
    CONTROL_REQUEST,
    DATASET,
    DEFAULT_MAX_FRAME,
    DROPS,
    ERROR,
    ERROR_CODES,
    ERROR_CODE_NAMES,
    FLUSH,
    FLUSH_DONE,
    GIT_STATES,
    HELLO,
    LEVELS,
    LOG,
    MAGIC,
    MAJOR,
    MAX_COUNT,
    METRIC,
    METRIC_BATCH,
    METRIC_BODY_BYTES,
    METRIC_FRAME,
    METRIC_KEY,
    MINOR,
    MODEL_INFO,
    MODEL_VERSION,
    MODES,
    NAME_LIMIT,
    PARAMS,
    REPLY_STATUSES,
    ROLES,
    RUN_END,
    RUN_START,
    RUN_STATUSES,
    TEXT_LIMIT,
    VERBS,
    WELCOME,
    WireError,
    _ARTIFACT_ROLE_NAMES,
    _DATASET_TAIL,
    _ERROR_HEAD,
    _FILE_TAIL,
    _FLUSH_DONE,
    _GIT_DIRTY_NAMES,
    _HEADER,
    _HELLO_FIXED,
    _LEVEL_NAMES,
    _LEVEL_TS,
    _METRIC_BODY,
    _MODE_NAMES,
    _RANKS,
    _REPLY_STATUS_NAMES,
    _ROLE_NAMES,
    _RUN_END,
    _RUN_START_TAIL,
    _RUN_STATUS_NAMES,
    _STEP_MODE,
    _STEP_ROLE_MODE,
    _U32,
    _U32_U8,
    _U64,
    _U64_U64,
    _WELCOME_FIXED,
)
from ._values import (  # noqa: F401
    _enum,
    _raw_bytes,
    _str_bytes,
    _strings_bytes,
    encode_value,
)

# ---------------------------------------------------------------------------------------------
# Frame encoders
# ---------------------------------------------------------------------------------------------


def frame(kind: int, body: bytes) -> bytes:
    """One whole frame: ``u32 length | kind | body``; ``frame_too_large`` over 1 MiB.

    Low level: any kind byte 0-255 is accepted.
    """
    length = len(body) + 1
    if length > DEFAULT_MAX_FRAME:
        raise WireError("frame_too_large",
                        "frame length %d exceeds the limit of %d bytes" % (length, DEFAULT_MAX_FRAME))
    return _HEADER.pack(length, kind) + body


def hello(role: int, pid: int, session: bytes, first_seq: int, client_name: str,
          client_version: str, major: int = MAJOR, minor: int = MINOR) -> bytes:
    """HELLO: the first frame of every connection (role 1 producer, 2 control)."""
    body = (_HELLO_FIXED.pack(MAGIC, major, minor, _enum(role, _ROLE_NAMES, "hello.role"), 0, pid,
                              _raw_bytes(session, 16, "hello.session"), first_seq)
            + _str_bytes(client_name, NAME_LIMIT, "hello.client_name")
            + _str_bytes(client_version, NAME_LIMIT, "hello.client_version"))
    return frame(HELLO, body)


def welcome(durable_through: int, max_frame_bytes: int, daemon_version: str,
            major: int = MAJOR, minor: int = MINOR) -> bytes:
    """WELCOME: the daemon's answer to HELLO."""
    body = (_WELCOME_FIXED.pack(major, minor, 0, durable_through, max_frame_bytes)
            + _str_bytes(daemon_version, NAME_LIMIT, "welcome.daemon_version"))
    return frame(WELCOME, body)


def ack(durable_through: int) -> bytes:
    """ACK: every numbered frame of the session through ``durable_through`` is durable."""
    return frame(ACK, _U64.pack(durable_through))


def flush(token: int) -> bytes:
    """FLUSH: a barrier request, answered by FLUSH_DONE with the same token."""
    return frame(FLUSH, _U64.pack(token))


def flush_done(token: int, status: int, durable_through: int) -> bytes:
    """FLUSH_DONE: the barrier ``token`` completed with ``status`` (a reply status)."""
    return frame(FLUSH_DONE, _FLUSH_DONE.pack(
        token, _enum(status, _REPLY_STATUS_NAMES, "flush_done.status"), durable_through))


def error(code: int, message: str) -> bytes:
    """ERROR: the daemon's last word (``code`` 1-6, see ``ErrorCode``)."""
    return frame(ERROR, _ERROR_HEAD.pack(_enum(code, ERROR_CODE_NAMES, "error.code"))
                 + _str_bytes(message, TEXT_LIMIT, "error.message"))


def metric_key(key_id: int, key: str, context: str, source: str) -> bytes:
    """METRIC_KEY: interns (key, context, source) as ``key_id`` on this connection."""
    return frame(METRIC_KEY, _U32.pack(key_id)
                 + _str_bytes(key, NAME_LIMIT, "metric_key.key")
                 + _str_bytes(context, NAME_LIMIT, "metric_key.context")
                 + _str_bytes(source, NAME_LIMIT, "metric_key.source"))


def control_request(request_id: int, verb: int, arguments: Any) -> bytes:
    """CONTROL_REQUEST: ``verb`` is any byte (1 status, 2 flush); ``arguments`` a value tree."""
    return frame(CONTROL_REQUEST, _U32_U8.pack(request_id, verb) + encode_value(arguments))


def control_reply(request_id: int, status: int, body: Any) -> bytes:
    """CONTROL_REPLY: the answer to request ``request_id``; ``body`` a value tree."""
    return frame(CONTROL_REPLY, _U32_U8.pack(
        request_id, _enum(status, _REPLY_STATUS_NAMES, "control_reply.status")) + encode_value(body))


def drops(total: int) -> bytes:
    """DROPS: the running total of records this producer dropped."""
    return frame(DROPS, _U64.pack(total))


def run_start(run_id: str, experiment: str, name: str, tags: Iterable[str], rank: int,
              local_rank: int, world_size: int, host: str, command_line: Iterable[str],
              working_directory: str, git_commit: str, git_dirty: int, seed: Optional[int],
              start_time: int) -> bytes:
    """RUN_START: the identity of the run. ``seed`` None is sent as has_seed 0, seed 0."""
    if seed is None:
        has_seed, seed_value = 0, 0
    else:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError("run_start.seed must be an int or None, not %s" % type(seed).__name__)
        has_seed, seed_value = 1, seed
    body = b"".join((
        _str_bytes(run_id, NAME_LIMIT, "run_start.run_id"),
        _str_bytes(experiment, NAME_LIMIT, "run_start.experiment"),
        _str_bytes(name, NAME_LIMIT, "run_start.name"),
        _strings_bytes(tags, NAME_LIMIT, "run_start.tags"),
        _RANKS.pack(rank, local_rank, world_size),
        _str_bytes(host, NAME_LIMIT, "run_start.host"),
        _strings_bytes(command_line, TEXT_LIMIT, "run_start.command_line"),
        _str_bytes(working_directory, TEXT_LIMIT, "run_start.working_directory"),
        _str_bytes(git_commit, NAME_LIMIT, "run_start.git_commit"),
        _RUN_START_TAIL.pack(_enum(git_dirty, _GIT_DIRTY_NAMES, "run_start.git_dirty"),
                             has_seed, seed_value, start_time),
    ))
    return frame(RUN_START, body)


def params(tree: Any) -> bytes:
    """PARAMS: config values (a value tree, normally a map), merged into the run's config."""
    return frame(PARAMS, encode_value(tree))


def metric(key_id: int, step: int, timestamp: int, value: float) -> bytes:
    """METRIC: one sample (33 bytes). ``step`` ``NO_STEP`` means no step."""
    return METRIC_FRAME.pack(29, METRIC, key_id, step, timestamp, value)


def metric_batch(entries: Iterable[Tuple[int, int, int, float]]) -> bytes:
    """METRIC_BATCH: many samples, each ``(key_id, step, timestamp, value)``."""
    items = entries if isinstance(entries, list) else list(entries)
    n = len(items)
    if n > MAX_COUNT:
        raise WireError("collection_too_large",
                        "field metric_batch.count has %d elements, limit %d" % (n, MAX_COUNT))
    length = 5 + METRIC_BODY_BYTES * n
    if length > DEFAULT_MAX_FRAME:
        raise WireError("frame_too_large",
                        "frame length %d exceeds the limit of %d bytes" % (length, DEFAULT_MAX_FRAME))
    return _HEADER.pack(length, METRIC_BATCH) + _U32.pack(n) + b"".join(starmap(_METRIC_BODY.pack, items))


def log(level: int, timestamp: int, logger: str, message: str) -> bytes:
    """LOG: one text line (``level`` 0 TRACE ... 6 CRITICAL)."""
    return frame(LOG, _LEVEL_TS.pack(_enum(level, _LEVEL_NAMES, "log.level"), timestamp)
                 + _str_bytes(logger, NAME_LIMIT, "log.logger")
                 + _str_bytes(message, TEXT_LIMIT, "log.message"))


def artifact(context: str, step: int, role: int, mode: int, file_name: str, original_path: str,
             size: int, sha256: bytes, timestamp: int) -> bytes:
    """ARTIFACT: a file the run read (role 1) or wrote (role 2), copied (mode 1) or referenced (2).

    A copy-mode frame must be sent with its file descriptor (``socket.send_fds``).
    """
    return frame(ARTIFACT, b"".join((
        _str_bytes(context, NAME_LIMIT, "artifact.context"),
        _STEP_ROLE_MODE.pack(step, _enum(role, _ARTIFACT_ROLE_NAMES, "artifact.role"),
                             _enum(mode, _MODE_NAMES, "artifact.mode")),
        _str_bytes(file_name, NAME_LIMIT, "artifact.file_name"),
        _str_bytes(original_path, TEXT_LIMIT, "artifact.original_path"),
        _FILE_TAIL.pack(size, _raw_bytes(sha256, 32, "artifact.sha256"), timestamp),
    )))


def model_info(name: str, parameter_count: int, memory_bytes: int, layers: Any) -> bytes:
    """MODEL_INFO: what a model is; ``layers`` is a value tree."""
    return frame(MODEL_INFO, _str_bytes(name, NAME_LIMIT, "model_info.name")
                 + _U64_U64.pack(parameter_count, memory_bytes) + encode_value(layers))


def model_version(model_name: str, context: str, step: int, mode: int, file_name: str,
                  original_path: str, size: int, sha256: bytes, timestamp: int) -> bytes:
    """MODEL_VERSION: a saved model file (checkpoint); the daemon assigns the version id."""
    return frame(MODEL_VERSION, b"".join((
        _str_bytes(model_name, NAME_LIMIT, "model_version.model_name"),
        _str_bytes(context, NAME_LIMIT, "model_version.context"),
        _STEP_MODE.pack(step, _enum(mode, _MODE_NAMES, "model_version.mode")),
        _str_bytes(file_name, NAME_LIMIT, "model_version.file_name"),
        _str_bytes(original_path, TEXT_LIMIT, "model_version.original_path"),
        _FILE_TAIL.pack(size, _raw_bytes(sha256, 32, "model_version.sha256"), timestamp),
    )))


def dataset(label: str, context: str, samples: int, batch_size: int, workers: int,
            shuffle: bool, batches: int) -> bytes:
    """DATASET: a data set and its loader."""
    if not isinstance(shuffle, (bool, int)) or shuffle not in (0, 1):
        raise ValueError("field dataset.shuffle must be a bool, not %r" % (shuffle,))
    return frame(DATASET, _str_bytes(label, NAME_LIMIT, "dataset.label")
                 + _str_bytes(context, NAME_LIMIT, "dataset.context")
                 + _DATASET_TAIL.pack(samples, batch_size, workers, 1 if shuffle else 0, batches))


def run_end(status: int, timestamp: int) -> bytes:
    """RUN_END: this producer is done with its run (1 finished, 2 failed, 3 killed)."""
    return frame(RUN_END, _RUN_END.pack(_enum(status, _RUN_STATUS_NAMES, "run_end.status"), timestamp))


# ---------------------------------------------------------------------------------------------

# Records in the JSON rendering -> frames
# ---------------------------------------------------------------------------------------------


def _rec_enum(value: Any, table: Dict[str, int], field: str) -> int:
    if isinstance(value, str):
        try:
            return table[value]
        except KeyError:
            raise ValueError("field %s has unknown name %r" % (field, value)) from None
    return value


def _rec_double(value: Any) -> float:
    if isinstance(value, str):
        if value == "nan":
            return CANONICAL_NAN
        if value == "inf":
            return math.inf
        if value == "-inf":
            return -math.inf
        raise ValueError("not a double: %r" % value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("not a double: %r" % (value,))
    return float(value)


def _rec_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value)
    return value


def _rec_verb(value: Any) -> int:
    if isinstance(value, str):
        if value in VERBS:
            return VERBS[value]
        if value.startswith("verb_") and value[5:].isdigit():
            return int(value[5:])
        raise ValueError("field control_request.verb has unknown name %r" % value)
    return value


def _rec_metric(m: Any) -> Tuple[int, int, int, float]:
    if isinstance(m, Mapping):
        return (m["key_id"], m["step"], m["timestamp"], _rec_double(m["value"]))
    key_id, step, ts, value = m
    return (key_id, step, ts, _rec_double(value))


def encode_record(rec: Mapping) -> bytes:
    """The frame of one record given in the golden-vector JSON rendering (section 11).

    ``rec["kind"]`` is the lowercase kind name; the other keys are the fields as named in the
    vector files. Enums may be given by name or number (ERROR's ``code`` is a number; a control
    verb may be ``"verb_N"``); ``session``/``sha256`` as hex strings or bytes; doubles as numbers
    or the strings ``"nan"`` (the canonical quiet NaN), ``"inf"``, ``"-inf"``; value trees as
    plain Python values; RUN_START ``seed`` ``None`` when absent. Records returned by
    ``StreamDecoder`` are accepted as they are. Raises ``KeyError`` for a missing field,
    ``ValueError`` for an unknown kind or enum name, and whatever the encoder raises.
    """
    kind = rec["kind"]
    if kind == "hello":
        return hello(_rec_enum(rec["role"], ROLES, "hello.role"), rec["pid"], _rec_bytes(rec["session"]),
                     rec["first_seq"], rec["client_name"], rec["client_version"],
                     rec.get("major", MAJOR), rec.get("minor", MINOR))
    if kind == "welcome":
        return welcome(rec["durable_through"], rec["max_frame_bytes"], rec["daemon_version"],
                       rec.get("major", MAJOR), rec.get("minor", MINOR))
    if kind == "ack":
        return ack(rec["durable_through"])
    if kind == "flush":
        return flush(rec["token"])
    if kind == "flush_done":
        return flush_done(rec["token"], _rec_enum(rec["status"], REPLY_STATUSES, "flush_done.status"),
                          rec["durable_through"])
    if kind == "error":
        return error(_rec_enum(rec["code"], ERROR_CODES, "error.code"), rec["message"])
    if kind == "metric_key":
        return metric_key(rec["id"], rec["key"], rec["context"], rec["source"])
    if kind == "control_request":
        return control_request(rec["request_id"], _rec_verb(rec["verb"]), rec["arguments"])
    if kind == "control_reply":
        return control_reply(rec["request_id"], _rec_enum(rec["status"], REPLY_STATUSES, "control_reply.status"),
                             rec["body"])
    if kind == "drops":
        return drops(rec["total"])
    if kind == "run_start":
        return run_start(rec["run_id"], rec["experiment"], rec["name"], rec["tags"], rec["rank"],
                         rec["local_rank"], rec["world_size"], rec["host"], rec["command_line"],
                         rec["working_directory"], rec["git_commit"],
                         _rec_enum(rec["git_dirty"], GIT_STATES, "run_start.git_dirty"), rec["seed"],
                         rec["start_time"])
    if kind == "params":
        return params(rec["params"])
    if kind == "metric":
        return metric(rec["key_id"], rec["step"], rec["timestamp"], _rec_double(rec["value"]))
    if kind == "metric_batch":
        return metric_batch([_rec_metric(m) for m in rec["metrics"]])
    if kind == "log":
        return log(_rec_enum(rec["level"], LEVELS, "log.level"), rec["timestamp"], rec["logger"], rec["message"])
    if kind == "artifact":
        return artifact(rec["context"], rec["step"], _rec_enum(rec["role"], ARTIFACT_ROLES, "artifact.role"),
                        _rec_enum(rec["mode"], MODES, "artifact.mode"), rec["file_name"], rec["original_path"],
                        rec["size"], _rec_bytes(rec["sha256"]), rec["timestamp"])
    if kind == "model_info":
        return model_info(rec["name"], rec["parameter_count"], rec["memory_bytes"], rec["layers"])
    if kind == "model_version":
        return model_version(rec["model_name"], rec["context"], rec["step"],
                             _rec_enum(rec["mode"], MODES, "model_version.mode"), rec["file_name"],
                             rec["original_path"], rec["size"], _rec_bytes(rec["sha256"]), rec["timestamp"])
    if kind == "dataset":
        return dataset(rec["label"], rec["context"], rec["samples"], rec["batch_size"], rec["workers"],
                       rec["shuffle"], rec["batches"])
    if kind == "run_end":
        return run_end(_rec_enum(rec["status"], RUN_STATUSES, "run_end.status"), rec["timestamp"])
    raise ValueError("cannot encode a record of kind %r" % (kind,))


# ---------------------------------------------------------------------------------------------
