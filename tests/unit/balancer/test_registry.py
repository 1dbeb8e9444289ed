"""Worker addresses, worker records and the registry that holds them."""

from __future__ import annotations

import pytest

from gllm.balancer.cluster import Cluster
from gllm.balancer.policies.least_busy import LeastBusy
from gllm.balancer.registry import Registry, normalize_address


@pytest.mark.unit
class TestNormalizeAddress:
    """Only absolute http(s)://host[:port] URLs are accepted, in one canonical spelling."""

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
            ("https://worker.example:443", "https://worker.example:443"),
            ("http://worker", "http://worker"),
            ("  http://10.0.0.5:8000/  ", "http://10.0.0.5:8000"),
            ("HTTP://Worker.Example:8000", "http://worker.example:8000"),
            ("http://[::1]:8000", "http://[::1]:8000"),
        ],
    )
    def test_valid_addresses(self, raw: str, expected: str) -> None:
        """Valid addresses come back lower-cased, trimmed and without a trailing slash."""
        assert normalize_address(raw) == expected

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            (None, "non-empty string"),
            (5, "non-empty string"),
            ("", "non-empty string"),
            ("   ", "non-empty string"),
            ("ftp://host:21", "only http:// and https://"),
            ("file:///etc/passwd", "only http:// and https://"),
            ("host:8000", "only http:// and https://"),
            ("127.0.0.1:8000", "only http:// and https://"),
            ("http://", "no host"),
            ("http://user:secret@host:8000", "credentials"),
            ("http://user@host:8000", "credentials"),
            ("http://host:8000/v1", "only scheme, host and port"),
            ("http://host:8000?x=1", "only scheme, host and port"),
            ("http://host:8000#frag", "only scheme, host and port"),
            ("http://host:99999", "invalid worker address"),
            ("http://host:port", "invalid worker address"),
        ],
    )
    def test_invalid_addresses(self, raw: object, reason: str) -> None:
        """Anything else raises ValueError with a message that says what is wrong."""
        with pytest.raises(ValueError, match=reason):
            normalize_address(raw)


@pytest.mark.unit
class TestRegistry:
    """Registration keeps one record per address, in registration order."""

    def test_add_new_and_known(self) -> None:
        """Adding a known address returns the same record, not a new one."""
        registry = Registry()
        worker, new = registry.add("http://a:1")
        assert new
        worker.in_flight = 3
        again, new_again = registry.add("http://a:1")
        assert again is worker
        assert not new_again
        assert again.in_flight == 3
        assert len(registry) == 1

    def test_order_and_lookup(self) -> None:
        """`all()` lists workers in registration order; `get` finds one by address."""
        registry = Registry()
        for address in ("http://b:1", "http://a:1", "http://c:1"):
            registry.add(address)
        assert [w.address for w in registry.all()] == ["http://b:1", "http://a:1", "http://c:1"]
        found = registry.get("http://a:1")
        assert found is not None
        assert found.address == "http://a:1"
        assert registry.get("http://zz:1") is None

    def test_remove(self) -> None:
        """A removed worker is marked removed and is no longer listed; unknown addresses give None."""
        registry = Registry()
        worker, _ = registry.add("http://a:1")
        assert registry.remove("http://a:1") is worker
        assert worker.removed
        assert registry.all() == []
        assert registry.remove("http://a:1") is None

    def test_to_json(self) -> None:
        """The /workers view has address, in_flight and healthy (null before the first probe)."""
        worker, _ = Registry().add("http://a:1")
        view = worker.to_json()
        assert view["address"] == "http://a:1"
        assert view["in_flight"] == 0
        assert view["healthy"] is None


@pytest.mark.unit
class TestCluster:
    """The cluster's model names for /models."""

    def test_model_names_without_duplicates(self) -> None:
        """The cluster model comes first, then other models workers report, each once."""
        registry = Registry()
        cluster = Cluster(registry, LeastBusy())
        assert cluster.model_names() == []
        cluster.model = "m1"
        for address, model in (("http://a:1", "m1"), ("http://b:1", "m2"), ("http://c:1", None)):
            registry.add(address)[0].model = model
        assert cluster.model_names() == ["m1", "m2"]
