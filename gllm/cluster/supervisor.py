"""Keep a set of child processes running: restart with backoff on exit, stop them all on request.

Each child runs in its own session (so its own process group, out of reach of the terminal's Ctrl-C, which the
cluster handles itself) and gets SIGTERM if the cluster process dies (PR_SET_PDEATHSIG). Its stdout and
stderr are merged and relayed line by line through `output(name, line)`.

A child that exits while the supervisor is not stopping is reported through `report(message)` and started
again after a backoff delay: `initial_delay * 2**n` capped at `max_delay`, where n counts the exits in a row
that came sooner than `stable_after` seconds after a start (a child that ran that long starts from n = 0).

Stopping sends SIGTERM to each child's process group and to adopted orphans, waits up to the grace period for
every descendant of this process to be gone, then sends SIGKILL to whatever is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import psutil

from gllm.cluster.tree import alive, descendants, reap_orphans, signal_all, signal_group
from gllm.worker.process import pdeathsig_preexec
from gllm.worker.supervisor import describe_exit

READ_CHUNK = 65536


@dataclass(frozen=True)
class ChildSpec:
    """How to start one child; `argv` is called at every (re)start so the command may change."""

    name: str
    argv: Callable[[], Sequence[str]]
    env: Mapping[str, str] | None = None


@dataclass(frozen=True)
class RestartPolicy:
    """Backoff between restarts (seconds)."""

    initial_delay: float = 1.0
    max_delay: float = 30.0
    stable_after: float = 30.0

    def delay(self, quick_exits: int) -> float:
        """Seconds to wait before a restart after `quick_exits` early exits in a row (0 for the first)."""
        return float(min(self.max_delay, self.initial_delay * 2.0 ** min(quick_exits, 32)))


@dataclass
class Child:
    """A supervised child and what happened to it."""

    spec: ChildSpec
    proc: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    starts: int = 0
    quick_exits: int = 0
    last_exit: int | None = None
    keeper: asyncio.Task[None] | None = None
    relays: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The child's name."""
        return self.spec.name

    @property
    def pid(self) -> int | None:
        """Pid of the current process, None when none runs."""
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    @property
    def restarts(self) -> int:
        """Starts after the first one."""
        return max(0, self.starts - 1)


