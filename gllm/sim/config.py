"""SimConfig: every parameter of a simulated engine, with its meaning and unit (see docs/sim.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SimConfig:
    """One simulated vLLM engine: identity, latency model, batching and KV cache.

    All `*_s` durations are seconds of simulated GPU time; the engine divides each of them by `speed`
    (2.0 runs twice as fast, 1/3 makes an engine three times slower).
    """

    # Identity and binding.
    model: str = "sim-model"
    """Model path or name (vLLM's `--model`); reported as `root` by /v1/models."""
    served_model_name: tuple[str, ...] = ()
    """Names clients may send as `model` (vLLM's `--served-model-name NAME [NAME ...]`); empty: `model`.
    The first is the engine's main name (metrics label, ready line); duplicates are dropped."""
    host: str = "127.0.0.1"
    port: int = 0
    """TCP port; 0 binds a free port chosen by the OS."""

    # Time.
    speed: float = 1.0
    """Divides every simulated duration below; 3.0 is three times faster, 0.5 twice slower."""
    load_time_s: float = 0.5
    """Model load time: /health answers 503 (and generation refuses) until it has elapsed."""
    wake_time_s: float = 0.1
    """Time POST /wake_up takes to bring the weights back after POST /sleep."""
    prefill_time_per_token_s: float = 0.0001
    """Prefill cost of each prompt token that is NOT found in the prefix cache."""
    decode_base_step_s: float = 0.01
    """Fixed cost of one batch step (one output token for every running sequence)."""
    decode_per_seq_step_s: float = 0.0002
    """Extra cost of one batch step per running sequence: step = base + per_seq * running."""

    # Batching.
    max_num_seqs: int = 256
    """Sequences decoded together at most; further requests wait (vllm:num_requests_waiting)."""
    max_num_batched_tokens: int = 8192
    """Token budget of one step: admissions stop once their uncached prompt tokens would exceed it."""
    max_model_len: int = 8192
    """Longest prompt + completion accepted; longer requests get a 400 like vLLM."""

    # KV cache and prefix cache.
    block_size: int = 16
    """Tokens per KV cache block; the prefix cache works on whole blocks."""
    num_blocks: int = 4096
    """KV cache capacity in blocks (vLLM's `--num-gpu-blocks-override`)."""
    enable_prefix_caching: bool = True
    """Reuse cached blocks of identical block-aligned prompt prefixes (hash chain, LRU eviction)."""

    # Text.
    default_max_tokens: int = 64
    """Completion length when a request sets neither max_tokens nor max_completion_tokens."""
    eos_probability: float = 0.0
    """Chance per generated token that the sequence ends by itself (finish_reason "stop")."""
    seed: int = 0
    """Engine seed: requests without a `seed` draw from an engine RNG seeded with it (like vLLM's --seed)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "served_model_name", _name_tuple(self.served_model_name))
        problems = list(self._problems())
        if problems:
            raise ValueError("invalid SimConfig: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        found: list[str] = []
        if not self.model:
            found.append("model must not be empty")
        if any(not isinstance(name, str) or not name for name in self.served_model_name):
            found.append("served_model_name entries must be non-empty strings")
        if not 0 <= self.port <= 65535:
            found.append(f"port {self.port} out of range")
        if self.speed <= 0:
            found.append("speed must be > 0")
        for name in ("load_time_s", "wake_time_s", "prefill_time_per_token_s", "decode_base_step_s"):
            if getattr(self, name) < 0:
                found.append(f"{name} must be >= 0")
        if self.decode_per_seq_step_s < 0:
            found.append("decode_per_seq_step_s must be >= 0")
        for name in ("max_num_seqs", "max_num_batched_tokens", "max_model_len", "block_size", "num_blocks"):
            if getattr(self, name) < 1:
                found.append(f"{name} must be >= 1")
        if self.default_max_tokens < 1:
            found.append("default_max_tokens must be >= 1")
        if not 0.0 <= self.eos_probability <= 1.0:
            found.append("eos_probability must be within [0, 1]")
        if self.max_model_len > self.block_size * self.num_blocks:
            found.append(
                f"max_model_len ({self.max_model_len}) exceeds the KV cache "
                f"({self.num_blocks} blocks x {self.block_size} tokens)"
            )
        return found

    @property
    def name(self) -> str:
        """The engine's main model name: the first served name, else the model."""
        return self.names[0]

    @property
    def names(self) -> tuple[str, ...]:
        """Every name clients may send as `model` (listed by /v1/models in this order)."""
        return self.served_model_name or (self.model,)

    def scaled(self, seconds: float) -> float:
        """Wall-clock duration of `seconds` of simulated time."""
        return seconds / self.speed

    def replace(self, **changes: object) -> SimConfig:
        """A copy with `changes` applied (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _name_tuple(names: object) -> tuple[str, ...]:
    """Served names as a tuple without duplicates; a lone string is one name, not its characters."""
    if isinstance(names, str):
        return (names,)
    if names is None:
        return ()
    if not isinstance(names, Iterable):
        raise TypeError("served_model_name must be a tuple of strings")
    return tuple(dict.fromkeys(names))
