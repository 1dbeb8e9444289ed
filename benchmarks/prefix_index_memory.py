#!/usr/bin/env python3
"""Memory and speed of the prefix policy's index under a million distinct prompts (no network).

python benchmarks/prefix_index_memory.py [--prompts 1000000]
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc

from gllm.balancer.policies import RoutingContext, make_policy
from gllm.balancer.policies.prefix import PrefixAffinity
from gllm.balancer.registry import Registry


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    registry = Registry()
    workers = [registry.add(f"http://10.0.0.{i}:8000")[0] for i in range(args.workers)]
    policy = make_policy("prefix", rng=random.Random(0))
    assert isinstance(policy, PrefixAffinity)
    rng = random.Random(1)
    tracemalloc.start()
    started = time.perf_counter()
    for n in range(args.prompts):
        text = f"user {n}: " + " ".join(str(rng.randrange(10**6)) for _ in range(30))  # ~200 characters
        policy.choose(workers, RoutingContext("m", {"prompt": text}))
    elapsed = time.perf_counter() - started
    used, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    index = policy.index
    print(
        f"{args.prompts:,} distinct prompts on {args.workers} workers in {elapsed:.1f} s (under tracemalloc)"
    )
    print(
        f"index entries {index.total_blocks:,} (bound {index.max_blocks:,}); memory {used / 1e6:.1f} MB "
        f"(peak {peak / 1e6:.1f} MB), {used / max(1, index.total_blocks):.0f} bytes per entry"
    )
    started = time.perf_counter()
    for n in range(50_000):
        policy.choose(workers, RoutingContext("m", {"prompt": f"again {n}: " + "lorem ipsum " * 16}))
    print(
        f"routing cost without tracemalloc: {(time.perf_counter() - started) / 50_000 * 1e6:.1f} us per request"
    )


if __name__ == "__main__":
    main()
