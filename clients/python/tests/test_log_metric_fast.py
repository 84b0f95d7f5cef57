"""A run's ``log_metric`` is a closure installed on the instance (``run._fast_log_metric``): what
it must keep from the method it stands in for. A function taken from ``run.log_metric`` before
``finish`` or a fork follows the run (ignored once closed; the child's own session after a
fork); every spelling of the training context is one key; ``Run.log_metric(run, ...)`` and a
subclass's own ``log_metric`` still work; values are still checked at the call."""

from __future__ import annotations

import os

import logd
from logd import Context


def _metrics(run: logd.Run) -> list:
    return [(r["key_id"], r["step"], r["value"]) for r in run.records if r["kind"] == "metric"]


def _keys(run: logd.Run) -> list:
    return [(r["key"], r["context"], r["source"]) for r in run.records if r["kind"] == "metric_key"]


def test_every_spelling_of_the_training_context_is_one_key_in_call_order():
    run = logd.Run(experiment="e", name="n", sink="memory")
    built = "".join(["train", "ing"])  # equal to "training", another object
    assert built is not "training"  # noqa: F632 -- the point of this test
    run.log_metric("x", 1.0, 1)
    run.log_metric("x", 2.0, 2, "training")
    run.log_metric("x", 3.0, 3, built)
    run.log_metric("x", 4.0, 4, Context.TRAINING)
    run.log_metric("x", 5.0, 5, context=built, source=None)
    logd.Run.log_metric(run, "x", 6.0, 6)  # the method itself, as a subclass's super() calls it
    run.log_metric("x", 7.0, 7, "validation")
    run.finish(timeout=10)
    assert _keys(run) == [("x", "training", ""), ("x", "validation", "")]
    assert _metrics(run) == [(1, s, float(s)) for s in range(1, 7)] + [(2, 7, 7.0)]


def test_a_log_metric_taken_before_finish_is_ignored_after_it():
    run = logd.Run(experiment="e", name="n", sink="memory")
    log = run.log_metric
    log("x", 1.0, 1)
    report = run.finish(timeout=10)
    log("x", 2.0, 2)  # known key: the fast path
    log("y", 2.0, 2)  # new key: the slow path
    assert run.report.logged == report.logged == 3
    assert _metrics(run) == [(1, 1, 1.0)]
    assert run.records[-1]["kind"] == "run_end"
    assert run._buf.pending == []


def test_values_the_fast_path_refuses_take_the_slow_path_and_are_checked():
    run = logd.Run(experiment="e", name="n", sink="memory")
    log = run.log_metric
    log("x", 1.0, 1)
    log("x", 2, 2)  # an int: converted at the call
    log("x", "three", 3)  # not a number: reported by this call, not logged
    assert run.errors == 1 and "log_metric('x')" in run.last_error
    log(["unhashable"], 4.0, 4)  # a key that cannot be a dict key: reported, not raised
    assert run.errors == 2
    log("x", 5.0, 5, source="s")
    run.finish(timeout=10)
    keys = _keys(run)
    assert [(keys[k - 1], step, value) for k, step, value in _metrics(run)] == [
        (("x", "training", ""), 1, 1.0), (("x", "training", ""), 2, 2.0), (("x", "training", "s"), 5, 5.0)]


def test_a_subclass_log_metric_is_the_one_called():
    calls = []

    class Counting(logd.Run):
        def log_metric(self, key, value, step=None, context="training", source=None):
            calls.append(key)
            super().log_metric(key, value, step, context, source)

    run = Counting(experiment="e", name="n", sink="memory")
    run.log_metric("x", 1.0, 1)
    run.log_metric("x", 2.0, 2)
    run.finish(timeout=10)
    assert calls == ["x", "x"]
    assert _metrics(run) == [(1, 1, 1.0), (1, 2, 2.0)]


def _in_child(body) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = body()
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_a_log_metric_taken_before_a_fork_logs_into_the_childs_session():
    run = logd.Run(experiment="e", name="n", sink="memory")
    log = run.log_metric
    log("x", 1.0, 1)
    assert run.flush(timeout=10)
    parent_session = run.session

    def child() -> int:
        log("x", 2.0, 2)  # known key, fast path: starts the child's session
        report = run.finish(timeout=10)
        starts = [i for i, r in enumerate(run.records) if r["kind"] == "run_start"]
        mine = [(r["key_id"], r["step"]) for r in run.records[starts[-1]:] if r["kind"] == "metric"]
        ok = run.session != parent_session and len(starts) == 2 and mine == [(1, 2)] and report.completed
        return 0 if ok else 3

    assert _in_child(child) == 0
    log("x", 3.0, 3)  # the parent's own function still logs into the parent's session
    run.finish(timeout=10)
    assert _metrics(run) == [(1, 1, 1.0), (1, 3, 3.0)]


def test_a_log_metric_taken_before_finish_stays_ignored_in_a_forked_child():
    run = logd.Run(experiment="e", name="n", sink="memory")
    log = run.log_metric
    log("x", 1.0, 1)
    run.finish(timeout=10)
    count = len(run.records)

    def child() -> int:
        log("x", 2.0, 2)
        run.flush(timeout=1)
        return 0 if len(run.records) == count and run._buf.pending == [] else 3

    assert _in_child(child) == 0
