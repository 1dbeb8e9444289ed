"""Registration building blocks: backoff, reply parsing, the advertised address."""

from __future__ import annotations

import asyncio
import random

import pytest

from gllm.worker.registration import Backoff, advertised_address, local_address_towards, parse_model_reply


@pytest.mark.unit
class TestBackoff:
    """Exponential, capped, jittered."""

    def test_grows_and_is_capped(self) -> None:
        """Upper bounds double up to the cap."""
        backoff = Backoff(initial=0.5, cap=4.0)
        rng = random.Random(1)
        for attempt, bound in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (10, 4.0), (1000, 4.0)]:
            delay = backoff.delay(attempt, rng)
            assert bound / 2 <= delay <= bound

    def test_jitter_spreads_retries(self) -> None:
        """Two workers retrying at once do not wait the same time."""
        rng = random.Random(7)
        assert len({Backoff().delay(3, rng) for _ in range(20)}) > 1


@pytest.mark.unit
class TestModelReply:
    """The /add_worker reply names the cluster model as plain text."""

    @pytest.mark.parametrize(
        ("text", "model"),
        [("", ""), ("  ", ""), ("org/model", "org/model"), ("m\n", "m"), ('"quoted/model"', "quoted/model")],
    )
    def test_parse(self, text: str, model: str) -> None:
        """Plain text (trimmed), tolerating a JSON string."""
        assert parse_model_reply(text) == model


@pytest.mark.unit
class TestAdvertisedAddress:
    """Which URL the worker gives the balancer."""

    def test_given_address_wins(self) -> None:
        """--advertise-address is used as is."""
        url = asyncio.run(advertised_address("0.0.0.0", 8000, "http://127.0.0.1:5333", "http://w:1"))
        assert url == "http://w:1"

    def test_specific_bind_address(self) -> None:
        """A specific --ip is the host of the URL."""
        assert (
            asyncio.run(advertised_address("127.0.0.1", 8000, "http://b:5333", None))
            == "http://127.0.0.1:8000"
        )

    def test_wildcard_uses_the_route_to_the_balancer(self) -> None:
        """0.0.0.0: the local address that reaches the balancer (loopback for a loopback balancer)."""
        assert local_address_towards("http://127.0.0.1:5333") == "127.0.0.1"
        assert (
            asyncio.run(advertised_address("0.0.0.0", 8100, "http://127.0.0.1:5333", None))
            == "http://127.0.0.1:8100"
        )
