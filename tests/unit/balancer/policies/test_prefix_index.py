"""The prefix index: chain hashes, longest-match per worker, LRU bounds, purge, memory."""

from __future__ import annotations

import tracemalloc

import pytest

from gllm.balancer.prefix_index import PrefixIndex

A, B, C = "http://a:1", "http://b:1", "http://c:1"


def text(blocks: int, tag: str = "x", size: int = 4) -> str:
    """A text of `blocks` distinct blocks of `size` characters, varied by `tag`."""
    return "".join(f"{tag}{i:0{size - len(tag)}d}"[:size] for i in range(blocks))


@pytest.mark.unit
class TestHashes:
    """Blocks are known by the whole prefix up to their end."""

    def test_full_blocks_only(self) -> None:
        """A trailing partial block is not indexed."""
        index = PrefixIndex(block_chars=4)
        assert len(index.hashes("abcdefghij")) == 2
        assert index.hashes("abc") == []

    def test_chain_shares_prefix_only(self) -> None:
        """Two texts share hashes exactly as far as their blocks agree from the start."""
        index = PrefixIndex(block_chars=4)
        one = index.hashes("aaaabbbbccccdddd")
        two = index.hashes("aaaabbbbXcccdddd")
        assert one[:2] == two[:2]
        assert one[2] != two[2]
        assert one[3] != two[3]


@pytest.mark.unit
class TestMatch:
    """How many leading blocks each worker holds."""

    def test_depth_per_worker(self) -> None:
        """A worker holding a longer prefix matches deeper; unknown workers match nothing."""
        index = PrefixIndex(block_chars=4)
        base = text(6)
        index.insert(A, index.hashes(base[:8]))
        index.insert(B, index.hashes(base))
        index.insert(C, index.hashes(text(6, "y")))
        assert index.match(index.hashes(base), [A, B, C, "http://d:1"]) == [2, 6, 0, 0]
        assert index.match(index.hashes(base + "zzzz"), [B]) == [6]
        assert index.match([], [A]) == [0]

    def test_match_needs_every_leading_block(self) -> None:
        """A worker missing a middle block matches only up to it."""
        index = PrefixIndex(block_chars=4, max_blocks_per_worker=4)
        hashes = index.hashes(text(6))
        index.insert(A, hashes)  # holds only 4 blocks: the last two (least recently inserted) are gone
        assert index.blocks(A) == 4
        assert index.match(hashes, [A]) == [4]


@pytest.mark.unit
class TestBounds:
    """LRU eviction per worker and in total; purge."""

    def test_per_worker_lru(self) -> None:
        """The oldest prompts go first; a prompt used again is kept."""
        index = PrefixIndex(block_chars=4, max_blocks_per_worker=6)
        first, second, third = (index.hashes(text(3, tag)) for tag in ("a", "b", "c"))
        index.insert(A, first)
        index.insert(A, second)
        index.insert(A, first)  # first is now the most recent
        index.insert(A, third)
        assert index.blocks(A) == 6
        assert index.match(first, [A]) == [3]
        assert index.match(second, [A]) == [0]
        assert index.match(third, [A]) == [3]

    def test_eviction_takes_the_tail_of_a_prompt_first(self) -> None:
        """The head of a prompt (shared by more requests) outlives its tail."""
        index = PrefixIndex(block_chars=4, max_blocks_per_worker=5)
        long = index.hashes(text(4, "a"))
        index.insert(A, long)
        index.insert(A, index.hashes(text(2, "b")))
        assert index.match(long, [A]) == [3]

    def test_global_bound_evicts_from_the_largest(self) -> None:
        """Over max_blocks the worker holding the most gives up its oldest blocks."""
        index = PrefixIndex(block_chars=4, max_blocks_per_worker=100, max_blocks=10)
        index.insert(A, index.hashes(text(8, "a")))
        index.insert(B, index.hashes(text(4, "b")))
        assert index.total_blocks == 10
        assert (index.blocks(A), index.blocks(B)) == (6, 4)

    def test_shared_blocks_count_per_worker(self) -> None:
        """The same prefix on two workers is two entries; evicting one keeps the other."""
        index = PrefixIndex(block_chars=4, max_blocks_per_worker=3)
        shared = index.hashes(text(3))
        index.insert(A, shared)
        index.insert(B, shared)
        assert index.total_blocks == 6
        index.insert(A, index.hashes(text(3, "z")))
        assert index.match(shared, [A, B]) == [0, 3]

    def test_forget_purges_and_reuses_the_bit(self) -> None:
        """A purged worker holds nothing; a new worker reuses its bit without inheriting its blocks."""
        index = PrefixIndex(block_chars=4)
        hashes = index.hashes(text(5))
        index.insert(A, hashes)
        index.insert(B, hashes)
        index.forget(A)
        index.forget("http://unknown:1")
        assert index.total_blocks == 5
        assert index.workers() == [B]
        index.insert(C, index.hashes(text(2, "q")))
        assert index.match(hashes, [A, B, C]) == [0, 5, 0]

    def test_bad_sizes(self) -> None:
        """Sizes must be positive."""
        with pytest.raises(ValueError, match="at least 1"):
            PrefixIndex(block_chars=0)

    def test_memory_stays_bounded_under_many_distinct_prompts(self) -> None:
        """30,000 distinct prompts into an index bounded at 6,000 entries: entries and bytes stay bounded."""
        index = PrefixIndex(block_chars=64, max_blocks_per_worker=1200, max_blocks=6_000)
        workers = [f"http://w{i}:1" for i in range(8)]
        tracemalloc.start()
        try:
            for n in range(30_000):
                hashes = index.hashes(f"prompt {n}: " + "lorem ipsum " * 16)
                index.match(hashes, workers)
                index.insert(workers[n % 8], hashes)
            used, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert index.total_blocks <= 6_000
        assert all(index.blocks(w) <= 1200 for w in workers)
        assert used / index.total_blocks < 400  # bytes per entry, all structures included
