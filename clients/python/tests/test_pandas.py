"""Runs on disk as pandas DataFrames (logd.load_metrics, load_runs, read_run, read_experiment):
on hand-written run directories in the documented format (docs/ON_DISK_FORMAT.md, RUN_OUTPUTS.md),
and on what the real daemon wrote. Skipped without pandas, except under CI (CI=true)."""

from __future__ import annotations

import math
import os
import textwrap

import pytest

try:
    import pandas as pd
except ImportError:
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("pandas is not installed (pip install pandas)", allow_module_level=True)

import logd
from logd import frames


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def make_run(root, experiment_folder, folder, run_id, name, experiment, start, config, summary,
             metrics_segments=(), live="time,step,context,key,value,rank,source\n", status="finished"):
    d = os.path.join(root, experiment_folder, folder)
    write(os.path.join(d, "run.yaml"), textwrap.dedent("""\
        ---
        run_id: %s
        name: %s
        experiment: %s
        directory: '%s/%s'
        status: %s
        start_time: '%s'
        end_time: null
        host: node
        user: ana
        """) % (run_id, name, experiment, experiment_folder, folder, status, start))
    write(os.path.join(d, "config.yaml"), config)
    write(os.path.join(d, "summary.yaml"), summary)
    for i, text in enumerate(metrics_segments, 1):
        write(os.path.join(d, "metrics.%06d.csv" % i), text)
    write(os.path.join(d, "metrics.csv"), live)
    return d


HEADER = "time,step,context,key,value,rank,source\n"


@pytest.fixture
def root(tmp_path):
    r = str(tmp_path / "runs")
    make_run(
        r, "sweep", "2026-11-22_23-40-01_lr-a", "aaaa1111", "lr-a", "sweep", "2026-11-22T22:40:01.123Z",
        "---\noptimizer:\n  name: sgd\n  lr: 0.1\nbatch_size: 64\nlayers:\n- 3\n- 4\n",
        textwrap.dedent("""\
            ---
            run_id: aaaa1111
            metric_samples: 5
            metrics:
              training:
                loss:
                  count: 4
                  first_step: 0
                  last_step: 3
                  last: 0.5
                  min: 0.5
                  max: 2.0
              validation:
                loss:
                  count: 1
                  first_step: null
                  last_step: null
                  last: 0.7
                  min: 0.7
                  max: 0.7
                accuracy:
                  count: 1
                  first_step: 3
                  last_step: 3
                  last: .nan
                  min: null
                  max: null
            """),
        metrics_segments=[
            HEADER + "2026-11-22T22:40:01.123Z,0,training,loss,2.0,0,\n"
            "2026-11-22T22:40:01.200Z,1,training,loss,1.0,0,\n",
            HEADER + "2026-11-22T22:40:02.000Z,2,training,loss,inf,1,\"encoder.block 1\"\n",
        ],
        live=HEADER + "2026-11-22T22:40:03.000Z,3,training,loss,0.5,0,\n"
        "2026-11-22T22:40:09.000Z,,validation,loss,0.7,0,\n"
        "2026-11-22T22:40:09.000Z,3,validation,accuracy,-nan,0,\n"
        "2026-11-22T22:40:09.000Z,3,training,\"grad_norm,layer1\",1e-05,0,\" padded \"\n"
        "2026-11-22T22:40:09.500Z,4,training,loss,0.4",  # a live file's incomplete last line
    )
    make_run(
        r, "sweep", "2026-11-22_23-50-00_lr-b", "bbbb2222", "lr-b", "sweep", "2026-11-22T22:50:00.000Z",
        "---\noptimizer:\n  name: sgd\n  lr: 0.01\nbatch_size: 64\n",
        "---\nrun_id: bbbb2222\nmetric_samples: 1\nmetrics:\n  training:\n    loss:\n      count: 1\n"
        "      first_step: 0\n      last_step: 0\n      last: 0.25\n      min: 0.25\n      max: 0.25\n",
        live=HEADER + "2026-11-22T22:50:01.000Z,0,training,loss,0.25,0,\n", status="running")
    # An experiment whose name logd had to sanitize ("my exp" -> my_exp), and another run named lr-a.
    make_run(r, "my_exp", "2026-11-23_08-00-00_lr-a", "cccc3333", "lr-a", "my exp", "2026-11-23T07:00:00.000Z",
             "--- {}\n", "---\nrun_id: cccc3333\nmetric_samples: 0\nmetrics: {}\n")
    os.makedirs(os.path.join(r, ".logd", "active"))  # internal: never a run
    return r


