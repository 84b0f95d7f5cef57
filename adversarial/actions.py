"""Action scripts: the format of the daemon fuzzer's inputs and of vectors/fuzz-daemon/ files,
and the executor that plays them against a real logd.

A script is text, one action per line; blank lines and lines starting with ``#`` are comments
(a regression file's header says which crash site it reproduced). Actions:

``send C HEX``
    send these bytes (usually one whole frame, or a truncated one) on client connection ``C``
    (a small integer). The connection is opened on first use and after it was closed.
``sendfd C HEX``
    the same with one open file descriptor (a small temporary file) attached as SCM_RIGHTS
    (copy-mode ARTIFACT / MODEL_VERSION).
``close C``
    close client connection ``C``.
``sync``
    barrier: on a fresh control connection, ``flush`` (timeout 5 s) then ``status``; both must be
    answered. This is also where a trap on the writer thread shows up.
``stop`` / ``kill``
    SIGTERM (drain, must exit 0) / SIGKILL the daemon. All client connections are dropped.
``start``
    start the daemon again on the same socket and data root (start-up recovery runs).
    Any action that needs the daemon starts it if it is not running.
``config HEX``
    from now on start logd with ``--config FILE`` holding these bytes (empty: no config file).
    The next start may refuse the file (exit 2 with a one-line message on stderr): then logd is
    started without it. Any other exit, or a trap, is a crash.
``write GLOB HEX``
    replace the contents of every file under the data root matching ``GLOB`` (``fnmatch``-style,
    relative to the data root; a run directory's time stamp is written as ``*``) with these
    bytes. Used between ``stop``/``kill`` and ``start`` to poison what start-up reads back.

Playing a script ends with an implicit ``sync``; the daemon must be alive and answer it.
"""

from __future__ import annotations

import glob
import os
import select
import signal
import socket
import tempfile
import time
from typing import Dict, List, Optional, Tuple

from harness import Control, DaemonDied, Logd

Action = Tuple[str, ...]


def parse(text: str) -> List[Action]:
    actions: List[Action] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        op = parts[0]
        if op in ("send", "sendfd") and len(parts) in (2, 3):
            actions.append((op, parts[1], parts[2] if len(parts) == 3 else ""))
        elif op == "close" and len(parts) == 2:
            actions.append((op, parts[1]))
        elif op in ("sync", "stop", "kill", "start") and len(parts) == 1:
            actions.append((op,))
        elif op == "config" and len(parts) in (1, 2):
            actions.append((op, parts[1] if len(parts) == 2 else ""))
        elif op == "write" and len(parts) in (2, 3):
            actions.append((op, parts[1], parts[2] if len(parts) == 3 else ""))
        else:
            raise ValueError("line %d: not an action: %r" % (n, line[:80]))
    return actions


def render(actions: List[Action], header: List[str]) -> str:
    out = ["# " + h for h in header]
    out += [" ".join(a) for a in actions]
    return "\n".join(out) + "\n"


