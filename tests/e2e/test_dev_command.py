"""`supportflow dev` end to end: everything starts, answers, and stops on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, wait_until

pytestmark = pytest.mark.slow


def test_dev_runs_the_whole_service_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SUPPORTFLOW_"))}
    web_port, sandbox_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "supportflow.cli", "dev", "--port", str(web_port),
         "--sandbox-port", str(sandbox_port), "--data", "var"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    try:
        wait_until(lambda: "Press Ctrl-C" in "".join(lines) or process.poll() is not None, 90)
        output = "".join(lines)
        assert process.poll() is None, output
        base = f"http://127.0.0.1:{web_port}"
        for path in ("/v1", "/demo", "/agent", "/ops"):
            assert f"{base}{path}" in output
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{sandbox_port}/_sandbox/stats", timeout=5).is_success
        started = httpx.post(f"{base}/v1/conversations", json={"contact": {"id": "dev-test"}},
                             timeout=10)
        assert started.status_code == 201, started.text
        assert (tmp_path / "var" / "redis" / "redis.log").is_file()
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        reader.join(timeout=5)
    assert code == 0, "".join(lines)
    assert "embedded Redis stopped" in "".join(lines)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{web_port}/healthz", timeout=2)
