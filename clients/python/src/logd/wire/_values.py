"""Value trees: the encoding primitives and the lenient normalization of user values. (part of ``logd.wire``; see its docstring)."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
from collections.abc import Iterable, Mapping
from typing import Any, Dict, List


from ._protocol import (  # noqa: F401
    MAX_COUNT,
    MAX_DEPTH,
    TEXT_LIMIT,
    WireError,
    _I64_MAX,
    _I64_MIN,
    _TAG_F64,
    _TAG_FALSE,
    _TAG_I64,
    _TAG_NULL,
    _TAG_TRUE,
    _TAG_U32,
    _U32,
)

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
        out_list: List[Any] = []
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
