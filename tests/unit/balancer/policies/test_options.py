"""Policy options and the name table: parsing, typed reads, unknown options, building every policy."""

from __future__ import annotations

import random

import pytest

from gllm.balancer.engine_load import EngineLoadTable
from gllm.balancer.policies import POLICIES, PolicyOptions, make_policy, uses_engine_metrics
from gllm.balancer.policies.least_busy import LeastBusy
from gllm.balancer.policies.prefix import PrefixAffinity
from gllm.balancer.policies.scoring import EngineLoadScorer, InFlightScorer
from gllm.balancer.policies.session import SessionAffinity


@pytest.mark.unit
class TestPolicyOptions:
    """key=value strings read with types and bounds."""

    def test_parse_and_read(self) -> None:
        """Values come back typed; dashes in keys read as underscores."""
        opts = PolicyOptions.parse(["block-chars=32", "cache_threshold=0.5", "session_key=header:x-a,body:u"])
        assert opts.get_int("block_chars", 64) == 32
        assert opts.get_float("cache_threshold", 0.3) == 0.5
        assert opts.get_list("session_key", ()) == ("header:x-a", "body:u")
        assert opts.get_str("absent", "dflt") == "dflt"
        assert opts.unread() == []

    @pytest.mark.parametrize("item", ["novalue", "=3", ""])
    def test_malformed_item(self, item: str) -> None:
        """An item without key=value is refused."""
        with pytest.raises(ValueError, match="key=value"):
            PolicyOptions.parse([item])

    @pytest.mark.parametrize(
        ("raw", "message"), [("x", "must be a number"), ("-1", "at least"), ("nan", "at least")]
    )
    def test_bad_numbers(self, raw: str, message: str) -> None:
        """Non-numbers and values under the minimum are refused with the option's name."""
        with pytest.raises(ValueError, match=message):
            PolicyOptions({"w": raw}).get_float("w", 1.0, minimum=0.0)

    def test_bad_int(self) -> None:
        """A fractional value for a whole-number option is refused."""
        with pytest.raises(ValueError, match="whole number"):
            PolicyOptions({"n": "1.5"}).get_int("n", 1)


@pytest.mark.unit
class TestMakePolicy:
    """Every name builds; options are checked against what the policy reads."""

    @pytest.mark.parametrize("name", sorted(POLICIES))
    def test_every_policy_builds(self, name: str) -> None:
        """Each registered name gives a policy of that name."""
        assert make_policy(name, 5, random.Random(0)).name == name

    def test_old_call_still_works(self) -> None:
        """make_policy(name, check_size, rng) as the balancer called it before options existed."""
        policy = make_policy("least_busy", 3, random.Random(0))
        assert isinstance(policy, LeastBusy)
        assert policy.check_size == 3

    def test_unknown_policy(self) -> None:
        """An unknown name lists the known ones."""
        with pytest.raises(ValueError, match="choose one of: least_busy, load, prefix, random"):
            make_policy("fastest", 5, random.Random(0))

    def test_unknown_option_names_accepted_ones(self) -> None:
        """A misspelt option fails at start and says what the policy takes."""
        with pytest.raises(
            ValueError, match=r"unknown option\(s\) for policy 'prefix': blok_chars .*block_chars"
        ):
            make_policy("prefix", 5, random.Random(0), {"blok_chars": "32"})

    def test_option_of_another_policy_is_refused(self) -> None:
        """Options are per policy: least_busy takes none."""
        with pytest.raises(ValueError, match="it takes: none"):
            make_policy("least_busy", 5, random.Random(0), {"load_factor": "2"})

    def test_options_reach_the_policy(self) -> None:
        """Prefix and session options land in the built objects."""
        prefix = make_policy(
            "prefix",
            options={"block_chars": "16", "balance_abs_threshold": "3", "balance_rel_threshold": "2"},
        )
        assert isinstance(prefix, PrefixAffinity)
        assert prefix.index.block_chars == 16
        assert (prefix.balance.abs_threshold, prefix.balance.rel_threshold) == (3.0, 2.0)
        session = make_policy("session", options={"load_factor": "2", "session_key": "body:conversation"})
        assert isinstance(session, SessionAffinity)
        assert session.load_factor == 2.0
        assert [(s.kind, s.name) for s in session.sources] == [("body", "conversation")]

    def test_engine_scoring_only_with_a_table(self) -> None:
        """With engine figures wired in, load scoring uses them unless turned off."""
        table = EngineLoadTable()
        assert isinstance(make_policy("prefix", loads=table).scorer, EngineLoadScorer)  # type: ignore[attr-defined]
        assert isinstance(make_policy("prefix").scorer, InFlightScorer)  # type: ignore[attr-defined]
        off = make_policy("prefix", options={"load_scoring": "in_flight"}, loads=table)
        assert isinstance(off.scorer, InFlightScorer)  # type: ignore[attr-defined]
        with pytest.raises(ValueError, match="load_scoring"):
            make_policy("load", options={"load_scoring": "magic"}, loads=table)

    def test_which_policies_need_the_scraper(self) -> None:
        """Load-scoring policies ask for engine metrics; the simple ones do not."""
        assert {name for name in POLICIES if uses_engine_metrics(name)} == {"load", "prefix", "session"}
        assert not uses_engine_metrics("nonexistent")
