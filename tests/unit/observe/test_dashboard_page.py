"""The dashboard page: self-contained, scripts inlined, locked down by its Content-Security-Policy."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from gllm.balancer.dashboard import DashboardPage


@pytest.fixture(scope="module")
def page() -> DashboardPage:
    return DashboardPage()


def header(page: DashboardPage, name: bytes) -> str:
    return dict(page.headers)[name].decode()


@pytest.mark.unit
class TestDashboardPage:
    """What GET /dashboard sends."""

    def test_scripts_inlined(self, page: DashboardPage) -> None:
        """Both scripts are in the page; no placeholder and no external script or stylesheet is left."""
        html = page.body.decode()
        assert "<!-- SCRIPTS -->" not in html
        assert "class LineChart" in html
        assert "function refresh" in html
        assert re.search(r"<script[^>]+src=", html) is None
        assert re.search(r"<link[^>]+href=", html) is None
        assert "https://" not in html
        assert "http://" not in html

    def test_csp_allows_exactly_the_inline_script(self, page: DashboardPage) -> None:
        """The CSP names the inline script's hash, allows connections to this origin only, and nothing else."""
        html = page.body.decode()
        scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
        assert len(scripts) == 1
        digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
        policy = header(page, b"content-security-policy")
        assert f"script-src 'sha256-{digest}'" in policy
        assert "default-src 'none'" in policy
        assert "connect-src 'self'" in policy
        assert header(page, b"x-content-type-options") == "nosniff"

    def test_no_html_injection_sinks(self, page: DashboardPage) -> None:
        """Worker-supplied text goes in through textContent: the scripts never use innerHTML or eval."""
        html = page.body.decode()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in html
