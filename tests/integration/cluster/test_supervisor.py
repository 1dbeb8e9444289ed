"""The process supervisor with small Python children: restart with backoff, output relay, stop and kill."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psutil
import pytest

from gllm.cluster.supervisor import ChildSpec, ProcessSupervisor, RestartPolicy
from gllm.testing.cluster import alive

T = TypeVar("T")
FAST = RestartPolicy(initial_delay=0.1, max_delay=0.4, stable_after=30.0)

IGNORE_TERM = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\n"
IGNORE_TERM += "while True: time.sleep(0.1)\n"
# A child that starts a grandchild in another session (like a worker's engine), which ignores SIGTERM.
WITH_GRANDCHILD = (
    "import subprocess, sys, time\n"
    "g = subprocess.Popen([sys.executable, '-c', sys.argv[1]], start_new_session=True)\n"
    "print('grandchild', g.pid, flush=True)\n"
    "while True: time.sleep(0.1)\n"
)


def python(code: str, *args: str) -> Callable[[], list[str]]:
    """argv factory for `python -c code args...`."""
    return lambda: [sys.executable, "-c", code, *args]


class Recorder:
    """Collects what the supervisor reports and relays."""

    def __init__(self) -> None:
        self.reports: list[str] = []
        self.lines: list[tuple[str, str]] = []

    def supervisor(self, policy: RestartPolicy = FAST) -> ProcessSupervisor:
        """A supervisor reporting into this recorder."""
        return ProcessSupervisor(
            self.reports.append, lambda name, line: self.lines.append((name, line)), policy
        )

    async def until(self, predicate: Callable[[], object], timeout: float = 30.0) -> None:
        """Wait on the loop until `predicate()` holds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met; reports={self.reports} lines={self.lines}")
            await asyncio.sleep(0.02)


def run_with(
    recorder: Recorder, body: Callable[[ProcessSupervisor], Awaitable[T]], policy: RestartPolicy = FAST
) -> T:
    """Run `body` with a fresh supervisor; every child is stopped afterwards, even when the body fails."""

    async def main() -> T:
        supervisor = recorder.supervisor(policy)
        try:
            return await body(supervisor)
        finally:
            await supervisor.stop(grace=2.0)

    return asyncio.run(main())


@pytest.mark.integration
class TestRestart:
    """A child that exits on its own is reported and started again after a growing delay."""

    def test_exiting_child_is_restarted_with_reports(self) -> None:
        """Exit code 3 three times: three reports naming the code, and three more starts."""
        recorder = Recorder()

        async def body(supervisor: ProcessSupervisor) -> int:
            child = await supervisor.start(ChildSpec("flaky", python("import sys; sys.exit(3)")))
            await recorder.until(lambda: child.starts >= 4 and child.quick_exits >= 4)
            return child.starts

        assert run_with(recorder, body) >= 4
        exits = [r for r in recorder.reports if "exited with code 3" in r]
        assert len(exits) >= 3
        # Quick exits in a row double the delay, up to the cap.
        assert [e.split("restarting in ")[1] for e in exits[:3]] == [
            "0.1s (restart #1)",
            "0.2s (restart #2)",
            "0.4s (restart #3)",
        ]
        assert any(r.startswith("flaky restarted (pid ") for r in recorder.reports)

    def test_argv_is_rebuilt_at_each_start(self) -> None:
        """The argv factory is called again for a restart, so a restart may change the command."""
        recorder = Recorder()
        calls: list[int] = []

        def argv() -> list[str]:
            calls.append(len(calls))
            return [sys.executable, "-c", f"print('start {len(calls)}')"]

        async def body(supervisor: ProcessSupervisor) -> None:
            await supervisor.start(ChildSpec("changing", argv))
            await recorder.until(lambda: ("changing", "start 2") in recorder.lines)

        run_with(recorder, body)
        assert ("changing", "start 1") in recorder.lines


@pytest.mark.integration
class TestOutput:
    """The children's output is relayed line by line with their name."""

    def test_lines_and_a_last_unterminated_line(self) -> None:
        """stdout and stderr both arrive, split into lines, including a last line without newline."""
        recorder = Recorder()
        code = "import sys, time\nprint('one'); sys.stderr.write('two\\nthree'); sys.stderr.flush(); time.sleep(30)"

        async def body(supervisor: ProcessSupervisor) -> None:
            await supervisor.start(ChildSpec("talker", python(code)))
            await recorder.until(lambda: ("talker", "two") in recorder.lines)

        run_with(recorder, body)
        assert recorder.lines[:2] == [("talker", "one"), ("talker", "two")]
        assert ("talker", "three") in recorder.lines  # flushed at EOF, when the child was stopped


@pytest.mark.integration
class TestStop:
    """stop() leaves no process behind: SIGTERM first, SIGKILL after the grace period."""

    def test_child_ignoring_sigterm_is_killed_after_the_grace(self) -> None:
        """A child that ignores SIGTERM is named among those that needed SIGKILL, and is gone."""
        recorder = Recorder()

        async def body(supervisor: ProcessSupervisor) -> tuple[list[str], int]:
            child = await supervisor.start(ChildSpec("stubborn", python(IGNORE_TERM)))
            await recorder.until(lambda: ("stubborn", "up") in recorder.lines)
            assert child.pid is not None
            pid = child.pid
            return await supervisor.stop(grace=0.5), pid

        killed, pid = run_with(recorder, body)
        assert killed == ["stubborn"]
        assert not psutil.pid_exists(pid) or not alive(psutil.Process(pid))
        assert not any("restarting" in r for r in recorder.reports)  # a stop is not a crash

    def test_grandchild_in_another_session_is_killed_too(self) -> None:
        """A grandchild that left the group and ignores SIGTERM is still found and killed."""
        recorder = Recorder()

        async def body(supervisor: ProcessSupervisor) -> int:
            await supervisor.start(ChildSpec("parent", python(WITH_GRANDCHILD, IGNORE_TERM)))
            await recorder.until(lambda: any(line.startswith("grandchild") for _, line in recorder.lines))
            pid = int(next(line for _, line in recorder.lines if line.startswith("grandchild")).split()[1])
            await supervisor.stop(grace=0.5)
            return pid

        pid = run_with(recorder, body)
        assert not psutil.pid_exists(pid) or not alive(psutil.Process(pid))

    def test_hurry_cuts_the_grace_period_short(self) -> None:
        """hurry() during a stop with a long grace period kills at once (a second Ctrl-C)."""
        recorder = Recorder()

        async def body(supervisor: ProcessSupervisor) -> float:
            await supervisor.start(ChildSpec("stubborn", python(IGNORE_TERM)))
            await recorder.until(lambda: ("stubborn", "up") in recorder.lines)
            started = time.monotonic()
            stopping = asyncio.create_task(supervisor.stop(grace=120.0))
            await asyncio.sleep(0.2)
            supervisor.hurry()
            assert await stopping == ["stubborn"]
            return time.monotonic() - started

        assert run_with(recorder, body) < 60.0
