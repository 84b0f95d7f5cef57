"""logd wire protocol, version 1.0: frame encoders and an incremental stream decoder.

This module is a pure-Python (standard library only) implementation of
``docs/WIRE_PROTOCOL.md``, which is normative; the golden vectors in ``vectors/wire-v1/`` pin
it down byte for byte and ``tests/test_wire.py`` checks this module against every one of them.

Frames
    Every frame is ``u32 LE length | u8 kind | body`` where ``length`` counts the kind byte and
    the body. All integers and doubles are little-endian; a session id (16 bytes) and a SHA-256
    digest (32 bytes) travel as raw bytes in hex reading order.

Encoding
    Each encoder (``hello``, ``metric``, ``params``, ...) returns the ``bytes`` of one whole
    frame. Encoders check everything a receiver would check and refuse bad input instead of
    emitting bytes the daemon would reject:

    * ``WireError`` with code ``string_too_long`` (name fields over ``NAME_LIMIT`` bytes, text
      fields over ``TEXT_LIMIT`` bytes), ``nesting_too_deep`` (a value tree deeper than
      ``MAX_DEPTH``), ``collection_too_large`` (more than ``MAX_COUNT`` elements) or
      ``frame_too_large`` (a frame whose length would exceed ``DEFAULT_MAX_FRAME``);
    * ``ValueError`` for a value outside its field's table (enums), a session that is not 16
      bytes, a digest that is not 32 bytes, a value-tree integer outside the i64 range, or a
      ``str`` that cannot be encoded as UTF-8 (lone surrogates: ``UnicodeEncodeError``);
    * ``TypeError`` for a value of the wrong type (a ``set`` in a value tree, a non-``str``
      map key or string, a ``str`` where a list of strings is expected);
    * ``struct.error`` for a fixed-width integer out of its range (a u32 of -1, a u64 of 2**64).

    The metric hot path does not go through a function: ``METRIC_FRAME`` is a precompiled
    ``struct.Struct`` for a whole 33-byte METRIC frame::

        METRIC_FRAME.pack_into(buf, pos, 29, METRIC, key_id, step, timestamp, value)

Enums
    Encoders take enum fields as ints. Each table comes three ways: an ``IntEnum`` (``Role``,
    ``GitDirty``, ``Level``, ``ArtifactRole``, ``Mode``, ``RunStatus``, ``ReplyStatus``,
    ``Verb``, ``ErrorCode``), flat constants (``ROLE_PRODUCER``, ``GIT_DIRTY``, ``LEVEL_INFO``,
    ``ROLE_INPUT``, ``MODE_COPY``, ``STATUS_FINISHED``, ``REPLY_OK``, ``VERB_STATUS``, ...) and a
    name -> value ``dict`` with the golden-vector names (``ROLES``, ``GIT_STATES``, ``LEVELS``,
    ``ARTIFACT_ROLES``, ``MODES``, ``RUN_STATUSES``, ``REPLY_STATUSES``, ``VERBS``,
    ``ERROR_CODES``).

Value trees
    Params, model layers, control arguments and control reply bodies are value trees.
    ``encode_value`` is strict: ``None``, ``bool``, ``int`` (i64), ``float``, ``str``,
    ``list``/``tuple`` and ``Mapping`` with ``str`` keys (order kept); anything else is a
    ``TypeError``. ``to_value`` is the lenient normalizer to run on user configs first: it never
    raises and always returns something ``encode_value`` accepts (see its docstring).

Decoding
    ``StreamDecoder`` is fed bytes as they arrive (split or coalesced anyhow) and returns the
    records completed so far as ``dict`` objects in the golden-vector JSON rendering
    (section 11): ``"kind"`` first, then the fields in wire order, enums by name (ERROR's
    ``code`` as its number), ``session``/``sha256`` as lowercase hex strings, RUN_START ``seed``
    ``None`` when absent. Differences from the JSON files: doubles are Python ``float`` values
    (NaN and infinities included, never the strings ``"nan"``/``"inf"``/``"-inf"``), and value
    trees are plain Python values (``dict``/``list``/``str``/``int``/``float``/``bool``/``None``).
    A value-tree map that repeats a key decodes to a ``dict`` holding the **last** value under
    that key (the protocol's lookup rule), at the position of its first occurrence.

    A decode error raises ``WireError`` whose ``code`` is one of the section-9 codes, checked in
    the order section 9 prescribes. Records completed earlier in the same ``feed`` call are not
    lost: they are in the exception's ``records`` attribute. After an error the decoder is dead:
    every later ``feed``/``finish`` raises a ``WireError`` with the same code (and no records).

``encode_record`` turns one record in the JSON rendering (as in the vector files, or as the
decoder returns it) back into its frame, which is how the tests check byte-for-byte encoding.

Works on Python 3.9 and later.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import math
import os
import struct
from collections.abc import Iterable, Mapping
from itertools import starmap
from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = [
    # versions and limits
    "MAJOR", "MINOR", "MAGIC", "NO_STEP", "DEFAULT_MAX_FRAME", "NAME_LIMIT", "TEXT_LIMIT",
    "MAX_DEPTH", "MAX_COUNT", "METRIC_BODY_BYTES", "METRIC_FRAME_BYTES", "METRIC_FRAME",
    "CANONICAL_NAN",
    # kinds
    "HELLO", "WELCOME", "ACK", "FLUSH", "FLUSH_DONE", "ERROR", "METRIC_KEY", "CONTROL_REQUEST",
    "CONTROL_REPLY", "DROPS", "RUN_START", "PARAMS", "METRIC", "METRIC_BATCH", "LOG", "ARTIFACT",
    "MODEL_INFO", "MODEL_VERSION", "DATASET", "RUN_END", "KIND_NAMES", "KINDS", "is_numbered",
    # enums
    "Role", "GitDirty", "Level", "ArtifactRole", "Mode", "RunStatus", "ReplyStatus", "Verb",
    "ErrorCode", "ROLE_PRODUCER", "ROLE_CONTROL", "GIT_CLEAN", "GIT_DIRTY", "GIT_UNKNOWN",
    "LEVEL_TRACE", "LEVEL_DEBUG", "LEVEL_INFO", "LEVEL_NOTICE", "LEVEL_WARNING", "LEVEL_ERROR",
    "LEVEL_CRITICAL", "ROLE_INPUT", "ROLE_OUTPUT", "MODE_COPY", "MODE_REFERENCE",
    "STATUS_FINISHED", "STATUS_FAILED", "STATUS_KILLED", "REPLY_OK", "REPLY_FAILED",
    "REPLY_TIMED_OUT", "REPLY_UNKNOWN_VERB", "REPLY_BAD_REQUEST", "VERB_STATUS", "VERB_FLUSH",
    "ROLES", "GIT_STATES", "LEVELS", "ARTIFACT_ROLES", "MODES", "RUN_STATUSES",
    "REPLY_STATUSES", "VERBS", "ERROR_CODES", "ERROR_CODE_NAMES",
    # errors
    "WireError", "CODES",
    # encoders
    "frame", "hello", "welcome", "ack", "flush", "flush_done", "error", "metric_key",
    "control_request", "control_reply", "drops", "run_start", "params", "metric",
    "metric_batch", "log", "artifact", "model_info", "model_version", "dataset", "run_end",
    "encode_string", "encode_value", "to_value", "encode_record",
    # decoding
    "StreamDecoder", "decode_frames",
]

# ---------------------------------------------------------------------------------------------
# Versions, limits, kinds
# ---------------------------------------------------------------------------------------------

MAJOR = 1
"""Protocol major version: a peer with another major version is refused."""
MINOR = 0
"""Protocol minor version of this implementation."""
MAGIC = b"LOGD"
"""The four bytes that open every HELLO body."""

NO_STEP = -(1 << 63)
"""``INT64_MIN``: the step value meaning "no step"."""
DEFAULT_MAX_FRAME = 1 << 20
"""Default frame limit: the largest length prefix (kind byte + body), 1 MiB."""
NAME_LIMIT = 4096
"""Most bytes in a name string (identifiers)."""
TEXT_LIMIT = 262144
"""Most bytes in a text string (free text, paths, value-tree strings and keys)."""
MAX_DEPTH = 64
"""Deepest value tree: a scalar at the top is depth 1."""
MAX_COUNT = 65536
"""Most elements in one list, map, string list or metric batch."""

HELLO = 0x01
WELCOME = 0x02
ACK = 0x03
FLUSH = 0x04
FLUSH_DONE = 0x05
ERROR = 0x06
METRIC_KEY = 0x07
CONTROL_REQUEST = 0x08
CONTROL_REPLY = 0x09
DROPS = 0x0A
RUN_START = 0x20
PARAMS = 0x21
METRIC = 0x22
METRIC_BATCH = 0x23
LOG = 0x24
ARTIFACT = 0x25
MODEL_INFO = 0x26
MODEL_VERSION = 0x27
DATASET = 0x28
RUN_END = 0x29

KIND_NAMES: Dict[int, str] = {
    HELLO: "hello",
    WELCOME: "welcome",
    ACK: "ack",
    FLUSH: "flush",
    FLUSH_DONE: "flush_done",
    ERROR: "error",
    METRIC_KEY: "metric_key",
    CONTROL_REQUEST: "control_request",
    CONTROL_REPLY: "control_reply",
    DROPS: "drops",
    RUN_START: "run_start",
    PARAMS: "params",
    METRIC: "metric",
    METRIC_BATCH: "metric_batch",
    LOG: "log",
    ARTIFACT: "artifact",
    MODEL_INFO: "model_info",
    MODEL_VERSION: "model_version",
    DATASET: "dataset",
    RUN_END: "run_end",
}
"""Kind byte -> the lowercase name used in the golden vectors."""
KINDS: Dict[str, int] = {name: kind for kind, name in KIND_NAMES.items()}
"""Lowercase kind name -> kind byte."""


def is_numbered(kind: int) -> bool:
    """Whether frames of this kind take a sequence number (data records, 0x20-0x7F, known or not)."""
    return 0x20 <= kind <= 0x7F


# ---------------------------------------------------------------------------------------------
# Enum tables
# ---------------------------------------------------------------------------------------------


class Role(enum.IntEnum):
    """HELLO ``role``."""

    PRODUCER = 1
    CONTROL = 2


class GitDirty(enum.IntEnum):
    """RUN_START ``git_dirty``."""

    CLEAN = 0
    DIRTY = 1
    UNKNOWN = 2


class Level(enum.IntEnum):
    """LOG ``level``."""

    TRACE = 0
    DEBUG = 1
    INFO = 2
    NOTICE = 3
    WARNING = 4
    ERROR = 5
    CRITICAL = 6


class ArtifactRole(enum.IntEnum):
    """ARTIFACT ``role``."""

    INPUT = 1
    OUTPUT = 2


class Mode(enum.IntEnum):
    """ARTIFACT / MODEL_VERSION ``mode``."""

    COPY = 1
    REFERENCE = 2


class RunStatus(enum.IntEnum):
    """RUN_END ``status``."""

    FINISHED = 1
    FAILED = 2
    KILLED = 3


class ReplyStatus(enum.IntEnum):
    """FLUSH_DONE / CONTROL_REPLY ``status``."""

    OK = 0
    FAILED = 1
    TIMED_OUT = 2
    UNKNOWN_VERB = 3
    BAD_REQUEST = 4


class Verb(enum.IntEnum):
    """CONTROL_REQUEST ``verb`` (any byte decodes; these are the named ones)."""

    STATUS = 1
    FLUSH = 2


class ErrorCode(enum.IntEnum):
    """ERROR ``code`` (a u16)."""

    MALFORMED_FRAME = 1
    FRAME_TOO_LARGE = 2
    PROTOCOL_VIOLATION = 3
    UNSUPPORTED_VERSION = 4
    REFUSED = 5
    SHUTTING_DOWN = 6


# Flat constants (the same numbers as the IntEnums above).
ROLE_PRODUCER = 1
ROLE_CONTROL = 2
GIT_CLEAN = 0
GIT_DIRTY = 1
GIT_UNKNOWN = 2
LEVEL_TRACE = 0
LEVEL_DEBUG = 1
LEVEL_INFO = 2
LEVEL_NOTICE = 3
LEVEL_WARNING = 4
LEVEL_ERROR = 5
LEVEL_CRITICAL = 6
ROLE_INPUT = 1
ROLE_OUTPUT = 2
MODE_COPY = 1
MODE_REFERENCE = 2
STATUS_FINISHED = 1
STATUS_FAILED = 2
STATUS_KILLED = 3
REPLY_OK = 0
REPLY_FAILED = 1
REPLY_TIMED_OUT = 2
REPLY_UNKNOWN_VERB = 3
REPLY_BAD_REQUEST = 4
VERB_STATUS = 1
VERB_FLUSH = 2

# Name -> value tables, with the names used in the golden vectors' JSON.
ROLES: Dict[str, int] = {"producer": 1, "control": 2}
GIT_STATES: Dict[str, int] = {"clean": 0, "dirty": 1, "unknown": 2}
LEVELS: Dict[str, int] = {
    "TRACE": 0, "DEBUG": 1, "INFO": 2, "NOTICE": 3, "WARNING": 4, "ERROR": 5, "CRITICAL": 6,
}
ARTIFACT_ROLES: Dict[str, int] = {"input": 1, "output": 2}
MODES: Dict[str, int] = {"copy": 1, "reference": 2}
RUN_STATUSES: Dict[str, int] = {"finished": 1, "failed": 2, "killed": 3}
REPLY_STATUSES: Dict[str, int] = {
    "ok": 0, "failed": 1, "timed_out": 2, "unknown_verb": 3, "bad_request": 4,
}
VERBS: Dict[str, int] = {"status": 1, "flush": 2}
ERROR_CODES: Dict[str, int] = {
    "malformed_frame": 1, "frame_too_large": 2, "protocol_violation": 3,
    "unsupported_version": 4, "refused": 5, "shutting_down": 6,
}
ERROR_CODE_NAMES: Dict[int, str] = {v: k for k, v in ERROR_CODES.items()}

_ROLE_NAMES = {v: k for k, v in ROLES.items()}
_GIT_DIRTY_NAMES = {v: k for k, v in GIT_STATES.items()}
_LEVEL_NAMES = {v: k for k, v in LEVELS.items()}
_ARTIFACT_ROLE_NAMES = {v: k for k, v in ARTIFACT_ROLES.items()}
_MODE_NAMES = {v: k for k, v in MODES.items()}
_RUN_STATUS_NAMES = {v: k for k, v in RUN_STATUSES.items()}
_REPLY_STATUS_NAMES = {v: k for k, v in REPLY_STATUSES.items()}
_VERB_NAMES = {v: k for k, v in VERBS.items()}

# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

CODES = frozenset({
    "empty_frame", "frame_too_large", "truncated_body", "trailing_bytes", "unknown_kind",
    "bad_magic", "unsupported_version", "invalid_utf8", "string_too_long", "nesting_too_deep",
    "collection_too_large", "invalid_enum", "truncated_stream",
})
"""Every decode error code of section 9."""


class WireError(Exception):
    """Bytes that are not logd wire protocol 1.0, or a record an encoder refuses to write.

    Attributes:
        code: one of ``CODES`` (section 9 of WIRE_PROTOCOL.md), e.g. ``"frame_too_large"``.
        message: a readable description (also ``str(exc)``).
        records: for an error raised by ``StreamDecoder.feed``, the records that call decoded
            completely before the error (in order); otherwise an empty list.
    """

    def __init__(self, code: str, message: Optional[str] = None, records: Optional[List[dict]] = None):
        self.code = code
        self.message = message if message is not None else code.replace("_", " ")
        self.records: List[dict] = list(records) if records else []
        super().__init__(self.message)

    def __reduce__(self) -> Any:
        return (type(self), (self.code, self.message, self.records))

    def __repr__(self) -> str:
        return "WireError(%r, %r)" % (self.code, self.message)


# ---------------------------------------------------------------------------------------------
# Precompiled structs
# ---------------------------------------------------------------------------------------------

METRIC_BODY_BYTES = 28
METRIC_FRAME_BYTES = 33
METRIC_FRAME = struct.Struct("<IBIqqd")
"""A whole METRIC frame: length (29), kind (0x22), key_id u32, step i64, timestamp i64, value f64."""

CANONICAL_NAN: float = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000000))[0]
"""The canonical quiet NaN (bits ``0x7ff8000000000000``)."""

_HEADER = struct.Struct("<IB")
_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_METRIC_BODY = struct.Struct("<Iqqd")
_HELLO_FIXED = struct.Struct("<4sBBBBI16sQ")  # magic .. first_seq: 36 bytes
_WELCOME_FIXED = struct.Struct("<BBHQI")  # major .. max_frame_bytes: 16 bytes
_FLUSH_DONE = struct.Struct("<QBQ")
_U32_U8 = struct.Struct("<IB")  # request_id + verb/status
_RANKS = struct.Struct("<iii")
_RUN_START_TAIL = struct.Struct("<BBqq")  # git_dirty, has_seed, seed, start_time
_LEVEL_TS = struct.Struct("<Bq")
_STEP_ROLE_MODE = struct.Struct("<qBB")
_STEP_MODE = struct.Struct("<qB")
_FILE_TAIL = struct.Struct("<Q32sq")  # size, sha256, timestamp
_U64_U64 = struct.Struct("<QQ")
_DATASET_TAIL = struct.Struct("<QIIBQ")
_RUN_END = struct.Struct("<Bq")
_ERROR_HEAD = struct.Struct("<H")
_TAG_I64 = struct.Struct("<Bq")
_TAG_F64 = struct.Struct("<Bd")
_TAG_U32 = struct.Struct("<BI")

_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1

_TAG_NULL = b"\x00"
_TAG_FALSE = b"\x01"
_TAG_TRUE = b"\x02"

# ---------------------------------------------------------------------------------------------
# Encoding primitives
# ---------------------------------------------------------------------------------------------


def _str_bytes(s: Any, limit: int, field: str) -> bytes:
    """The length-prefixed UTF-8 encoding of ``s``, checked against ``limit``."""
    if not isinstance(s, str):
        raise TypeError("field %s must be a str, not %s" % (field, type(s).__name__))
    b = s.encode("utf-8")  # lone surrogates: UnicodeEncodeError (a ValueError)
    n = len(b)
    if n > limit:
        raise WireError("string_too_long", "field %s is %d bytes, limit %d" % (field, n, limit))
    return _U32.pack(n) + b


def encode_string(s: str, limit: int = TEXT_LIMIT) -> bytes:
    """``u32 LE byte count | UTF-8 bytes`` of ``s``; ``string_too_long`` over ``limit`` bytes."""
    return _str_bytes(s, limit, "string")


def _strings_bytes(items: Any, limit: int, field: str) -> bytes:
    if isinstance(items, (str, bytes, bytearray)) or not isinstance(items, Iterable):
        raise TypeError("field %s must be a list of str, not %s" % (field, type(items).__name__))
    items = list(items)
    n = len(items)
    if n > MAX_COUNT:
        raise WireError("collection_too_large", "field %s has %d elements, limit %d" % (field, n, MAX_COUNT))
    parts = [_U32.pack(n)]
    for s in items:
        parts.append(_str_bytes(s, limit, field))
    return b"".join(parts)


def _enum(value: Any, names: Dict[int, str], field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in names:
        raise ValueError("field %s has invalid value %r (valid: %s)"
                         % (field, value, ", ".join("%d %s" % kv for kv in sorted(names.items()))))
    return int(value)


def _raw_bytes(value: Any, size: int, field: str) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError("field %s must be bytes, not %s" % (field, type(value).__name__))
    b = bytes(value)
    if len(b) != size:
        raise ValueError("field %s must be %d bytes, not %d" % (field, size, len(b)))
    return b


def _encode_value_into(v: Any, out: List[bytes], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise WireError("nesting_too_deep", "value tree nests deeper than %d" % MAX_DEPTH)
    if v is None:
        out.append(_TAG_NULL)
    elif v is True:
        out.append(_TAG_TRUE)
    elif v is False:
        out.append(_TAG_FALSE)
    elif isinstance(v, str):
        b = v.encode("utf-8")
        n = len(b)
        if n > TEXT_LIMIT:
            raise WireError("string_too_long", "field value.string is %d bytes, limit %d" % (n, TEXT_LIMIT))
        out.append(_TAG_U32.pack(5, n))
        out.append(b)
    elif isinstance(v, int):
        if not _I64_MIN <= v <= _I64_MAX:
            raise ValueError("value-tree integer %d is outside the i64 range" % v)
        out.append(_TAG_I64.pack(3, v))
    elif isinstance(v, float):
        out.append(_TAG_F64.pack(4, v))
    elif isinstance(v, (list, tuple)):
        n = len(v)
        if n > MAX_COUNT:
            raise WireError("collection_too_large", "field value.list has %d elements, limit %d" % (n, MAX_COUNT))
        out.append(_TAG_U32.pack(6, n))
        d = depth + 1
        for item in v:
            _encode_value_into(item, out, d)
    elif isinstance(v, Mapping):
        n = len(v)
        if n > MAX_COUNT:
            raise WireError("collection_too_large", "field value.map has %d entries, limit %d" % (n, MAX_COUNT))
        out.append(_TAG_U32.pack(7, n))
        d = depth + 1
        for key, item in v.items():
            if not isinstance(key, str):
                raise TypeError("value-tree map keys must be str, not %s" % type(key).__name__)
            out.append(_str_bytes(key, TEXT_LIMIT, "value.key"))
            _encode_value_into(item, out, d)
    else:
        raise TypeError("cannot encode %s in a value tree (use to_value first)" % type(v).__name__)


def encode_value(v: Any) -> bytes:
    """The value-tree encoding of ``v`` (strict; see the module docstring)."""
    out: List[bytes] = []
    _encode_value_into(v, out, 1)
    return b"".join(out)


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
# Lenient normalization of user values
# ---------------------------------------------------------------------------------------------

_PLAIN_SCALARS = (type(None), bool, int, float, str)


def _fit_text(s: str) -> str:
    """``s`` made encodable as a text string: lone surrogates escaped, cut to TEXT_LIMIT bytes."""
    if s.isascii():
        return s if len(s) <= TEXT_LIMIT else s[:TEXT_LIMIT]
    try:
        b = s.encode("utf-8")
    except UnicodeEncodeError:
        b = s.encode("utf-8", "backslashreplace")
    else:
        if len(b) <= TEXT_LIMIT:
            return s
    return b[:TEXT_LIMIT].decode("utf-8", "ignore")


def _safe_str(obj: Any) -> str:
    try:
        s = str(obj)
        if not isinstance(s, str):
            raise TypeError
    except Exception:
        try:
            s = object.__repr__(obj)
        except Exception:  # pragma: no cover - object.__repr__ does not fail in practice
            s = "<unprintable>"
    return _fit_text(str.__str__(s))


def _int_text(i: int) -> str:
    try:
        return str(i)
    except ValueError:  # over sys.get_int_max_str_digits() (Python 3.11+)
        return hex(i)


def _sorted_set(obj: Any) -> List[Any]:
    try:
        return sorted(obj)
    except Exception:
        try:
            return sorted(obj, key=repr)
        except Exception:
            return list(obj)


def _to_value(obj: Any, depth: int, active: set) -> Any:
    try:
        return _to_value_inner(obj, depth, active)
    except Exception:
        return _safe_str(obj)


def _to_value_inner(obj: Any, depth: int, active: set) -> Any:
    if obj is None or obj is True or obj is False:
        return obj
    t = type(obj)
    if t is str:
        return _fit_text(obj)
    if t is int:
        return obj if _I64_MIN <= obj <= _I64_MAX else _int_text(obj)
    if t is float:
        return obj
    if isinstance(obj, enum.Enum):
        v = obj.value
        if isinstance(v, _PLAIN_SCALARS) and not isinstance(v, enum.Enum):
            out = _to_value(v, depth, active)
            if not (isinstance(out, str) and isinstance(v, int)):  # an int that had to become str
                return out
        name = obj.name
        return _fit_text(name) if isinstance(name, str) else _safe_str(obj)
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, str):
        return _fit_text(str.__str__(obj))
    if isinstance(obj, int):
        i = int.__index__(obj)
        return i if _I64_MIN <= i <= _I64_MAX else _int_text(i)
    if isinstance(obj, float):
        return float.__float__(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        data = obj.tobytes() if isinstance(obj, memoryview) else bytes(obj[: TEXT_LIMIT // 2])
        return data[: TEXT_LIMIT // 2].hex()
    if isinstance(obj, os.PathLike):
        return _fit_text(os.fsdecode(obj))

    # Containers and objects converted to containers.
    items: Any
    if isinstance(obj, Mapping):
        kind = "map"
        items = obj
    elif isinstance(obj, (list, tuple)):
        kind = "list"
        items = obj
    elif isinstance(obj, (set, frozenset)):
        kind = "list"
        items = None  # sorted below, once the depth is known to allow it
    elif isinstance(obj, argparse.Namespace):
        kind = "map"
        items = vars(obj)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        kind = "map"
        items = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    else:
        converted = _convert_array_like(obj)
        if converted is _NOTHING:
            return _safe_str(obj)
        if isinstance(converted, (list, tuple, dict)):
            if depth >= MAX_DEPTH:
                return _safe_str(obj)
            return _to_value(converted, depth, active)
        return _to_value(converted, depth, active) if isinstance(converted, _PLAIN_SCALARS) else _safe_str(obj)

    if depth >= MAX_DEPTH:  # its elements would be deeper than MAX_DEPTH
        return _safe_str(obj)
    key = id(obj)
    if key in active:
        return "<cycle: %s>" % type(obj).__name__
    active.add(key)
    try:
        d = depth + 1
        if kind == "map":
            result: Dict[str, Any] = {}
            for k, v in items.items():
                if len(result) >= MAX_COUNT:
                    break
                sk = _fit_text(k) if type(k) is str else _safe_str(k)
                result[sk] = _to_value(v, d, active)
            return result
        if items is None:
            items = _sorted_set(obj)
        out_list = []
        for v in items:
            if len(out_list) >= MAX_COUNT:
                break
            out_list.append(_to_value(v, d, active))
        return out_list
    finally:
        active.discard(key)


class _Nothing:
    pass


_NOTHING = _Nothing()


def _convert_array_like(obj: Any) -> Any:
    """``obj.tolist()`` or ``obj.item()`` for numpy/torch-like objects, else ``_NOTHING``."""
    size = getattr(obj, "size", None)
    if isinstance(size, int) and not isinstance(size, bool) and size > MAX_COUNT:
        return _NOTHING  # a big array: its str() is a readable summary
    for method in ("tolist", "item"):
        fn = getattr(obj, method, None)
        if callable(fn):
            try:
                return fn()
            except Exception:
                continue
    return _NOTHING


def to_value(obj: Any) -> Any:
    """A lenient conversion of ``obj`` to a value tree that ``encode_value`` always accepts.

    Never raises. Rules, in order:

    * ``None``, ``bool``, ``float`` and ``str`` stay (``str`` and ``float`` subclasses become
      the plain type); ``int`` stays within the i64 range, else becomes its decimal ``str``
      (hex if too long to print);
    * ``enum.Enum`` members become their ``value`` when that is a plain scalar (``int`` within
      i64), else their ``name``;
    * ``bytes``/``bytearray``/``memoryview`` become a lowercase hex ``str`` (of at most the first
      ``TEXT_LIMIT // 2`` bytes);
    * ``os.PathLike`` becomes ``os.fsdecode(obj)``;
    * ``Mapping`` becomes a ``dict`` (order kept) with ``str`` keys (``str(key)`` for others; keys
      that collide after that keep the last value); ``argparse.Namespace`` becomes
      ``vars(obj)`` and a dataclass instance its fields (like ``dataclasses.asdict``), both then
      as a mapping;
    * ``list``/``tuple`` become a ``list``; ``set``/``frozenset`` a sorted ``list`` (sorted by
      ``repr`` if the elements do not compare);
    * objects with a ``tolist()`` method (numpy/torch arrays and scalars) become its result, else
      objects with an ``item()`` method become its result (numpy arrays of more than
      ``MAX_COUNT`` elements become ``str(obj)`` instead);
    * anything else becomes ``str(obj)`` (``repr`` if that fails).

    Limits are enforced by shortening rather than failing: strings are cut to ``TEXT_LIMIT``
    bytes (on a character boundary; lone surrogates are backslash-escaped), lists and maps keep
    their first ``MAX_COUNT`` elements, a container that would nest deeper than ``MAX_DEPTH``
    becomes ``str(container)``, and a container inside itself becomes ``"<cycle: TYPE>"``.
    The frame limit (1 MiB) is not considered: ``params(to_value(x))`` may still raise
    ``frame_too_large`` for a very large config.
    """
    try:
        return _to_value(obj, 1, set())
    except Exception:
        return _safe_str(obj)


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
