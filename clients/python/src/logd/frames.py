"""Runs on disk as pandas DataFrames: read what logd wrote, no daemon needed.

    import logd

    df = logd.load_metrics("~/.local/share/logd/runs/mnist/2026-11-22_23-40-01_baseline")
    loss = df[(df.key == "loss") & (df.context == "training")].set_index("step")["value"]

    table = logd.load_runs(experiment="mnist")          # one row per run: params and metrics
    best = table.sort_values("loss").head()

    run = logd.read_run("baseline")                     # by path, run id, folder or run name
    run.metrics, run.config, run.summary, run.info

The files are those of docs/ON_DISK_FORMAT.md and docs/RUN_OUTPUTS.md in the logd repository:
``metrics.csv`` (and its rotated segments, oldest first), ``run.yaml``, ``config.yaml`` and
``summary.yaml``. pandas and PyYAML are needed here only (``pip install pandas pyyaml``); they are
imported when a function is called, so ``import logd`` never needs them.

The data root is ``data_root=``, else ``$LOGD_DATA_ROOT``, else ``$XDG_DATA_HOME/logd/runs``, else
``~/.local/share/logd/runs`` (logd's and logctl's default).
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

__all__ = [
    "RunData",
    "RunNotFound",
    "default_data_root",
    "find_run",
    "load_metrics",
    "load_runs",
    "read_experiment",
    "read_run",
    "run_directories",
]

METRIC_COLUMNS = ["time", "step", "context", "key", "value", "rank", "source"]
_SEGMENT = re.compile(r"^metrics\.(\d+)\.csv$")


class RunNotFound(LookupError):
    """No run, or more than one, matches the name given (the message lists the candidates)."""


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:  # pragma: no cover - exercised only where pandas is absent
        raise ImportError("logd's DataFrame loaders need pandas: pip install pandas") from None
    return pandas


def _yaml_load(path: str) -> Any:
    try:
        import yaml
    except ImportError:  # pragma: no cover - exercised only where PyYAML is absent
        raise ImportError("reading run.yaml, config.yaml and summary.yaml needs PyYAML: pip install pyyaml") from None
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        return None


def default_data_root() -> str:
    """``$LOGD_DATA_ROOT``, else ``$XDG_DATA_HOME/logd/runs``, else ``~/.local/share/logd/runs``."""
    value = os.environ.get("LOGD_DATA_ROOT")
    if value:
        return value
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg:
        return os.path.join(xdg, "logd", "runs")
    return os.path.join(os.path.expanduser("~"), ".local", "share", "logd", "runs")


def _root(data_root: Optional[str]) -> str:
    return os.path.expanduser(data_root) if data_root else default_data_root()


def run_directories(data_root: Optional[str] = None, experiment: Optional[str] = None) -> List[str]:
    """Every run directory (``<experiment>/<stamp>_<name>/`` holding a ``run.yaml``) under the
    data root, by folder name (start time first). ``experiment`` matches the experiment folder;
    :func:`load_runs` also matches run.yaml's unsanitized ``experiment``."""
    root = _root(data_root)
    found: List[str] = []
    try:
        experiments = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    for exp in experiments:
        if exp.startswith(".") or (experiment is not None and exp != experiment and not _may_hold(root, exp, experiment)):
            continue
        exp_dir = os.path.join(root, exp)
        if not os.path.isdir(exp_dir) or os.path.islink(exp_dir):
            continue
        for name in sorted(os.listdir(exp_dir)):
            run_dir = os.path.join(exp_dir, name)
            if not name.startswith(".") and os.path.isfile(os.path.join(run_dir, "run.yaml")):
                found.append(run_dir)
    return found


def _may_hold(root: str, folder: str, experiment: str) -> bool:
    """Whether the experiment folder ``folder`` can hold runs of ``experiment``: logd sanitizes
    names (bytes outside ``[A-Za-z0-9._+-]`` become ``_``) and makes clashes unique with ``_N``."""
    sanitized = re.sub(rb"[^A-Za-z0-9._+-]", b"_", experiment.encode("utf-8")).decode("ascii")
    if sanitized.startswith("."):
        sanitized = "_" + sanitized[1:]
    sanitized = sanitized[:96] or "default"
    return folder == sanitized or re.fullmatch(re.escape(sanitized) + r"_\d+", folder) is not None


def _metric_files(run_dir: str) -> List[str]:
    segments: List[Tuple[int, str]] = []
    for name in os.listdir(run_dir):
        m = _SEGMENT.match(name)
        if m:
            segments.append((int(m.group(1)), os.path.join(run_dir, name)))
    files = [path for _, path in sorted(segments)]
    live = os.path.join(run_dir, "metrics.csv")
    if os.path.exists(live):
        files.append(live)
    return files


