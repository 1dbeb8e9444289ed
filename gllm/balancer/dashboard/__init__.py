"""The dashboard page served at GET /dashboard: one HTML file with its scripts inlined (see page.py)."""

from gllm.balancer.dashboard.page import DashboardPage

__all__ = ["DashboardPage"]
