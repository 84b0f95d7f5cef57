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

from ._protocol import (  # noqa: E402,F401
    ACK,
    ARTIFACT,
    ARTIFACT_ROLES,
    ArtifactRole,
    CANONICAL_NAN,
    CODES,
    CONTROL_REPLY,
    CONTROL_REQUEST,
    DATASET,
    DEFAULT_MAX_FRAME,
    DROPS,
    ERROR,
    ERROR_CODES,
    ERROR_CODE_NAMES,
    ErrorCode,
    FLUSH,
    FLUSH_DONE,
    GIT_CLEAN,
    GIT_DIRTY,
    GIT_STATES,
    GIT_UNKNOWN,
    GitDirty,
    HELLO,
    KINDS,
    KIND_NAMES,
    LEVELS,
    LEVEL_CRITICAL,
    LEVEL_DEBUG,
    LEVEL_ERROR,
    LEVEL_INFO,
    LEVEL_NOTICE,
    LEVEL_TRACE,
    LEVEL_WARNING,
    LOG,
    Level,
    MAGIC,
    MAJOR,
    MAX_COUNT,
    MAX_DEPTH,
    METRIC,
    METRIC_BATCH,
    METRIC_BODY_BYTES,
    METRIC_FRAME,
    METRIC_FRAME_BYTES,
    METRIC_KEY,
    MINOR,
    MODEL_INFO,
    MODEL_VERSION,
    MODES,
    MODE_COPY,
    MODE_REFERENCE,
    Mode,
    NAME_LIMIT,
    NO_STEP,
    PARAMS,
    REPLY_BAD_REQUEST,
    REPLY_FAILED,
    REPLY_OK,
    REPLY_STATUSES,
    REPLY_TIMED_OUT,
    REPLY_UNKNOWN_VERB,
    ROLES,
    ROLE_CONTROL,
    ROLE_INPUT,
    ROLE_OUTPUT,
    ROLE_PRODUCER,
    RUN_END,
    RUN_START,
    RUN_STATUSES,
    ReplyStatus,
    Role,
    RunStatus,
    STATUS_FAILED,
    STATUS_FINISHED,
    STATUS_KILLED,
    TEXT_LIMIT,
    VERBS,
    VERB_FLUSH,
    VERB_STATUS,
    Verb,
    WELCOME,
    WireError,
    is_numbered,
)
from ._values import (  # noqa: E402,F401
    encode_string,
    encode_value,
    to_value,
)
from ._frames import (  # noqa: E402,F401
    ack,
    artifact,
    control_reply,
    control_request,
    dataset,
    drops,
    encode_record,
    error,
    flush,
    flush_done,
    frame,
    hello,
    log,
    metric,
    metric_batch,
    metric_key,
    model_info,
    model_version,
    params,
    run_end,
    run_start,
    welcome,
)
from ._decoder import (  # noqa: E402,F401
    StreamDecoder,
    decode_frames,
)