def _complete_lines(path: str) -> bytes:
    """The file up to its last line end: a live file's last line can be momentarily incomplete."""
    with open(path, "rb") as f:
        data = f.read()
    end = data.rfind(b"\n")
    return data[: end + 1] if end >= 0 else b""


def load_metrics(run_dir: str) -> Any:
    """Every metric sample of a run as a DataFrame, rotated segments oldest first, then the live
    ``metrics.csv``. Columns: ``time`` (UTC datetimes), ``step`` (``Int64``, ``<NA>`` for a sample
    without a step), ``context``, ``key``, ``value`` (float; ``nan``, ``inf``, ``-inf`` as such),
    ``rank`` (int), ``source`` (``""`` when none). Rows in file order (per producer as sent;
    ranks interleave), so sort by ``step`` or ``time`` as needed."""
    pd = _pandas()
    run_dir = os.path.expanduser(run_dir)
    if not os.path.isdir(run_dir):
        raise RunNotFound("no run directory at %s" % run_dir)
    frames = []
    for path in _metric_files(run_dir):
        text = _complete_lines(path)
        if not text.strip():
            continue
        frames.append(pd.read_csv(
            io.BytesIO(text), dtype={"context": str, "key": str, "source": str, "value": str, "step": str},
            keep_default_na=False, na_filter=False))
    if frames:
        df = pd.concat(frames, ignore_index=True)
    else:
        df = pd.DataFrame({c: pd.Series(dtype=str) for c in METRIC_COLUMNS})
    df = df[METRIC_COLUMNS]
    df["time"] = pd.to_datetime(df["time"], utc=True)
    df["step"] = pd.to_numeric(df["step"].replace("", None)).astype("Int64")
    # float() reads every value logd writes (nan, -nan, inf, -inf, 1e-05, ...).
    df["value"] = df["value"].map(float).astype("float64")
    df["rank"] = pd.to_numeric(df["rank"]).astype("int64")
    return df


@dataclass
class RunData:
    """One run read from disk (:func:`read_run`)."""

    directory: str
    #: run.yaml: identity and lifecycle (run_id, name, experiment, status, start_time, ...).
    info: Dict[str, Any]
    #: config.yaml: the merged params, as logged (nested dicts, lists, typed scalars).
    config: Dict[str, Any]
    #: summary.yaml's ``metrics``: {context: {key: {count, first_step, last_step, last, min, max}}}.
    summary: Dict[str, Dict[str, Dict[str, Any]]]
    _metrics: Any = field(default=None, repr=False)

    @property
    def metrics(self) -> Any:
        """Every sample as a DataFrame (:func:`load_metrics`), read on first use."""
        if self._metrics is None:
            self._metrics = load_metrics(self.directory)
        return self._metrics

    @property
    def run_id(self) -> str:
        return str(self.info.get("run_id", ""))


def _read(run_dir: str) -> RunData:
    info = _yaml_load(os.path.join(run_dir, "run.yaml")) or {}
    config = _yaml_load(os.path.join(run_dir, "config.yaml")) or {}
    summary = _yaml_load(os.path.join(run_dir, "summary.yaml")) or {}
    metrics = summary.get("metrics") if isinstance(summary, dict) else None
    return RunData(directory=run_dir, info=info if isinstance(info, dict) else {},
                   config=config if isinstance(config, dict) else {},
                   summary=metrics if isinstance(metrics, dict) else {})


def find_run(run: str, data_root: Optional[str] = None) -> str:
    """The directory of ``run``, tried in this order: a path to a run directory (absolute, relative
    to the data root, or to the current directory); an exact run id; a run folder's name
    (``2026-11-22_23-40-01_baseline``); an ``experiment/name`` or a run's name; a prefix of exactly
    one run id. Raises :class:`RunNotFound` when nothing matches or several runs do."""
    root = _root(data_root)
    for candidate in (os.path.expanduser(run), os.path.join(root, run)):
        if os.path.isfile(os.path.join(candidate, "run.yaml")):
            return os.path.abspath(candidate)
    dirs = run_directories(root)
    infos = [(d, _yaml_load(os.path.join(d, "run.yaml")) or {}) for d in dirs]

    def one(matches: List[str], what: str) -> Optional[str]:
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise RunNotFound("%r matches %d runs (%s): %s" % (run, len(matches), what, ", ".join(
                os.path.relpath(m, root) for m in matches)))
        return None

    rules: List[Tuple[str, Callable[[str, Dict[str, Any]], bool]]] = [
        ("run id", lambda d, i: str(i.get("run_id")) == run),
        ("folder name", lambda d, i: os.path.basename(d) == run),
        ("experiment/name", lambda d, i: "/" in run and "%s/%s" % (i.get("experiment"), i.get("name")) == run),
        ("name", lambda d, i: str(i.get("name")) == run),
        ("run id prefix", lambda d, i: str(i.get("run_id", "")).startswith(run)),
    ]
    for what, match in rules:
        hit = one([d for d, i in infos if isinstance(i, dict) and match(d, i)], what)
        if hit is not None:
            return hit
    raise RunNotFound("no run %r under %s" % (run, root))


