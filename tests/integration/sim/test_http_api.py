"""vLLM's OpenAI surface over real HTTP: bodies, streams, errors, control routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from gllm.sim import BackgroundSimCluster, EngineHandle
from gllm.sim.template import render_chat
from gllm.sim.tokenizer import count_tokens
from gllm.testing import wait_until
from gllm.testing.sim import metric_value

MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Tell me, briefly."}]


def chat(http: httpx.Client, **fields: Any) -> dict[str, Any]:
    """POST a chat completion and return its JSON (asserting 200)."""
    response = http.post("/v1/chat/completions", json={"model": "sim-model", "messages": MESSAGES, **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def sse_events(http: httpx.Client, path: str, body: dict[str, Any]) -> list[bytes]:
    """Raw `data:` payloads of a streamed response, checking the SSE framing on the way."""
    with http.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read()
    assert raw.endswith(b"data: [DONE]\n\n")
    frames = raw.split(b"\n\n")
    assert frames[-1] == b""
    assert all(frame.startswith(b"data: ") for frame in frames[:-1])
    return [frame[len(b"data: ") :] for frame in frames[:-1]]


@pytest.mark.integration
class TestChatCompletions:
    """Non-streaming chat bodies."""

    def test_shape_and_usage(self, http: httpx.Client) -> None:
        """vLLM's body; usage counts come from the documented tokenizer and template."""
        body = chat(http, max_tokens=7)
        assert body["object"] == "chat.completion"
        assert body["id"].startswith("chatcmpl-")
        assert body["model"] == "sim-model"
        (choice,) = body["choices"]
        assert choice["message"]["role"] == "assistant"
        assert choice["finish_reason"] == "length"
        usage = body["usage"]
        assert usage["prompt_tokens"] == count_tokens(render_chat(MESSAGES))
        assert usage["completion_tokens"] == 7 == count_tokens(choice["message"]["content"])
        assert usage["total_tokens"] == usage["prompt_tokens"] + 7

    def test_seed_determinism(self, http: httpx.Client) -> None:
        """Same seed and prompt, same text; another seed, another text."""
        first, again, other = (chat(http, seed=s, max_tokens=12) for s in (1, 1, 2))
        text = first["choices"][0]["message"]["content"]
        assert again["choices"][0]["message"]["content"] == text
        assert other["choices"][0]["message"]["content"] != text

    def test_n_choices(self, http: httpx.Client) -> None:
        """n seeded choices differ; at temperature 0 they are identical."""
        sampled = chat(http, n=3, seed=4, max_tokens=10)
        texts = [c["message"]["content"] for c in sampled["choices"]]
        assert [c["index"] for c in sampled["choices"]] == [0, 1, 2]
        assert len(set(texts)) == 3
        assert sampled["usage"]["completion_tokens"] == 30
        greedy = chat(http, n=2, temperature=0, max_tokens=10)
        assert len({c["message"]["content"] for c in greedy["choices"]}) == 1

    def test_stop(self, http: httpx.Client) -> None:
        """Output ends before the stop string with finish_reason stop."""
        text = chat(http, seed=9, max_tokens=20)["choices"][0]["message"]["content"]
        word = text.split()[4].strip(",.")
        (choice,) = chat(http, seed=9, max_tokens=20, stop=[word])["choices"]
        assert choice["finish_reason"] == "stop"
        assert choice["stop_reason"] == word
        assert text.startswith(choice["message"]["content"])
        assert word not in choice["message"]["content"]

    def test_routes_without_v1(self, http: httpx.Client) -> None:
        """/chat/completions, /completions and /models also answer."""
        assert http.post("/chat/completions", json={"messages": MESSAGES, "max_tokens": 1}).status_code == 200
        assert http.post("/completions", json={"prompt": "a", "max_tokens": 1}).status_code == 200
        assert http.get("/models").json()["data"][0]["id"] == "sim-model"


