"""An approximate, bounded index of which worker has recently seen which prompt prefix.

A prompt is cut into blocks of `block_chars` characters; block i is known by the chain hash of the prompt up to
its end, so equal hashes mean equal prefixes. Each block hash maps to a bit mask of the workers that were sent
a prompt with that prefix, and each worker keeps its block hashes in LRU order, bounded per worker and in
total. The index only approximates the engines' caches (an engine evicts on its own schedule), which is all a
router needs: a wrong guess costs one prefill, never a wrong answer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

DEFAULT_BLOCK_CHARS = 64
DEFAULT_MAX_BLOCKS_PER_WORKER = 65_536  # 4 MiB of prompt text per worker at 64 characters a block
DEFAULT_MAX_BLOCKS = 262_144  # in total, over every worker


@dataclass(slots=True)
class _Slot:
    """One worker's bit in the masks and its blocks, least recently used first."""

    bit: int
    blocks: OrderedDict[int, None] = field(default_factory=OrderedDict)


class PrefixIndex:
    """Block-hash prefix index with LRU eviction per worker and a global bound."""

    def __init__(
        self,
        block_chars: int = DEFAULT_BLOCK_CHARS,
        max_blocks_per_worker: int = DEFAULT_MAX_BLOCKS_PER_WORKER,
        max_blocks: int = DEFAULT_MAX_BLOCKS,
    ) -> None:
        if block_chars < 1 or max_blocks_per_worker < 1 or max_blocks < 1:
            raise ValueError("block_chars, max_blocks_per_worker and max_blocks must be at least 1")
        self.block_chars = block_chars
        self.max_blocks_per_worker = max_blocks_per_worker
        self.max_blocks = max_blocks
        self._holders: dict[int, int] = {}  # block hash -> mask of worker bits
        self._slots: dict[str, _Slot] = {}
        self._free_bits: list[int] = []
        self._total = 0

    @property
    def total_blocks(self) -> int:
        """(block, worker) entries held, over every worker."""
        return self._total

    def blocks(self, address: str) -> int:
        """Blocks held for one worker."""
        slot = self._slots.get(address)
        return len(slot.blocks) if slot is not None else 0

    def workers(self) -> list[str]:
        """Addresses the index holds blocks for."""
        return list(self._slots)

    def hashes(self, text: str) -> list[int]:
        """Chain hashes of every full block of `text` (a trailing partial block is not indexed)."""
        size = self.block_chars
        out: list[int] = []
        parent = 0
        for start in range(0, len(text) - size + 1, size):
            parent = hash((parent, text[start : start + size]))
            out.append(parent)
        return out

    def match(self, hashes: Sequence[int], addresses: Sequence[str]) -> list[int]:
        """For each address, how many leading blocks of `hashes` it holds."""
        masks = [self._bit_mask(a) for a in addresses]
        result = [0] * len(addresses)
        alive = 0
        for mask in masks:
            alive |= mask
        depth = 0
        holders = self._holders
        for block_hash in hashes:
            if not alive:
                break
            held = holders.get(block_hash, 0) & alive
            if held != alive:
                dropped = alive & ~held
                for i, mask in enumerate(masks):
                    if mask & dropped:
                        result[i] = depth
                alive = held
            if alive:
                depth += 1
        for i, mask in enumerate(masks):
            if mask & alive:
                result[i] = depth
        return result

    def insert(self, address: str, hashes: Sequence[int]) -> None:
        """Record that `address` was sent a prompt with these blocks (they become its most recent)."""
        if not hashes:
            return
        slot = self._slots.get(address)
        if slot is None:
            bit = self._free_bits.pop() if self._free_bits else len(self._slots)
            slot = self._slots[address] = _Slot(1 << bit)
        blocks = slot.blocks
        holders = self._holders
        # Last block first, so the shared head of the prompt is the most recent and evicted last.
        for block_hash in reversed(hashes):
            if block_hash in blocks:
                blocks.move_to_end(block_hash)
            else:
                blocks[block_hash] = None
                holders[block_hash] = holders.get(block_hash, 0) | slot.bit
                self._total += 1
        excess = len(blocks) - self.max_blocks_per_worker
        if excess > 0:
            self._evict(slot, excess)
        while self._total > self.max_blocks:
            largest = max(self._slots.values(), key=lambda s: len(s.blocks))
            self._evict(largest, min(len(largest.blocks), self._total - self.max_blocks))

    def forget(self, address: str) -> None:
        """Drop every block of a worker and free its bit."""
        slot = self._slots.pop(address, None)
        if slot is None:
            return
        self._evict(slot, len(slot.blocks))
        self._free_bits.append(slot.bit.bit_length() - 1)

    def _evict(self, slot: _Slot, count: int) -> None:
        blocks = slot.blocks
        holders = self._holders
        keep = ~slot.bit
        for _ in range(count):
            block_hash, _ = blocks.popitem(last=False)
            mask = holders[block_hash] & keep
            if mask:
                holders[block_hash] = mask
            else:
                del holders[block_hash]
        self._total -= count

    def _bit_mask(self, address: str) -> int:
        slot = self._slots.get(address)
        return slot.bit if slot is not None else 0