def read_run(run: str, data_root: Optional[str] = None) -> RunData:
    """One run: ``info`` (run.yaml), ``config`` (config.yaml), ``summary`` (summary.yaml) as dicts,
    and ``metrics`` (every sample, a DataFrame). ``run`` is a run directory, a run id (or a
    unique prefix), a run folder's name, a run's name or ``experiment/name`` (:func:`find_run`)."""
    return _read(find_run(run, data_root))


def _flatten(tree: Any, prefix: str = "") -> Iterator[Tuple[str, Any]]:
    if isinstance(tree, dict) and tree:
        for k, v in tree.items():
            yield from _flatten(v, "%s.%s" % (prefix, k) if prefix else str(k))
    elif prefix:
        yield prefix, tree


def load_runs(data_root: Optional[str] = None, experiment: Optional[str] = None, stat: str = "last") -> Any:
    """One row per run (``synthesize_results``' table), oldest start first. Columns: ``run_id``,
    ``experiment``, ``name``, ``status``, ``start_time``, ``end_time`` (UTC datetimes), ``directory``;
    then every param of config.yaml, flattened to dotted keys (``optimizer.lr``; lists stay lists);
    then every metric's ``stat`` (``last``, ``min``, ``max`` or ``count``) from summary.yaml.
    A metric column is named by its key when that key is in one context only, else
    ``context/key`` (as ``logctl compare`` names them). A value a run lacks is missing (NaN/None).
    ``experiment`` matches run.yaml's ``experiment`` or the experiment folder."""
    if stat not in ("last", "min", "max", "count"):
        raise ValueError("stat must be last, min, max or count, not %r" % stat)
    pd = _pandas()
    root = _root(data_root)
    runs = [_read(d) for d in run_directories(root, experiment)]
    if experiment is not None:
        runs = [r for r in runs if r.info.get("experiment") == experiment
                or os.path.basename(os.path.dirname(r.directory)) == experiment]
    identity = ["run_id", "experiment", "name", "status", "start_time", "end_time", "directory"]
    params: List[str] = []
    for r in runs:
        for k, _ in _flatten(r.config):
            if k not in params and k not in identity:
                params.append(k)
    taken = set(identity) | set(params)
    contexts: Dict[str, Set[str]] = {}
    for r in runs:
        for context, keys in r.summary.items():
            for key in (keys or {}):
                contexts.setdefault(str(key), set()).add(str(context))

    def column(context: str, key: str) -> str:
        # A bare key that a param or an identity column already names gets its context too.
        if len(contexts.get(key, ())) == 1 and key not in taken:
            return key
        return "%s/%s" % (context, key)

    rows: List[Dict[str, Any]] = []
    metrics: List[str] = []
    for r in runs:
        row: Dict[str, Any] = {k: r.info.get(k) for k in identity}
        row["directory"] = os.path.relpath(r.directory, root)
        for k, v in _flatten(r.config):
            if k not in identity:
                row[k] = v
        for context, keys in r.summary.items():
            for key, s in (keys or {}).items():
                name = column(str(context), str(key))
                if name not in metrics:
                    metrics.append(name)
                row[name] = s.get(stat) if isinstance(s, dict) else None
        rows.append(row)
    df = pd.DataFrame(rows, columns=identity + params + metrics)
    for t in ("start_time", "end_time"):
        df[t] = pd.to_datetime(df[t], utc=True)
    for m in metrics:
        df[m] = pd.to_numeric(df[m].map(lambda v: float("nan") if v is None else v), errors="coerce")
    return df.sort_values("start_time", kind="stable", na_position="last").reset_index(drop=True)


def read_experiment(name: str, data_root: Optional[str] = None, stat: str = "last") -> Any:
    """The runs of one experiment, one row each (:func:`load_runs` with ``experiment=name``)."""
    return load_runs(data_root, experiment=name, stat=stat)