@pytest.mark.integration
class TestCompletions:
    """Non-streaming completion bodies."""

    def test_shape(self, http: httpx.Client) -> None:
        """text_completion object with text choices and usage."""
        body = http.post("/v1/completions", json={"prompt": "Once upon a time", "max_tokens": 5}).json()
        assert body["object"] == "text_completion"
        assert body["id"].startswith("cmpl-")
        assert body["choices"][0]["finish_reason"] == "length"
        assert body["usage"]["prompt_tokens"] == 4
        assert body["usage"]["completion_tokens"] == 5

    def test_batch_prompts_and_echo(self, http: httpx.Client) -> None:
        """Choices are ordered prompt by prompt, n each; echo prefixes the prompt."""
        body = http.post(
            "/v1/completions", json={"prompt": ["first one", "second"], "n": 2, "max_tokens": 3, "echo": True}
        ).json()
        texts = [c["text"] for c in body["choices"]]
        assert [c["index"] for c in body["choices"]] == [0, 1, 2, 3]
        assert texts[0].startswith("first one")
        assert texts[2].startswith("second")
        assert body["usage"]["prompt_tokens"] == 3
        assert body["usage"]["completion_tokens"] == 12

    def test_token_id_prompt(self, http: httpx.Client) -> None:
        """Token ids are accepted as prompt."""
        body = http.post("/v1/completions", json={"prompt": [1, 2, 3, 4], "max_tokens": 2}).json()
        assert body["usage"]["prompt_tokens"] == 4


@pytest.mark.integration
class TestStreaming:
    """SSE chunks exactly like vLLM: role first, finish_reason last, optional usage, then [DONE]."""

    def test_chat_stream_with_usage(self, http: httpx.Client) -> None:
        """Chunk sequence and content equal to the non-streamed text."""
        body = {"messages": MESSAGES, "seed": 5, "max_tokens": 6, "stream": True}
        payloads = sse_events(
            http, "/v1/chat/completions", {**body, "stream_options": {"include_usage": True}}
        )
        assert payloads[-1] == b"[DONE]"
        chunks = [orjson.loads(p) for p in payloads[:-1]]
        assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
        assert len({c["id"] for c in chunks}) == 1
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        usage_chunk, content = chunks[-1], chunks[1:-1]
        assert usage_chunk["choices"] == []
        assert usage_chunk["usage"]["completion_tokens"] == 6
        assert all(c["usage"] is None for c in chunks[:-1])
        assert [c["choices"][0]["finish_reason"] for c in content] == [None] * (len(content) - 1) + ["length"]
        streamed = "".join(c["choices"][0]["delta"]["content"] for c in content)
        assert streamed == chat(http, seed=5, max_tokens=6)["choices"][0]["message"]["content"]

    def test_chat_stream_without_usage(self, http: httpx.Client) -> None:
        """No usage chunk and no usage field unless asked."""
        payloads = sse_events(
            http, "/v1/chat/completions", {"messages": MESSAGES, "max_tokens": 3, "stream": True}
        )
        chunks = [orjson.loads(p) for p in payloads[:-1]]
        assert all("usage" not in c for c in chunks)
        assert chunks[-1]["choices"][0]["finish_reason"] == "length"

    def test_n_streams_interleave(self, http: httpx.Client) -> None:
        """Each choice gets its role chunk and its own final chunk."""
        body = {"messages": MESSAGES, "n": 2, "max_tokens": 4, "stream": True}
        chunks = [orjson.loads(p) for p in sse_events(http, "/v1/chat/completions", body)[:-1]]
        for index in (0, 1):
            mine = [c["choices"][0] for c in chunks if c["choices"][0]["index"] == index]
            assert mine[0]["delta"]["role"] == "assistant"
            assert mine[-1]["finish_reason"] == "length"

    def test_completion_stream(self, http: httpx.Client) -> None:
        """text_completion chunks with text, final finish_reason, usage chunk."""
        body = {"prompt": "hi", "max_tokens": 4, "stream": True, "stream_options": {"include_usage": True}}
        chunks = [orjson.loads(p) for p in sse_events(http, "/v1/completions", body)[:-1]]
        assert {c["object"] for c in chunks} == {"text_completion"}
        assert chunks[-2]["choices"][0]["finish_reason"] == "length"
        assert chunks[-1]["usage"]["total_tokens"] == 5

    def test_stop_in_stream(self, http: httpx.Client) -> None:
        """The streamed text stops before the stop string too."""
        full = chat(http, seed=2, max_tokens=20)["choices"][0]["message"]["content"]
        word = full.split()[5].strip(",.")
        body = {"messages": MESSAGES, "seed": 2, "max_tokens": 20, "stop": word, "stream": True}
        chunks = [orjson.loads(p) for p in sse_events(http, "/v1/chat/completions", body)[1:-1]]
        streamed = "".join(c["choices"][0]["delta"]["content"] for c in chunks)
        assert full.startswith(streamed)
        assert word not in streamed
        assert chunks[-1]["choices"][0]["stop_reason"] == word

    def test_disconnect_frees_the_sequence(self, http: httpx.Client) -> None:
        """A client that leaves mid-stream is aborted: nothing stays running."""
        body = {"messages": MESSAGES, "max_tokens": 2000, "stream": True}
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            next(response.iter_bytes())
        wait_until(
            lambda: (
                metric_value(http.get("/metrics").text, "vllm:request_success_total", finished_reason="abort")
                == 1
            ),
            timeout=30,
            what="abort counted",
        )
        assert metric_value(http.get("/metrics").text, "vllm:num_requests_running") == 0


