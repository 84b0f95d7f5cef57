"""``python -m logd``: the daemon's status, and runs read from disk, where logctl is not installed.

    python -m logd status [--socket PATH] [--json]
    python -m logd runs [--data-root DIR] [--experiment E] [--json]
    python -m logd show RUN [--data-root DIR] [--json]

``status`` asks the daemon (``$LOGD_SOCKET``, else the default socket); ``runs`` and ``show`` read
the run directories alone, no daemon needed (``$LOGD_DATA_ROOT``, else the default data root), and
need PyYAML. ``RUN`` is a run directory, a run id or a unique prefix of one, a run folder's name,
a run's name or ``experiment/name``. Exit status as logctl's: 0 success, 1 failed, 2 usage,
3 logd not running, 4 run not found.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, List, Optional, Sequence

from . import control, frames

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_NOT_FOUND = 4


def _json_safe(value: Any) -> Any:
    """Non-finite floats as the strings "nan", "inf", "-inf" (as logctl's JSON); dates as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _print_json(value: Any) -> None:
    print(json.dumps(_json_safe(value), indent=2, ensure_ascii=False))


def _table(rows: List[List[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "%.6g" % value
    return str(value)


def cmd_status(args: argparse.Namespace) -> int:
    try:
        s = control.status(args.socket)
    except control.ControlError as exc:
        print("logd: %s" % exc, file=sys.stderr)
        return EXIT_NOT_RUNNING if str(exc).startswith("cannot connect") else EXIT_FAILED
    if args.json:
        _print_json(s)
        return 0
    totals = s.get("totals") or {}
    print("%s (pid %s), up %.0f s" % (s.get("version"), s.get("pid"), float(s.get("uptime_s") or 0)))
    print("socket     %s" % s.get("socket"))
    print("data root  %s" % s.get("data_root"))
    print("connections %d, runs %d, records %s (%s/s), dropped %s, write errors %s" % (
        len(s.get("connections") or []), len(s.get("runs") or []), totals.get("records"),
        _number(totals.get("records_per_s")), totals.get("records_dropped"), totals.get("write_errors")))
    runs = s.get("runs") or []
    if runs:
        rows = [["RUN ID", "EXPERIMENT", "NAME", "STATUS", "PRODUCERS", "RECORDS"]]
        rows += [[str(r.get(k)) for k in ("run_id", "experiment", "name", "status", "producers", "records")]
                 for r in runs]
        print(_table(rows))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    root = args.data_root or frames.default_data_root()
    runs = []
    for d in frames.run_directories(root, args.experiment):
        r = frames._read(d)
        if args.experiment is not None and r.info.get("experiment") != args.experiment \
                and os.path.basename(os.path.dirname(d)) != args.experiment:
            continue
        runs.append(r)
    runs.sort(key=lambda r: str(r.info.get("start_time") or ""))
    listing = [{"run_id": r.info.get("run_id"), "experiment": r.info.get("experiment"),
                "name": r.info.get("name"), "status": r.info.get("status"),
                "start_time": r.info.get("start_time"), "end_time": r.info.get("end_time"),
                "directory": os.path.relpath(r.directory, root)} for r in runs]
    if args.json:
        _print_json(listing)
        return 0
    if not listing:
        print("no runs under %s" % root)
        return 0
    rows = [["START", "EXPERIMENT", "NAME", "STATUS", "RUN ID", "DIRECTORY"]]
    rows += [[str(x[k] if x[k] is not None else "-") for k in
              ("start_time", "experiment", "name", "status", "run_id", "directory")] for x in listing]
    print(_table(rows))
    return 0


def _flat(tree: Any, prefix: str = "") -> List[List[str]]:
    if isinstance(tree, dict) and tree:
        out: List[List[str]] = []
        for k, v in tree.items():
            out += _flat(v, "%s.%s" % (prefix, k) if prefix else str(k))
        return out
    # One line per value, whatever it holds (a multi-line string stays on its line).
    return [[prefix, json.dumps(_json_safe(tree), ensure_ascii=False) if not isinstance(tree, str) else
             json.dumps(tree, ensure_ascii=False) if ("\n" in tree or tree != tree.strip()) else tree]]


def cmd_show(args: argparse.Namespace) -> int:
    try:
        r = frames.read_run(args.run, args.data_root)
    except frames.RunNotFound as exc:
        print("logd: %s" % exc, file=sys.stderr)
        return EXIT_NOT_FOUND
    if args.json:
        _print_json({"directory": r.directory, "info": r.info, "config": r.config, "summary": r.summary})
        return 0
    for key in ("run_id", "name", "experiment", "status", "start_time", "end_time", "host", "user"):
        print("%-11s %s" % (key, r.info.get(key) if r.info.get(key) is not None else "-"))
    print("%-11s %s" % ("path", r.directory))
    print("\nconfig")
    config = _flat(r.config)
    print(_table([["  " + k, v] for k, v in config]) if config else "  -")
    print("\nmetrics")
    rows = [["  CONTEXT/KEY", "COUNT", "LAST", "MIN", "MAX", "STEPS"]]
    for context, keys in r.summary.items():
        for key, s in (keys or {}).items():
            s = s if isinstance(s, dict) else {}
            steps = "-" if s.get("first_step") is None else "%s..%s" % (s.get("first_step"), s.get("last_step"))
            rows.append(["  %s/%s" % (context, key), _number(s.get("count")), _number(s.get("last")),
                         _number(s.get("min")), _number(s.get("max")), steps])
    print(_table(rows) if len(rows) > 1 else "  -")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m logd",
        description="The logd daemon's status, and runs read from disk (no daemon needed).",
        epilog="Exit status: 0 success, 1 failed, 2 usage, 3 logd not running, 4 run not found.")
    sub = p.add_subparsers(dest="command", metavar="{status,runs,show}")
    sub.required = True
    s = sub.add_parser("status", help="what the daemon is doing (connections, runs, totals)")
    s.add_argument("--socket", help="logd's socket (default: $LOGD_SOCKET, else the default socket)")
    s.add_argument("--json", action="store_true", help="the whole status document as JSON")
    s.set_defaults(func=cmd_status)
    r = sub.add_parser("runs", help="the runs on disk, oldest start first")
    r.add_argument("--data-root", help="where the runs are (default: $LOGD_DATA_ROOT, else the default)")
    r.add_argument("--experiment", help="only runs of this experiment")
    r.add_argument("--json", action="store_true", help="a JSON list")
    r.set_defaults(func=cmd_runs)
    w = sub.add_parser("show", help="one run: identity, config, metric summaries")
    w.add_argument("run", help="run directory, run id (or prefix), folder name, name or experiment/name")
    w.add_argument("--data-root", help="where the runs are (default: $LOGD_DATA_ROOT, else the default)")
    w.add_argument("--json", action="store_true", help="info, config and summary as JSON")
    w.set_defaults(func=cmd_show)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ImportError as exc:
        print("logd: %s" % exc, file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # `python -m logd runs | head`
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
