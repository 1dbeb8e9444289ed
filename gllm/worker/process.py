"""One engine OS process: start it in its own session, and stop its whole process tree.

The engine runs in a new session (so a new process group whose id is its pid). Stopping sends SIGTERM to that
group and to every descendant found with psutil (a descendant may have moved to another group), waits a grace
period, then sends SIGKILL to whatever is left.

If the worker itself dies hard (SIGKILL, OOM killer), Linux delivers PDEATH_SIGNAL to the engine through
prctl(PR_SET_PDEATHSIG), set in the child between fork and exec. SIGTERM is used rather than SIGKILL so that
engines which start their own helper processes (vLLM, SGLang) get to stop them too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable

import psutil

from gllm.worker.engines import EngineLaunch

PR_SET_PDEATHSIG = 1
PDEATH_SIGNAL = signal.SIGTERM


def pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get PDEATH_SIGNAL when this process dies; None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: no dynamic loading after fork
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(PDEATH_SIGNAL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


async def spawn(launch: EngineLaunch) -> asyncio.subprocess.Process:
    """Start the engine with stdout and stderr merged into one pipe; raises OSError if it cannot start."""
    # Forking on the event loop thread matters: PR_SET_PDEATHSIG fires when the forking *thread* exits.
    return await asyncio.create_subprocess_exec(
        *launch.argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=launch.env,
        start_new_session=True,
        preexec_fn=pdeathsig_preexec(),
    )


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def find_tree(pid: int, *, with_children: bool = True) -> list[psutil.Process]:
    """Descendants of `pid` plus every other member of its process group (blocking: call in a thread).

    Pass with_children=False once `pid` was reaped: the number may already belong to another process.
    """
    found: dict[int, psutil.Process] = {}
    if with_children:
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(pid).children(recursive=True):
                found[child.pid] = child
    # Members of the group whose parent already exited were re-parented away from the tree.
    for proc in psutil.process_iter():
        with contextlib.suppress(OSError, psutil.Error):
            if proc.pid != pid and proc.pid not in found and os.getpgid(proc.pid) == pid:
                found[proc.pid] = proc
    return list(found.values())


def _signal_all(
    leader: asyncio.subprocess.Process, procs: Iterable[psutil.Process], sig: signal.Signals
) -> None:
    """Signal the leader's group once, then each process outside it (no process gets the signal twice)."""
    group_signalled = True
    try:
        os.killpg(leader.pid, sig)
    except (ProcessLookupError, PermissionError):
        group_signalled = False
    if not group_signalled and leader.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            leader.send_signal(sig)
    for proc in procs:
        with contextlib.suppress(OSError, psutil.Error):
            if not group_signalled or os.getpgid(proc.pid) != leader.pid:
                proc.send_signal(sig)


async def wait_exit(proc: asyncio.subprocess.Process, interval: float = 0.1) -> int:
    """Wait for the process to exit and return its code.

    Polls rather than awaiting proc.wait(): that also waits for the output pipe to close, which a helper
    process that inherited the pipe can hold open long after the engine itself died.
    """
    while proc.returncode is None:  # noqa: ASYNC110 (no exit event to wait on, see docstring)
        await asyncio.sleep(interval)
    return proc.returncode


async def _wait_gone(
    proc: asyncio.subprocess.Process, others: list[psutil.Process], deadline: float, interval: float = 0.05
) -> bool:
    """Wait until the engine exited and none of `others` is alive, or the deadline passed."""
    while True:
        if proc.returncode is not None and not any(_alive(p) for p in others):
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(interval, remaining))


async def terminate_tree(proc: asyncio.subprocess.Process, grace: float, kill_wait: float = 10.0) -> bool:
    """Stop the engine and its whole tree: SIGTERM, then SIGKILL after `grace` s. True if SIGKILL was needed."""
    others = await asyncio.to_thread(find_tree, proc.pid, with_children=proc.returncode is None)
    _signal_all(proc, others, signal.SIGTERM)
    if await _wait_gone(proc, others, time.monotonic() + grace):
        return False
    # Look again: the engine may have started helpers while shutting down.
    more = await asyncio.to_thread(find_tree, proc.pid, with_children=proc.returncode is None)
    others = [p for p in others if _alive(p)] + [p for p in more if p.pid not in {o.pid for o in others}]
    _signal_all(proc, others, signal.SIGKILL)
    await _wait_gone(proc, others, time.monotonic() + kill_wait)
    return True
