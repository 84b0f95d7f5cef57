"""The bounded frame buffer between the training thread and the sender thread.

Frames are packed (``struct.pack_into``) into preallocated ``bytearray`` chunks. Only numbered
data frames (kinds 0x20-0x7F) go into chunks, so a chunk's frame count is exact and its frames
are numbered ``first_seq, first_seq + 1, ...``; METRIC_KEY definitions live in ``keys`` and the
sender puts them on each connection before the data that uses them.

A chunk is kept until the daemon acknowledges its last frame, so that everything not yet durable
can be resent after a reconnect. The chunks together never exceed ``capacity`` bytes: when a new
chunk would pass it, the newest frame is dropped (before numbering, as the protocol requires)
and counted in ``dropped``.

Threading: every field is protected by ``lock``. The training thread packs frames while holding
it; the sender thread takes it only to snapshot (``snapshot``) and to release acknowledged chunks
(``acknowledge``). Bytes below a chunk's ``pos`` never change, so the sender reads them after
releasing the lock. ``acked`` changes are announced on ``cond`` (which shares ``lock``).
"""

from __future__ import annotations

import os
import threading
from typing import List, Optional, Tuple

CHUNK_BYTES = 256 * 1024
"""Size of an ordinary chunk; a larger frame gets a chunk of its own size."""

SPARE_CHUNKS = 2
"""Released ordinary chunks kept for reuse, so a steady stream allocates nothing."""


class Chunk:
    """Frames ``first_seq .. first_seq + count - 1``, packed back to back in ``data[:pos]``.

    ``fds`` lists ``(offset, fd)`` for copy-mode ARTIFACT / MODEL_VERSION frames: the descriptor
    travels with the ``sendmsg`` that carries the frame's first byte (offset in ``data``).
    """

    __slots__ = ("data", "pos", "limit", "first_seq", "count", "fds", "serial")

    def __init__(self, size: int, first_seq: int, serial: int) -> None:
        self.data = bytearray(size)
        self.pos = 0
        self.limit = size - 33  # the hot path packs a 33-byte METRIC frame at pos <= limit
        self.first_seq = first_seq
        self.count = 0
        self.fds: List[Tuple[int, int]] = []
        self.serial = serial

    def reset(self, first_seq: int, serial: int) -> None:
        self.pos = 0
        self.limit = len(self.data) - 33
        self.first_seq = first_seq
        self.count = 0
        self.fds = []
        self.serial = serial

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
    """Chunks of frames not yet acknowledged, bounded by ``capacity`` bytes."""

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
        self.acked = 0
        self.dropped = 0

    # -- called with the lock held -----------------------------------------------------------

    @property
    def next_seq(self) -> int:
        a = self.active
        return a.first_seq + a.count

    def roll(self, need: int) -> Optional[Chunk]:
        """Seals the active chunk and opens a new one with room for ``need`` bytes; None (and
        one more drop) when that would pass the capacity. Lock held."""
        old = self.active
        size = CHUNK_BYTES if need <= CHUNK_BYTES else need
        replace = old.count == 0  # an empty active chunk too small for this frame is replaced
        # Bytes not yet acknowledged (acknowledged chunks are released at the next ACK).
        base = sum(len(c.data) for c in self.chunks if c.count > 0 and c.last_seq > self.acked)
        if base > 0 and base + size > self.capacity:
            self.dropped += 1
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
        """Appends one numbered data frame (and the descriptor it carries). Lock held.
        ``force`` ignores the capacity (RUN_END must never be dropped)."""
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
                return False
            c = rolled
        pos = c.pos
        c.data[pos:pos + n] = frame
        if fd >= 0:
            c.fds.append((pos, fd))
        c.pos = pos + n
        c.count += 1
        return True

    # -- sender side ---------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self.lock:
            chunks = list(self.chunks)
            return Snapshot(chunks, [c.pos for c in chunks], [c.count for c in chunks], len(self.keys), self.dropped)

    def acknowledge(self, through: int, before_serial: int) -> None:
        """The daemon has everything through ``through`` on disk: release the chunks wholly
        covered, close their descriptors, wake waiters. Only chunks before ``before_serial``
        (the sender's cursor) are released, never the active one: the sender numbers what it
        sends by position from its HELLO, so a chunk it has not passed must stay."""
        closing: List[int] = []
        with self.lock:
            if through > self.acked:
                self.acked = through
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
        """In a forked child: the parent's frames are the parent's. Start empty, numbered from 1,
        with fresh locks (the parent's may have been held by a thread that does not exist here)."""
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
        self.acked = 0
        self.dropped = 0


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
