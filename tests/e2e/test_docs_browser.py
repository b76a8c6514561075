"""/docs renders in a real headless browser with no internet: its assets come from the app."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.services import real_env
from tests.stack import Stack

# Flags that keep Chromium from reaching for anything but the page under test.
QUIET_CHROMIUM = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def test_docs_page_renders_the_job_routes(migrated_database: str, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed (scripts/services.sh installs it)"
    stack = Stack(real_env(), tmp_path)
    try:
        stack.web()
        rendered = subprocess.run(
            [
                chromium,
                *QUIET_CHROMIUM,
                f"--user-data-dir={tmp_path / 'profile'}",
                "--virtual-time-budget=20000",
                "--dump-dom",
                f"{stack.base_url}/docs/",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        stack.stop()
    dom = rendered.stdout
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    # Swagger UI builds these nodes only after fetching and parsing /openapi.json.
    assert 'class="opblock-summary-path"' in dom or "opblock-summary-path" in dom, dom[:2000]
    for path in ("/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/cancel", "/v1/job-types"):
        assert f'data-path="{path}"' in dom, f"{path} not rendered"
    assert "Submit a job" in dom
