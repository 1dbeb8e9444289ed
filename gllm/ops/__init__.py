"""Operator commands run against a live balancer: `gllm status`, `gllm load-model`, `gllm release-gpus`."""
