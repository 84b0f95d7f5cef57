"""A control client: ask logd for its status, or for a flush of everything it has received
(what ``logctl status`` and ``logctl flush`` do; docs/CONTROL_PROTOCOL.md)."""

from __future__ import annotations

import os
import socket as _socket
import time
from typing import Any, Dict, Optional

from . import _process, wire

VERB_STATUS = 1
VERB_FLUSH = 2


class ControlError(RuntimeError):
    """logd answered with a status other than ok, or could not be reached."""


def request(verb: int, arguments: Optional[Dict[str, Any]] = None, socket: Optional[str] = None,
            timeout: float = 10.0) -> Any:
    """Sends one control request and returns the reply body (a dict). Raises ControlError."""
    path = socket or _process.default_socket()
    deadline = time.monotonic() + timeout
    try:
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(path)
    except OSError as exc:
        raise ControlError("cannot connect to logd at %s: %s" % (path, exc.strerror or exc)) from None
    with s:
        s.sendall(wire.hello(2, os.getpid(), bytes(16), 0, "logd-python", "0.1.0")
                  + wire.control_request(1, verb, arguments or {}))
        decoder = wire.StreamDecoder()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ControlError("logd did not answer within %.1f s" % timeout)
            s.settimeout(left)
            try:
                data = s.recv(1 << 20)
            except OSError as exc:
                raise ControlError("reading from logd: %s" % exc) from None
            if not data:
                raise ControlError("logd closed the connection")
            for record in decoder.feed(data):
                if record["kind"] == "error":
                    raise ControlError("logd: %s" % record["message"])
                if record["kind"] == "control_reply" and record["request_id"] == 1:
                    if record["status"] != "ok":
                        body = record["body"]
                        message = body.get("error") if isinstance(body, dict) else body
                        raise ControlError("logd: %s: %s" % (record["status"], message))
                    return record["body"]


def status(socket: Optional[str] = None, timeout: float = 10.0) -> Dict[str, Any]:
    """The daemon's state: connections, runs, totals, writer (CONTROL_PROTOCOL.md, ``status``)."""
    return request(VERB_STATUS, {}, socket, timeout)


def flush(socket: Optional[str] = None, timeout: float = 30.0) -> Dict[str, Any]:
    """Returns once everything logd received before the call is on disk and fsynced."""
    return request(VERB_FLUSH, {"timeout_ms": int(timeout * 1000)}, socket, timeout + 5)
