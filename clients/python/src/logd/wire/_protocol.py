"""Versions, limits, frame kinds, enum tables, errors and the precompiled structs. (part of ``logd.wire``; see its docstring)."""

from __future__ import annotations

import enum
import struct
from typing import Any, Dict, List, Optional



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

