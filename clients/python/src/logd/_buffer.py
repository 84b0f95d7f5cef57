"""The bounded frame buffer between the training thread and the sender thread.

Numbered data frames (kinds 0x20-0x7F) are packed (``struct.pack_into``) into preallocated
``bytearray`` chunks, so a chunk's frame count is exact and its frames are numbered
``first_seq, first_seq + 1, ...``; METRIC_KEY definitions live in ``keys`` and the sender puts
them on each connection before the data that uses them.

Metrics take a shorter way. ``Run.log_metric`` only appends ``key_id, step, timestamp, value``
to ``pending`` (one ``list.extend``, atomic under the GIL and in free-threaded builds alike: no
lock, no packing on the training thread). Whoever next holds ``lock`` -- the sender at each
look, or a thread appending another frame, flushing or finishing -- ``drain``s ``pending`` into
METRIC_BATCH frames of at most ``BATCH_MAX`` entries, numbering each batch as one frame then.
So a run of consecutive metrics crosses the socket as a few batches, and a thread's metrics
always precede, in the stream, any frame it appends after them.

A chunk is kept until the daemon acknowledges its last frame, so that everything not yet durable
can be resent after a reconnect (a batch, once packed, never changes: a resend is byte for byte
the same frame under the same number). The chunks together never exceed ``capacity`` bytes: when
a new chunk would pass it, the newest records are dropped (before numbering, as the protocol
requires) and counted in ``dropped``.

Counters are in records (a batch of n metrics is n records), as ``DeliveryReport`` reports them;
``Chunk.ends`` maps frame numbers to records, so an acknowledged frame number becomes
``acked_records``.

Threading: every field but ``pending`` is protected by ``lock``. The sender thread takes it to
snapshot (``snapshot``, which drains first) and to release acknowledged chunks
(``acknowledge``). Bytes below a chunk's ``pos`` never change, so the sender reads them after
releasing the lock. ``acked`` changes are announced on ``cond`` (which shares ``lock``).
"""

from __future__ import annotations

import os
import struct
import threading
from typing import Callable, Dict, List, Optional, Tuple

from . import wire

CHUNK_BYTES = 256 * 1024
"""Size of an ordinary chunk; a larger frame gets a chunk of its own size."""

SPARE_CHUNKS = 2
"""Released ordinary chunks kept for reuse, so a steady stream allocates nothing."""

BATCH_MAX = (4096 - 5) // wire.METRIC_BODY_BYTES
"""Entries per METRIC_BATCH (146): the frame stays within the smallest ``max_frame_bytes`` a
daemon may be configured with (4096), so every held batch can be resent to any logd. At 146
entries the per-frame cost is a small share of a record's on both sides."""

_BATCH_HEAD = 9  # u32 length, u8 kind, u32 count
_NO_STEP = wire.NO_STEP
_NO_STEPS = [_NO_STEP] * BATCH_MAX
_ENTRY = struct.Struct("<Iqqd")
_batch_structs: Dict[int, struct.Struct] = {}


def _no_step(items: list, a: int, e: int) -> None:
    """The steps of ``items[a:e]`` (key_id, step, timestamp, value, ...): None becomes NO_STEP."""
    steps = items[a + 1:e:4]
    nones = steps.count(None)
    if nones == len(steps):
        items[a + 1:e:4] = _NO_STEPS[:nones]
    elif nones:
        items[a + 1:e:4] = [_NO_STEP if s is None else s for s in steps]


def _batch_struct(n: int) -> struct.Struct:
    """One ``Struct`` for a whole METRIC_BATCH frame of ``n`` entries (header included)."""
    s = _batch_structs.get(n)
    if s is None:
        s = _batch_structs[n] = struct.Struct("<IBI" + "Iqqd" * n)
    return s


class Chunk:
    """Frames ``first_seq .. first_seq + count - 1``, packed back to back in ``data[:pos]``.

    ``fds`` lists ``(offset, fd)`` for copy-mode ARTIFACT / MODEL_VERSION frames: the descriptor
    travels with the ``sendmsg`` that carries the frame's first byte (offset in ``data``).
    ``ends[i]``: the run's record count through frame ``first_seq + i`` (a batch is many records).
    """

    __slots__ = ("data", "pos", "first_seq", "count", "fds", "serial", "ends")

    def __init__(self, size: int, first_seq: int, serial: int) -> None:
        self.data = bytearray(size)
        self.pos = 0
        self.first_seq = first_seq
        self.count = 0
        self.fds: List[Tuple[int, int]] = []
        self.serial = serial
        self.ends: List[int] = []

    def reset(self, first_seq: int, serial: int) -> None:
        self.pos = 0
        self.first_seq = first_seq
        self.count = 0
        self.fds = []
        self.serial = serial
        self.ends = []

    @property
    def last_seq(self) -> int:
        return self.first_seq + self.count - 1


class Snapshot:
    """What the sender may send: every chunk (oldest first) with its used length and frame count,
    the number of key definitions, and the drop total, all read at one instant."""

    __slots__ = ("chunks", "used", "counts", "keys", "dropped")

    def __init__(self, chunks: List[Chunk], used: List[int], counts: List[int], keys: int, dropped: int) -> None:
        self.chunks = chunks
        self.used = used
        self.counts = counts
        self.keys = keys
        self.dropped = dropped


