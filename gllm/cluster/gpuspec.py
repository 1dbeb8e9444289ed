"""The `--workers` grammar: which GPUs each worker of a cluster gets.

An item is a comma list of GPU ids and inclusive ranges: `3`, `0:3` (0,1,2,3), `0,2,5`, `0:1,4:5`.
Items are the whitespace-separated words of all `--workers` arguments, so `--workers 0:1 2:3` and
`--workers "0:1 2:3"` are the same.

- One item: one worker per GPU (`--workers 0:3` = four workers of one GPU each), as the old GLLM documented.
- Several items: one worker per item with all of its GPUs (`--workers 0:1 2:3` = two workers of two GPUs).
- `--gpus-per-worker N` with one item: consecutive groups of N GPUs (`--workers 0:7 --gpus-per-worker 2`).
- `--num-workers N` instead of `--workers`: GPUs 0..N*G-1 (G = --gpus-per-worker, default 1), G per worker.

A GPU may belong to one worker only. Anything else is a GpuSpecError with a message naming the bad part.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MAX_GPUS = 4096  # a bound on one spec, so that a typo such as 0:99999999 fails fast instead of eating memory

_RANGE = re.compile(r"^(\d+):(\d+)$")


class GpuSpecError(ValueError):
    """A `--workers` / `--num-workers` / `--gpus-per-worker` combination that cannot be used."""


def parse_gpu_item(item: str) -> list[int]:
    """GPU ids of one item such as `0:1,4:5`, in the given order; duplicates inside it are an error."""
    text = item.strip()
    if not text:
        raise GpuSpecError("empty GPU spec")
    gpus: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise GpuSpecError(f"empty element in GPU spec {item!r} (stray comma?)")
        gpus.extend(_parse_part(part, item))
        if len(gpus) > MAX_GPUS:
            raise GpuSpecError(f"GPU spec {item!r} names more than {MAX_GPUS} GPUs")
    seen: set[int] = set()
    for gpu in gpus:
        if gpu in seen:
            raise GpuSpecError(f"GPU {gpu} appears twice in {item!r}")
        seen.add(gpu)
    return gpus


def _where(part: str, item: str) -> str:
    return repr(part) if part == item.strip() else f"{part!r} in {item!r}"


def _parse_part(part: str, item: str) -> list[int]:
    where = _where(part, item)
    if part.isdigit():
        return [int(part)]
    match = _RANGE.match(part)
    if match is None:
        if part.startswith("-") or ":-" in part:
            raise GpuSpecError(f"negative GPU id {where}: GPU ids are 0, 1, 2, ...")
        raise GpuSpecError(
            f"bad GPU spec {where}: expected an id (3), an inclusive range (0:3) or a list (0,2,5)"
        )
    first, last = int(match.group(1)), int(match.group(2))
    if first > last:
        raise GpuSpecError(f"empty GPU range {where}: the first id must not exceed the last")
    if last - first + 1 > MAX_GPUS:
        raise GpuSpecError(f"GPU range {where} names more than {MAX_GPUS} GPUs")
    return list(range(first, last + 1))


def split_items(arguments: Sequence[str]) -> list[str]:
    """The items of the `--workers` arguments (each argument may hold several whitespace-separated items)."""
    return [word for argument in arguments for word in argument.split()]


def worker_gpus(
    workers: Sequence[str] | None = None,
    *,
    num_workers: int | None = None,
    gpus_per_worker: int | None = None,
) -> list[tuple[int, ...]]:
    """The GPU ids of each worker, from either `--workers` arguments or `--num-workers` (see the module doc)."""
    if gpus_per_worker is not None and gpus_per_worker < 1:
        raise GpuSpecError("--gpus-per-worker must be at least 1")
    if workers is not None and num_workers is not None:
        raise GpuSpecError("give either --workers or --num-workers, not both")
    if num_workers is not None:
        if num_workers < 1:
            raise GpuSpecError("--num-workers must be at least 1")
        per = gpus_per_worker or 1
        return [tuple(range(i * per, (i + 1) * per)) for i in range(num_workers)]
    if workers is None:
        raise GpuSpecError("give --workers GPU_SPEC (such as 0:3) or --num-workers N")
    items = split_items(workers)
    if not items:
        raise GpuSpecError("empty --workers: give GPU specs such as 0:3, 0,2,5 or 0:1 2:3")
    groups = _group(items, gpus_per_worker)
    _check_disjoint(groups)
    return groups


def _group(items: list[str], gpus_per_worker: int | None) -> list[tuple[int, ...]]:
    if len(items) > 1:
        if gpus_per_worker is not None:
            raise GpuSpecError(
                "--gpus-per-worker applies to a single --workers spec; with several specs each one is a worker"
            )
        return [tuple(parse_gpu_item(item)) for item in items]
    gpus = parse_gpu_item(items[0])
    per = gpus_per_worker or 1
    if len(gpus) % per:
        raise GpuSpecError(
            f"{len(gpus)} GPUs in {items[0]!r} cannot be split into workers of {per} GPUs each"
        )
    return [tuple(gpus[i : i + per]) for i in range(0, len(gpus), per)]


def _check_disjoint(groups: list[tuple[int, ...]]) -> None:
    owner: dict[int, int] = {}
    for index, gpus in enumerate(groups):
        for gpu in gpus:
            if gpu in owner:
                raise GpuSpecError(f"GPU {gpu} is given to worker {owner[gpu]} and to worker {index}")
            owner[gpu] = index
