"""`gllm start-balancer` with the routing wiring of docs/routing.md, for as long as the balancer lacks it.

Accepts `--policy-option KEY=VALUE` (repeated), builds the policy with the options and an EngineLoadTable, and
runs the EngineMetricsScraper when the policy reads engine metrics. targets.py uses it only when
`gllm start-balancer --help` has no --policy-option flag; delete it once the balancer does this itself.
"""

from __future__ import annotations

import random
import sys
from typing import Any

from gllm.balancer import app as app_module
from gllm.balancer.engine_load import EngineLoadTable
from gllm.balancer.engine_metrics import EngineMetricsScraper
from gllm.balancer.policies import PolicyOptions, make_policy, uses_engine_metrics
from gllm.cli import main

METRICS_INTERVAL = 0.5


def wire(options: list[str]) -> None:
    """Patch the app's constructor and startup with the policy options and the scraper."""
    original_init = app_module.BalancerApp.__init__
    original_startup = app_module.BalancerApp.startup

    def init(self: Any, config: Any) -> None:
        original_init(self, config)
        loads = EngineLoadTable(max_age=6 * METRICS_INTERVAL)
        rng = random.Random(config.seed)
        self.cluster.policy = make_policy(
            config.policy, config.check_size, rng, PolicyOptions.parse(options), loads=loads
        )
        self.routing_scraper = EngineMetricsScraper(
            self.pool, self.cluster.registry.all, loads, interval=METRICS_INTERVAL, timeout=1.0
        )

    async def startup(self: Any) -> None:
        await original_startup(self)
        if uses_engine_metrics(self.config.policy):
            self._spawn(self.routing_scraper.run())

    app_module.BalancerApp.__init__ = init  # type: ignore[method-assign]
    app_module.BalancerApp.startup = startup  # type: ignore[method-assign]


if __name__ == "__main__":
    argv: list[str] = []
    options: list[str] = []
    args = iter(sys.argv[1:])
    for arg in args:
        if arg == "--policy-option":
            options.append(next(args))
        else:
            argv.append(arg)
    wire(options)
    sys.exit(main(argv))
