#!/usr/bin/env python3
"""Runs a command under the system-call sandbox of packaging/systemd/system/logd.service,
without a running systemd, to check that logd still works inside it after code changes:

  SystemCallFilter=@system-service ~@privileged   (any other system call kills the process)
  RestrictAddressFamilies=AF_UNIX                 (socket() of another family: EAFNOSUPPORT)
  MemoryDenyWriteExecute=yes                      (PR_SET_MDWE, Linux >= 6.3)
  NoNewPrivileges=yes

Usage: python3 packaging/systemd/sandbox-check.py .build/release/logd --socket S --data-root D
then drive it (wire-producer, logd-demo, logctl status/flush, SIGTERM). A process killed by the
filter exits with SIGSYS ("Bad system call"). Needs libseccomp2 (a dependency of systemd).
"""
import ctypes
import os
import subprocess
import sys


def group(name):
    """The system calls of a systemd syscall group, nested groups expanded."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True, check=True).stdout
    names = set()
    for line in out.splitlines()[1:]:
        word = line.strip()
        if not word or word.startswith("#"):
            continue
        names |= group(word) if word.startswith("@") else {word}
    return names


class Arg(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]


SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_ERRNO = 0x00050000
SCMP_CMP_NE, SCMP_CMP_EQ = 1, 4
AF_UNIX, EAFNOSUPPORT = 1, 97
PR_SET_NO_NEW_PRIVS, PR_SET_MDWE = 38, 65


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    allow = group("@system-service") - group("@privileged")
    seccomp = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    libc = ctypes.CDLL(None, use_errno=True)
    seccomp.seccomp_init.restype = ctypes.c_void_p
    seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
    ctx = seccomp.seccomp_init(SCMP_ACT_KILL_PROCESS)
    rule0 = seccomp.seccomp_rule_add
    rule0.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    allowed = 0
    for name in sorted(allow - {"socket"}):
        nr = seccomp.seccomp_syscall_resolve_name(name.encode())
        if nr >= 0 and rule0(ctx, SCMP_ACT_ALLOW, nr, 0) == 0:
            allowed += 1
    rule1 = seccomp.seccomp_rule_add
    rule1.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, Arg]
    sock = seccomp.seccomp_syscall_resolve_name(b"socket")
    assert rule1(ctx, SCMP_ACT_ALLOW, sock, 1, Arg(0, SCMP_CMP_EQ, AF_UNIX, 0)) == 0
    assert rule1(ctx, SCMP_ACT_ERRNO | EAFNOSUPPORT, sock, 1, Arg(0, SCMP_CMP_NE, AF_UNIX, 0)) == 0
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        sys.exit("sandbox-check: PR_SET_NO_NEW_PRIVS failed")
    if libc.prctl(PR_SET_MDWE, 1, 0, 0, 0) != 0:
        sys.exit("sandbox-check: PR_SET_MDWE failed (Linux >= 6.3 needed for MemoryDenyWriteExecute here)")
    if seccomp.seccomp_load(ctx) != 0:
        sys.exit("sandbox-check: seccomp_load failed")
    sys.stderr.write(f"sandbox-check: {allowed} system calls allowed, socket() AF_UNIX only, MDWE on\n")
    os.execv(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
