"""The KV cache: a fixed pool of blocks with a prefix cache over block-aligned token prefixes.

A full block is known by the hash chain of the tokens up to its end: hash(parent hash, its tokens). A new
sequence reuses every leading block whose chain hash is cached, so it pays prefill only for the rest.
Blocks are reference-counted; a cached block nobody references stays cached but is evictable, and the
least recently released one is evicted first when a free block is needed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

ROOT_HASH = 0


def extend_block_hashes(hashes: list[int], token_ids: Sequence[int], block_size: int) -> None:
    """Append to `hashes` the chain hash of every full block of `token_ids` not hashed yet."""
    parent = hashes[-1] if hashes else ROOT_HASH
    for start in range(len(hashes) * block_size, len(token_ids) - block_size + 1, block_size):
        parent = hash((parent, tuple(token_ids[start : start + block_size])))
        hashes.append(parent)


class Block:
    """One KV cache block."""

    __slots__ = ("block_hash", "block_id", "ref_count")

    def __init__(self, block_id: int) -> None:
        self.block_id = block_id
        self.ref_count = 0
        self.block_hash: int | None = None


class KVCache:
    """Block allocator with prefix caching and LRU eviction of unreferenced cached blocks."""

    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True) -> None:
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching
        self._blocks = [Block(i) for i in range(num_blocks)]
        self._free: list[Block] = list(reversed(self._blocks))  # never cached or already evicted
        self._evictable: OrderedDict[int, Block] = OrderedDict()  # cached, unreferenced, oldest first
        self._cached: dict[int, Block] = {}  # chain hash -> block
        self.evictions = 0

    @property
    def num_free_blocks(self) -> int:
        """Blocks that a new allocation may take (free or evictable)."""
        return len(self._free) + len(self._evictable)

    @property
    def usage(self) -> float:
        """Fraction of blocks referenced by running sequences (vllm:kv_cache_usage_perc)."""
        return 1.0 - self.num_free_blocks / self.num_blocks

    @property
    def num_cached_blocks(self) -> int:
        """Blocks currently findable by their hash."""
        return len(self._cached)

    def blocks_for(self, num_tokens: int) -> int:
        """Blocks needed to hold `num_tokens` tokens."""
        return -(-num_tokens // self.block_size)

    def count_hits(self, hashes: Sequence[int], max_blocks: int) -> int:
        """How many leading blocks of `hashes` (at most `max_blocks`) are cached."""
        if not self.enable_prefix_caching:
            return 0
        hits = 0
        for block_hash in hashes[:max_blocks]:
            if block_hash not in self._cached:
                break
            hits += 1
        return hits

    def allocate(self, hashes: Sequence[int], num_hits: int, num_tokens: int) -> list[Block] | None:
        """Blocks for `num_tokens` tokens reusing the first `num_hits` cached blocks; None if out of space."""
        hit_blocks = [self._cached[block_hash] for block_hash in hashes[:num_hits]]
        needed = self.blocks_for(num_tokens) - num_hits
        reclaimed = sum(1 for block in hit_blocks if block.ref_count == 0)
        if needed > self.num_free_blocks - reclaimed:
            return None
        for block in hit_blocks:
            if block.ref_count == 0:
                del self._evictable[block.block_id]
            block.ref_count += 1
        return hit_blocks + [self._take() for _ in range(needed)]

    def grow(self, blocks: list[Block], num_tokens: int) -> bool:
        """Append blocks until `blocks` hold `num_tokens` tokens; False (nothing added) if out of space."""
        needed = self.blocks_for(num_tokens) - len(blocks)
        if needed <= 0:
            return True
        if needed > self.num_free_blocks:
            return False
        blocks.extend(self._take() for _ in range(needed))
        return True

    def commit(self, blocks: Sequence[Block], hashes: Sequence[int], start: int) -> int:
        """Make full blocks `start..len(hashes)-1` findable by hash; return the new committed count."""
        end = min(len(hashes), len(blocks))
        if self.enable_prefix_caching:
            for index in range(start, end):
                block, block_hash = blocks[index], hashes[index]
                if block.block_hash is None and block_hash not in self._cached:
                    block.block_hash = block_hash
                    self._cached[block_hash] = block
        return max(start, end)

    def free(self, blocks: Sequence[Block]) -> None:
        """Release a sequence's blocks, tail first so that its tail is evicted before its head."""
        for block in reversed(blocks):
            block.ref_count -= 1
            if block.ref_count > 0:
                continue
            if block.block_hash is None:
                self._free.append(block)
            else:
                self._evictable[block.block_id] = block

    def reset(self) -> None:
        """Drop every cached block (after every sequence released its blocks, e.g. on /sleep)."""
        for block in self._evictable.values():
            self._uncache(block)
            self._free.append(block)
        self._evictable.clear()

    def _take(self) -> Block:
        if self._free:
            block = self._free.pop()
        else:
            _, block = self._evictable.popitem(last=False)
            self._uncache(block)
            self.evictions += 1
        block.ref_count = 1
        return block

    def _uncache(self, block: Block) -> None:
        if block.block_hash is not None:
            del self._cached[block.block_hash]
            block.block_hash = None