class FrameBuffer:
    """Chunks of frames not yet acknowledged, bounded by ``capacity`` bytes, and the metrics
    logged since the last drain (``pending``)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(capacity, 2 * CHUNK_BYTES)
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self._serial = 0
        self.active = Chunk(CHUNK_BYTES, 1, self._serial)
        self.chunks: List[Chunk] = [self.active]
        self.held_bytes = CHUNK_BYTES
        self.spares: List[Chunk] = []
        self.keys: List[Tuple[int, str, str, str]] = []  # (id, key, context, source)
        self.pending: list = []  # key_id, step, timestamp, value, key_id, ... (no lock)
        self.acked = 0  # highest frame number acknowledged
        self.records = 0  # records numbered (a batch counts its entries)
        self.acked_records = 0  # records in frames 1 .. acked
        self.dropped = 0
        self.closed = False  # RUN_END is in: a sample pending after it is discarded, not sent
        self.last_drained = 0  # metrics the last drain found
        self.errors: List[Tuple[str, BaseException]] = []  # found by a drain; see report_errors
        self.on_error: Optional[Callable[[str, BaseException], None]] = None

    # -- called with the lock held -----------------------------------------------------------

    @property
    def next_seq(self) -> int:
        a = self.active
        return a.first_seq + a.count

    def roll(self, need: int) -> Optional[Chunk]:
        """Seals the active chunk and opens a new one with room for ``need`` bytes; None when
        that would pass the capacity (the caller counts the drop). Lock held."""
        old = self.active
        size = CHUNK_BYTES if need <= CHUNK_BYTES else need
        replace = old.count == 0  # an empty active chunk too small for this frame is replaced
        # Bytes not yet acknowledged (acknowledged chunks are released at the next ACK).
        base = sum(len(c.data) for c in self.chunks if c.count > 0 and c.last_seq > self.acked)
        if base > 0 and base + size > self.capacity:
            return None
        self._serial += 1
        if replace:
            self.chunks.remove(old)
            self.held_bytes -= len(old.data)
        if size == CHUNK_BYTES and self.spares:
            chunk = self.spares.pop()
            chunk.reset(old.first_seq + old.count, self._serial)
        else:
            chunk = Chunk(size, old.first_seq + old.count, self._serial)
        self.chunks.append(chunk)
        self.held_bytes += len(chunk.data)
        self.active = chunk
        return chunk

    def append(self, frame: bytes, fd: int = -1, force: bool = False) -> bool:
        """Appends one numbered data frame (and the descriptor it carries), after the metrics
        pending before it. Lock held. ``force`` ignores the capacity (RUN_END must never be
        dropped)."""
        if self.pending:
            self.drain()
        n = len(frame)
        c = self.active
        if c.pos + n > len(c.data):
            if force:
                saved, self.capacity = self.capacity, 1 << 62
                rolled = self.roll(n)
                self.capacity = saved
            else:
                rolled = self.roll(n)
            if rolled is None:
                self.dropped += 1
                return False
            c = rolled
        pos = c.pos
        c.data[pos:pos + n] = frame
        if fd >= 0:
            c.fds.append((pos, fd))
        c.pos = pos + n
        c.count += 1
        self.records += 1
        c.ends.append(self.records)
        return True

    def drain(self) -> None:
        """Packs the pending metrics into METRIC_BATCH frames, numbering each batch now; what
        the capacity has no room for is dropped (the newest) and counted. Lock held.

        An entry ``pack_into`` refuses (a step that is not an integer in range) is left out and
        remembered in ``errors`` (``report_errors`` passes it on once the lock is released)."""
        p = self.pending
        n = len(p)  # a multiple of 4: every log_metric extends by exactly 4, atomically
        self.last_drained = n // 4
        if n == 0:
            return
        if self.closed:
            del p[:n]
            return  # logged after finish: ignored, as the call's documentation says
        # p[:n] is read in place: the hot path only appends after it, and other drains wait
        # for the lock.
        items = p
        total = n // 4
        i = 0
        while i < total:
            c = self.active
            room = (len(c.data) - c.pos - _BATCH_HEAD) // 28
            if room <= 0:
                rolled = self.roll(_BATCH_HEAD + 28 * BATCH_MAX)
                if rolled is None:
                    self.dropped += total - i
                    break
                continue
            k = BATCH_MAX if room >= BATCH_MAX else room
            if k > total - i:
                k = total - i
            pos = c.pos
            a, e = 4 * i, 4 * (i + k)
            if items[a + 1] is None or items[e - 3] is None:
                _no_step(items, a, e)  # samples without a step: NO_STEP on the wire
            try:
                _batch_struct(k).pack_into(c.data, pos, 5 + 28 * k, 0x23, k, *items[a:e])
                packed = k
            except Exception:
                # A step-less sample in the middle; else a bad step: entry by entry.
                _no_step(items, a, e)
                try:
                    _batch_struct(k).pack_into(c.data, pos, 5 + 28 * k, 0x23, k, *items[a:e])
                    packed = k
                except Exception:
                    packed = self._pack_checked(c.data, pos, items, i, k)
            i += k
            if packed == 0:
                continue
            c.pos = pos + _BATCH_HEAD + 28 * packed
            c.count += 1
            self.records += packed
            c.ends.append(self.records)
        del p[:n]  # frees the samples; what was appended meanwhile moves to the front

    def _pack_checked(self, data: bytearray, pos: int, items: list, i: int, k: int) -> int:
        """Entries ``i .. i+k-1`` one by one, leaving out those ``pack_into`` refuses; writes the
        batch header for those kept. Returns how many were kept. Lock held."""
        out = pos + _BATCH_HEAD
        kept = 0
        for j in range(i, i + k):
            try:
                _ENTRY.pack_into(data, out, *items[4 * j:4 * j + 4])
            except Exception as exc:
                kid = items[4 * j]
                key = self.keys[kid - 1][1] if 0 < kid <= len(self.keys) else kid
                self.errors.append(("log_metric(%r)" % (key,), exc))
                continue
            out += 28
            kept += 1
        if kept:
            _batch_struct(0).pack_into(data, pos, 5 + 28 * kept, 0x23, kept)
        return kept

    # -- any thread, lock not held ---------------------------------------------------------------

    def settle(self) -> None:
        """Drains the pending metrics (takes the lock) and reports what a drain refused."""
        if self.pending:
            with self.lock:
                self.drain()
        if self.errors:
            self.report_errors()

    def report_errors(self) -> None:
        """Passes entries a drain refused to ``on_error``. Lock NOT held: the callback may log
        (a LoggingHandler writes into the run again)."""
        with self.lock:
            errors, self.errors = self.errors, []
        cb = self.on_error
        if cb is not None:
            for what, exc in errors:
                cb(what, exc)

    # -- sender side ---------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self.lock:
            if self.pending:
                self.drain()
            chunks = list(self.chunks)
            snap = Snapshot(chunks, [c.pos for c in chunks], [c.count for c in chunks], len(self.keys), self.dropped)
        if self.errors:
            self.report_errors()
        return snap

    def acknowledge(self, through: int, before_serial: int) -> None:
        """The daemon has everything through ``through`` on disk: release the chunks wholly
        covered, close their descriptors, wake waiters. Only chunks before ``before_serial``
        (the sender's cursor) are released, never the active one: the sender numbers what it
        sends by position from its HELLO, so a chunk it has not passed must stay."""
        closing: List[int] = []
        with self.lock:
            if through > self.acked:
                self.acked = through
                for c in self.chunks:
                    if c.count > 0 and c.first_seq <= through:
                        self.acked_records = c.ends[min(through, c.last_seq) - c.first_seq]
                self.cond.notify_all()
            keep: List[Chunk] = []
            for c in self.chunks:
                if c is not self.active and c.serial < before_serial and c.last_seq <= self.acked:
                    self.held_bytes -= len(c.data)
                    closing.extend(fd for _, fd in c.fds)
                    c.fds = []
                    if len(c.data) == CHUNK_BYTES and len(self.spares) < SPARE_CHUNKS:
                        self.spares.append(c)
                else:
                    keep.append(c)
            self.chunks = keep
        for fd in closing:
            _close(fd)

    def resume_point(self) -> Tuple[int, int, int]:
        """Where a new connection starts: (first_seq for HELLO, chunk serial, offset). The first
        chunk holding a frame not yet acknowledged, from its start; when every frame is
        acknowledged, the end of the active chunk and the next number."""
        with self.lock:
            for c in self.chunks:
                if c.count > 0 and c.last_seq > self.acked:
                    return c.first_seq, c.serial, 0
            a = self.active
            return a.first_seq + a.count, a.serial, a.pos

    def wait_acked(self, target: int, deadline: float, monotonic) -> bool:
        with self.lock:
            while self.acked < target:
                left = deadline - monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.25))
            return True

    def close_fds(self) -> None:
        """After the sender has stopped: close the descriptors of frames never acknowledged."""
        with self.lock:
            fds = [fd for c in self.chunks for _, fd in c.fds]
            for c in self.chunks:
                c.fds = []
        for fd in fds:
            _close(fd)

    # -- fork ----------------------------------------------------------------------------------

    def reset_after_fork(self) -> None:
        """In a forked child: the parent's frames and pending metrics are the parent's. Start
        empty, numbered from 1, with fresh locks (the parent's may have been held by a thread
        that does not exist here). ``pending`` is a new list: rebind anything bound to the old."""
        for c in self.chunks:
            for _, fd in c.fds:
                _close(fd)
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self._serial += 1
        self.active = Chunk(CHUNK_BYTES, 1, self._serial)
        self.chunks = [self.active]
        self.held_bytes = CHUNK_BYTES
        self.spares = []
        self.pending = []
        self.acked = 0
        self.records = 0
        self.acked_records = 0
        self.dropped = 0
        self.errors = []


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