class Executor:
    """Plays actions against one Logd; raises DaemonDied when the daemon crashes or hangs."""

    def __init__(self, daemon: Logd, sync_timeout: float = 30.0):
        self.daemon = daemon
        self.conns: Dict[str, socket.socket] = {}
        self.sync_timeout = sync_timeout
        fd, self.fd_file = tempfile.mkstemp(prefix="logd-adv-fd-")
        os.write(fd, b"artifact contents\n" * 10)
        os.close(fd)
        self.frames = 0
        self.bytes = 0
        self.config_refusals = 0

    def close(self) -> None:
        self.drop_connections()
        try:
            os.unlink(self.fd_file)
        except OSError:
            pass

    def drop_connections(self) -> None:
        for s in self.conns.values():
            try:
                s.close()
            except OSError:
                pass
        self.conns.clear()

    def ensure_running(self) -> None:
        if not self.daemon.alive():
            if self.daemon.proc is not None:
                raise self.daemon.death("exit")
            self.drop_connections()
            try:
                self.daemon.start()
            except DaemonDied as e:
                lines = [ln for ln in e.stderr.splitlines() if ln.strip()]
                if self.daemon.config_path is None or e.site != "exit-2" or len(lines) != 1:
                    raise
                self.config_refusals += 1  # a config error, reported on one line: fine
                self.daemon.config_path = None
                self.daemon.start()

    def _conn(self, cid: str) -> Optional[socket.socket]:
        s = self.conns.get(cid)
        if s is None:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.daemon.socket)
                s.setblocking(False)
            except OSError:
                self.daemon.check()
                return None
            self.conns[cid] = s
        return s

    def _drain(self) -> None:
        """Reads (and ignores) whatever the daemon sent, so its replies never fill the socket."""
        for cid, s in list(self.conns.items()):
            try:
                while True:
                    data = s.recv(1 << 16)
                    if not data:
                        s.close()
                        del self.conns[cid]
                        break
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                s.close()
                self.conns.pop(cid, None)

    def _send(self, cid: str, data: bytes, with_fd: bool) -> None:
        s = self._conn(cid)
        if s is None:
            return
        view = memoryview(data)
        first = True
        deadline = time.monotonic() + 10
        while view:
            try:
                if first and with_fd:
                    fd = os.open(self.fd_file, os.O_RDONLY)
                    try:
                        n = socket.send_fds(s, [view], [fd])
                    finally:
                        os.close(fd)
                else:
                    n = s.send(view)
                first = False
                view = view[n:]
            except (BlockingIOError, InterruptedError):
                # The daemon is not reading (backpressure, or a frame it refuses): wait a little,
                # reading its replies meanwhile; give up on this frame after the deadline.
                self._drain()
                if cid not in self.conns or time.monotonic() > deadline:
                    return
                select.select([], [s], [], 0.05)
            except OSError:
                s.close()
                self.conns.pop(cid, None)
                return
        self.frames += 1
        self.bytes += len(data)

    def sync(self) -> None:
        self.ensure_running()
        self._drain()
        try:
            with Control(self.daemon.socket, self.sync_timeout) as c:
                c.flush(5000)
                c.status()
        except socket.timeout:
            if self.daemon.alive():
                err = self.daemon.stderr()
                self.daemon.cleanup_proc()
                raise DaemonDied("hang", "hang", "no answer to flush/status in %.0f s" % self.sync_timeout, err)
            raise self.daemon.death("exit")
        except (OSError, ConnectionError) as e:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # a trap: the backtracer runs before the exit
                self.daemon.check()
                time.sleep(0.05)
            err = self.daemon.stderr()
            self.daemon.cleanup_proc()
            raise DaemonDied("unresponsive", "control-connection", "flush/status failed: %s" % e, err)
        self.daemon.check()

    def play(self, actions: List[Action]) -> None:
        for a in actions:
            self.do(a)

    def do(self, a: Action) -> None:
        op = a[0]
        if op in ("send", "sendfd"):
            self.ensure_running()
            self._send(a[1], bytes.fromhex(a[2]), op == "sendfd")
        elif op == "close":
            s = self.conns.pop(a[1], None)
            if s is not None:
                s.close()
        elif op == "sync":
            self.sync()
        elif op in ("stop", "kill"):
            self.drop_connections()
            if self.daemon.proc is None:
                return
            if not self.daemon.alive():
                raise self.daemon.death("exit")
            if op == "kill":
                self.daemon.kill9()
                return
            # Only once it serves: a SIGTERM that lands while logd is still starting (socket
            # listening, loop not yet running) ends it with the default action.
            self.sync()
            proc = self.daemon.proc
            code = self.daemon.stop(signal.SIGTERM)
            if code != 0:
                self.daemon.proc = proc
                raise self.daemon.death("shutdown")
        elif op == "start":
            self.ensure_running()
        elif op == "config":
            if a[1]:
                path = os.path.join(self.daemon.base, "fuzz.yaml")
                with open(path, "wb") as f:
                    f.write(bytes.fromhex(a[1]))
                self.daemon.config_path = path
            else:
                self.daemon.config_path = None
        elif op == "write":
            pattern = os.path.join(self.daemon.root, a[1])
            for path in sorted(glob.glob(pattern)):
                if os.path.isfile(path):
                    with open(path, "wb") as f:
                        f.write(bytes.fromhex(a[2]))
        else:
            raise ValueError("unknown action %r" % (a,))


def replay(binary: str, actions: List[Action], base: Optional[str] = None) -> Optional[DaemonDied]:
    """Plays ``actions`` on a fresh daemon and data root; the DaemonDied it caused, or None."""
    d = Logd(binary, base)
    ex = Executor(d)
    try:
        d.start()
        ex.play(actions)
        ex.sync()
        return None
    except DaemonDied as e:
        return e
    finally:
        ex.close()
        d.cleanup()
