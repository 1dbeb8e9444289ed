"""The engine supervisor with fake engines that load, crash, hang and refuse to stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from gllm.testing.engine import fake_engine_spec, helper_pid, process_gone, supervised, wait_state
from gllm.worker.engines import PRESETS, EngineSpec
from gllm.worker.state import WorkerState
from gllm.worker.supervisor import EngineSupervisor


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


async def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


async def load_ready(supervisor: EngineSupervisor, model: str = "m1") -> int:
    """Load `model`, wait for ready, return the engine pid."""
    assert supervisor.request_load(model)
    await wait_state(supervisor, WorkerState.READY)
    pid = supervisor.status().engine_pid
    assert pid is not None
    return pid


@pytest.mark.unit
class TestLoading:
    """load_model: loading until healthy, then ready; same model is a no-op; force or a new model restarts."""

    def test_loading_then_ready(self) -> None:
        """The state is loading while the engine's /health is 503, then ready."""

        async def body() -> None:
            async with supervised(fake_engine_spec("--ready-after", "0.5")) as sup:
                assert sup.status().state is WorkerState.IDLE
                assert sup.request_load("m1")
                assert sup.state is WorkerState.LOADING
                assert sup.model == "m1"
                await wait_state(sup, WorkerState.READY)
                status = sup.status()
                assert status.engine_pid is not None
                assert status.model == "m1"
                assert status.uptime_s is not None
                assert status.ready_at is not None
                assert status.load_started_at is not None
                assert status.load_duration_s is not None
                assert status.last_error is None
                assert await sup.engine_healthy()

        run(body())

    def test_same_model_is_a_noop(self) -> None:
        """Loading the model that is ready again changes nothing."""

        async def body() -> None:
            async with supervised(fake_engine_spec()) as sup:
                pid = await load_ready(sup)
                assert not sup.request_load("m1")
                assert sup.state is WorkerState.READY
                assert sup.status().engine_pid == pid

        run(body())

    def test_same_model_while_loading_is_a_noop(self) -> None:
        """A second request for the model being loaded does not restart the load."""

        async def body() -> None:
            async with supervised(fake_engine_spec("--ready-after", "0.5")) as sup:
                assert sup.request_load("m1")
                assert not sup.request_load("m1")
                await wait_state(sup, WorkerState.READY)

        run(body())

    def test_force_reload_restarts_with_a_new_pid(self) -> None:
        """force_reload stops the old engine and starts a new one."""

        async def body() -> None:
            async with supervised(fake_engine_spec()) as sup:
                old = await load_ready(sup)
                assert sup.request_load("m1", force_reload=True)
                assert sup.state is WorkerState.LOADING
                await wait_state(sup, WorkerState.READY)
                new = sup.status().engine_pid
                assert new is not None
                assert new != old
                assert process_gone(old)

        run(body())

    def test_other_model_replaces_the_engine(self) -> None:
        """A different model restarts the engine with that model."""

        async def body() -> None:
            async with supervised(fake_engine_spec()) as sup:
                old = await load_ready(sup, "m1")
                new = await load_ready(sup, "m2")
                assert new != old
                assert sup.model == "m2"
                assert any("m2" in line for line in sup.logs())
                await wait_for(lambda: process_gone(old), what="old engine gone")

        run(body())

    def test_newer_request_supersedes_a_load_in_progress(self) -> None:
        """Two quick loads end with the second model ready and one engine."""

        async def body() -> None:
            async with supervised(fake_engine_spec("--ready-after", "0.3")) as sup:
                sup.request_load("m1")
                await asyncio.sleep(0.1)
                sup.request_load("m2")
                await wait_state(sup, WorkerState.READY)
                assert sup.model == "m2"
                assert any("serving m2" in line for line in sup.logs())

        run(body())


