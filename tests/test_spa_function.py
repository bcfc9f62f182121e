"""The SPA fallback edge function runs under Node against CloudFront event fixtures
(moto does not run CloudFront Functions); `node --test` is the runner."""

from __future__ import annotations

import subprocess

from fixtures.repo import REPO


def test_spa_fallback_function_under_node() -> None:
    result = subprocess.run(
        ["node", "--test", str(REPO / "tests" / "js" / "spa-fallback.test.mjs")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout and "# pass 6" in result.stdout, result.stdout
