"""Without Playwright the e2e tier still collects its non-browser tests (server flow, crash
recovery, aws flow) and skips only the browser tests, saying why."""

from __future__ import annotations

import subprocess
import sys

from support import REPO

# Playwright made unimportable for the child alone: a None entry in sys.modules makes every
# ``import playwright...`` raise ImportError, as on a machine where it was never installed.
COLLECT_WITHOUT_PLAYWRIGHT = (
    "import sys; sys.modules['playwright'] = None; import pytest; "
    "sys.exit(pytest.main(['--collect-only', '-q', '-rs', '-p', 'no:cacheprovider', 'tests/e2e']))"
)


def test_e2e_tier_collects_without_playwright():
    result = subprocess.run([sys.executable, "-c", COLLECT_WITHOUT_PLAYWRIGHT], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for module in ("test_server_flow.py", "test_crash_recovery.py", "test_aws_flow.py"):
        assert f"tests/e2e/{module}::" in output, output
    for module in ("test_browser.py", "test_browser_aws.py"):
        assert f"tests/e2e/{module}::" not in output, output
        assert f"SKIPPED [1] tests/e2e/{module}" in output and "playwright" in output, output