class ProcessSupervisor:
    """Starts children, restarts them when they exit, and stops them all (see the module docstring)."""

    def __init__(
        self,
        report: Callable[[str], None],
        output: Callable[[str, str], None],
        policy: RestartPolicy | None = None,
        poll_interval: float = 0.1,
    ) -> None:
        self._report = report
        self._output = output
        self._policy = policy or RestartPolicy()
        self._poll = poll_interval
        self._children: dict[str, Child] = {}
        self._stopping = asyncio.Event()
        self._hurry = asyncio.Event()

    @property
    def children(self) -> list[Child]:
        """The supervised children in start order."""
        return list(self._children.values())

    def child(self, name: str) -> Child:
        """A child by name."""
        return self._children[name]

    async def start(self, spec: ChildSpec) -> Child:
        """Start a child and keep it running; raises OSError when the first start fails."""
        if spec.name in self._children:
            raise ValueError(f"a child named {spec.name!r} is already supervised")
        child = Child(spec)
        await self._spawn(child)
        self._children[spec.name] = child
        child.keeper = asyncio.create_task(self._keep(child), name=f"keep {spec.name}")
        return child

    async def _spawn(self, child: Child) -> None:
        env = dict(os.environ if child.spec.env is None else child.spec.env)
        env["PYTHONUNBUFFERED"] = "1"  # the children's logs then reach us line by line
        proc = await asyncio.create_subprocess_exec(
            *child.spec.argv(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=pdeathsig_preexec(),  # forked on the loop thread, which lives as long as we do
        )
        child.proc = proc
        child.started_at = time.monotonic()
        child.starts += 1
        child.relays = [task for task in child.relays if not task.done()]
        if proc.stdout is not None:
            child.relays.append(asyncio.create_task(self._relay(child.name, proc.stdout)))
        if self._stopping.is_set():  # a restart that raced with stop(): it must not outlive the stop
            signal_group(proc.pid, signal.SIGTERM)

    async def _relay(self, name: str, stream: asyncio.StreamReader) -> None:
        pending = b""
        while chunk := await stream.read(READ_CHUNK):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                self._output(name, line.decode(errors="replace").rstrip("\r"))
        if pending:
            self._output(name, pending.decode(errors="replace"))

    async def wait_exit(self, child: Child) -> int:
        """Wait until the child's current process exits; its exit code.

        Polls rather than awaiting proc.wait(), which also waits for the output pipe to close: a grandchild
        that inherited it could hold it open long after the child died.
        """
        proc = child.proc
        assert proc is not None
        while proc.returncode is None:  # noqa: ASYNC110 (see the docstring)
            await asyncio.sleep(self._poll)
        return proc.returncode

    async def _keep(self, child: Child) -> None:
        while True:
            code = await self.wait_exit(child)
            child.last_exit = code
            if self._stopping.is_set():
                return
            ran = time.monotonic() - child.started_at
            child.quick_exits = child.quick_exits + 1 if ran < self._policy.stable_after else 0
            delay = self._policy.delay(max(0, child.quick_exits - 1))
            self._report(
                f"{child.name} (pid {child.proc.pid if child.proc else '?'}) {describe_exit(code)} "
                f"after {ran:.1f}s; restarting in {delay:.1f}s (restart #{child.starts})"
            )
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                if self._stopping.is_set():
                    return
                try:
                    await self._spawn(child)
                    self._report(f"{child.name} restarted (pid {child.proc.pid if child.proc else '?'})")
                    break
                except OSError as exc:
                    child.quick_exits += 1
                    delay = self._policy.delay(child.quick_exits - 1)
                    self._report(f"{child.name} could not start: {exc}; retrying in {delay:.1f}s")

    def managed_pids(self) -> set[int]:
        """Pids of the children's current processes."""
        return {pid for child in self._children.values() if (pid := child.pid) is not None}

    async def reap(self) -> int:
        """Reap adopted orphans that exited (see gllm.cluster.tree)."""
        return await asyncio.to_thread(reap_orphans, self.managed_pids())

    def hurry(self) -> None:
        """Cut the grace period of a stop in progress short: SIGKILL now."""
        self._hurry.set()

    async def stop(self, grace: float, kill_wait: float = 10.0) -> list[str]:
        """Stop every child and every other descendant; the names of children that needed SIGKILL."""
        self._stopping.set()
        before = await asyncio.to_thread(descendants)
        managed = self.managed_pids()
        for pid in managed:
            signal_group(pid, signal.SIGTERM)
        # Adopted orphans (engines whose worker died) are nobody's responsibility but ours.
        signal_all([p for p in before if _parent(p) == os.getpid() and p.pid not in managed], signal.SIGTERM)
        deadline = time.monotonic() + grace
        left = await self._wait_gone(before, deadline, self._hurry)
        killed: list[str] = []
        if left:
            killed = [child.name for child in self._children.values() if child.pid is not None]
            for pid in self.managed_pids():
                signal_group(pid, signal.SIGKILL)
            signal_all(left, signal.SIGKILL)
            await self._wait_gone(left, time.monotonic() + kill_wait, None)
        await self._finish()
        return killed

    async def _wait_gone(
        self, known: list[psutil.Process], deadline: float, hurry: asyncio.Event | None
    ) -> list[psutil.Process]:
        """Wait until no child and no descendant lives; what is left at the deadline (or when hurried)."""
        while True:
            await self.reap()
            current = await asyncio.to_thread(descendants)
            seen = {p.pid for p in current}
            left = current + [p for p in known if p.pid not in seen and alive(p)]
            if not left and not self.managed_pids():
                return []
            if time.monotonic() >= deadline or (hurry is not None and hurry.is_set()):
                return left
            await asyncio.sleep(self._poll)

    async def _finish(self) -> None:
        tasks = [child.keeper for child in self._children.values() if child.keeper is not None]
        tasks += [task for child in self._children.values() for task in child.relays]
        # Keepers return on their own once their process exited; relays end at EOF. Give them a moment.
        done, pending = await asyncio.wait(tasks, timeout=5.0) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                self._report(f"internal error in {task.get_name()}: {task.exception()!r}")
        await self.reap()


def _parent(proc: psutil.Process) -> int | None:
    try:
        return proc.ppid()
    except psutil.Error:
        return None