def test_load_metrics_reads_segments_in_order_with_documented_types(root):
    d = os.path.join(root, "sweep", "2026-11-22_23-40-01_lr-a")
    df = logd.load_metrics(d)
    assert list(df.columns) == ["time", "step", "context", "key", "value", "rank", "source"]
    # Segments oldest first, then the live file; its incomplete last line is left out.
    assert len(df) == 7
    assert list(df["step"].astype(object).where(df["step"].notna(), None)) == [0, 1, 2, 3, None, 3, 3]
    assert str(df["step"].dtype) == "Int64"
    assert str(df["time"].dt.tz) == "UTC"
    assert df["time"].iloc[0] == pd.Timestamp("2026-11-22T22:40:01.123Z")
    assert df["value"].dtype == "float64"
    values = list(df["value"])
    assert values[:2] == [2.0, 1.0] and values[2] == math.inf and values[6] == 1e-05
    assert math.isnan(values[5])
    assert list(df["key"]) == ["loss"] * 5 + ["accuracy", "grad_norm,layer1"]
    assert list(df["context"])[4:6] == ["validation", "validation"]
    assert list(df["rank"]) == [0, 0, 1, 0, 0, 0, 0]
    assert list(df["source"]) == ["", "", "encoder.block 1", "", "", "", " padded "]


def test_load_metrics_of_a_run_without_samples_is_empty_with_the_columns(root):
    df = logd.load_metrics(os.path.join(root, "my_exp", "2026-11-23_08-00-00_lr-a"))
    assert len(df) == 0
    assert list(df.columns) == ["time", "step", "context", "key", "value", "rank", "source"]
    with pytest.raises(logd.RunNotFound):
        logd.load_metrics(os.path.join(root, "nope"))


def test_load_runs_one_row_per_run_params_and_metrics(root):
    df = logd.load_runs(root)
    assert list(df["run_id"]) == ["aaaa1111", "bbbb2222", "cccc3333"]  # by start time
    assert list(df.columns[:7]) == ["run_id", "experiment", "name", "status", "start_time", "end_time", "directory"]
    assert list(df["directory"]) == ["sweep/2026-11-22_23-40-01_lr-a", "sweep/2026-11-22_23-50-00_lr-b",
                                     "my_exp/2026-11-23_08-00-00_lr-a"]
    assert list(df["status"]) == ["finished", "running", "finished"]
    assert df["start_time"].iloc[1] == pd.Timestamp("2026-11-22T22:50:00Z")
    # Params flattened to dotted keys; a list stays a list; a run without the param has NaN.
    assert list(df["optimizer.lr"][:2]) == [0.1, 0.01] and pd.isna(df["optimizer.lr"][2])
    assert df["layers"][0] == [3, 4]
    # Metrics named as logctl compare names them: loss is in two contexts, accuracy in one.
    assert {"training/loss", "validation/loss", "accuracy"} <= set(df.columns)
    assert "loss" not in df.columns
    assert list(df["training/loss"][:2]) == [0.5, 0.25] and pd.isna(df["training/loss"][2])
    assert math.isnan(df["accuracy"][0])
    assert df["validation/loss"].dtype == "float64"

    counts = logd.load_runs(root, stat="count")
    assert list(counts["training/loss"][:2]) == [4, 1]
    assert logd.load_runs(root, stat="max")["training/loss"][0] == 2.0
    with pytest.raises(ValueError):
        logd.load_runs(root, stat="median")


