"""`supportflow dev` as a new user runs it, the README's curl session against it, then Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from supportflow.settings import PROJECT_ROOT
from tests.helpers import free_port, wait_until

pytestmark = pytest.mark.slow


def readme_curl_session() -> str:
    """The shell block that follows the `curl-session` marker in the README."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- curl-session -->\s*```bash\n(.*?)```", readme, re.S)
    assert found, "the README has no curl session"
    return found.group(1)


def test_dev_serves_the_readme_curl_session_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SUPPORTFLOW_"))}
    web_port, sandbox_port = free_port(), free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "supportflow"), "dev", "--port", str(web_port),
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
        session = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_curl_session()],
                                 env={**env, "BASE": base}, capture_output=True, text=True,
                                 timeout=90)
        assert session.returncode == 0, session.stderr
        assert '"state":"wait_for_user"' in session.stdout, session.stdout
        assert "We ship within 1-2 business days" in session.stdout
        assert (tmp_path / "var" / "redis" / "redis.log").is_file()
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        reader.join(timeout=5)
    assert code == 0, "".join(lines)
    assert "embedded Redis stopped" in "".join(lines)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{web_port}/healthz", timeout=2)
