"""The engine-metrics scraper over real HTTP: simulated engines, a fallback path, a hung server, pruning."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from gllm.balancer.engine_load import EngineLoadTable
from gllm.balancer.engine_metrics import EngineMetricsScraper
from gllm.balancer.registry import Registry
from gllm.http.pool import UpstreamPool
from gllm.sim import SimCluster
from gllm.testing.sim import fast_config

VLLM_PAGE = "vllm:num_requests_running 3\nvllm:num_requests_waiting 1\nvllm:kv_cache_usage_perc 0.25\n"


@asynccontextmanager
async def server(
    routes: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]],
) -> AsyncIterator[str]:
    """An aiohttp server on a free 127.0.0.1 port with the given GET routes; yields its base URL."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def page(request: web.Request) -> web.Response:
    """A vLLM-like metrics page."""
    return web.Response(text=VLLM_PAGE)


async def hang(request: web.Request) -> web.Response:
    """Answers far past the scraper's timeout (short enough for the server to stop soon after)."""
    await asyncio.sleep(2)
    return web.Response()


@pytest.mark.integration
class TestScraper:
    """Concurrent scrapes with timeouts into the table."""

    def test_reads_busy_simulated_engines(self) -> None:
        """The sims' own /metrics, scraped while requests run, show them running."""

        async def main() -> None:
            async with SimCluster([fast_config(decode_base_step_s=0.01) for _ in range(2)]) as cluster:
                registry, pool, table = Registry(), UpstreamPool(), EngineLoadTable()
                workers = [registry.add(url)[0] for url in (h.url for h in cluster.handles)]
                scraper = EngineMetricsScraper(pool, registry.all, table, timeout=5)
                body = {"model": "sim-model", "prompt": "x", "max_tokens": 300}
                async with aiohttp.ClientSession() as http:
                    posts = [
                        asyncio.create_task(http.post(workers[0].address + "/v1/completions", json=body))
                        for _ in range(3)
                    ]
                    try:
                        for _ in range(500):  # until the engine has admitted them (bounded)
                            await scraper.scrape_all()
                            load = table.get(workers[0].address)
                            if load is not None and load.figures.running == 3:
                                break
                            await asyncio.sleep(0.01)
                        busy, idle = table.get(workers[0].address), table.get(workers[1].address)
                        assert busy is not None
                        assert busy.figures.running == 3
                        assert busy.figures.kv_usage is not None
                        assert idle is not None
                        assert idle.figures.running == 0
                        assert scraper.failures == 0
                    finally:
                        for task in posts:
                            task.cancel()
                        await asyncio.gather(*posts, return_exceptions=True)
                pool.close()

        asyncio.run(main())

    def test_falls_back_to_engine_metrics_path(self) -> None:
        """A worker without /metrics is asked at /engine/metrics, and keeps being asked there."""

        async def main() -> None:
            async with server({"/engine/metrics": page}) as url:
                registry, pool, table = Registry(), UpstreamPool(), EngineLoadTable()
                registry.add(url)
                scraper = EngineMetricsScraper(pool, registry.all, table)
                for _ in range(2):
                    await scraper.scrape_all()
                load = table.get(url)
                assert load is not None
                assert (load.figures.running, load.figures.waiting) == (3, 1)
                assert scraper.scrapes == 2
                pool.close()

        asyncio.run(main())

    def test_hung_and_dead_workers_time_out_without_delaying_others(self) -> None:
        """A hung worker costs one timeout, a closed port fails at once, the healthy one is still read."""

        async def main() -> None:
            async with server({"/metrics": hang}) as hung, server({"/metrics": page}) as good:
                registry, pool, table = Registry(), UpstreamPool(connect_timeout=1), EngineLoadTable()
                for url in (hung, good, "http://127.0.0.1:9"):
                    registry.add(url)
                scraper = EngineMetricsScraper(pool, registry.all, table, timeout=0.3)
                loop = asyncio.get_running_loop()
                start = loop.time()
                await scraper.scrape_all()
                assert loop.time() - start < 5  # one timeout, not one per worker in turn
                assert table.get(good) is not None
                assert table.get(hung) is None
                assert scraper.failures == 2
                pool.close()

        asyncio.run(main())

    def test_removed_workers_are_pruned(self) -> None:
        """After a worker leaves the registry its figures leave the table."""

        async def main() -> None:
            async with server({"/metrics": page}) as url:
                registry, pool, table = Registry(), UpstreamPool(), EngineLoadTable()
                registry.add(url)
                scraper = EngineMetricsScraper(pool, registry.all, table)
                await scraper.scrape_all()
                assert len(table) == 1
                registry.remove(url)
                await scraper.scrape_all()
                assert len(table) == 0
                pool.close()

        asyncio.run(main())

    def test_run_keeps_scraping_until_cancelled(self) -> None:
        """The background loop refreshes the figures on its interval."""

        async def main() -> None:
            async with server({"/metrics": page}) as url:
                registry, pool, table = Registry(), UpstreamPool(), EngineLoadTable()
                registry.add(url)
                scraper = EngineMetricsScraper(pool, registry.all, table, interval=0.05)
                task = asyncio.create_task(scraper.run())
                try:
                    for _ in range(400):
                        if scraper.scrapes >= 3:
                            break
                        await asyncio.sleep(0.025)
                    assert scraper.scrapes >= 3
                finally:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    pool.close()

        asyncio.run(main())

    def test_bad_settings(self) -> None:
        """Non-positive interval or timeout, or no paths, are refused."""
        with pytest.raises(ValueError, match="positive"):
            EngineMetricsScraper(UpstreamPool(), list, EngineLoadTable(), interval=0)
        with pytest.raises(ValueError, match="path"):
            EngineMetricsScraper(UpstreamPool(), list, EngineLoadTable(), paths=())