def test_read_experiment_matches_the_name_as_logged_or_its_folder(root):
    sweep = logd.read_experiment("sweep", data_root=root)
    assert list(sweep["run_id"]) == ["aaaa1111", "bbbb2222"]
    # Only params of this experiment's runs become columns.
    assert "optimizer.lr" in sweep.columns
    assert list(logd.read_experiment("my exp", data_root=root)["run_id"]) == ["cccc3333"]
    assert list(logd.read_experiment("my_exp", data_root=root)["run_id"]) == ["cccc3333"]
    empty = logd.read_experiment("nothing", data_root=root)
    assert len(empty) == 0 and "run_id" in empty.columns


def test_data_root_defaults_follow_logd(root, monkeypatch):
    monkeypatch.setenv("LOGD_DATA_ROOT", root)
    assert frames.default_data_root() == root
    assert len(logd.load_runs()) == 3
    monkeypatch.delenv("LOGD_DATA_ROOT")
    monkeypatch.setenv("XDG_DATA_HOME", "/x")
    assert frames.default_data_root() == "/x/logd/runs"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", "/home/ana")
    assert frames.default_data_root() == "/home/ana/.local/share/logd/runs"


def test_read_run_finds_a_run_by_each_kind_of_name(root):
    a = os.path.join(root, "sweep", "2026-11-22_23-40-01_lr-a")
    for name in (a, "sweep/2026-11-22_23-40-01_lr-a", "aaaa1111", "aaaa", "2026-11-22_23-40-01_lr-a", "sweep/lr-a"):
        run = logd.read_run(name, data_root=root)
        assert run.directory == a, name
    run = logd.read_run("aaaa1111", data_root=root)
    assert run.run_id == "aaaa1111" and run.info["status"] == "finished"
    assert run.config == {"optimizer": {"name": "sgd", "lr": 0.1}, "batch_size": 64, "layers": [3, 4]}
    assert run.summary["training"]["loss"]["last"] == 0.5
    assert len(run.metrics) == 7
    assert logd.read_run("lr-b", data_root=root).run_id == "bbbb2222"
    # Two runs are named lr-a: an error that names both, never a guess.
    with pytest.raises(logd.RunNotFound) as err:
        logd.read_run("lr-a", data_root=root)
    assert "sweep/2026-11-22_23-40-01_lr-a" in str(err.value) and "my_exp/2026-11-23_08-00-00_lr-a" in str(err.value)
    with pytest.raises(logd.RunNotFound):
        logd.read_run("zzzz", data_root=root)


def test_what_the_daemon_wrote_loads_back_as_logged(daemon):
    run = logd.Run(experiment="frames", name="e2e", config={"opt": {"lr": 0.001}, "seed": 7},
                   run_id="frames-e2e-1", socket=daemon.socket)
    expected = []
    for step in range(50):
        run.log_metric("loss", 1.0 / (step + 1), step)
        expected.append(("training", "loss", step, 1.0 / (step + 1)))
    run.log_metric("acc", float("nan"), 49, context="validation")
    run.log_metric("lr", 1e-3)  # no step
    assert run.finish(timeout=20).completed

    d = daemon.run_dir("frames")
    df = logd.load_metrics(d)
    got = [(c, k, None if pd.isna(s) else int(s), v)
           for c, k, s, v in zip(df["context"], df["key"], df["step"], df["value"])]
    assert got[:50] == expected
    assert got[50][:3] == ("validation", "acc", 49) and math.isnan(got[50][3])
    assert got[51] == ("training", "lr", None, 1e-3)

    r = logd.read_run("frames-e2e-1", data_root=daemon.root)
    assert r.directory == d and r.config == {"opt": {"lr": 0.001}, "seed": 7}
    assert r.summary["training"]["loss"]["count"] == 50
    table = logd.read_experiment("frames", data_root=daemon.root)
    assert list(table["run_id"]) == ["frames-e2e-1"]
    assert table["opt.lr"][0] == 0.001 and table["loss"][0] == 1.0 / 50
    assert table["status"][0] == "finished"
