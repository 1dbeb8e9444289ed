"""The latency model over HTTP: prefix caching pays, full batches queue, speed scales, many engines fit."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from gllm.sim import BackgroundSimCluster
from gllm.testing import wait_until
from gllm.testing.sim import metric_value


def timed_chat(
    client: httpx.Client, messages: list[dict[str, str]], **fields: Any
) -> tuple[float, dict[str, Any]]:
    """Elapsed seconds and body of one chat completion."""
    started = time.perf_counter()
    response = client.post("/v1/chat/completions", json={"messages": messages, **fields})
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return elapsed, body


def long_document(words: int) -> str:
    """A prompt no other test sends (so it is not cached yet)."""
    tag = uuid.uuid4().hex
    return " ".join(f"{tag}{i % 97}" for i in range(words))


@pytest.mark.integration
class TestPrefixCache:
    """A request whose prefix this engine has cached skips most of its prefill."""

    def test_cached_prefix_is_faster(self, start_engines: Callable[..., BackgroundSimCluster]) -> None:
        """Same 600-token document twice: the second request is far faster and reports cached tokens."""
        # 600 uncached tokens x 2 ms = 1.2 s of prefill, against a few ms once cached.
        cluster = start_engines({"prefill_time_per_token_s": 0.002, "decode_base_step_s": 0.005})
        messages = [{"role": "user", "content": long_document(600)}]
        with httpx.Client(base_url=cluster.urls[0], timeout=60) as client:
            uncached, first = timed_chat(client, messages, max_tokens=1)
            cached, second = timed_chat(client, messages, max_tokens=1)
            page = client.get("/metrics").text
        assert first["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
        hits = second["usage"]["prompt_tokens_details"]["cached_tokens"]
        assert hits >= second["usage"]["prompt_tokens"] - 16
        assert uncached >= 1.0  # the modelled prefill really was paid
        assert cached < 0.7 * uncached
        assert metric_value(page, "vllm:prefix_cache_hits_total") == hits

    def test_multi_turn_reuses_history(self, start_engines: Callable[..., BackgroundSimCluster]) -> None:
        """Turn 2 resends turn 1 and its answer: everything but the new tail is a cache hit."""
        cluster = start_engines()
        history = [{"role": "user", "content": long_document(200)}]
        with httpx.Client(base_url=cluster.urls[0], timeout=30) as client:
            _, first = timed_chat(client, history, max_tokens=30)
            answer = first["choices"][0]["message"]["content"]
            history += [{"role": "assistant", "content": answer}, {"role": "user", "content": "And then?"}]
            _, second = timed_chat(client, history, max_tokens=5)
        turn_one = first["usage"]["prompt_tokens"] + first["usage"]["completion_tokens"]
        assert second["usage"]["prompt_tokens_details"]["cached_tokens"] >= turn_one - 16

    def test_other_engine_does_not_have_it(self, start_engines: Callable[..., BackgroundSimCluster]) -> None:
        """The cache is per engine: the same prompt on another engine is a miss."""
        cluster = start_engines({}, {})
        messages = [{"role": "user", "content": long_document(100)}]
        with httpx.Client(base_url=cluster.urls[0], timeout=30) as first:
            timed_chat(first, messages, max_tokens=1)
        with httpx.Client(base_url=cluster.urls[1], timeout=30) as second:
            _, elsewhere = timed_chat(second, messages, max_tokens=1)
        assert elsewhere["usage"]["prompt_tokens_details"]["cached_tokens"] == 0


@pytest.mark.integration
class TestBatching:
    """Requests beyond max_num_seqs wait; the KV cache fills while sequences run."""

    def test_full_batch_queues(self, start_engines: Callable[..., BackgroundSimCluster]) -> None:
        """With 2 seats and 5 long requests, 2 run and the rest wait; all finish."""
        cluster = start_engines({"max_num_seqs": 2, "decode_base_step_s": 0.01})
        seen: dict[str, float] = {}

        def snapshot(client: httpx.Client) -> bool:
            page = client.get("/metrics").text
            seen["running"] = metric_value(page, "vllm:num_requests_running")
            seen["waiting"] = metric_value(page, "vllm:num_requests_waiting")
            seen["kv"] = metric_value(page, "vllm:kv_cache_usage_perc")
            return seen["running"] == 2 and seen["waiting"] > 0

        with httpx.Client(base_url=cluster.urls[0], timeout=60) as client, ThreadPoolExecutor(5) as pool:
            body = {"prompt": "a queued request", "max_tokens": 40}
            futures = [pool.submit(client.post, "/v1/completions", json=body) for _ in range(5)]
            wait_until(lambda: snapshot(client), timeout=30, what="2 running and some waiting")
            assert seen["kv"] > 0
            assert all(f.result().status_code == 200 for f in futures)
            page = client.get("/metrics").text
        assert metric_value(page, "vllm:num_requests_waiting") == 0
        assert metric_value(page, "vllm:request_success_total", finished_reason="length") == 5


@pytest.mark.integration
class TestSpeed:
    """The speed factor scales every modelled duration."""

    def test_slower_engine_is_slower(self, start_engines: Callable[..., BackgroundSimCluster]) -> None:
        """Speed 0.5 against speed 2 on the same request: at least twice as long (4x modelled)."""
        cluster = start_engines(
            {"speed": 2.0, "decode_base_step_s": 0.01}, {"speed": 0.5, "decode_base_step_s": 0.01}
        )
        messages = [{"role": "user", "content": "time me"}]
        times = []
        for url in cluster.urls:
            with httpx.Client(base_url=url, timeout=30) as client:
                times.append(timed_chat(client, messages, max_tokens=40)[0])
        fast, slow = times
        assert slow >= 0.8  # 40 steps x 10 ms / 0.5
        assert slow > 2 * fast


@pytest.mark.integration
class TestManyEngines:
    """One process hosts many engines, each on its own port."""

    def test_sixteen_engines(self, start_engines: Callable[..., BackgroundSimCluster]) -> None:
        """16 engines answer concurrent requests."""
        cluster = start_engines(*({"decode_base_step_s": 0.01} for _ in range(16)))
        assert len(set(cluster.urls)) == 16

        body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 20, "n": 4}
        with httpx.Client(timeout=60) as client, ThreadPoolExecutor(16) as pool:
            answers = pool.map(
                lambda url: client.post(f"{url}/v1/chat/completions", json=body), cluster.urls * 2
            )
            assert [answer.status_code for answer in answers] == [200] * 32
