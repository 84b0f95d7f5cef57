"""The sender thread: moves frames from the ``FrameBuffer`` to logd, so that the training thread
never waits on a socket.

It connects (retrying with backoff while the daemon is absent), sends HELLO naming the oldest
frame it still holds, the metric key definitions, then every frame not yet acknowledged, with
nonblocking sends (``MSG_DONTWAIT``; ``MSG_NOSIGNAL`` so a closed socket is an error, never a
SIGPIPE). It reads WELCOME / ACK / FLUSH_DONE and releases acknowledged chunks. A copy-mode
artifact's descriptor rides on the ``sendmsg`` carrying its frame's first byte (SCM_RIGHTS).

Threading: ``run`` is the sender thread and owns every ``_`` field below ``# sender thread``.
``wake``, ``request_flush`` and ``stop`` may be called from any thread.
"""

from __future__ import annotations

import array
import os
import select
import socket
import threading
import time
from typing import Callable, List, Optional, Tuple

from . import wire
from ._buffer import Chunk, FrameBuffer, Snapshot

CLIENT_NAME = "logd-python"
CLIENT_VERSION = "0.1.0"

POLL_INTERVAL_S = 0.05
"""How long the sender sleeps between looks at the buffer while records are flowing: the
longest a record waits before it is sent (a full chunk, a flush or finish wake the sender at
once). Each wake-up takes the GIL from the training thread for a moment, so the sender wakes
as seldom as this allows."""

BUSY_INTERVAL_S = 0.005
"""How long it sleeps after a look that found more than ``BUSY_RECORDS`` metrics pending: a
training loop logging millions of samples a second gets its samples packed every few
milliseconds, which bounds the memory they hold (about 90 bytes each) before packing."""

BUSY_RECORDS = 16384

IDLE_INTERVAL_S = 0.25
"""How long it sleeps when its last look found nothing new (a training loop between epochs, a
forked child's idle copy of the parent's run)."""

_SEND_FLAGS = socket.MSG_DONTWAIT | getattr(socket, "MSG_NOSIGNAL", 0)


