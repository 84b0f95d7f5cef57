"""Metrics travel as METRIC_BATCH frames: what the client puts on the socket (seen through a
recording proxy in front of the real logd), that every sample lands exactly once -- also when
the connection is cut and the client resends -- and what the batching must not change: the
memory sink's records, delivery counters in records, bad values reported, threads, a closed run.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from typing import List, Optional

import pytest

import logd
from logd import wire
from logd._buffer import BATCH_MAX
from conftest import metric_rows

_LEN = struct.Struct("<I")


class RecordingProxy:
    """A Unix socket in front of logd that forwards whole frames and remembers what the client
    sent: ``frames`` (kind, body bytes) and one ``hellos`` entry per connection. With
    ``cut_after_batches`` it drops the first connection (both sides) after forwarding that many
    METRIC_BATCH frames, so the client must reconnect and resend what logd had not acknowledged."""

    def __init__(self, path: str, upstream: str, cut_after_batches: Optional[int] = None) -> None:
        self.path = path
        self.upstream = upstream
        self.cut_after_batches = cut_after_batches
        self.frames: List[tuple] = []
        self.hellos: List[dict] = []
        self.cuts = 0
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(8)
        self.open: List[socket.socket] = []
        self.closing = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                up.connect(self.upstream)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.open += [client, up]
            threading.Thread(target=self._client_to_daemon, args=(client, up), daemon=True).start()
            threading.Thread(target=self._daemon_to_client, args=(up, client), daemon=True).start()

    def _client_to_daemon(self, client: socket.socket, up: socket.socket) -> None:
        pending = b""
        batches_here = 0
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                pending += data
                while len(pending) >= 4:
                    n = _LEN.unpack_from(pending)[0]
                    if len(pending) < 4 + n:
                        break
                    frame, pending = pending[:4 + n], pending[4 + n:]
                    kind = frame[4]
                    with self.lock:
                        self.frames.append((kind, frame[5:]))
                        if kind == wire.HELLO:
                            self.hellos.append(wire.StreamDecoder().feed(frame)[0])
                    up.sendall(frame)
                    if kind == wire.METRIC_BATCH:
                        batches_here += 1
                        if self.cut_after_batches is not None and self.cuts == 0 \
                                and batches_here >= self.cut_after_batches:
                            self.cuts += 1
                            raise ConnectionResetError("cut by the test")
        except OSError:
            pass
        for s in (client, up):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _daemon_to_client(self, up: socket.socket, client: socket.socket) -> None:
        try:
            while True:
                data = up.recv(65536)
                if not data:
                    break
                client.sendall(data)
        except OSError:
            pass
        for s in (client, up):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def kinds(self, kind: int) -> List[bytes]:
        with self.lock:
            return [body for k, body in self.frames if k == kind]

    def close(self) -> None:
        self.closing = True
        self.listener.close()
        with self.lock:
            for s in self.open:
                try:
                    s.close()
                except OSError:
                    pass
        try:
            os.unlink(self.path)
        except OSError:
            pass


def batch_steps(body: bytes) -> List[int]:
    count = _LEN.unpack_from(body)[0]
    assert len(body) == 4 + 28 * count
    return [s for _, s, _, _ in struct.iter_unpack("<Iqqd", body[4:])]


@pytest.fixture
def proxy_factory(daemon):
    made: List[RecordingProxy] = []

    def make(**kw) -> RecordingProxy:
        p = RecordingProxy(os.path.join(daemon.base, "proxy%d.sock" % len(made)), daemon.socket, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def test_metrics_cross_the_socket_as_batches_and_land_once(daemon, proxy_factory):
    proxy = proxy_factory()
    run = logd.Run(experiment="batched", name="b", socket=proxy.path)
    n = 5000
    for step in range(n):
        run.log_metric("loss", float(step), step)
    run.log("between")  # a LOG frame ends a run of metrics: the rest go in later batches
    for step in range(n, 2 * n):
        run.log_metric("loss", float(step), step)
    report = run.finish(timeout=20)
    assert report.completed and report.undelivered == 0 and report.dropped == 0, report
    assert report.logged == report.acknowledged == 2 * n + 3  # RUN_START, LOG, RUN_END
    assert proxy.kinds(wire.METRIC) == [], "a metric went as a METRIC frame of its own"
    batches = [batch_steps(b) for b in proxy.kinds(wire.METRIC_BATCH)]
    assert all(1 <= len(b) <= BATCH_MAX for b in batches)
    assert len(batches) < 2 * n // 10 and max(len(b) for b in batches) == BATCH_MAX
    assert sorted(s for b in batches for s in b) == list(range(2 * n))  # each sample sent once
    # The LOG frame sits between the two runs of metrics in the stream.
    kinds = [k for k, _ in proxy.frames if k in (wire.LOG, wire.METRIC_BATCH)]
    before = kinds.index(wire.LOG)
    assert sum(len(b) for b in batches[:before]) == n
    steps = [int(r["step"]) for r in metric_rows(daemon.run_dir("batched"))]
    assert sorted(steps) == list(range(2 * n))


@pytest.mark.parametrize("how", ["cut", "restart"])
def test_a_reconnect_resends_unacknowledged_batches_under_their_numbers(daemon, proxy_factory, how):
    """The batches logd had not acknowledged when the connection went are resent byte for byte
    under the numbers they had; logd skips what it already had. Every row exactly once."""
    proxy = proxy_factory(cut_after_batches=40 if how == "cut" else None)
    run = logd.Run(experiment="resend", name=how, socket=proxy.path)
    n = 30000
    for step in range(n // 2):
        run.log_metric("loss", float(step), step)
    if how == "restart":
        assert run.flush(timeout=20)
        daemon.stop()  # SIGTERM: everything acknowledged is on disk, the rest is resent
    for step in range(n // 2, n):
        run.log_metric("loss", float(step), step)
    if how == "restart":
        daemon.start()
    report = run.finish(timeout=30)
    assert report.completed and report.undelivered == 0 and report.dropped == 0, report
    assert len(proxy.hellos) >= 2, "the client never reconnected"
    assert all(h["first_seq"] >= 1 for h in proxy.hellos)
    assert proxy.kinds(wire.METRIC) == []
    sent = [s for b in proxy.kinds(wire.METRIC_BATCH) for s in batch_steps(b)]
    assert set(sent) == set(range(n))
    steps = [int(r["step"]) for r in metric_rows(daemon.run_dir("resend"))]
    assert sorted(steps) == list(range(n)), "lost or duplicated rows"
    assert logd.control.status(socket=daemon.socket)["totals"]["malformed_frames"] == 0


def test_resent_batches_are_identical_frames():
    """A batch, once packed, never changes: the bytes a resend reads are those first sent."""
    run = logd.Run(experiment="e", name="n", sink="none", socket="/nonexistent/logd.sock")
    b = run._buf
    for step in range(1000):
        run.log_metric("x", 0.5, step)
    snap1 = b.snapshot()
    first = [bytes(c.data[:u]) for c, u in zip(snap1.chunks, snap1.used)]
    for step in range(1000, 1100):
        run.log_metric("x", 0.5, step)
    snap2 = b.snapshot()
    again = [bytes(c.data[:len(f)]) for c, f in zip(snap2.chunks, first)]
    assert again == first
    assert b.next_seq == 2 + (1000 + BATCH_MAX - 1) // BATCH_MAX + (100 + BATCH_MAX - 1) // BATCH_MAX
    run.finish(timeout=0.2)


def test_memory_sink_lists_one_metric_record_per_sample():
    run = logd.Run(experiment="e", name="n", sink="memory")
    for step in range(500):
        run.log_metric("x", float(step), step)
    run.log_metric("y", 1.5)
    report = run.finish(timeout=10)
    assert report.logged == report.acknowledged == 503
    metrics = [r for r in run.records if r["kind"] == "metric"]
    assert [m["step"] for m in metrics[:500]] == list(range(500))
    assert metrics[500]["step"] == wire.NO_STEP and metrics[500]["value"] == 1.5
    assert not any(r["kind"] == "metric_batch" for r in run.records)


class Mutable:
    """A value read through __float__ (a 0-d tensor, a numpy array) that changes later."""

    def __init__(self, v: float) -> None:
        self.v = v

    def __float__(self) -> float:
        return self.v


def test_values_are_read_at_the_call_and_bad_ones_reported():
    run = logd.Run(experiment="e", name="n", sink="memory")
    m = Mutable(1.0)
    run.log_metric("x", m, 1)
    m.v = 2.0  # changed after the call, before the sender packs: the logged value stays 1.0
    run.log_metric("x", 3, 2)  # an int value
    run.log_metric("x", "four", 3)  # not a number: this call reports it
    assert run.errors == 1 and "log_metric('x')" in run.last_error
    run.log_metric("x", 5.0, "six")  # a step that is not an integer: reported when packed
    run.log_metric("x", 7.0, 7)
    assert run.flush(timeout=10)
    assert run.errors == 2 and "log_metric('x')" in run.last_error
    run.finish(timeout=10)
    assert [(r["step"], r["value"]) for r in run.records if r["kind"] == "metric"] == [(1, 1.0), (2, 3.0), (7, 7.0)]


def test_threads_log_concurrently_without_losing_a_sample():
    run = logd.Run(experiment="e", name="n", sink="memory")
    threads, per = 8, 20000
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        start.wait()
        for i in range(per):
            run.log_metric("x", float(i), t * per + i)

    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    report = run.finish(timeout=30)
    assert report.completed and report.logged == report.acknowledged == threads * per + 2, report
    steps = sorted(r["step"] for r in run.records if r["kind"] == "metric")
    assert steps == list(range(threads * per))


def test_a_metric_after_finish_is_ignored():
    run = logd.Run(experiment="e", name="n", sink="memory")
    run.log_metric("x", 1.0, 1)
    report = run.finish(timeout=10)
    run.log_metric("x", 2.0, 2)
    run.log_metric("y", 2.0, 2)
    assert run.report.logged == report.logged == 3
    assert [r["step"] for r in run.records if r["kind"] == "metric"] == [1]
    assert run.records[-1]["kind"] == "run_end"


def test_full_buffer_counts_drops_in_records_and_keeps_the_oldest():
    run = logd.Run(experiment="e", name="n", socket="/nonexistent/logd.sock", buffer_bytes=256 * 1024)
    n = 40000
    for step in range(n):
        run.log_metric("x", float(step), step)
    r = run.report
    assert r.logged == n + 1 and r.acknowledged == 0
    # Two 256 KiB chunks: RUN_START, then batches of 9 + 146 * 28 bytes.
    kept = r.logged - r.dropped - 1
    assert 2 * (256 * 1024 // (9 + 28 * BATCH_MAX)) * BATCH_MAX <= kept <= 2 * 256 * 1024 // 28
    run.finish(timeout=0.2)


def test_samples_with_and_without_a_step_mix_in_one_batch():
    run = logd.Run(experiment="e", name="n", sink="memory")
    steps = [None if i % 3 else i for i in range(1000)] + [None] * 300 + list(range(300))
    for s in steps:
        run.log_metric("x", 1.0, s)
    run.finish(timeout=10)
    assert run.errors == 0, run.last_error
    got = [r["step"] for r in run.records if r["kind"] == "metric"]
    assert got == [wire.NO_STEP if s is None else s for s in steps]