@pytest.mark.integration
class TestErrors:
    """OpenAI-shaped errors over HTTP."""

    @pytest.mark.parametrize(
        ("path", "content", "status"),
        [
            ("/v1/chat/completions", b"{not json", 400),
            ("/v1/chat/completions", b"", 400),
            ("/v1/chat/completions", b'{"model": "sim-model"}', 400),
            (
                "/v1/chat/completions",
                b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}',
                400,
            ),
            ("/v1/completions", b'{"prompt": 3}', 400),
            ("/v1/completions", b'{"prompt": "x", "model": "gpt-4"}', 404),
            ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "x"}], "model": "m2"}', 404),
        ],
    )
    def test_error_bodies(self, http: httpx.Client, path: str, content: bytes, status: int) -> None:
        """Status and {"error": {message, type, param, code}}."""
        response = http.post(path, content=content, headers={"content-type": "application/json"})
        assert response.status_code == status
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["code"] == status


@pytest.mark.integration
class TestControlRoutes:
    """Models, health, metrics, sleep and wake-up."""

    def test_models_and_health(self, http: httpx.Client) -> None:
        """The served model is listed; /health is 200 with an empty body."""
        models = http.get("/v1/models").json()
        assert models["object"] == "list"
        assert [(m["id"], m["object"], m["owned_by"]) for m in models["data"]] == [
            ("sim-model", "model", "vllm")
        ]
        health = http.get("/health")
        assert (health.status_code, health.content) == (200, b"")

    def test_metrics_move(self, http: httpx.Client) -> None:
        """Counters and histograms count what was served."""
        before = http.get("/metrics")
        assert before.headers["content-type"].startswith("text/plain")
        chat(http, max_tokens=5)
        chat(http, max_tokens=5)
        page = http.get("/metrics").text
        for name in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"):
            assert metric_value(page, name, model_name="sim-model") == 0
        assert metric_value(page, "vllm:generation_tokens_total") == 10
        assert metric_value(page, "vllm:prompt_tokens_total") == 2 * count_tokens(render_chat(MESSAGES))
        assert metric_value(page, "vllm:prefix_cache_queries_total") > 0
        assert metric_value(page, "vllm:prefix_cache_hits_total") > 0  # the second request reused the first's
        assert metric_value(page, "vllm:time_to_first_token_seconds_count") == 2
        assert metric_value(page, "vllm:e2e_request_latency_seconds_count") == 2
        assert metric_value(page, "vllm:e2e_request_latency_seconds_bucket", le="+Inf") == 2

    def test_sleep_and_wake_up(self, http: httpx.Client) -> None:
        """A sleeping engine refuses generation with 503, stays healthy, and serves again after wake_up."""
        assert http.get("/is_sleeping").json() == {"is_sleeping": False}
        assert http.post("/sleep", params={"level": 1}).status_code == 200
        assert http.get("/is_sleeping").json() == {"is_sleeping": True}
        refused = http.post("/v1/chat/completions", json={"messages": MESSAGES})
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == 503
        assert http.get("/health").status_code == 200
        assert http.post("/wake_up").status_code == 200
        assert http.get("/is_sleeping").json() == {"is_sleeping": False}
        assert chat(http, max_tokens=2)["usage"]["prompt_tokens_details"]["cached_tokens"] == 0

    def test_loading(self, start_engines: Callable[..., BackgroundSimCluster]) -> None:
        """Until load_time has passed, /health and generation answer 503; then 200."""
        handle: EngineHandle = start_engines({"load_time_s": 1.0}, wait_ready=False).engines[0]
        with httpx.Client(base_url=handle.url, timeout=10) as client:
            loading = client.get("/health")
            assert loading.status_code == 503
            assert "loading" in loading.json()["error"]["message"]
            assert client.post("/v1/completions", json={"prompt": "a"}).status_code == 503
            wait_until(lambda: client.get("/health").status_code == 200, timeout=30, what="engine loaded")
            assert client.post("/v1/completions", json={"prompt": "a", "max_tokens": 1}).status_code == 200
