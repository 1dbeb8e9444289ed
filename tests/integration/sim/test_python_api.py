"""The Python API: SimCluster in a running loop, start_engines, BackgroundSimCluster."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import httpx
import pytest

from gllm.sim import BackgroundSimCluster, SimCluster, start_engines
from gllm.testing.sim import fast_config, sim_engines


@pytest.mark.integration
class TestAsyncAPI:
    """Engines in the caller's event loop."""

    def test_sim_cluster_context(self) -> None:
        """`async with SimCluster(configs)` serves every engine, then frees the ports."""

        async def scenario() -> list[int]:
            async with SimCluster([fast_config(), fast_config(served_model_name=("b",))]) as cluster:
                handles = cluster.handles
                async with aiohttp.ClientSession() as session:
                    statuses = []
                    for handle in handles:
                        async with session.get(f"{handle.url}/v1/models") as response:
                            statuses.append(response.status)
                            assert (await response.json())["data"][0]["id"] == handle.model
            return statuses

        assert asyncio.run(scenario()) == [200, 200]

    def test_start_engines(self) -> None:
        """start_engines returns a started, loaded cluster that the caller stops."""

        async def scenario() -> bool:
            cluster = await start_engines([fast_config(load_time_s=0.05)])
            try:
                return all(server.engine.is_ready for server in cluster.servers)
            finally:
                await cluster.stop()

        assert asyncio.run(scenario())

    def test_busy_port_stops_the_others(self) -> None:
        """If one engine cannot bind, start raises OSError and the already started ones are stopped."""

        async def scenario(port: int) -> None:
            cluster = SimCluster([fast_config(), fast_config(port=port)])
            with pytest.raises(OSError):
                await cluster.start()
            assert cluster.servers[0].engine.state == "stopped"

        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            asyncio.run(scenario(holder.getsockname()[1]))


@pytest.mark.integration
class TestBackgroundCluster:
    """Engines on a thread's loop for synchronous code."""

    def test_call_reaches_the_engine(self) -> None:
        """call() runs a coroutine against an engine on the cluster's loop."""
        with sim_engines(2) as cluster, httpx.Client(timeout=30) as client:
            cluster.call(1, lambda server: server.engine.sleep())
            sleeping = [client.get(f"{url}/is_sleeping").json()["is_sleeping"] for url in cluster.urls]
            assert sleeping == [False, True]

    def test_stop_is_idempotent(self) -> None:
        """Stopping twice is harmless and the port is closed afterwards."""
        cluster = BackgroundSimCluster([fast_config()])
        (handle,) = cluster.start()
        cluster.stop()
        cluster.stop()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{handle.url}/health", timeout=5)
