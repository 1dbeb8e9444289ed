"""Helpers for GLLM's own tests: real loopback servers, free ports, waiting on conditions."""

from gllm.testing.net import free_port, wait_for_http, wait_until

__all__ = ["free_port", "wait_for_http", "wait_until"]
