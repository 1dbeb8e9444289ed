"""The dashboard in a real headless Chromium: live traffic is drawn and the numbers match GET /workers.

Runs Debian's Chromium (/usr/bin/chromium) through the Python `playwright` package: no browser download. With
GLLM_SAVE_SCREENSHOT=1 the test also writes docs/img/dashboard.png (the README's picture) and runs traffic
longer so that the charts have more to show.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from gllm.testing import wait_until
from gllm.testing.balancer import BalancerThread
from gllm.testing.fake_worker import FakeWorker, FakeWorkerFarm, WorkerBehaviour
from gllm.testing.observe import Observed

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MODEL = "Qwen/Qwen2.5-7B-Instruct"
# Served by a worker that stays `loading`: a few requests ask for it and get 503, which the dashboard lists.
LOADING_MODEL = "meta-llama/Llama-3.1-70B-Instruct"
SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "img" / "dashboard.png"
SAVE = os.environ.get("GLLM_SAVE_SCREENSHOT") == "1"
TRAFFIC_S = 40.0 if SAVE else 6.0

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


def send_traffic(url: str, stop: threading.Event, seed: int) -> None:
    """Chat requests, some streamed, a few for a model still loading, until `stop` is set."""
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=60) as http:
        while not stop.is_set():
            body = {
                "model": LOADING_MODEL if rng.random() < 0.03 else MODEL,
                "messages": [{"role": "user", "content": "hello"}],
                "stream": rng.random() < 0.3,
            }
            with http.stream("POST", "/v1/chat/completions", json=body) as response:
                response.read()
            stop.wait(rng.uniform(0.0, 0.08))


@pytest.fixture
def traffic(balancer: BalancerThread) -> Iterator[Callable[[float], None]]:
    """Runs traffic from four client threads for a while; the threads are stopped after the test in any case."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def run(seconds: float) -> None:
        threads.extend(
            threading.Thread(target=send_traffic, args=(balancer.url, stop, seed), daemon=True)
            for seed in range(4)
        )
        for thread in threads:
            thread.start()
        finished = threading.Event()
        finished.wait(seconds)  # the traffic itself is what is being measured: it runs for a set time
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    try:
        yield run
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)


@pytest.fixture
def workers(balancer: BalancerThread, farm: FakeWorkerFarm, client: httpx.Client) -> list[FakeWorker]:
    """Three fake workers serving MODEL, each with its own speed, and a fourth still loading another model."""
    made = [
        farm.add(WorkerBehaviour(model=MODEL, completion_delay=delay, stream_chunks=6, chunk_delay=delay / 4))
        for delay in (0.03, 0.06, 0.12)
    ]
    for worker in made:
        assert client.post("/add_worker", json={"address": worker.url}).status_code == 200
    assert client.post("/load_model", json={"model_path": MODEL}).status_code == 200
    loading = farm.add(WorkerBehaviour(model=LOADING_MODEL, state="loading"))
    assert client.post("/add_worker", json={"address": loading.url}).status_code == 200
    wait_until(
        lambda: (
            sorted(w["state"] for w in client.get("/workers").json())
            == ["loading", "ready", "ready", "ready"]
        ),
        timeout=30,
        what="three workers ready, one loading",
    )
    return made


def draws(page: Page) -> int:
    """How many times the page has drawn (read from the DOM: the page's CSP forbids evaluating strings)."""
    return int(page.locator("body").get_attribute("data-draws") or 0)


class TestDashboardInBrowser:
    """Open /dashboard while the cluster serves traffic."""

    def test_live_dashboard(
        self,
        observed: Observed,
        balancer: BalancerThread,
        client: httpx.Client,
        farm: FakeWorkerFarm,
        workers: list[FakeWorker],
        traffic: Callable[[float], None],
        tmp_path: Path,
    ) -> None:
        """Charts draw, and each card's state, model and in-flight are those of GET /workers."""
        from playwright.sync_api import sync_playwright

        traffic(TRAFFIC_S)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1360, "height": 1000})
                page.goto(balancer.url + "/dashboard")
                page.click("button[data-window='60']")
                wait_until(lambda: draws(page) >= 2, timeout=30, what="the dashboard drawn twice")

                # Hold a few requests open so that the in-flight numbers stand still while they are compared.
                for worker in workers:
                    worker.behaviour.hold = True
                held = [
                    threading.Thread(
                        target=lambda: httpx.post(
                            balancer.url + "/chat/completions",
                            json={"model": MODEL, "messages": [{"role": "user", "content": "wait"}]},
                            timeout=60,
                        ),
                        daemon=True,
                    )
                    for _ in range(4)
                ]
                try:
                    for thread in held:
                        thread.start()
                    wait_until(lambda: sum(w.held for w in workers) == 4, timeout=30, what="4 requests held")
                    seen = draws(page)
                    wait_until(
                        lambda: draws(page) >= seen + 2, timeout=30, what="two redraws with held requests"
                    )
                    listed = client.get("/workers").json()
                    for row in listed:
                        card = page.locator(f'[data-address="{row["address"]}"]')
                        assert card.locator('[data-field="in_flight"]').inner_text() == str(row["in_flight"])
                        assert card.locator('[data-field="state"]').inner_text() == row["state"]
                        assert card.locator('[data-field="model"]').inner_text() == row["model"]
                    assert page.locator("#t-inflight").inner_text() == "4"
                    assert page.locator("#t-ready").inner_text() == "3 / 4"
                    assert page.locator("#model").inner_text() == MODEL
                    assert int(page.locator("#c-inflight").get_attribute("data-points") or 0) > 0
                    if observed.wired:  # traffic reaches the charts only through the balancer's hot path
                        assert int(page.locator("#c-rps").get_attribute("data-points") or 0) > 0
                        assert float(page.locator("#c-rps").get_attribute("data-max") or 0) > 0
                        assert float(page.locator("#c-latency").get_attribute("data-max") or 0) > 0
                        assert float(page.locator("#t-rps").inner_text()) > 0
                        assert page.locator("#errors td.msg").count() > 0  # the 503s for the loading model
                    shot = tmp_path / "dashboard.png"
                    page.screenshot(path=str(shot), full_page=True)
                    assert shot.stat().st_size > 10_000
                    if SAVE:
                        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                        SCREENSHOT.write_bytes(shot.read_bytes())
                finally:
                    for worker in workers:
                        farm.release(worker)
                    for thread in held:
                        thread.join(timeout=60)
            finally:
                browser.close()
