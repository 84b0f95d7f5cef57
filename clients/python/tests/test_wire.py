"""Tests of logd.wire against the golden vectors (docs/WIRE_PROTOCOL.md, section 11) and more."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import enum
import json
import math
import os
import random
import struct
from pathlib import Path, PurePosixPath
from typing import Any, List, Tuple

import pytest

from logd import wire
from logd.wire import WireError

VECTORS = Path(os.environ.get("LOGD_VECTORS") or Path(__file__).resolve().parents[3] / "vectors" / "wire-v1")
JSON_FILES = sorted(VECTORS.glob("*.json"))
NAMES = [p.stem for p in JSON_FILES]


def load(name: str) -> Tuple[dict, bytes]:
    doc = json.loads((VECTORS / (name + ".json")).read_text(encoding="utf-8"))
    return doc, (VECTORS / (name + ".bin")).read_bytes()


def bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def same(expected: Any, actual: Any, path: str = "$") -> None:
    """Exact comparison of a JSON-rendered expectation with a decoded value.

    Types must match (int vs float vs bool); doubles compare by bit pattern, except that the
    JSON string "nan" matches any NaN and "inf"/"-inf" the infinities.
    """
    if isinstance(actual, float) and isinstance(expected, str):
        if expected == "nan":
            assert math.isnan(actual), path
        else:
            assert expected in ("inf", "-inf") and actual == float(expected), (path, expected, actual)
        return
    assert type(expected) is type(actual), (path, expected, actual)
    if isinstance(expected, float):
        assert bits(expected) == bits(actual), (path, expected, actual)
    elif isinstance(expected, dict):
        assert list(expected) == list(actual), (path, list(expected), list(actual))
        for k in expected:
            same(expected[k], actual[k], path + "." + k)
    elif isinstance(expected, list):
        assert len(expected) == len(actual), (path, expected, actual)
        for i, (e, a) in enumerate(zip(expected, actual)):
            same(e, a, "%s[%d]" % (path, i))
    else:
        assert expected == actual, (path, expected, actual)


def feed_all(data: bytes, chunks: List[bytes]) -> Tuple[List[dict], Any]:
    """Feeds ``chunks`` then finishes; returns (records, WireError or None)."""
    d = wire.StreamDecoder()
    records: List[dict] = []
    try:
        for c in chunks:
            records.extend(d.feed(c))
        d.finish()
    except WireError as exc:
        records.extend(exc.records)
        return records, exc
    return records, None


def check_vector(name: str) -> None:
    doc, data = load(name)
    assert doc["name"] == name
    assert doc["protocol"] == "1.0"
    assert doc["bytes"] == len(data)
    expected = doc["records"]
    if doc["expect"] == "ok":
        records = wire.decode_frames(data)
        same(expected, records)
        # Byte by byte gives the same records.
        recs, err = feed_all(data, [data[i:i + 1] for i in range(len(data))])
        assert err is None
        same(expected, recs)
        # Encoding the JSON records (and the decoded ones) gives the bytes back.
        assert b"".join(wire.encode_record(r) for r in expected) == data
        assert b"".join(wire.encode_record(r) for r in records) == data
    else:
        assert doc["expect"] == "error"
        code = doc["error"]
        assert code in wire.CODES
        for chunks in ([data], [data[i:i + 1] for i in range(len(data))]):
            recs, err = feed_all(data, chunks)
            assert err is not None, "%s: no error" % name
            assert err.code == code, (name, err.code, str(err))
            same(expected, recs)
        # truncated_stream comes from finish(), everything else from feed().
        d = wire.StreamDecoder()
        if code == "truncated_stream":
            same(expected, d.feed(data))
            with pytest.raises(WireError) as info:
                d.finish()
        else:
            with pytest.raises(WireError) as info:
                d.feed(data)
            same(expected, info.value.records)
        assert info.value.code == code
        with pytest.raises(WireError) as info:
            wire.decode_frames(data)
        assert info.value.code == code


@pytest.mark.parametrize("name", NAMES)
def test_golden_vector(name: str) -> None:
    check_vector(name)


def test_every_vector_file_is_checked() -> None:
    assert VECTORS.is_dir(), VECTORS
    seen = set()
    for path in sorted(VECTORS.glob("*.json")):
        check_vector(path.stem)
        seen.add(path.stem)
    assert seen == {p.stem for p in VECTORS.iterdir() if p.suffix == ".json"}
    assert seen == {p.stem for p in VECTORS.iterdir() if p.suffix == ".bin"}
    assert {p.suffix for p in VECTORS.iterdir()} <= {".json", ".bin"}
    assert len(seen) >= 40
    codes = set()
    for name in seen:
        doc, _ = load(name)
        if doc["expect"] == "error":
            codes.add(doc["error"])
    assert codes == set(wire.CODES), "the vectors cover every decode error code"


def ok_stream() -> Tuple[bytes, List[dict]]:
    data = b""
    records: List[dict] = []
    for name in NAMES:
        doc, b = load(name)
        if doc["expect"] == "ok":
            data += b
            records += doc["records"]
    return data, records


@pytest.mark.parametrize("seed", range(25))
def test_random_splits(seed: int) -> None:
    data, expected = ok_stream()
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, 200)))
    chunks = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
    if seed % 5 == 0:
        chunks.insert(rng.randint(0, len(chunks)), b"")  # empty feeds are harmless
    recs, err = feed_all(data, chunks)
    assert err is None
    same(expected, recs)


def test_partial_frame_is_buffered_not_returned() -> None:
    frame = wire.metric(1, 2, 3, 4.0)
    d = wire.StreamDecoder()
    assert d.feed(frame[:10]) == []
    assert d.buffered == 10
    [rec] = d.feed(frame[10:] + frame[:3])
    assert rec["value"] == 4.0
    assert d.buffered == 3
    with pytest.raises(WireError) as info:
        d.finish()
    assert info.value.code == "truncated_stream"


def test_doc_python_example() -> None:
    frame = struct.pack("<IBIqqd", 1 + 28, 0x22, 1, 100, 1_700_000_000_000_000_000, 0.5)
    assert len(frame) == 33
    assert frame.hex(" ") == ("1d 00 00 00 22 01 00 00 00 64 00 00 00 00 00 00 00 "
                              "00 00 2a 36 fe 9c 97 17 00 00 00 00 00 00 e0 3f")
    buf = bytearray(40)
    wire.METRIC_FRAME.pack_into(buf, 7, 29, 0x22, 1, 100, 1_700_000_000_000_000_000, 0.5)
    assert bytes(buf[7:40]) == frame
    assert wire.METRIC_FRAME.size == 33
    assert wire.metric(1, 100, 1_700_000_000_000_000_000, 0.5) == frame
    assert frame == load("metric")[1]

    def string(s: str) -> bytes:
        b = s.encode("utf-8")
        return struct.pack("<I", len(b)) + b

    hello = wire.frame(0x01, b"LOGD" + struct.pack("<BBBBI", 1, 0, 1, 0, 4242)
                       + bytes.fromhex("00112233445566778899aabbccddeeff") + struct.pack("<Q", 1)
                       + string("logsdk-swift") + string("0.1.0"))
    assert hello == load("hello_producer")[1]
    assert hello == wire.hello(wire.ROLE_PRODUCER, 4242, bytes.fromhex("00112233445566778899aabbccddeeff"),
                               1, "logsdk-swift", "0.1.0")


def test_value_examples_from_doc() -> None:
    assert wire.encode_value({}).hex(" ") == "07 00 00 00 00"
    assert wire.encode_value([]).hex(" ") == "06 00 00 00 00"
    assert wire.encode_value(10).hex(" ") == "03 0a 00 00 00 00 00 00 00"
    assert wire.encode_value({"a": None}).hex(" ") == "07 01 00 00 00 01 00 00 00 61 00"
    assert wire.encode_value(True) == b"\x02" and wire.encode_value(False) == b"\x01"
    assert wire.encode_value(1.0)[0] == 4 and wire.encode_value(1)[0] == 3


def test_constants() -> None:
    assert (wire.MAJOR, wire.MINOR) == (1, 0)
    assert wire.NO_STEP == -(2 ** 63)
    assert (wire.DEFAULT_MAX_FRAME, wire.NAME_LIMIT, wire.TEXT_LIMIT, wire.MAX_DEPTH, wire.MAX_COUNT) == (
        1048576, 4096, 262144, 64, 65536)
    assert [wire.HELLO, wire.WELCOME, wire.ACK, wire.FLUSH, wire.FLUSH_DONE, wire.ERROR, wire.METRIC_KEY,
            wire.CONTROL_REQUEST, wire.CONTROL_REPLY, wire.DROPS] == list(range(1, 11))
    assert [wire.RUN_START, wire.PARAMS, wire.METRIC, wire.METRIC_BATCH, wire.LOG, wire.ARTIFACT,
            wire.MODEL_INFO, wire.MODEL_VERSION, wire.DATASET, wire.RUN_END] == list(range(0x20, 0x2A))
    assert wire.LEVELS == {"TRACE": 0, "DEBUG": 1, "INFO": 2, "NOTICE": 3, "WARNING": 4, "ERROR": 5, "CRITICAL": 6}
    assert wire.Level.CRITICAL == 6 and wire.Role.CONTROL == 2 and wire.Mode.REFERENCE == 2
    assert bits(wire.CANONICAL_NAN) == 0x7FF8000000000000


# ----------------------------------------------------------------------------------------------
# Decoder details beyond the vectors
# ----------------------------------------------------------------------------------------------


def decode_error(data: bytes, **kw: Any) -> WireError:
    with pytest.raises(WireError) as info:
        wire.decode_frames(data, **kw)
    return info.value


def body_frame(kind: int, body: bytes) -> bytes:
    return struct.pack("<IB", len(body) + 1, kind) + body


def test_records_before_error_are_kept_and_decoder_is_dead() -> None:
    good = wire.ack(5) + wire.flush(6)
    d = wire.StreamDecoder()
    with pytest.raises(WireError) as info:
        d.feed(good + b"\x00\x00\x00\x00")
    assert info.value.code == "empty_frame"
    assert [r["kind"] for r in info.value.records] == ["ack", "flush"]
    with pytest.raises(WireError) as info:
        d.feed(wire.ack(1))
    assert info.value.code == "empty_frame" and info.value.records == []
    with pytest.raises(WireError) as info:
        d.finish()
    assert info.value.code == "empty_frame"


def test_length_checked_from_prefix_alone() -> None:
    d = wire.StreamDecoder(max_frame=100)
    assert d.feed(b"\x64\x00") == []
    assert d.feed(b"\x00\x00") == []  # length 100 = the limit: waits for the body
    assert d.buffered == 4
    d = wire.StreamDecoder(max_frame=100)
    assert d.feed(b"\x65\x00\x00") == []
    with pytest.raises(WireError) as info:
        d.feed(b"\x00")  # length 101: refused with no body in sight
    assert info.value.code == "frame_too_large"
    d = wire.StreamDecoder()
    assert d.feed(struct.pack("<I", wire.DEFAULT_MAX_FRAME)) == []
    with pytest.raises(WireError) as info:
        wire.StreamDecoder().feed(struct.pack("<I", wire.DEFAULT_MAX_FRAME + 1))
    assert info.value.code == "frame_too_large"
    with pytest.raises(ValueError):
        wire.StreamDecoder(max_frame=0)


def test_largest_frame_decodes() -> None:
    # A PARAMS whose length is exactly 1 MiB: a list of 4 strings (one string is at most 256 KiB).
    n = (wire.DEFAULT_MAX_FRAME - 1 - 5 - 4 * 5) // 4
    extra = (wire.DEFAULT_MAX_FRAME - 1 - 5 - 4 * 5) - 4 * n
    tree = ["a" * n] * 3 + ["a" * (n + extra)]
    f = wire.params(tree)
    assert len(f) == 4 + wire.DEFAULT_MAX_FRAME
    [rec] = wire.decode_frames(f)
    assert rec["params"] == tree
    with pytest.raises(WireError) as info:
        wire.params(tree[:3] + [tree[3] + "a"])
    assert info.value.code == "frame_too_large"
    assert decode_error(f, max_frame=wire.DEFAULT_MAX_FRAME - 1).code == "frame_too_large"


def test_unknown_kinds() -> None:
    unknown = body_frame(0x7E, b"\x01\x02\x03")
    assert decode_error(unknown).code == "unknown_kind"
    assert decode_error(body_frame(0x00, b"")).code == "unknown_kind"
    assert decode_error(body_frame(0x80, b"")).code == "unknown_kind"
    recs = wire.decode_frames(wire.ack(1) + unknown + body_frame(0x1F, b"") + wire.ack(2), skip_newer_minor=True)
    assert recs == [
        {"kind": "ack", "durable_through": 1},
        {"kind": "unknown", "raw_kind": 0x7E, "body_bytes": 3},
        {"kind": "unknown", "raw_kind": 0x1F, "body_bytes": 0},
        {"kind": "ack", "durable_through": 2},
    ]
    # The frame limit still applies to skipped frames.
    big = struct.pack("<IB", wire.DEFAULT_MAX_FRAME + 1, 0x7E)
    assert decode_error(big, skip_newer_minor=True).code == "frame_too_large"
    # Known kinds are still checked strictly.
    assert decode_error(wire.ack(1)[:-1] + b"", skip_newer_minor=True).code == "truncated_stream"
    # The flag may be turned on after WELCOME.
    d = wire.StreamDecoder()
    d.feed(wire.welcome(0, 1 << 20, "logd 9", minor=3))
    d.skip_newer_minor = True
    assert d.feed(unknown)[0]["kind"] == "unknown"


def test_fixed_bodies_truncated_and_trailing() -> None:
    for kind, size in ((wire.ACK, 8), (wire.FLUSH, 8), (wire.DROPS, 8), (wire.METRIC, 28),
                       (wire.FLUSH_DONE, 17), (wire.RUN_END, 9)):
        body = bytearray(size)
        if kind == wire.RUN_END:
            body[0] = 1
        assert len(wire.decode_frames(body_frame(kind, bytes(body)))) == 1
        assert decode_error(body_frame(kind, bytes(body[:-1]))).code == "truncated_body"
        assert decode_error(body_frame(kind, bytes(body) + b"\x00")).code == "trailing_bytes"
    # FLUSH_DONE: the status is checked as soon as it is read, before the missing tail.
    assert decode_error(body_frame(wire.FLUSH_DONE, bytes(8) + b"\x09")).code == "invalid_enum"
    assert decode_error(body_frame(wire.RUN_END, b"\x00")).code == "invalid_enum"
    assert decode_error(body_frame(wire.RUN_END, b"\x01")).code == "truncated_body"


def test_hello_check_order() -> None:
    assert decode_error(body_frame(wire.HELLO, b"LOG")).code == "truncated_body"
    assert decode_error(body_frame(wire.HELLO, b"LOGX\x01\x00")).code == "bad_magic"
    assert decode_error(body_frame(wire.HELLO, b"LOGD\x02")).code == "truncated_body"
    assert decode_error(body_frame(wire.HELLO, b"LOGD\x02\x00")).code == "unsupported_version"
    assert decode_error(body_frame(wire.HELLO, b"LOGD\x01\x00\x03")).code == "invalid_enum"
    assert decode_error(body_frame(wire.HELLO, b"LOGD\x01\x00\x01")).code == "truncated_body"
    good = wire.hello(2, 1, bytes(16), 0, "logctl", "0.1.0", minor=7)
    [rec] = wire.decode_frames(good)
    assert rec["minor"] == 7 and rec["role"] == "control"
    assert decode_error(good + b"", max_frame=10).code == "frame_too_large"
    assert decode_error(body_frame(wire.WELCOME, b"\x02\x00")).code == "unsupported_version"
    assert decode_error(wire.welcome(0, 1, "x", major=0)).code == "unsupported_version"


def test_error_and_verb_rendering() -> None:
    assert decode_error(body_frame(wire.ERROR, b"\x07\x00" + bytes(4))).code == "invalid_enum"
    assert decode_error(body_frame(wire.ERROR, b"\x00\x00" + bytes(4))).code == "invalid_enum"
    [rec] = wire.decode_frames(wire.error(6, "bye"))
    assert rec == {"kind": "error", "code": 6, "message": "bye"}
    [rec] = wire.decode_frames(wire.control_request(9, 200, {}))
    assert rec == {"kind": "control_request", "request_id": 9, "verb": "verb_200", "arguments": {}}
    assert wire.encode_record(rec) == wire.control_request(9, 200, {})
    assert decode_error(body_frame(wire.CONTROL_REPLY, b"\x01\x00\x00\x00\x05\x00")).code == "invalid_enum"


def test_strings() -> None:
    def log_with(message: bytes) -> bytes:
        return body_frame(wire.LOG, b"\x02" + bytes(8) + b"\x01\x00\x00\x00a" + struct.pack("<I", len(message)) + message)

    assert wire.decode_frames(log_with(b"\x00nul"))[0]["message"] == "\x00nul"
    assert wire.decode_frames(log_with("✓ 𝄞".encode()))[0]["message"] == "✓ 𝄞"
    for bad in (b"\xc3\x28", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xff", b"\xe2\x9c"):
        assert decode_error(log_with(bad)).code == "invalid_utf8", bad
    # Count over the limit is refused before the bytes are looked at, even if they are missing.
    key = body_frame(wire.METRIC_KEY, b"\x01\x00\x00\x00" + struct.pack("<I", 4097))
    assert decode_error(key).code == "string_too_long"
    key = body_frame(wire.METRIC_KEY, b"\x01\x00\x00\x00" + struct.pack("<I", 4096) + b"abc")
    assert decode_error(key).code == "truncated_body"
    # Exactly at the limit is fine.
    f = wire.metric_key(1, "k" * 4096, "c" * 4096, "s" * 4096)
    assert wire.decode_frames(f)[0]["key"] == "k" * 4096
    # Text fields allow more than a name.
    long_message = "m" * 5000
    assert wire.decode_frames(wire.log(0, 0, "x", long_message))[0]["message"] == long_message


def test_value_tree_limits_when_decoding() -> None:
    def params_body(b: bytes) -> bytes:
        return body_frame(wire.PARAMS, b)

    deep64 = b"\x06\x01\x00\x00\x00" * 63 + b"\x00"
    assert wire.decode_frames(params_body(deep64))[0]["params"] is not None
    deep65 = b"\x06\x01\x00\x00\x00" * 64 + b"\x00"
    assert decode_error(params_body(deep65)).code == "nesting_too_deep"
    # Depth is checked before the tag: a 65th level with an invalid tag is too deep, not invalid.
    assert decode_error(params_body(b"\x06\x01\x00\x00\x00" * 64 + b"\xff")).code == "nesting_too_deep"
    assert decode_error(params_body(b"\x06\x01\x00\x00\x00" * 63 + b"\xff")).code == "invalid_enum"
    # Depth 64 empty list is fine.
    assert wire.decode_frames(params_body(b"\x06\x01\x00\x00\x00" * 63 + b"\x06\x00\x00\x00\x00"))
    assert decode_error(params_body(b"\x08")).code == "invalid_enum"
    assert decode_error(params_body(b"")).code == "truncated_body"
    assert decode_error(params_body(b"\x03\x00")).code == "truncated_body"
    # Counts: a list needs 1 byte per element, a map 5 per entry.
    assert wire.decode_frames(params_body(b"\x06\x02\x00\x00\x00\x00\x00"))[0]["params"] == [None, None]
    assert decode_error(params_body(b"\x06\x03\x00\x00\x00\x00\x00")).code == "collection_too_large"
    one_entry = b"\x00\x00\x00\x00\x00"  # key "" -> null
    assert wire.decode_frames(params_body(b"\x07\x01\x00\x00\x00" + one_entry))[0]["params"] == {"": None}
    assert decode_error(params_body(b"\x07\x02\x00\x00\x00" + one_entry + b"\x00" * 4)).code == "collection_too_large"
    # Over 65,536 elements is refused even when the bytes are there.
    many = b"\x06" + struct.pack("<I", 65537) + b"\x00" * 65537
    assert decode_error(params_body(many)).code == "collection_too_large"
    ok = b"\x06" + struct.pack("<I", 65536) + b"\x00" * 65536
    assert len(wire.decode_frames(params_body(ok))[0]["params"]) == 65536
    # Metric batch: 28 bytes per entry.
    assert decode_error(body_frame(wire.METRIC_BATCH, struct.pack("<I", 2) + bytes(28 + 27))).code == (
        "collection_too_large")
    assert decode_error(body_frame(wire.METRIC_BATCH, struct.pack("<I", 1) + bytes(29))).code == "trailing_bytes"
    assert wire.decode_frames(wire.metric_batch([]))[0] == {"kind": "metric_batch", "metrics": []}
    # String list: 4 bytes per element.
    run = wire.run_start("r", "e", "n", ["a"], 0, 0, 1, "", [], "", "", 2, None, 0)
    bad = bytearray(run)
    i = bad.index(b"\x01\x00\x00\x00\x01\x00\x00\x00a")
    bad[i] = 200
    assert decode_error(bytes(bad)).code == "collection_too_large"


def test_duplicate_map_keys_last_wins() -> None:
    body = (b"\x07\x03\x00\x00\x00" + b"\x01\x00\x00\x00a" + b"\x03" + struct.pack("<q", 1)
            + b"\x01\x00\x00\x00b" + b"\x00" + b"\x01\x00\x00\x00a" + b"\x03" + struct.pack("<q", 3))
    [rec] = wire.decode_frames(body_frame(wire.PARAMS, body))
    assert rec["params"] == {"a": 3, "b": None}
    assert list(rec["params"]) == ["a", "b"]


def test_doubles_round_trip_by_bits() -> None:
    payload_nan = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000123))[0]
    neg_nan = struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000000))[0]
    values = [0.0, -0.0, math.inf, -math.inf, wire.CANONICAL_NAN, payload_nan, neg_nan, 5e-324, 1.7976931348623157e308]
    frames = b"".join(wire.metric(1, i, i, v) for i, v in enumerate(values))
    frames += wire.metric_batch([(2, i, i, v) for i, v in enumerate(values)])
    frames += wire.params({"v": values})
    recs = wire.decode_frames(frames)
    got = [r["value"] for r in recs[:len(values)]]
    assert [bits(v) for v in got] == [bits(v) for v in values]
    assert [bits(m["value"]) for m in recs[len(values)]["metrics"]] == [bits(v) for v in values]
    assert [bits(v) for v in recs[-1]["params"]["v"]] == [bits(v) for v in values]
    assert b"".join(wire.encode_record(r) for r in recs) == frames


def test_every_kind_round_trips() -> None:
    sha = bytes(range(32))
    frames = [
        wire.hello(1, 2 ** 32 - 1, bytes(range(16)), 2 ** 64 - 1, "c", "v"),
        wire.welcome(2 ** 64 - 1, 2 ** 32 - 1, "d"),
        wire.ack(0), wire.flush(2 ** 64 - 1), wire.flush_done(1, 1, 2),
        wire.error(3, "violation"), wire.metric_key(2 ** 32 - 1, "k", "validation", "layer1"),
        wire.control_request(1, 2, {"timeout_ms": 5}), wire.control_reply(2, 4, {"error": "bad"}),
        wire.drops(12),
        wire.run_start("r", "e", "n", ["t1", "t2"], -1, 2 ** 31 - 1, -(2 ** 31), "h", ["a", "", "ü"], "/w", "abc",
                       0, -(2 ** 63), 2 ** 63 - 1),
        wire.run_start("r", "e", "n", (), 0, 0, 1, "", (), "", "", 1, 0, 0),
        wire.params([1, 2.5, "s", None, True, False, {"nested": {"deeper": []}}, [], {}]),
        wire.metric(1, wire.NO_STEP, -1, -0.0),
        wire.metric_batch(((1, 2, 3, 4.0), (5, 6, 7, 8.5))),
        wire.log(6, -5, "", ""), wire.log(wire.Level.TRACE, 0, "l", "m"),
        wire.artifact("ctx", 7, 1, 2, "f", "/p", 2 ** 64 - 1, sha, 9),
        wire.model_info("m", 1, 2, [{"name": "fc"}]),
        wire.model_version("m", "c", wire.NO_STEP, 2, "f.pt", "/x/f.pt", 10, sha, 11),
        wire.dataset("d", "c", 1, 2, 3, False, 4),
        wire.run_end(3, 0),
    ]
    data = b"".join(frames)
    recs = wire.decode_frames(data)
    assert len(recs) == len(frames)
    for f, r in zip(frames, recs):
        assert wire.encode_record(r) == f, r
    # JSON round trip of the records (what the vector files hold) also encodes the same.
    def jsonable(x: Any) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
        if isinstance(x, dict):
            return {k: jsonable(v) for k, v in x.items()}
        if isinstance(x, list):
            return [jsonable(v) for v in x]
        return x
    for f, r in zip(frames, recs):
        assert wire.encode_record(json.loads(json.dumps(jsonable(r)))) == f
    assert recs[0]["session"] == bytes(range(16)).hex()
    assert recs[-5]["sha256"] == sha.hex()
    assert recs[11]["seed"] == 0 and recs[10]["seed"] == -(2 ** 63)
    assert recs[10]["git_dirty"] == "clean" and recs[11]["git_dirty"] == "dirty"


# ----------------------------------------------------------------------------------------------
# Encoder refusals
# ----------------------------------------------------------------------------------------------


def refused(code: str, fn: Any, *args: Any) -> None:
    with pytest.raises(WireError) as info:
        fn(*args)
    assert info.value.code == code, str(info.value)
    assert str(info.value)


def test_encoder_refusals() -> None:
    long_name = "n" * 4097
    refused("string_too_long", wire.metric_key, 1, long_name, "training", "")
    refused("string_too_long", wire.metric_key, 1, "loss", "training", "é" * 2049)  # 4098 bytes
    refused("string_too_long", wire.hello, 1, 1, bytes(16), 1, long_name, "v")
    refused("string_too_long", wire.run_start, "r", "e", "n", ["ok", long_name], 0, 0, 1, "", [], "", "", 2, None, 0)
    refused("string_too_long", wire.log, 2, 0, long_name, "m")
    refused("string_too_long", wire.log, 2, 0, "l", "m" * (wire.TEXT_LIMIT + 1))
    refused("string_too_long", wire.params, {"k" * (wire.TEXT_LIMIT + 1): 1})
    refused("string_too_long", wire.encode_string, "x" * 11, 10)
    refused("string_too_long", wire.artifact, "c", 0, 1, 2, long_name, "/p", 0, bytes(32), 0)
    assert len(wire.log(2, 0, "l", "m" * wire.TEXT_LIMIT)) == 4 + 1 + 9 + 5 + 4 + wire.TEXT_LIMIT

    nested: Any = None
    for _ in range(64):
        nested = [nested]
    refused("nesting_too_deep", wire.params, nested)
    refused("nesting_too_deep", wire.encode_value, {"a": nested})
    assert wire.encode_value(nested[0]) and wire.params(nested[0])

    refused("collection_too_large", wire.params, [0] * 65537)
    refused("collection_too_large", wire.params, {str(i): 0 for i in range(65537)})
    refused("collection_too_large", wire.run_start, "r", "e", "n", [""] * 65537, 0, 0, 1, "", [], "", "", 2, None, 0)
    refused("collection_too_large", wire.metric_batch, [(1, 1, 1, 1.0)] * 65537)
    refused("frame_too_large", wire.metric_batch, [(1, 1, 1, 1.0)] * 37449)
    assert len(wire.metric_batch([(1, 1, 1, 1.0)] * 37448)) <= 4 + wire.DEFAULT_MAX_FRAME
    refused("frame_too_large", wire.params, ["x" * 200000] * 6)
    refused("frame_too_large", wire.frame, 0x21, bytes(wire.DEFAULT_MAX_FRAME))

    with pytest.raises(ValueError):
        wire.encode_value(2 ** 63)
    with pytest.raises(ValueError):
        wire.encode_value(-(2 ** 63) - 1)
    assert wire.encode_value(2 ** 63 - 1) and wire.encode_value(-(2 ** 63))
    for bad in ({1, 2}, b"bytes", object(), {1: "int key"}, PurePosixPath("/x")):
        with pytest.raises(TypeError):
            wire.encode_value(bad)
    with pytest.raises(ValueError):
        wire.log(7, 0, "l", "m")
    with pytest.raises(ValueError):
        wire.hello(3, 1, bytes(16), 0, "c", "v")
    with pytest.raises(ValueError):
        wire.hello(1, 1, bytes(15), 0, "c", "v")
    with pytest.raises(ValueError):
        wire.artifact("c", 0, 1, 3, "f", "p", 0, bytes(32), 0)
    with pytest.raises(ValueError):
        wire.artifact("c", 0, 1, 1, "f", "p", 0, bytes(31), 0)
    with pytest.raises(ValueError):
        wire.run_end(0, 0)
    with pytest.raises(ValueError):
        wire.run_start("r", "e", "n", [], 0, 0, 1, "", [], "", "", 3, None, 0)
    with pytest.raises(ValueError):
        wire.flush_done(1, 5, 1)
    with pytest.raises(ValueError):
        wire.error(0, "x")
    with pytest.raises(ValueError):
        wire.log(2, 0, "l", "lone \udc80 surrogate")
    with pytest.raises(TypeError):
        wire.run_start("r", "e", "n", "tags-as-a-string", 0, 0, 1, "", [], "", "", 2, None, 0)
    with pytest.raises(TypeError):
        wire.log(2, 0, None, "m")
    with pytest.raises(struct.error):
        wire.ack(-1)
    with pytest.raises(struct.error):
        wire.metric_key(2 ** 32, "k", "c", "")
    with pytest.raises(struct.error):
        wire.metric(1, 2 ** 63, 0, 0.0)
    with pytest.raises(struct.error):
        wire.control_request(1, 256, {})
    with pytest.raises(ValueError):
        wire.encode_record({"kind": "unknown", "raw_kind": 0x7E, "body_bytes": 0})
    with pytest.raises(ValueError):
        wire.encode_record({"kind": "run_end", "status": "exploded", "timestamp": 0})


# ----------------------------------------------------------------------------------------------
# to_value
# ----------------------------------------------------------------------------------------------


def round_trip(tree: Any) -> Any:
    [rec] = wire.decode_frames(wire.params(tree))
    return rec["params"]


class Color(enum.Enum):
    RED = "red"
    BLUE = 2
    ODD = (1, 2)


class Big(enum.IntEnum):
    HUGE = 7


class FakeScalar:
    def __init__(self, v: Any) -> None:
        self.v = v

    def item(self) -> Any:
        return self.v


class FakeArray:
    size = 3

    def tolist(self) -> List[int]:
        return [1, 2, 3]

    def item(self) -> Any:
        raise ValueError("only size-1 arrays")


@dataclasses.dataclass
class Opt:
    lr: float = 0.1
    betas: Tuple[float, float] = (0.9, 0.99)


def test_to_value_config() -> None:
    config = {
        "path": Path("/data/train.csv"),
        "color": Color.RED,
        "blue": Color.BLUE,
        "odd": Color.ODD,
        "big": Big.HUGE,
        "tags": {"b", "a", "c"},
        "mixed": {1, "x"},
        "shape": (28, 28),
        "scalar": FakeScalar(3),
        "fscalar": FakeScalar(0.25),
        "array": FakeArray(),
        "huge": 2 ** 80,
        "neg_huge": -(2 ** 70),
        "bytes": b"\x00\xff",
        "opt": Opt(),
        "ns": argparse.Namespace(epochs=3, name="x"),
        7: "int key",
        None: "none key",
        "obj": object,
        "nested": {"deeper": [1, 2.0, None, True]},
    }
    got = round_trip(wire.to_value(config))
    mixed = got.pop("mixed")
    assert got == {
        "path": "/data/train.csv",
        "color": "red",
        "blue": 2,
        "odd": "ODD",
        "big": 7,
        "tags": ["a", "b", "c"],
        "shape": [28, 28],
        "scalar": 3,
        "fscalar": 0.25,
        "array": [1, 2, 3],
        "huge": str(2 ** 80),
        "neg_huge": str(-(2 ** 70)),
        "bytes": "00ff",
        "opt": {"lr": 0.1, "betas": [0.9, 0.99]},
        "ns": {"epochs": 3, "name": "x"},
        "7": "int key",
        "None": "none key",
        "obj": str(object),
        "nested": {"deeper": [1, 2.0, None, True]},
    }
    assert mixed == sorted([1, "x"], key=repr)
    assert type(got["nested"]["deeper"][1]) is float and type(got["big"]) is int
    assert list(got)[:3] == ["path", "color", "blue"]


def test_to_value_deep_nesting() -> None:
    deep: Any = "bottom"
    for _ in range(100):
        deep = [deep]
    v = wire.to_value({"deep": deep})
    got = round_trip(v)
    depth = 1
    node = got
    while isinstance(node, (list, dict)):
        node = node["deep"] if isinstance(node, dict) else node[0]
        depth += 1
    assert depth == wire.MAX_DEPTH
    assert isinstance(node, str) and node.startswith("[[[") and "bottom" in node
    # Exactly 64 deep stays as it is.
    ok: Any = 1
    for _ in range(63):
        ok = [ok]
    assert wire.to_value(ok) == ok
    assert round_trip(wire.to_value(ok)) == ok


def test_to_value_never_raises_and_is_encodable() -> None:
    class BadStr:
        def __str__(self) -> str:
            raise RuntimeError("no")

    class BadItem:
        def item(self) -> Any:
            raise RuntimeError("no")

        def __str__(self) -> str:
            return "bad-item"

    cyclic: List[Any] = [1]
    cyclic.append(cyclic)
    d: dict = {}
    d["self"] = d
    weird = [
        BadStr(), BadItem(), cyclic, d, "x" * (wire.TEXT_LIMIT + 10), "é" * wire.TEXT_LIMIT,
        "lone \udc80", list(range(70000)), {"k" * (wire.TEXT_LIMIT + 1): 1}, 10 ** 5000,
        frozenset({3, 1}), bytearray(b"ab"), memoryview(b"cd"), float("nan"), True, None,
        range(3), (i for i in range(2)), complex(1, 2), type, enum.Enum,
    ]
    for obj in weird:
        v = wire.to_value(obj)
        wire.encode_value(v)  # does not raise
    assert wire.to_value(BadStr()).startswith("<")
    assert wire.to_value(BadItem()) == "bad-item"
    assert wire.to_value(cyclic) == [1, "<cycle: list>"]
    assert wire.to_value(d) == {"self": "<cycle: dict>"}
    assert wire.to_value("lone \udc80") == "lone \\udc80"
    assert len(wire.to_value(list(range(70000)))) == wire.MAX_COUNT
    assert len(wire.to_value("é" * wire.TEXT_LIMIT).encode()) == wire.TEXT_LIMIT
    assert wire.to_value(frozenset({3, 1})) == [1, 3]
    assert wire.to_value(bytearray(b"ab")) == "6162" and wire.to_value(memoryview(b"cd")) == "6364"
    assert wire.to_value(True) is True and wire.to_value(None) is None
    assert wire.to_value(10 ** 5000).startswith("0x") or wire.to_value(10 ** 5000).startswith("1")
    assert wire.to_value(2 ** 63 - 1) == 2 ** 63 - 1 and wire.to_value(2 ** 63) == str(2 ** 63)
    # Shared (non-cyclic) sub-objects are not mistaken for cycles.
    shared = [1]
    assert wire.to_value([shared, shared]) == [[1], [1]]


def test_to_value_numpy_if_available() -> None:
    np = pytest.importorskip("numpy")
    v = wire.to_value({"i": np.int64(3), "f": np.float32(0.5), "b": np.bool_(True), "a": np.arange(3),
                       "m": np.zeros((2, 2))})
    assert round_trip(v) == {"i": 3, "f": 0.5, "b": True, "a": [0, 1, 2], "m": [[0.0, 0.0], [0.0, 0.0]]}


def test_wire_error_attributes() -> None:
    e = WireError("truncated_stream")
    assert e.code == "truncated_stream" and e.records == [] and str(e)
    import pickle
    e2 = pickle.loads(pickle.dumps(WireError("bad_magic", "m", [{"kind": "ack", "durable_through": 1}])))
    assert e2.code == "bad_magic" and e2.message == "m" and e2.records[0]["kind"] == "ack"


def test_python_version_support() -> None:
    # The module must stay importable on 3.9: no match statements, no runtime X | Y.
    files = sorted(Path(wire.__file__).parent.glob("*.py"))  # the package: frames, values, decoder
    assert len(files) >= 5, files
    for path in files:
        src = path.read_text(encoding="utf-8")
        assert "from __future__ import annotations" in src, path
        ast.parse(src, feature_version=(3, 9))
