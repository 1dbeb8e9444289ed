"""Fuzz every route of a running balancer with malformed bodies: it must answer sanely and stay up.

Invariants after every case: no 5xx other than the deliberate 502/503/504, no traceback in a body, the balancer
answers a fresh connection, and at the end of each test no request is left open (every in-flight count zero).
"""

from __future__ import annotations

import json
import string
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gllm.testing.fuzz import FuzzTarget, problem

FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# JSON values of every type, including the awkward ones: huge and negative numbers, unicode, nesting.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["", "\x00", "\ud7ff\ue000", "🦙" * 20, "a" * 3000, "user", "assistant", "system"])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)
messages = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "role": json_values | st.sampled_from(["user", "assistant", "system", "tool"]),
            "content": json_values,
        },
    )
    | json_values,
    max_size=4,
)
completion_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": json_values | st.sampled_from(["m", "sim-model", ""]),
        "messages": messages | json_values,
        "prompt": json_values | st.text(max_size=200),
        "stream": st.booleans() | json_values,
        "n": st.integers(-3, 300) | json_values,
        "max_tokens": st.integers(-(2**63), 2**63) | json_values,
        "max_completion_tokens": st.integers(-5, 10**6) | json_values,
        "stream_options": st.fixed_dictionaries({}, optional={"include_usage": json_values}) | json_values,
        "temperature": json_values,
        "user": json_values,
        "session_id": json_values,
        "continue_final_message": json_values,
    },
)


SESSION_HEADERS = ["x-session-id", "user", "x-gllm-session"]
# Header values a client library will send: printable ASCII without surrounding spaces.
header_text = st.text(alphabet=string.ascii_letters + string.digits + "-_.:/= ", max_size=30).map(str.strip)


def nested(depth: int, open_: str, close: str) -> bytes:
    """A document nested `depth` levels deep."""
    return (open_ * depth + "1" + close * depth).encode()


odd_bodies = st.one_of(
    st.binary(max_size=2000),
    st.integers(1, 5000).map(lambda d: nested(d, "[", "]")),
    st.integers(1, 2000).map(lambda d: nested(d, '{"a":', "}")),
    st.sampled_from(
        [b"1" * 400, b"1e400", b"-1e400", b'{"max_tokens": 1e999}', b'{"n": 99999999999999999999999}']
    ),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"\xff\xfe{", b'{"a": "\xed\xa0\x80"}', b"\x00" * 100, b"{" * 70000]),
)


def routes(target: FuzzTarget) -> list[tuple[str, str]]:
    """Every (method, path) the balancer serves, read from its router (so new routes are fuzzed too)."""
    app = target.balancer.app
    assert app is not None
    table: dict[str, dict[str, Any]] = app.router._routes
    found = sorted((method, path) for path, methods in table.items() for method in methods)
    assert ("POST", "/v1/chat/completions") in found
    assert ("GET", "/workers") in found
    return found


def check(target: FuzzTarget, response: httpx.Response) -> None:
    """The answer is sane and the balancer still answers."""
    assert problem(response.status_code, response.content) is None, problem(
        response.status_code, response.content
    )
    target.alive()


def send(
    target: FuzzTarget, method: str, path: str, body: bytes, content_type: str = "application/json"
) -> httpx.Response:
    """One request with a raw body."""
    return target.http.request(method, path, content=body, headers={"content-type": content_type})


