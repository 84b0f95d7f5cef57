"""What the client captures about the training process when a run starts.

Host, command line, working directory, git commit and dirty flag, ranks and the shared run id
from the launcher's environment -- the same rules as the Swift SDK (``ProcessCapture``), so a
Python rank and a Swift rank of one job agree. Called once per run start, never on the hot path.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import List, Optional, Sequence, Tuple

# RUN_START git_dirty values (docs/WIRE_PROTOCOL.md, 0x20).
GIT_CLEAN, GIT_DIRTY, GIT_UNKNOWN = 0, 1, 2


def env(name: str) -> Optional[str]:
    """The variable's value, or None when it is unset or empty."""
    value = os.environ.get(name)
    return value if value else None


def _first_int(names: Sequence[str]) -> Optional[int]:
    for name in names:
        value = env(name)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                continue
    return None


def ranks() -> Tuple[int, int, int]:
    """(rank, local rank, world size) from torchrun (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``),
    SLURM (``SLURM_PROCID``, ``SLURM_LOCALID``, ``SLURM_NTASKS``) or Open MPI / PMI."""
    rank = _first_int(["RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK"]) or 0
    local = _first_int(["LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK"]) or 0
    world = _first_int(["WORLD_SIZE", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]) or 1
    return rank, local, max(1, world)


def run_id() -> str:
    """The id every rank of one job shares: ``LOGD_RUN_ID``, else torchrun's
    ``TORCHELASTIC_RUN_ID``, else the SLURM job and step, else a fresh random id."""
    value = env("LOGD_RUN_ID")
    if value is not None:
        return value
    value = env("TORCHELASTIC_RUN_ID")
    if value is not None and value != "none":
        return "torchrun-" + value
    job = env("SLURM_JOB_ID")
    if job is not None:
        return "slurm-%s-%s" % (job, env("SLURM_STEP_ID") or "0")
    return os.urandom(16).hex()


def default_socket() -> str:
    """``$LOGD_SOCKET``, else ``$XDG_RUNTIME_DIR/logd/logd.sock``, else ``/tmp/logd-<uid>/logd.sock``."""
    value = env("LOGD_SOCKET")
    if value is not None:
        return value
    runtime = env("XDG_RUNTIME_DIR")
    if runtime is not None:
        return runtime + "/logd/logd.sock"
    return "/tmp/logd-%d/logd.sock" % os.getuid()


def command_line() -> List[str]:
    """argv of the interpreter as it was started (``python train.py --lr 1e-3``)."""
    orig = getattr(sys, "orig_argv", None)  # Python >= 3.10
    if orig:
        return [str(a) for a in orig]
    return [sys.executable or "python"] + [str(a) for a in sys.argv]


def working_directory() -> str:
    try:
        return os.getcwd()
    except OSError:
        return ""


def _git(args: Sequence[str]) -> Optional[str]:
    try:
        done = subprocess.run(
            ["git", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "replace").rstrip("\n")


_git_cache: dict = {}


def git_state() -> Tuple[str, int]:
    """(commit, dirty flag) of the working directory's repository; ("", unknown) outside one.
    Asked once per process and directory (two ``git`` runs cost tens of milliseconds, and a
    script may open a writer per trial)."""
    key = (os.getpid(), working_directory())
    cached = _git_cache.get(key)
    if cached is None:
        cached = _git_cache[key] = _git_state()
    return cached


def _git_state() -> Tuple[str, int]:
    commit = _git(["rev-parse", "HEAD"])
    if commit is None:
        return "", GIT_UNKNOWN
    status = _git(["status", "--porcelain", "--untracked-files=no"])
    if status is None:
        return commit, GIT_UNKNOWN
    return commit, GIT_CLEAN if status == "" else GIT_DIRTY


def host_name() -> str:
    try:
        return socket.gethostname()
    except OSError:
        return ""
