#!/usr/bin/env python3
"""Replays daemon fuzz inputs (vectors/fuzz-daemon/*.txt, format: adversarial/actions.py)
against a fresh logd each and says whether it survived.

    adversarial/replay.py [--logd PATH] [--trace] FILE_OR_DIR...

Exit status 0 when every input leaves logd running and answering status, else 1. ``--trace``
prints the crashed thread of the daemon's backtrace.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from actions import parse, replay  # noqa: E402
from harness import logd_binary  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--logd", default=logd_binary())
    ap.add_argument("--trace", action="store_true")
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()
    if not args.logd:
        print("replay: no logd binary (set LOGD_BIN or --logd)", file=sys.stderr)
        return 2
    files = []
    for p in map(Path, args.paths):
        files += sorted(p.glob("*.txt")) if p.is_dir() else [p]
    failed = 0
    for f in files:
        e = replay(args.logd, parse(f.read_text()))
        if e is None:
            print("ok       %s" % f)
        else:
            failed += 1
            print("CRASH    %s: %s at %s: %s" % (f, e.kind, e.site, e.message))
            if args.trace:
                start = e.stderr.find(" crashed:\n")
                print(e.stderr[max(0, start - 200): start + 3000] if start >= 0 else e.stderr[-3000:])
    print("%d inputs, %d crashed" % (len(files), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
