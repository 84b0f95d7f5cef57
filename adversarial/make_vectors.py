#!/usr/bin/env python3
"""Writes the hand-made regression inputs (run from the repository root).

    adversarial/make_vectors.py --daemon   vectors/fuzz-daemon/*.txt: one action script per crash
                                           site the daemon fuzzer found on main (issue 13), built
                                           by hand so that each is short and readable
    adversarial/make_vectors.py --decoder  vectors/fuzz-regressions/NAME.CODE.bin: edge inputs of
                                           the Wire decoder, named by the error code the Python
                                           codec (held to the golden vectors) reports for them
"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
from actions import render  # noqa: E402
from harness import wire  # noqa: E402

I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1
U64_MAX = (1 << 64) - 1


def daemon(out):
    def ph(session, first=1, minor=0):
        return wire.hello(1, 1, session, first, "adv", "1", minor=minor)
    def rs(run="r0", start=1_700_000_000_000_000_000, rank=0, world=1):
        return wire.run_start(run, "exp", "name", [], rank, rank, world, "h", ["a"], "/", "", 2, None, start)
    def ch(): return wire.hello(2, 1, bytes(16), 0, "adv", "1")
    S1=bytes.fromhex("11"*16); S2=bytes.fromhex("22"*16)
    cases = {
     "flush-timeout-overflow": ("LogdCore/Loop/Server+Control.swift:37", "control flush with timeout_ms 10^13 (as logctl flush --timeout 10000000000 sends) (timeout_ms x 10^6 overflows Int64)",
       [("send","1",ch().hex()),("send","1",wire.control_request(1,2,{"timeout_ms":10**13}).hex())]),
     "drops-sum-overflow": ("LogdCore/Loop/Server+Control.swift:65", "two sessions report DROPS 2^63-1 and 2; status sums them (UInt64 overflow)",
       [("send","1",ph(S1).hex()),("send","1",rs().hex()),("send","1",wire.drops(U64_MAX).hex()),
        ("send","2",ph(S2).hex()),("send","2",rs("r1").hex()),("send","2",wire.drops(2).hex())]),
     "first-seq-max": ("LogdCore/Loop/Server+Records.swift:122", "HELLO first_seq 2^64-1, then one data record (nextSeq += 1 overflows)",
       [("send","1",ph(S1, U64_MAX).hex()),("send","1",rs().hex())]),
     "start-time-int64-min": ("LogdCore/Support/TimeFormat.swift:13", "RUN_START start_time INT64_MIN (nanos - 999_999_999 overflows when run.yaml formats it)",
       [("send","1",ph(S1).hex()),("send","1",rs(start=I64_MIN).hex()),("send","1",wire.run_end(1,0).hex())]),
     "first-seq-2p63-checkpoint": ("LogdCore/Writer/RunFiles.swift:198", "HELLO first_seq 2^63: the checkpoint's Int64(durableSeq) traps",
       [("send","1",ph(S1, 1<<63).hex()),("send","1",rs().hex()),("send","1",wire.flush(1).hex())]),
     "drops-max-restart": ("LogdCore/Writer/RunFiles.swift:236", "three ranks of one run report DROPS 2^63-1 each (run.yaml sums them), then kill -9 and restart: the poisoned data root (issue 13)",
       [a for r in range(3) for a in (("send",str(r+1),ph(bytes([r+1])*16).hex()),("send",str(r+1),rs(rank=r, world=3).hex()),("send",str(r+1),wire.drops(I64_MAX).hex()))] + [("sync",),("kill",),("start",)]),
     "start-time-min-restart": ("LogdCore/Support/TimeFormat.swift:13", "RUN_START start_time INT64_MIN, kill -9, restart (issue 13: crashes every restart)",
       [("send","1",ph(S1).hex()),("send","1",rs(start=I64_MIN).hex()),("sync",),("kill",),("start",)]),
    }
    for name,(site,desc,acts) in cases.items():
        hdr=["logd daemon fuzz regression (format: adversarial/actions.py)", "site: %s" % site, "what: %s" % desc, "written by hand from issue 13 / fuzz_daemon.py findings"]
        open(os.path.join(out, name + ".txt"), "w").write(render(acts, hdr))
    art = wire.artifact("training", 1, 2, 1, "f.txt", "/tmp/f.txt", 0, bytes(32), 1_700_000_000_000_000_000)
    acts = [("send","1",ph(S1).hex()),("send","1",rs().hex()),("sync",),("close","1"),
            ("send","2",ph(S1, 1<<63).hex()),("sendfd","2",art.hex()),("send","2",wire.flush(1).hex())]
    hdr=["logd daemon fuzz regression (format: adversarial/actions.py)", "site: LogdCore/Writer/RunFiles.swift:199",
         "what: a session resumed with first_seq 2^63 whose first frame is a copy-mode ARTIFACT: received_seq 2^63 in the checkpoint",
         "written by hand from fuzz_daemon.py seed 2 findings"]
    open(os.path.join(out, "received-seq-checkpoint.txt"), "w").write(render(acts, hdr))


def decoder(out):
    hello = wire.hello(1, 1, bytes(range(16)), 1, "fuzz", "1")
    def f(kind, body): return struct.pack("<IB", len(body)+1, kind) + body
    cases = {
     "hello-cut-inside-client-name": hello[:50],
     "length-prefix-limit-plus-one": hello + struct.pack("<I", (1 << 20) + 1) + b"\x22",
     "length-prefix-u32-max-after-records": hello + wire.metric(1, 1, 1, 1.0) + b"\xff\xff\xff\xff",
     "kind-0x80-reserved": hello + f(0x80, b"\x00" * 8),
     "params-depth-65": hello + f(0x21, b"\x06\x01\x00\x00\x00" * 64 + b"\x00"),
     "metric-batch-count-wraps-u32": hello + f(0x23, struct.pack("<I", 153391690) + b"\x00" * 24),
     "metric-key-string-u32-max": hello + f(0x07, struct.pack("<I", 1) + b"\xff\xff\xff\xff"),
     "params-map-count-u32-max": hello + f(0x21, b"\x07\xff\xff\xff\xff"),
     "empty-frame-after-valid": hello + wire.metric(1, 1, 1, 1.0) + b"\x00\x00\x00\x00",
     "overlong-utf8-map-key": hello + f(0x21, b"\x07\x01\x00\x00\x00" + struct.pack("<I", 2) + b"\xc0\xaf" + b"\x00"),
     "extreme-integers-decode": hello + wire.run_start("r", "e", "n", [], -(1<<31), -(1<<31), -(1<<31), "h", [], "", "", 2, I64_MIN, I64_MIN)
        + wire.metric((1<<32)-1, I64_MIN, I64_MIN, float("nan")) + wire.drops(U64_MAX) + wire.flush(U64_MAX)
        + wire.run_end(1, (1<<63)-1) + wire.control_request((1<<32)-1, 2, {"timeout_ms": (1<<63)-1}),
     "run-end-status-0": hello + f(0x29, b"\x00" + b"\x00" * 8),
     "trailing-byte-in-metric": hello + f(0x22, b"\x00" * 29),
    }
    for name, data in cases.items():
        d = wire.StreamDecoder()
        try:
            d.feed(data); d.finish(); code = "ok"
        except wire.WireError as e:
            code = e.code
        path = os.path.join(out, "%s.%s.bin" % (name, code))
        open(path, "wb").write(data)
        print(path, len(data))


if __name__ == "__main__":
    if "--daemon" in sys.argv:
        daemon("vectors/fuzz-daemon")
    if "--decoder" in sys.argv:
        decoder("vectors/fuzz-regressions")