@pytest.mark.integration
@pytest.mark.slow
class TestBodies:
    """Bodies of every kind at every route."""

    @settings(FUZZ, max_examples=600)
    @given(data=st.data(), value=json_values)
    def test_any_json_at_any_route(self, target: FuzzTarget, data: st.DataObject, value: Any) -> None:
        """Any JSON document (object or not) at any route and method."""
        method, path = data.draw(st.sampled_from(routes(target)))
        check(target, send(target, method, path, json.dumps(value).encode()))
        if method == "POST" and not path.endswith("completions"):
            target.reset()

    @settings(FUZZ, max_examples=600)
    @given(data=st.data(), body=completion_bodies)
    def test_completion_fields_of_wrong_types(
        self, target: FuzzTarget, data: st.DataObject, body: dict[str, Any]
    ) -> None:
        """OpenAI request fields with wrong types, odd values and nesting, streamed or not."""
        path = data.draw(
            st.sampled_from(["/chat/completions", "/v1/chat/completions", "/completions", "/v1/completions"])
        )
        check(target, send(target, "POST", path, json.dumps(body).encode()))

    @settings(FUZZ, max_examples=100)
    @given(data=st.data(), body=completion_bodies)
    def test_completion_fields_under_every_policy(
        self, policy_target: FuzzTarget, data: st.DataObject, body: dict[str, Any]
    ) -> None:
        """Every routing policy reads prompts, sessions and models from odd bodies without failing."""
        path = data.draw(st.sampled_from(["/v1/chat/completions", "/v1/completions"]))
        headers = data.draw(st.dictionaries(st.sampled_from(SESSION_HEADERS), header_text, max_size=2))
        response = policy_target.http.post(path, content=json.dumps(body).encode(), headers=headers)
        check(policy_target, response)

    def test_nothing_left_open_under_every_policy(self, policy_target: FuzzTarget) -> None:
        """Each policy's balancer ends with every count at zero."""
        policy_target.settled()

    @settings(FUZZ, max_examples=300)
    @given(data=st.data(), body=odd_bodies)
    def test_malformed_bytes(self, target: FuzzTarget, data: st.DataObject, body: bytes) -> None:
        """Random bytes, deep nesting, huge numbers, broken UTF-8 and oversized bodies."""
        method, path = data.draw(st.sampled_from(routes(target)))
        content_type = data.draw(
            st.sampled_from(["application/json", "text/plain", "", "application/x-www-form-urlencoded"])
        )
        check(target, send(target, method, path, body, content_type))
        if method == "POST" and not path.endswith("completions"):
            target.reset()

    def test_nothing_left_open(self, target: FuzzTarget) -> None:
        """After all of the above, every count is back to zero."""
        target.settled()


local_addresses = st.one_of(
    st.integers(1, 65535).map(lambda p: f"http://127.0.0.1:{p}"),
    st.sampled_from(
        [
            "",
            " ",
            "127.0.0.1:80",
            "ftp://127.0.0.1",
            "http://",
            "http://127.0.0.1:99999",
            "http://u:p@127.0.0.1:1",
        ]
    ),
    st.text(max_size=60).filter(lambda t: "://" not in t),  # never an address that could leave this machine
    st.integers() | st.none() | st.booleans() | st.lists(st.integers(), max_size=3),
)


@pytest.mark.integration
@pytest.mark.slow
class TestControlRoutes:
    """Control routes with plausible and implausible bodies; the registry is restored after each case."""

    @settings(FUZZ, max_examples=300)
    @given(
        data=st.data(),
        address=local_addresses,
        extra=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    )
    def test_worker_registration_bodies(
        self, target: FuzzTarget, data: st.DataObject, address: Any, extra: dict[str, Any]
    ) -> None:
        """add_worker / remove_worker with odd addresses (only ever on 127.0.0.1)."""
        path = data.draw(
            st.sampled_from(["/add_worker", "/v1/add_worker", "/remove_worker", "/v1/remove_worker"])
        )
        check(target, send(target, "POST", path, json.dumps({**extra, "address": address}).encode()))
        target.reset()

    @settings(FUZZ, max_examples=150)
    @given(data=st.data(), model=json_values, force=json_values)
    def test_model_bodies(self, target: FuzzTarget, data: st.DataObject, model: Any, force: Any) -> None:
        """load_model / release_gpus with odd model paths and flags."""
        path = data.draw(
            st.sampled_from(["/load_model", "/v1/load_model", "/release_gpus", "/v1/release_gpus"])
        )
        body = data.draw(
            st.sampled_from([{"model_path": model}, {"model_path": model, "force_reload": force}, {}])
        )
        check(target, send(target, "POST", path, json.dumps(body).encode()))

    def test_nothing_left_open(self, target: FuzzTarget) -> None:
        """After all of the above, every count is back to zero."""
        target.settled()