@pytest.mark.unit
class TestFailures:
    """A crash or a load that never finishes gives failed with the engine's last lines."""

    def test_crash_while_loading(self) -> None:
        """An engine that exits while loading: failed, exit code and log lines reported."""

        async def body() -> None:
            async with supervised(fake_engine_spec("--never-healthy", "--crash-after", "0.3")) as sup:
                sup.request_load("m1")
                await wait_state(sup, WorkerState.FAILED)
                status = sup.status()
                assert status.last_error is not None
                assert "exited with code 3" in status.last_error
                assert "while loading" in status.last_error
                assert "fatal: simulated crash" in status.last_log_lines
                assert status.engine_pid is None
                assert status.to_json()["state"] == "failed"

        run(body())

    def test_crash_after_ready_is_noticed(self) -> None:
        """The watcher notices an engine that dies while serving."""

        async def body() -> None:
            async with supervised(fake_engine_spec("--crash-after", "1.0")) as sup:
                await load_ready(sup)
                await wait_state(sup, WorkerState.FAILED)
                assert "unexpectedly" in (sup.status().last_error or "")
                assert not await sup.engine_healthy()

        run(body())

    def test_never_healthy_fails_on_timeout_and_is_stopped(self) -> None:
        """A load past the timeout: failed, and the engine process is stopped."""

        async def body() -> None:
            async with supervised(fake_engine_spec("--never-healthy"), load_timeout=1.0) as sup:
                sup.request_load("m1")
                await wait_for(lambda: sup.status().engine_pid is not None, what="engine started")
                pid = sup.status().engine_pid
                assert pid is not None
                await wait_state(sup, WorkerState.FAILED)
                assert "did not become healthy within 1s" in (sup.status().last_error or "")
                assert any("fake engine serving" in line for line in sup.status().last_log_lines)
                await wait_for(lambda: process_gone(pid), what="engine stopped")

        run(body())

    def test_missing_executable(self) -> None:
        """An engine that cannot be started: failed with a readable error."""

        async def body() -> None:
            spec = EngineSpec(preset=PRESETS["vllm"], port=1, template="/nonexistent/engine {model}")
            async with supervised(spec) as sup:
                sup.request_load("m1")
                await wait_state(sup, WorkerState.FAILED)
                assert "could not start engine '/nonexistent/engine'" in (sup.status().last_error or "")

        run(body())

    def test_bad_template(self) -> None:
        """A template with an unknown placeholder: failed, naming it."""

        async def body() -> None:
            spec = EngineSpec(preset=PRESETS["vllm"], port=1, template="run {nope}")
            async with supervised(spec) as sup:
                sup.request_load("m1")
                await wait_state(sup, WorkerState.FAILED)
                assert "nope" in (sup.status().last_error or "")

        run(body())

    def test_failed_model_can_be_loaded_again(self) -> None:
        """After a failure, the same model is not a no-op: it starts again."""

        async def body() -> None:
            async with supervised(fake_engine_spec("--never-healthy", "--crash-after", "0.2")) as sup:
                sup.request_load("m1")
                await wait_state(sup, WorkerState.FAILED)
                assert sup.request_load("m1")
                assert sup.state is WorkerState.LOADING
                assert sup.status().last_error is None

        run(body())


@pytest.mark.unit
class TestStopping:
    """release and shutdown stop the whole process tree, escalating to SIGKILL."""

    def test_release(self) -> None:
        """release: engine gone, state released, no model."""

        async def body() -> None:
            async with supervised(fake_engine_spec()) as sup:
                pid = await load_ready(sup)
                await sup.release()
                assert sup.state is WorkerState.RELEASED
                assert sup.model is None
                assert sup.status().engine_pid is None
                assert process_gone(pid)

        run(body())

    def test_release_while_loading(self) -> None:
        """release during a load stops it and stays released."""

        async def body() -> None:
            async with supervised(fake_engine_spec("--never-healthy")) as sup:
                sup.request_load("m1")
                await wait_for(lambda: sup.status().engine_pid is not None, what="engine started")
                pid = sup.status().engine_pid
                assert pid is not None
                await sup.release()
                await asyncio.sleep(0.3)  # give a stale load task the chance to misbehave
                assert sup.state is WorkerState.RELEASED
                assert process_gone(pid)

        run(body())

    def test_sigterm_ignored_means_sigkill_after_grace(self) -> None:
        """An engine and helper ignoring SIGTERM are killed once the grace period ends."""

        async def body() -> None:
            async with supervised(fake_engine_spec("--ignore-sigterm", "--helper"), stop_grace=0.5) as sup:
                pid = await load_ready(sup)
                await wait_for(
                    lambda: any(line.startswith("helper up") for line in sup.logs()), what="helper"
                )
                helper = helper_pid(sup.logs())
                started = time.monotonic()
                await sup.release()
                assert time.monotonic() - started >= 0.5  # it did wait for the grace period
                assert process_gone(pid)
                assert process_gone(helper)

        run(body())

    @pytest.mark.parametrize("flag", ["--helper", "--helper-new-session"])
    def test_helpers_are_stopped(self, flag: str) -> None:
        """Helpers in the engine's group and in their own session both stop."""

        async def body() -> None:
            async with supervised(fake_engine_spec(flag)) as sup:
                await load_ready(sup)
                await wait_for(
                    lambda: any(line.startswith("helper up") for line in sup.logs()), what="helper"
                )
                helper = helper_pid(sup.logs())
                await sup.release()
                assert process_gone(helper)

        run(body())

    def test_helpers_of_a_crashed_engine_are_stopped(self) -> None:
        """An engine that dies leaves no helper behind."""

        async def body() -> None:
            async with supervised(fake_engine_spec("--helper", "--crash-after", "1.0")) as sup:
                sup.request_load("m1")
                await wait_for(
                    lambda: any(line.startswith("helper up") for line in sup.logs()), what="helper"
                )
                helper = helper_pid(sup.logs())
                await wait_state(sup, WorkerState.FAILED)
                await wait_for(lambda: process_gone(helper), what="helper stopped")

        run(body())

    def test_shutdown_refuses_new_loads(self) -> None:
        """After shutdown no engine can start again."""

        async def body() -> None:
            async with supervised(fake_engine_spec()) as sup:
                pid = await load_ready(sup)
                await sup.shutdown()
                assert process_gone(pid)
                with pytest.raises(RuntimeError):
                    sup.request_load("m2")

        run(body())
