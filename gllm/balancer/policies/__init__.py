"""Routing policies, chosen by name from one table, with per-policy options."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gllm.balancer.engine_load import EngineLoadTable
from gllm.balancer.policies.base import LoadScorer, Policy, RoutingContext
from gllm.balancer.policies.least_busy import LeastBusy
from gllm.balancer.policies.load import LoadAware
from gllm.balancer.policies.options import PolicyOptions
from gllm.balancer.policies.prefix import Balance, PrefixAffinity
from gllm.balancer.policies.random_choice import RandomChoice
from gllm.balancer.policies.round_robin import RoundRobin
from gllm.balancer.policies.scoring import EngineLoadScorer, EngineWeights, InFlightScorer
from gllm.balancer.policies.session import DEFAULT_KEY_SOURCES, KeySource, SessionAffinity
from gllm.balancer.prefix_index import (
    DEFAULT_BLOCK_CHARS,
    DEFAULT_MAX_BLOCKS,
    DEFAULT_MAX_BLOCKS_PER_WORKER,
    PrefixIndex,
)


@dataclass(frozen=True, slots=True)
class PolicyEnv:
    """What a policy factory gets: the sampling size, a seeded generator, options and engine figures."""

    check_size: int
    rng: random.Random
    options: PolicyOptions
    loads: EngineLoadTable | None = None


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """A policy's factory and whether it reads engine figures (then the balancer runs the metrics scraper)."""

    factory: Callable[[PolicyEnv], Policy]
    engine_metrics: bool = False


def _scorer(env: PolicyEnv) -> LoadScorer:
    """Engine-aware scores when engine figures are wired in (and not turned off), else in-flight counts."""
    opts = env.options
    defaults = EngineWeights()
    weights = EngineWeights(
        waiting=opts.get_float("waiting_weight", defaults.waiting, minimum=0.0),
        kv=opts.get_float("kv_weight", defaults.kv, minimum=0.0),
        kv_floor=opts.get_float("kv_floor", defaults.kv_floor, minimum=0.0),
    )
    if weights.kv_floor >= 1.0:
        raise ValueError("policy option kv_floor must be below 1")
    mode = opts.get_str("load_scoring", "engine")
    if mode not in ("engine", "in_flight"):
        raise ValueError(f"policy option load_scoring must be engine or in_flight, got {mode!r}")
    if env.loads is None or mode == "in_flight":
        return InFlightScorer()
    return EngineLoadScorer(env.loads, weights)


def _session(env: PolicyEnv) -> Policy:
    opts = env.options
    sources = tuple(KeySource.parse(s) for s in opts.get_list("session_key", DEFAULT_KEY_SOURCES))
    if not sources:
        raise ValueError("policy option session_key needs at least one source")
    return SessionAffinity(
        _scorer(env),
        LeastBusy(env.check_size, env.rng),
        sources,
        load_factor=opts.get_float("load_factor", 1.5, minimum=1.0),
        slack=opts.get_float("load_slack", 4.0, minimum=0.0),
        virtual_nodes=opts.get_int("virtual_nodes", 160, minimum=1),
    )


def _prefix(env: PolicyEnv) -> Policy:
    opts = env.options
    defaults = Balance()
    index = PrefixIndex(
        block_chars=opts.get_int("block_chars", DEFAULT_BLOCK_CHARS, minimum=1),
        max_blocks_per_worker=opts.get_int("max_blocks_per_worker", DEFAULT_MAX_BLOCKS_PER_WORKER, minimum=1),
        max_blocks=opts.get_int("max_blocks", DEFAULT_MAX_BLOCKS, minimum=1),
    )
    balance = Balance(
        abs_threshold=opts.get_float("balance_abs_threshold", defaults.abs_threshold, minimum=0.0),
        rel_threshold=opts.get_float("balance_rel_threshold", defaults.rel_threshold, minimum=1.0),
        cache_threshold=opts.get_float("cache_threshold", defaults.cache_threshold, minimum=0.0),
    )
    return PrefixAffinity(_scorer(env), index, balance, env.rng)


# name -> how to build it
POLICIES: dict[str, PolicySpec] = {
    LeastBusy.name: PolicySpec(lambda env: LeastBusy(env.check_size, env.rng)),
    RoundRobin.name: PolicySpec(lambda env: RoundRobin()),
    RandomChoice.name: PolicySpec(lambda env: RandomChoice(env.rng)),
    SessionAffinity.name: PolicySpec(_session, engine_metrics=True),
    PrefixAffinity.name: PolicySpec(_prefix, engine_metrics=True),
    LoadAware.name: PolicySpec(lambda env: LoadAware(_scorer(env), env.rng), engine_metrics=True),
}


def make_policy(
    name: str,
    check_size: int = 5,
    rng: random.Random | None = None,
    options: PolicyOptions | Mapping[str, str] | None = None,
    loads: EngineLoadTable | None = None,
) -> Policy:
    """Build the policy registered under `name`; ValueError for an unknown name or option, or a bad value.

    `loads` is the table the engine-metrics scraper fills; policies that score load read it when given.
    """
    try:
        spec = POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; choose one of: {', '.join(sorted(POLICIES))}") from None
    opts = options if isinstance(options, PolicyOptions) else PolicyOptions(options)
    policy = spec.factory(PolicyEnv(check_size, rng or random.Random(), opts, loads))
    unknown = opts.unread()
    if unknown:
        accepted = ", ".join(opts.known()) or "none"
        raise ValueError(
            f"unknown option(s) for policy {name!r}: {', '.join(unknown)} (it takes: {accepted})"
        )
    return policy


def uses_engine_metrics(name: str) -> bool:
    """True when the policy reads engine figures, so the balancer should run the metrics scraper."""
    spec = POLICIES.get(name)
    return spec is not None and spec.engine_metrics


__all__ = [
    "POLICIES",
    "Policy",
    "PolicyEnv",
    "PolicyOptions",
    "PolicySpec",
    "RoutingContext",
    "make_policy",
    "uses_engine_metrics",
]
