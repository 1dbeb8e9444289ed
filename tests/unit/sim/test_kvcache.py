"""KV cache blocks, prefix hits, reference counts and LRU eviction."""

from __future__ import annotations

import pytest

from gllm.sim.kvcache import KVCache, extend_block_hashes


def hashes_of(tokens: list[int], block_size: int = 4) -> list[int]:
    """Chain hashes of the full blocks of `tokens`."""
    out: list[int] = []
    extend_block_hashes(out, tokens, block_size)
    return out


def cached_sequence(cache: KVCache, tokens: list[int]) -> list[int]:
    """Allocate, commit and free a sequence so that its full blocks are cached; return its hashes."""
    hashes = hashes_of(tokens, cache.block_size)
    blocks = cache.allocate(hashes, 0, len(tokens))
    assert blocks is not None
    cache.commit(blocks, hashes, 0)
    cache.free(blocks)
    return hashes


@pytest.mark.unit
class TestBlockHashes:
    """A block's hash covers every token before its end."""

    def test_only_full_blocks(self) -> None:
        """10 tokens in blocks of 4 make two hashes."""
        assert len(hashes_of(list(range(10)))) == 2

    def test_shared_prefix_shares_hashes(self) -> None:
        """Same first block, different second block."""
        first, second = hashes_of([1, 2, 3, 4, 5, 6, 7, 8]), hashes_of([1, 2, 3, 4, 5, 6, 7, 9])
        assert first[0] == second[0]
        assert first[1] != second[1]

    def test_chain_depends_on_parent(self) -> None:
        """Equal blocks after different prefixes hash differently."""
        assert hashes_of([1, 1, 1, 1, 2, 2, 2, 2])[1] != hashes_of([3, 3, 3, 3, 2, 2, 2, 2])[1]

    def test_incremental_equals_batch(self) -> None:
        """Extending as tokens arrive gives the same chain."""
        grown: list[int] = []
        tokens: list[int] = []
        for token in range(13):
            tokens.append(token)
            extend_block_hashes(grown, tokens, 4)
        assert grown == hashes_of(list(range(13)))


@pytest.mark.unit
class TestAllocation:
    """Blocks are handed out, shared through the prefix cache, and returned."""

    def test_usage_follows_references(self) -> None:
        """Usage counts referenced blocks only; freed cached blocks stay findable."""
        cache = KVCache(num_blocks=10, block_size=4)
        hashes = hashes_of(list(range(8)))
        blocks = cache.allocate(hashes, 0, 9)
        assert blocks is not None
        assert len(blocks) == 3
        assert cache.usage == pytest.approx(0.3)
        cache.commit(blocks, hashes, 0)
        cache.free(blocks)
        assert cache.usage == 0.0
        assert cache.num_cached_blocks == 2

    def test_hits_reuse_blocks(self) -> None:
        """A second sequence with the same prefix references the cached blocks."""
        cache = KVCache(num_blocks=10, block_size=4)
        hashes = cached_sequence(cache, list(range(8)))
        assert cache.count_hits(hashes, max_blocks=2) == 2
        assert cache.count_hits(hashes, max_blocks=1) == 1
        blocks = cache.allocate(hashes, 2, 9)
        assert blocks is not None
        assert [b.block_hash for b in blocks[:2]] == hashes
        assert all(b.ref_count == 1 for b in blocks)

    def test_shared_blocks_are_counted_once(self) -> None:
        """Two running sequences sharing a prefix share its blocks."""
        cache = KVCache(num_blocks=10, block_size=4)
        hashes = hashes_of(list(range(8)))
        first = cache.allocate(hashes, 0, 8)
        assert first is not None
        cache.commit(first, hashes, 0)
        second = cache.allocate(hashes, 2, 8)
        assert second is not None
        assert first == second
        assert first[0].ref_count == 2
        assert cache.usage == pytest.approx(0.2)

    def test_out_of_space(self) -> None:
        """An allocation that does not fit returns None and takes nothing."""
        cache = KVCache(num_blocks=2, block_size=4)
        assert cache.allocate([], 0, 9) is None
        assert cache.num_free_blocks == 2

    def test_grow(self) -> None:
        """grow appends blocks as a sequence lengthens and refuses when the cache is full."""
        cache = KVCache(num_blocks=2, block_size=4)
        blocks = cache.allocate([], 0, 4)
        assert blocks is not None
        assert cache.grow(blocks, 4)
        assert len(blocks) == 1
        assert cache.grow(blocks, 5)
        assert len(blocks) == 2
        assert not cache.grow(blocks, 9)
        assert len(blocks) == 2

    def test_prefix_caching_disabled(self) -> None:
        """Without prefix caching nothing is ever a hit."""
        cache = KVCache(num_blocks=10, block_size=4, enable_prefix_caching=False)
        hashes = cached_sequence(cache, list(range(8)))
        assert cache.count_hits(hashes, 2) == 0
        assert cache.num_cached_blocks == 0


@pytest.mark.unit
class TestEviction:
    """Unreferenced cached blocks are evicted least recently released first."""

    def test_lru_order(self) -> None:
        """The older prefix is evicted; the recently used one survives."""
        cache = KVCache(num_blocks=4, block_size=4)
        old = cached_sequence(cache, [1] * 8)
        new = cached_sequence(cache, [2] * 8)
        blocks = cache.allocate([], 0, 8)  # needs two blocks: both come from the old prefix
        assert blocks is not None
        assert cache.count_hits(old, 2) == 0
        assert cache.count_hits(new, 2) == 2
        assert cache.evictions == 2

    def test_hit_refreshes_recency(self) -> None:
        """Using a prefix again makes it the most recent."""
        cache = KVCache(num_blocks=4, block_size=4)
        first = cached_sequence(cache, [1] * 8)
        second = cached_sequence(cache, [2] * 8)
        reused = cache.allocate(first, 2, 8)
        assert reused is not None
        cache.free(reused)
        assert cache.allocate([], 0, 8) is not None
        assert cache.count_hits(first, 2) == 2
        assert cache.count_hits(second, 2) == 0

    def test_tail_is_evicted_before_head(self) -> None:
        """Freeing tail first keeps the shared head of a prefix longest."""
        cache = KVCache(num_blocks=3, block_size=4)
        hashes = cached_sequence(cache, list(range(12)))
        assert cache.allocate([], 0, 4) is not None
        assert cache.count_hits(hashes, 3) == 2

    def test_referenced_blocks_are_never_evicted(self) -> None:
        """Blocks in use are not free."""
        cache = KVCache(num_blocks=2, block_size=4)
        hashes = hashes_of([5] * 8)
        held = cache.allocate(hashes, 0, 8)
        assert held is not None
        cache.commit(held, hashes, 0)
        assert cache.allocate([], 0, 1) is None

    def test_reset_drops_cached_blocks(self) -> None:
        """After reset nothing is cached and everything is free."""
        cache = KVCache(num_blocks=4, block_size=4)
        hashes = cached_sequence(cache, [1] * 8)
        cache.reset()
        assert cache.count_hits(hashes, 2) == 0
        assert cache.num_free_blocks == 4
