import sys, os
sys.path.insert(0, "adversarial")
from harness import wire
from actions import render
I64_MIN=-(1<<63); I64_MAX=(1<<63)-1; U64_MAX=(1<<64)-1
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
out = sys.argv[1]
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