class Sender:
    """One producer session's connection to logd (or to an in-memory / discarding sink)."""

    def __init__(self, buffer: FrameBuffer, socket_path: Optional[str], session: bytes,
                 sink: Optional[Callable[[List[dict]], None]] = None) -> None:
        self.buffer = buffer
        self.socket_path = socket_path  # None: memory or discard transport
        self.session = session
        self.sink = sink
        self.connected = False
        self.connect_failures = 0  # written by the sender thread only
        self.last_error: Optional[str] = None
        self.daemon_version = ""
        self._stopping = False
        self._stop_when_delivered: Optional[Callable[[], None]] = None
        self._idle = False
        self._last_marker: Optional[Tuple[int, int, int]] = None
        self._flush_wanted = 0  # highest flush token asked for
        self._drops_sent = 0
        self._control = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.thread: Optional[threading.Thread] = None
        # sender thread
        self._sock: Optional[socket.socket] = None
        self._decoder = wire.StreamDecoder()
        self._cursor: Tuple[int, int] = (0, 0)  # (chunk serial, offset of the next byte to send)
        self._range_end: Optional[int] = None  # set while a send stopped inside a range
        self._keys_sent = 0
        self._run_started = False
        self._drops_reported = 0
        self._flush_sent = 0
        self._backoff = 0.01
        self._next_attempt = 0.0
        self._memory_decoder = wire.StreamDecoder()

    # -- any thread ----------------------------------------------------------------------------

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self.run, name="logd-sender", daemon=True)
            self.thread.start()

    def wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass  # the pipe is full: the sender is awake anyway

    def request_flush(self) -> int:
        with self._control:
            self._flush_wanted += 1
            token = self._flush_wanted
        self.wake()
        return token

    def stop(self, join_timeout: float = 2.0) -> None:
        self._stopping = True
        self.wake()
        t = self.thread
        if t is not None and t is not threading.current_thread():
            t.join(join_timeout)
        if t is None or not t.is_alive():
            self._close_pipe()

    @property
    def start_sent(self) -> bool:
        """Whether this connection has written the session's RUN_START to logd's socket."""
        return self.connected and self._run_started

    def stop_when_delivered(self, on_stopped: Optional[Callable[[], None]] = None) -> None:
        """Let the thread end by itself once every frame is acknowledged (or the process exits),
        then call ``on_stopped`` from it. For a run nobody will wait for."""
        self._stop_when_delivered = on_stopped or (lambda: None)
        self.wake()

    def _delivered(self) -> bool:
        b = self.buffer
        with b.lock:
            return b.acked >= b.next_seq - 1 and not b.pending

    def wait_drops_sent(self, total: int, deadline: float) -> None:
        """Waits (at most until ``deadline``) until the daemon has been told ``total`` drops."""
        while self._drops_sent < total and time.monotonic() < deadline and self.connected:
            time.sleep(0.005)

    def abandon_after_fork(self) -> None:
        """In a forked child: the parent's socket and thread are the parent's."""
        self.thread = None
        self._stopping = True
        sock = self._sock
        self._sock = None
        if sock is not None:
            try:
                os.close(sock.detach())  # our copy only: the parent's stream is not shut down
            except OSError:
                pass
        self._close_pipe()

    def _close_pipe(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    # -- sender thread -------------------------------------------------------------------------

    def run(self) -> None:
        done = None
        while True:
            stopping = self._stopping
            try:
                self._pump()
            except Exception as exc:  # never let the thread die: drop the connection, retry
                self.last_error = "sender: %r" % (exc,)
                self._disconnect()
            if stopping:
                break
            done = self._stop_when_delivered
            if done is not None and self._delivered():
                self._stopping = True
                break
            self._sleep()
        self._disconnect()
        if done is not None:
            self._close_pipe()
            try:
                done()
            except Exception:
                pass

    def _sleep(self) -> None:
        if self._idle:
            interval = IDLE_INTERVAL_S
        elif self.buffer.last_drained > BUSY_RECORDS:
            interval = BUSY_INTERVAL_S
        else:
            interval = POLL_INTERVAL_S
        poller = select.poll()  # not select(): descriptors may be above FD_SETSIZE
        poller.register(self._wake_r, select.POLLIN)
        if self._sock is not None:
            poller.register(self._sock.fileno(), select.POLLIN)
        try:
            ready = poller.poll(interval * 1000)
        except (OSError, ValueError):
            time.sleep(interval)
            return
        if any(fd == self._wake_r for fd, _ in ready):
            try:
                while os.read(self._wake_r, 512):
                    pass
            except OSError:
                pass

    def _pump(self) -> None:
        path = self.socket_path
        if path is None:
            self._pump_local()
            return
        # Pending metrics become numbered batches now, connected or not (while logd is absent
        # they wait in the bounded chunks, or are dropped and counted, never held unbounded).
        self.buffer.settle()
        if self._sock is None:
            now = time.monotonic()
            if now < self._next_attempt:
                return
            if not self._connect(path):
                self.connect_failures += 1
                self._next_attempt = now + self._backoff
                self._backoff = min(self._backoff * 2, 1.0)
                return
            # The backoff is reset by the first ACK, not here: a connection that logd closes
            # at once (ERROR) is retried ever more slowly.
            self._next_attempt = now + self._backoff
            self._backoff = min(self._backoff * 2, 1.0)
        self._read_replies()
        if self._sock is None:
            return
        snap = self.buffer.snapshot()
        self._note_activity(snap)
        if not self._send_data(snap):
            return
        with self._control:
            flush = self._flush_wanted
        if flush > self._flush_sent and self._range_end is None:
            if self._send_all(wire.flush(flush)):
                self._flush_sent = flush

    def _note_activity(self, snap: Snapshot) -> None:
        """Idle (sleep longer) when nothing was logged since the last look."""
        marker = (snap.chunks[-1].serial, snap.used[-1], snap.keys) if snap.chunks else None
        self._idle = marker == self._last_marker
        self._last_marker = marker

    def _connect(self, path: str) -> bool:
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        except OSError as exc:
            self.last_error = "socket: %s" % exc
            return False
        try:
            sock.connect(path)
        except OSError as exc:
            sock.close()
            self.last_error = "cannot connect to %s: %s" % (path, exc.strerror or exc)
            return False
        sock.setblocking(False)
        self._sock = sock
        self._decoder = wire.StreamDecoder()
        self._keys_sent = 0
        self._drops_reported = 0
        self._flush_sent = 0
        self._range_end = None
        first, serial, offset = self.buffer.resume_point()
        self._run_started = first > 1  # else RUN_START (number 1) is resent first
        hello = wire.hello(wire.Role.PRODUCER, os.getpid(), self.session, first, CLIENT_NAME, CLIENT_VERSION)
        if not self._send_all(hello):
            return False
        self._cursor = (serial, offset)  # numbered from `first`, by position
        self.connected = True
        return True

    def _disconnect(self) -> None:
        sock = self._sock
        self._sock = None
        self.connected = False
        self._range_end = None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _read_replies(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.last_error = "recv: %s" % exc
                self._disconnect()
                return
            if not data:
                self.last_error = self.last_error or "logd closed the connection"
                self._disconnect()
                return
            try:
                records = self._decoder.feed(data)
            except wire.WireError as exc:
                records = list(getattr(exc, "records", []))
                self._handle(records)
                self.last_error = "bad reply from logd: %s" % exc
                self._disconnect()
                return
            self._handle(records)
            sock = self._sock

    def _handle(self, records: List[dict]) -> None:
        for r in records:
            kind = r["kind"]
            if kind == "ack" or kind == "flush_done":
                self.buffer.acknowledge(r["durable_through"], self._cursor[0])
                self._backoff = 0.01  # logd accepts what we send: reconnect quickly next time
            elif kind == "welcome":
                self.daemon_version = r["daemon_version"]
                self.buffer.acknowledge(r["durable_through"], self._cursor[0])
            elif kind == "error":
                self.last_error = "logd: %s" % r["message"]
                self._disconnect()
                return

    # Sending. Ranges end on frame boundaries (a snapshot's used length), so a connection frame
    # (METRIC_KEY, DROPS, FLUSH) is only ever sent once the current range is finished.

    def _resolve(self, snap: Snapshot) -> Tuple[int, int]:
        serial, offset = self._cursor
        for i, c in enumerate(snap.chunks):
            if c.serial == serial:
                return i, offset
            if c.serial > serial:
                return i, 0  # the cursor's chunk is gone (released or replaced): start here
        return len(snap.chunks), 0

    def _send_data(self, snap: Snapshot) -> bool:
        """Sends keys, drops and every byte not yet sent. False if a send stopped early."""
        i, offset = self._resolve(snap)
        if self._range_end is not None and i < len(snap.chunks):
            if not self._send_range(snap.chunks[i], offset, self._range_end):
                return False
            offset = self._range_end
            self._range_end = None
        if snap.keys > self._keys_sent:
            if not self._run_started and i < len(snap.chunks) and offset == 0 and snap.used[i] >= 4:
                # logd refuses a METRIC_KEY before the session's RUN_START (its first frame).
                c = snap.chunks[i]
                first_end = 4 + int.from_bytes(c.data[0:4], "little")
                if not self._send_range(c, 0, first_end):
                    if self._sock is not None:
                        self._range_end = first_end
                    return False
                offset = first_end
            self._run_started = True
            with self.buffer.lock:
                keys = self.buffer.keys[self._keys_sent:snap.keys]
            out = b"".join(wire.metric_key(k, key, ctx, src) for k, key, ctx, src in keys)
            if not self._send_all(out):
                return False
            self._keys_sent = snap.keys
        if snap.dropped > self._drops_reported and self._sock is not None and self._run_started:
            if self._send_all(wire.drops(snap.dropped)):
                self._drops_reported = snap.dropped
                self._drops_sent = max(self._drops_sent, snap.dropped)
        while i < len(snap.chunks):
            c = snap.chunks[i]
            end = snap.used[i]
            if end > offset:
                if not self._send_range(c, offset, end):
                    if self._sock is not None:
                        self._range_end = end  # resume inside this range, at the cursor
                    return False
            self._cursor = (c.serial, end)
            self._run_started = True
            if i + 1 < len(snap.chunks):
                offset = 0
            i += 1
        return self._sock is not None

    def _send_range(self, c: Chunk, start: int, end: int) -> bool:
        """Sends ``c.data[start:end]``; a descriptor goes with the byte at its frame's offset."""
        sock = self._sock
        view = memoryview(c.data)
        try:
            while start < end:
                if sock is None:
                    return False
                fd = -1
                stop = end
                for off, d in c.fds:
                    if off == start:
                        fd = d
                    elif start < off < stop:
                        stop = off
                try:
                    if fd >= 0:
                        n = sock.sendmsg([view[start:stop]],
                                         [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))],
                                         _SEND_FLAGS)
                    else:
                        n = sock.send(view[start:stop], _SEND_FLAGS)
                except (BlockingIOError, InterruptedError):
                    n = 0
                except OSError as exc:
                    self.last_error = "send: %s" % exc
                    self._disconnect()
                    return False
                if n <= 0:
                    self._cursor = (c.serial, start)
                    return False
                start += n
            self._cursor = (c.serial, start)
            return True
        finally:
            view.release()

    def _send_all(self, data: bytes) -> bool:
        """Sends a whole connection frame, waiting for room (at most 2 s): a frame is never left
        half-sent. On failure the connection is dropped (and retried later)."""
        sock = self._sock
        off = 0
        deadline = time.monotonic() + 2.0
        while off < len(data):
            if sock is None or self._sock is None:
                return False
            try:
                off += sock.send(data[off:], _SEND_FLAGS)
                continue
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self.last_error = "send: %s" % exc
                self._disconnect()
                return False
            if time.monotonic() > deadline:
                self.last_error = "logd is not reading; reconnecting"
                self._disconnect()
                return False
            self._read_replies()
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLOUT)
            poller.poll(50)
        return True

    def _pump_local(self) -> None:
        """Memory or discard transport: decode what a daemon would receive, acknowledge at once."""
        snap = self.buffer.snapshot()
        self._note_activity(snap)
        i, offset = self._resolve(snap)
        parts: List[bytes] = []
        if self.sink is not None and snap.keys > self._keys_sent:
            with self.buffer.lock:
                keys = self.buffer.keys[self._keys_sent:snap.keys]
            parts.extend(wire.metric_key(k, key, ctx, src) for k, key, ctx, src in keys)
        self._keys_sent = snap.keys
        through = 0
        while i < len(snap.chunks):
            c, end = snap.chunks[i], snap.used[i]
            if self.sink is not None and end > offset:
                parts.append(bytes(c.data[offset:end]))
            if snap.counts[i] > 0:
                through = c.first_seq + snap.counts[i] - 1
            self._cursor = (c.serial, end)
            offset = 0
            i += 1
        if parts and self.sink is not None:
            self.sink(_one_record_per_metric(self._memory_decoder.feed(b"".join(parts))))
        self.connected = True
        if through > 0:
            self.buffer.acknowledge(through, self._cursor[0])
        self._drops_sent = snap.dropped



def _one_record_per_metric(records: List[dict]) -> List[dict]:
    """The memory sink's records: a METRIC_BATCH (how the client sends metrics) as one
    ``metric`` record per sample, as a run's ``records`` have always listed them."""
    if not any(r["kind"] == "metric_batch" for r in records):
        return records
    out: List[dict] = []
    for r in records:
        if r["kind"] == "metric_batch":
            out.extend({"kind": "metric", "key_id": m["key_id"], "step": m["step"], "timestamp": m["timestamp"],
                        "value": m["value"]} for m in r["metrics"])
        else:
            out.append(r)
    return out
