"""vLLM extensions over real HTTP: continue_final_message (the balancer's failover) and several served names."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from gllm.sim import BackgroundSimCluster, EngineHandle
from gllm.sim.tokenizer import count_tokens

MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Tell me, briefly."}]
CONTINUE = {"continue_final_message": True, "add_generation_prompt": False}
BLOCK = 16  # SimConfig's default block size, used by these engines


def post(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """POST a chat completion and return its JSON (asserting 200)."""
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


def stream_chunks(http: httpx.Client, body: dict[str, Any], limit: int | None = None) -> list[dict[str, Any]]:
    """The JSON chunks of a streamed chat completion; with `limit`, hang up after that many content chunks."""
    chunks: list[dict[str, Any]] = []
    contents = 0
    with http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = orjson.loads(line[len("data: ") :])
            chunks.append(chunk)
            if any(choice["delta"].get("content") for choice in chunk["choices"]):
                contents += 1
                if contents == limit:
                    break  # leaving the block closes the connection: the stream breaks mid-answer
    return chunks


def streamed_text(chunks: list[dict[str, Any]]) -> str:
    """The content of a chat stream's chunks."""
    return "".join(choice["delta"].get("content") or "" for chunk in chunks for choice in chunk["choices"])


def computed_blocks(prompt_tokens: int) -> int:
    """Tokens a fully cached prompt reuses: its full blocks except the one holding its last token."""
    return (prompt_tokens - 1) // BLOCK * BLOCK


@pytest.mark.integration
class TestContinueFinalMessage:
    """A partial answer resent with continue_final_message is continued, and its prefix is cached."""

    def test_resumed_answer_reuses_the_first_request(self, http: httpx.Client) -> None:
        """Prompt = original prompt + answer so far, served from the prefix cache; the reply only adds text."""
        first = post(http, {"model": "sim-model", "messages": MESSAGES, "max_tokens": 40, "temperature": 0})
        partial = first["choices"][0]["message"]["content"]
        messages = [*MESSAGES, {"role": "assistant", "content": partial}]
        resumed = post(http, {"model": "sim-model", "messages": messages, "max_tokens": 5, **CONTINUE})
        usage = resumed["usage"]
        expected_prompt = first["usage"]["prompt_tokens"] + first["usage"]["completion_tokens"]
        assert usage["prompt_tokens"] == expected_prompt
        assert usage["prompt_tokens_details"]["cached_tokens"] == computed_blocks(expected_prompt)
        addition = resumed["choices"][0]["message"]["content"]
        assert addition[0] in " ,."  # the next word is spaced from the partial answer's last word
        assert count_tokens(partial + addition) == 45
        assert resumed["choices"][0]["finish_reason"] == "length"

    def test_resume_after_a_broken_stream(self, http: httpx.Client) -> None:
        """What the balancer does when a stream breaks: resend what arrived and stream the rest."""
        body = {"model": "sim-model", "messages": MESSAGES, "max_tokens": 200, "seed": 3}
        broken = stream_chunks(http, body, limit=30)
        partial = streamed_text(broken)
        assert count_tokens(partial) == 30
        resumed_body = {
            **body,
            "messages": [*MESSAGES, {"role": "assistant", "content": partial}],
            "max_tokens": 10,
            "stream_options": {"include_usage": True},
            **CONTINUE,
        }
        chunks = stream_chunks(http, resumed_body)
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        usage = chunks[-1]["usage"]
        assert usage["completion_tokens"] == 10
        assert usage["prompt_tokens_details"]["cached_tokens"] == computed_blocks(usage["prompt_tokens"])
        assert count_tokens(partial + streamed_text(chunks)) == 40

    @pytest.mark.parametrize(
        ("fields", "messages"),
        [
            ({"continue_final_message": True, "add_generation_prompt": True}, "assistant"),
            ({"continue_final_message": True}, "assistant"),
            (CONTINUE, "user"),
        ],
    )
    def test_conflicts_are_400(self, http: httpx.Client, fields: dict[str, Any], messages: str) -> None:
        """Both flags true (also by default), or no assistant message last: 400 with vLLM's error shape."""
        history = [*MESSAGES, {"role": "assistant", "content": "So"}] if messages == "assistant" else MESSAGES
        response = http.post("/v1/chat/completions", json={"messages": history, **fields})
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("BadRequestError", 400)
        assert "continue_final_message" in error["message"]


@pytest.fixture
def named(start_engines: Callable[..., BackgroundSimCluster]) -> Iterator[httpx.Client]:
    """An engine serving `org/tiny-model` under its full path and its last path component."""
    handle: EngineHandle = start_engines(
        {"model": "org/tiny-model", "served_model_name": ("org/tiny-model", "tiny-model")}
    ).engines[0]
    with httpx.Client(base_url=handle.url, timeout=30.0) as client:
        yield client


@pytest.mark.integration
class TestServedNames:
    """Each served name is a card of /v1/models and a valid `model`; the response echoes the name used."""

    def test_models_lists_every_name(self, named: httpx.Client) -> None:
        """One card per name, in order, all rooted at the model."""
        cards = named.get("/v1/models").json()["data"]
        assert [(card["id"], card["root"]) for card in cards] == [
            ("org/tiny-model", "org/tiny-model"),
            ("tiny-model", "org/tiny-model"),
        ]

    @pytest.mark.parametrize("name", ["org/tiny-model", "tiny-model"])
    def test_each_name_is_served(self, named: httpx.Client, name: str) -> None:
        """Chat and completions answer under the name the client sent, streamed or not."""
        assert post(named, {"model": name, "messages": MESSAGES, "max_tokens": 2})["model"] == name
        completion = named.post("/v1/completions", json={"model": name, "prompt": "a", "max_tokens": 2})
        assert (completion.status_code, completion.json()["model"]) == (200, name)
        chunks = stream_chunks(named, {"model": name, "messages": MESSAGES, "max_tokens": 2})
        assert {chunk["model"] for chunk in chunks} == {name}

    def test_other_names_are_404(self, named: httpx.Client) -> None:
        """A third name is unknown."""
        response = named.post("/v1/chat/completions", json={"model": "other-model", "messages": MESSAGES})
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "NotFoundError"
