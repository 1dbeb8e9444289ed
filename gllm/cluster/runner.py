"""Run a cluster: start the balancer, then the workers, print where to send requests, supervise, stop.

Order of events:
1. the balancer starts and the runner waits until GET /workers answers (a balancer that exits first, or does
   not answer within the start-up timeout, ends the run with exit code 1 after stopping everything);
2. the workers start; each registers itself with the balancer, whose reply names the model to load;
3. the banner says where to send requests, and the monitor prints readiness progress and worker failures;
4. SIGINT, SIGTERM or SIGHUP stops everything (a second signal skips the grace period); exit code 0.

A balancer restarted by the supervisor gets every worker as --existing-workers, and as --load-model the model
the workers serve at that moment, so it knows the cluster again at once without reloading anything.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

import aiohttp

from gllm.cluster.banner import banner
from gllm.cluster.monitor import ClusterMonitor
from gllm.cluster.plan import ClusterPlan
from gllm.cluster.supervisor import Child, ChildSpec, ProcessSupervisor, RestartPolicy
from gllm.cluster.tree import become_subreaper
from gllm.worker.supervisor import describe_exit

PREFIX = "gllm start-cluster"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class RunOptions:
    """How the runner behaves (seconds)."""

    stop_grace: float = 30.0
    startup_timeout: float = 60.0
    progress: bool = True
    monitor_interval: float = 1.0
    reap_interval: float = 2.0
    restart: RestartPolicy = field(default_factory=RestartPolicy)


class ClusterRunner:
    """One run of `gllm start-cluster` (see the module docstring)."""

    def __init__(
        self, plan: ClusterPlan, options: RunOptions, out: TextIO | None = None, err: TextIO | None = None
    ) -> None:
        self._plan = plan
        self._options = options
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self._stop = asyncio.Event()
        self._supervisor = ProcessSupervisor(self.warn, self._child_line, options.restart)
        self._monitor = ClusterMonitor(
            plan.balancer_url,
            {plan.worker_url(slot): slot.name for slot in plan.workers},
            self.say,
            self.warn,
            model=plan.load_model,
            interval=options.monitor_interval,
            progress=options.progress,
        )
        self._balancer_launches = 0

    def say(self, message: str) -> None:
        """Progress and information, on stdout."""
        print(message, file=self._out, flush=True)

    def warn(self, message: str) -> None:
        """Problems (a child that exited, a failed worker), on stderr."""
        print(f"{PREFIX}: {message}", file=self._err, flush=True)

    def _child_line(self, name: str, line: str) -> None:
        print(f"[{name}] {line}", file=self._err, flush=True)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stop.is_set():
            self.warn(f"{sig.name} again: killing every process now")
            self._supervisor.hurry()
            return
        self.warn(f"{sig.name} received: stopping the cluster")
        self._stop.set()

    async def run(self) -> int:
        """Run until a stop signal; 0 on a clean stop, 1 when the balancer could not start."""
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._on_signal, sig)
        become_subreaper()
        background: list[asyncio.Task[None]] = []
        try:
            async with aiohttp.ClientSession() as session:
                try:
                    code = await self._start(session)
                    if code is None:
                        background.append(asyncio.create_task(self._monitor.run(session)))
                        background.append(asyncio.create_task(self._reap_forever()))
                        await self._stop.wait()
                        code = 0
                finally:
                    for task in background:
                        task.cancel()
                    await asyncio.gather(*background, return_exceptions=True)
                    await self._shutdown()
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
        return code

    async def _start(self, session: aiohttp.ClientSession) -> int | None:
        """Start the balancer, wait for it, start the workers; an exit code when the run cannot go on."""
        env = self._plan.child_env(os.environ)
        try:
            balancer = await self._supervisor.start(ChildSpec("balancer", self._balancer_argv, env))
        except OSError as exc:
            self.warn(f"cannot start the balancer: {exc}")
            return 1
        problem = await self._wait_for_balancer(session, balancer)
        if self._stop.is_set():
            return 0
        if problem is not None:
            self.warn(problem)
            return 1
        for slot in self._plan.workers:
            argv = functools.partial(self._plan.worker_argv, slot)
            try:
                await self._supervisor.start(ChildSpec(slot.name, argv, env))
            except OSError as exc:
                self.warn(f"cannot start {slot.name}: {exc}")
                return 1
        self.say(banner(self._plan))
        return None

    def _balancer_argv(self) -> list[str]:
        self._balancer_launches += 1
        if self._balancer_launches == 1:
            return self._plan.balancer_argv(model=self._plan.load_model)
        workers = [self._plan.worker_url(slot) for slot in self._plan.workers]
        return self._plan.balancer_argv(model=self._monitor.model_hint, existing_workers=workers)

    async def _wait_for_balancer(self, session: aiohttp.ClientSession, balancer: Child) -> str | None:
        """None once GET /workers answers; otherwise why the balancer is not usable."""
        url = f"{self._plan.balancer_url}/workers"
        deadline = time.monotonic() + self._options.startup_timeout
        while not self._stop.is_set():
            if balancer.starts > 1 or (balancer.proc is not None and balancer.proc.returncode is not None):
                code = balancer.proc.returncode if balancer.proc is not None else None
                if code is None:
                    code = balancer.last_exit
                how = describe_exit(code) if code is not None else "exited"
                return f"the balancer {how} before answering on {url} (see its output above)"
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2.0)) as resp:
                    if resp.status == 200:
                        return None
            except (aiohttp.ClientError, TimeoutError, OSError):
                pass
            if time.monotonic() >= deadline:
                return f"the balancer did not answer on {url} within {self._options.startup_timeout:g}s"
            await asyncio.sleep(0.1)
        return None

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self._options.reap_interval)
            await self._supervisor.reap()

    async def _shutdown(self) -> None:
        running = [child.name for child in self._supervisor.children if child.pid is not None]
        grace = self._options.stop_grace
        self.say(f"stopping {len(running)} process(es): SIGTERM now, SIGKILL after {grace:g}s")
        started = time.monotonic()
        killed = await self._supervisor.stop(grace)
        if killed:
            self.warn(f"killed with SIGKILL after the grace period: {', '.join(killed)}")
        self.say(f"cluster stopped ({time.monotonic() - started:.1f}s)")
