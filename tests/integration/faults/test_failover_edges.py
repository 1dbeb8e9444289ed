"""Mid-stream failover at the edges: what the continuation request says, and what the client receives."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gllm.testing.balancer import BalancerThread
from gllm.testing.fault_servers import FrontServers, Script, Scripted
from gllm.testing.load import check_stream

MakeBalancer = Callable[..., BalancerThread]


def sse(payload: dict[str, Any]) -> bytes:
    """One SSE event."""
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def chat_delta(response_id: str, content: str | None, finish: str | None = None, role: bool = False) -> bytes:
    """A chat.completion.chunk with one choice."""
    delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {"content": content}
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return sse({"id": response_id, "object": "chat.completion.chunk", "choices": [choice]})


def text_piece(response_id: str, text: str, finish: str | None = None) -> bytes:
    """A text_completion chunk with one choice."""
    choice = {"index": 0, "text": text, "finish_reason": finish}
    return sse({"id": response_id, "object": "text_completion", "choices": [choice]})


def pair(fronts: FrontServers, balancer: BalancerThread, scripts: list[Script]) -> list[Scripted]:
    """Two scripted workers sharing `scripts`, both registered."""
    workers = [fronts.add_scripted(scripts), fronts.add_scripted(scripts)]
    for worker in workers:
        response = httpx.post(f"{balancer.url}/add_worker", json={"address": worker.url}, timeout=10)
        assert response.status_code == 200
    return workers


def bodies(workers: list[Scripted]) -> list[dict[str, Any]]:
    """Every completion request the workers received, parsed, in no particular order of worker."""
    return [json.loads(b) for w in workers for b in w.bodies]


def stream(balancer: BalancerThread, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    """POST a streaming request; the status and the whole body (a cut connection gives what arrived)."""
    received = b""
    try:
        with httpx.stream("POST", f"{balancer.url}{path}", json=body, timeout=15.0) as response:
            for data in response.iter_bytes():
                received += data
    except httpx.HTTPError:
        pass  # a stream the balancer had to cut: the caller checks what arrived
    return response.status_code, received


QUESTION = [{"role": "user", "content": "hi"}]
CHAT = {"model": "m", "messages": QUESTION, "stream": True, "max_tokens": 10}


@pytest.mark.integration
class TestContinuationRequest:
    """A broken stream is continued on another worker with what the client already has."""

    def test_chat_continues_the_partial_assistant_message(
        self, make_balancer: MakeBalancer, fronts: FrontServers
    ) -> None:
        """The second worker gets the partial message with continue_final_message; the client one stream."""
        balancer = make_balancer()
        first = (chat_delta("a", None, role=True), chat_delta("a", "Hello"), chat_delta("a", " wor"))
        rest = (chat_delta("b", None, role=True), chat_delta("b", "ld"), chat_delta("b", "", finish="length"))
        workers = pair(fronts, balancer, [Script(first), Script(rest, die=False)])
        status, body = stream(balancer, "/v1/chat/completions", CHAT)
        assert status == 200
        verdict = check_stream(body)
        assert verdict.ok, (verdict.error, body)
        assert verdict.text == "Hello world"
        assert verdict.ids == ("a", "b")  # chunk ids change at the failover point
        original, continued = sorted(bodies(workers), key=lambda b: len(b["messages"]))
        assert original == CHAT
        assert continued["messages"] == [*QUESTION, {"role": "assistant", "content": "Hello wor"}]
        assert continued["continue_final_message"] is True
        assert continued["add_generation_prompt"] is False
        assert continued["max_tokens"] == 8

    def test_completion_continues_from_prompt_plus_text(
        self, make_balancer: MakeBalancer, fronts: FrontServers
    ) -> None:
        """Text completions continue with the prompt extended by the delivered text."""
        balancer = make_balancer()
        first = (text_piece("a", " upon"), text_piece("a", " a"))
        rest = (text_piece("b", " time", finish="length"),)
        workers = pair(fronts, balancer, [Script(first), Script(rest, die=False)])
        request = {"prompt": "Once", "stream": True, "max_tokens": 3}
        status, body = stream(balancer, "/v1/completions", request)
        verdict = check_stream(body)
        assert (status, verdict.ok, verdict.text) == (200, True, " upon a time")
        prompts = sorted(b["prompt"] for b in bodies(workers))
        assert prompts == ["Once", "Once upon a"]
        assert [b["max_tokens"] for b in bodies(workers) if b["prompt"] != "Once"] == [1]

    def test_partial_event_is_never_forwarded(
        self, make_balancer: MakeBalancer, fronts: FrontServers
    ) -> None:
        """A worker dying inside an event: the half event is dropped, the continuation starts after the last whole one."""
        balancer = make_balancer()
        first = (text_piece("a", "one"), text_piece("a", " two")[:20])
        rest = (text_piece("b", " two", finish="stop"),)
        workers = pair(fronts, balancer, [Script(first), Script(rest, die=False)])
        status, body = stream(balancer, "/v1/completions", {"prompt": "p", "stream": True})
        assert sorted(b["prompt"] for b in bodies(workers)) == ["p", "pone"]
        verdict = check_stream(body)
        assert verdict.ok, f"the client's stream is not well-formed: {verdict.error}: {body!r}"
        assert (status, verdict.text) == (200, "one two")

    def test_nothing_delivered_yet_resends_the_request(
        self, make_balancer: MakeBalancer, fronts: FrontServers
    ) -> None:
        """A stream that dies right after its head is re-sent as it was (no empty assistant message)."""
        balancer = make_balancer()
        rest = (chat_delta("b", "fine", finish="stop"),)
        workers = pair(fronts, balancer, [Script(()), Script(rest, die=False)])
        status, body = stream(balancer, "/v1/chat/completions", CHAT)
        assert (status, check_stream(body).text) == (200, "fine")
        assert bodies(workers) == [CHAT, CHAT]


@pytest.mark.integration
class TestStreamEndings:
    """What the client receives when a stream cannot be, or need not be, continued."""

    def test_died_after_the_last_token_still_ends_with_done(
        self, make_balancer: MakeBalancer, fronts: FrontServers
    ) -> None:
        """The worker sent the finish_reason but died before [DONE]: nothing to continue, the stream still ends well."""
        balancer = make_balancer()
        first = (chat_delta("a", "All"), chat_delta("a", " done", finish="stop"))
        workers = pair(fronts, balancer, [Script(first)])
        status, body = stream(balancer, "/v1/chat/completions", CHAT)
        assert status == 200
        assert len(bodies(workers)) == 1  # finished: no continuation was asked for
        verdict = check_stream(body)
        assert verdict.ok, f"the client's stream is not well-formed: {verdict.error}: {body!r}"
        assert verdict.text == "All done"

    def test_several_choices_are_not_continued(
        self, make_balancer: MakeBalancer, fronts: FrontServers
    ) -> None:
        """n=2 cannot be continued: the client's stream is cut (the only honest signal), no second request."""
        balancer = make_balancer()
        two = sse({"id": "a", "choices": [{"index": 0, "text": "x"}, {"index": 1, "text": "y"}]})
        workers = pair(fronts, balancer, [Script((two,))])
        status, body = stream(balancer, "/v1/completions", {"prompt": "p", "stream": True, "n": 2})
        assert status == 200
        assert not check_stream(body).ok
        assert len(bodies(workers)) == 1

    def test_failover_off_cuts_the_stream(self, make_balancer: MakeBalancer, fronts: FrontServers) -> None:
        """With failover disabled, a broken stream is cut where it broke and nothing is re-sent."""
        balancer = make_balancer(failover=False)
        workers = pair(fronts, balancer, [Script((text_piece("a", "x"),))])
        status, body = stream(balancer, "/v1/completions", {"prompt": "p", "stream": True})
        assert status == 200
        verdict = check_stream(body)
        assert not verdict.ok
        assert b"x" in body
        assert len(bodies(workers)) == 1

    def test_every_continuation_dying_ends_the_stream_early(
        self, make_balancer: MakeBalancer, fronts: FrontServers
    ) -> None:
        """When the continuations die too, the client sees the stream cut after the bounded failovers."""
        balancer = make_balancer()
        scripts = [Script((text_piece(r, r),)) for r in "abcdef"]
        workers = [fronts.add_scripted(scripts) for _ in range(4)]
        for worker in workers:
            httpx.post(f"{balancer.url}/add_worker", json={"address": worker.url}, timeout=10)
        status, body = stream(balancer, "/v1/completions", {"prompt": "p", "stream": True})
        assert status == 200
        assert not check_stream(body).ok
        assert len(bodies(workers)) == 3  # the first attempt and two failovers (RetrySettings.max_failovers)
        assert balancer.app is not None
        assert sum(w.in_flight for w in balancer.app.cluster.registry.all()) == 0
