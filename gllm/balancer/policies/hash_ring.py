"""A consistent-hash ring with virtual nodes, on a stable hash (the same in every process and balancer)."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Iterator


def stable_hash(text: str) -> int:
    """A 64-bit hash of `text` that does not change between processes (unlike the built-in hash)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class HashRing:
    """Addresses placed at `virtual_nodes` points each; a key belongs to the first address clockwise from it.

    Adding an address takes over only the keys that now fall just before its points (about 1/n of them);
    removing one hands only its keys to their next address.
    """

    def __init__(self, virtual_nodes: int = 160) -> None:
        if virtual_nodes < 1:
            raise ValueError("virtual_nodes must be at least 1")
        self.virtual_nodes = virtual_nodes
        self._members: set[str] = set()
        self._points: list[int] = []
        self._owners: list[str] = []

    def __contains__(self, address: object) -> bool:
        return address in self._members

    def __len__(self) -> int:
        return len(self._members)

    def add(self, addresses: Iterable[str]) -> None:
        """Place the addresses not on the ring yet."""
        new = [a for a in addresses if a not in self._members]
        if not new:
            return
        self._members.update(new)
        self._rebuild()

    def remove(self, address: str) -> None:
        """Take an address off the ring."""
        if address in self._members:
            self._members.discard(address)
            self._rebuild()

    def _rebuild(self) -> None:
        points = sorted(
            (stable_hash(f"{address}#{i}"), address)
            for address in self._members
            for i in range(self.virtual_nodes)
        )
        self._points = [point for point, _ in points]
        self._owners = [owner for _, owner in points]

    def walk(self, key: str) -> Iterator[str]:
        """Every address once, in ring order starting with the owner of `key`."""
        if not self._points:
            return
        start = bisect.bisect_right(self._points, stable_hash(key))
        seen: set[str] = set()
        total = len(self._members)
        count = len(self._owners)
        for step in range(count):
            owner = self._owners[(start + step) % count]
            if owner not in seen:
                seen.add(owner)
                yield owner
                if len(seen) == total:
                    return

    def owner(self, key: str) -> str | None:
        """The address that owns `key` (None on an empty ring)."""
        return next(self.walk(key), None)
