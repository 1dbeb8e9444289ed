"""Helpers of benchmarks/routing.py: simulated engines, workloads, load generator, targets, report."""
