"""The consistent-hash ring: stable ownership, and only about 1/n of the keys move when membership changes."""

from __future__ import annotations

import pytest

from gllm.balancer.policies.hash_ring import HashRing, stable_hash

KEYS = [f"session-{i}" for i in range(4000)]


def owners(ring: HashRing) -> dict[str, str | None]:
    """Owner of every test key."""
    return {key: ring.owner(key) for key in KEYS}


def ring_of(count: int, virtual_nodes: int = 160) -> HashRing:
    """A ring of `count` addresses."""
    ring = HashRing(virtual_nodes)
    ring.add(f"http://w{i}:8000" for i in range(count))
    return ring


@pytest.mark.unit
class TestHashRing:
    """Placement, walking, stability."""

    def test_stable_hash_is_process_independent(self) -> None:
        """A fixed value, unlike the salted built-in hash (so every balancer agrees)."""
        assert stable_hash("abc") == 0xD8BB14D833D59559  # blake2b-64: the same in every process
        assert 0 <= stable_hash("anything") < 1 << 64

    def test_keys_spread_evenly(self) -> None:
        """With 160 virtual nodes each of 8 workers owns 1/8 of the keys within a third."""
        counts: dict[str | None, int] = {}
        for owner in owners(ring_of(8)).values():
            counts[owner] = counts.get(owner, 0) + 1
        assert len(counts) == 8
        assert all(abs(n - 500) < 170 for n in counts.values())

    def test_walk_yields_every_address_once(self) -> None:
        """A walk starts at the owner and visits each address exactly once."""
        ring = ring_of(5)
        walk = list(ring.walk("k"))
        assert walk[0] == ring.owner("k")
        assert sorted(walk) == sorted(f"http://w{i}:8000" for i in range(5))
        assert list(HashRing().walk("k")) == []

    def test_adding_a_worker_moves_only_its_share(self) -> None:
        """Going from 8 to 9 workers moves about 1/9 of the keys, all of them to the new worker."""
        ring = ring_of(8)
        before = owners(ring)
        ring.add(["http://w8:8000"])
        after = owners(ring)
        moved = [key for key in KEYS if before[key] != after[key]]
        assert {after[key] for key in moved} == {"http://w8:8000"}
        assert 0.5 / 9 < len(moved) / len(KEYS) < 1.6 / 9

    def test_removing_a_worker_moves_only_its_keys(self) -> None:
        """Only the removed worker's keys move; each to some other worker."""
        ring = ring_of(8)
        before = owners(ring)
        ring.remove("http://w3:8000")
        after = owners(ring)
        moved = [key for key in KEYS if before[key] != after[key]]
        assert moved == [key for key in KEYS if before[key] == "http://w3:8000"]
        assert "http://w3:8000" not in after.values()
        assert len(ring) == 7
        assert "http://w3:8000" not in ring

    def test_re_adding_is_a_no_op(self) -> None:
        """Adding known addresses changes nothing."""
        ring = ring_of(4)
        before = owners(ring)
        ring.add(["http://w0:8000", "http://w1:8000"])
        assert owners(ring) == before

    def test_needs_a_virtual_node(self) -> None:
        """Zero virtual nodes is refused."""
        with pytest.raises(ValueError, match="virtual_nodes"):
            HashRing(0)
