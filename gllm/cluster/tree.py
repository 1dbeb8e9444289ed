"""The cluster's process tree: find every descendant, signal them, and reap orphans adopted on the way.

The cluster process makes itself a child subreaper (Linux): an engine whose worker died is then re-parented to
the cluster rather than to init, so it stays a descendant that a stop can find and kill. Such adopted
orphans are not children the event loop knows about, so the cluster reaps them itself (by pid, never with
waitpid(-1), which would steal the exit status of the processes asyncio watches).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Collection, Iterable

import psutil

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux only); True when it worked."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        return int(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def alive(proc: psutil.Process) -> bool:
    """Whether the process still runs (a zombie counts as gone)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def descendants(pid: int | None = None) -> list[psutil.Process]:
    """Every living descendant of `pid` (default: this process); blocking, call it in a thread."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    return [child for child in children if alive(child)]


def signal_all(procs: Iterable[psutil.Process], sig: signal.Signals) -> None:
    """Send `sig` to each process that still exists (psutil checks that a pid was not reused)."""
    for proc in procs:
        with contextlib.suppress(psutil.Error, OSError):
            proc.send_signal(sig)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send `sig` to a process group, ignoring a group that is already gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def reap_orphans(managed: Collection[int]) -> int:
    """Reap zombie children that are not in `managed` (adopted orphans); returns how many."""
    reaped = 0
    try:
        children = psutil.Process().children()
    except psutil.Error:
        return 0
    for child in children:
        if child.pid in managed:
            continue
        with contextlib.suppress(psutil.Error, ChildProcessError, OSError):
            if child.status() == psutil.STATUS_ZOMBIE:
                pid, _ = os.waitpid(child.pid, os.WNOHANG)
                reaped += pid != 0
    return reaped
