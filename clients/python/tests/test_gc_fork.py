"""logd freezes the garbage collector's heap around fork(): a forked child (DataLoader worker,
Pool worker) never scans the objects it inherited, so it never copies their pages; the parent's
collector is back to normal right after the fork. Checked by what the collector does, not by
timing: an unreachable cycle inherited from the parent survives gc.collect() in the child, and
the same cycle is collected in the parent."""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
import weakref
from typing import Callable

import pytest

import logd
from logd import run as run_module


class Node:
    pass


def _cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a, weakref.ref(a)


def _in_child(check: Callable[[], bool]) -> bool:
    """Forks; the child exits 0 if ``check()`` holds there, 1 if not."""
    pid = os.fork()
    if pid == 0:
        code = 2
        try:
            code = 0 if check() else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) in (0, 1), status
    return os.WEXITSTATUS(status) == 0


@pytest.fixture
def gc_state():
    """Each test starts with the collector on, nothing frozen, the default setting."""
    assert gc.isenabled()
    gc.unfreeze()
    yield
    logd.set_gc_freeze_on_fork(True)
    gc.unfreeze()


def test_child_does_not_collect_what_it_inherited_and_parent_does(gc_state):
    holder = [_cycle()]
    ref = holder[0][1]

    def child_check() -> bool:
        frozen = gc.get_freeze_count() > 0
        holder.clear()  # the cycle is garbage in the child too
        gc.collect()
        new_a, new_ref = _cycle()  # a cycle the child makes itself is collected as usual
        del new_a
        gc.collect()
        return frozen and ref() is not None and new_ref() is None

    assert _in_child(child_check)
    # The parent: nothing left frozen, and the same cycle is collected.
    assert gc.get_freeze_count() == 0
    assert ref() is not None
    holder.clear()
    gc.collect()
    assert ref() is None


def test_opt_out_leaves_the_collector_alone(gc_state):
    logd.set_gc_freeze_on_fork(False)
    holder = [_cycle()]
    ref = holder[0][1]

    def child_check() -> bool:
        holder.clear()
        gc.collect()
        return gc.get_freeze_count() == 0 and ref() is None

    assert _in_child(child_check)
    assert gc.get_freeze_count() == 0


def test_a_program_that_freezes_itself_keeps_its_frozen_objects(gc_state):
    holder = [_cycle()]
    ref = holder[0][1]
    gc.freeze()  # the program's own choice: logd must not unfreeze this after the fork
    # (The count only falls as frozen temporaries are freed; logd would add the whole heap.)
    frozen = gc.get_freeze_count()
    assert _in_child(lambda: 0 < gc.get_freeze_count() <= frozen)
    assert 0 < gc.get_freeze_count() <= frozen
    holder.clear()
    gc.collect()
    assert ref() is not None  # still frozen in the parent, as the program asked
    gc.unfreeze()
    gc.collect()
    assert ref() is None


def test_disabled_collector_is_not_touched(gc_state):
    gc.disable()
    try:
        assert _in_child(lambda: gc.get_freeze_count() == 0 and not gc.isenabled())
        assert gc.get_freeze_count() == 0 and not gc.isenabled()
    finally:
        gc.enable()


def _worker_freeze_count(_):
    return gc.get_freeze_count()


def test_pool_and_process_workers_start_frozen(gc_state):
    holder = [[i] for i in range(1000)]  # noqa: F841 - objects the workers inherit
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        counts = pool.map(_worker_freeze_count, range(4))
    assert min(counts) >= 1000
    assert gc.get_freeze_count() == 0


def test_the_env_setting_turns_it_off(tmp_path):
    import subprocess

    script = tmp_path / "s.py"
    script.write_text(
        "import gc, os, logd\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0 if gc.get_freeze_count() == 0 else 1)\n"
        "_, st = os.waitpid(pid, 0)\n"
        "raise SystemExit(os.WEXITSTATUS(st))\n")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(run_module.__file__)),
               LOGD_GC_FREEZE_ON_FORK="0")
    assert subprocess.run([sys.executable, str(script)], env=env).returncode == 0
    env["LOGD_GC_FREEZE_ON_FORK"] = "1"
    assert subprocess.run([sys.executable, str(script)], env=env).returncode == 1
