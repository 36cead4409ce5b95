"""`supportflow sandbox` as its own process (granian): an OpenAI client runs a turn over kept-alive
connections, SIGTERM stops it cleanly, and a taken port is a plain error."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.helpers import free_port, wait_until

pytestmark = pytest.mark.slow
SUPPORTFLOW = [sys.executable, "-c", "import sys; from supportflow.cli import main; "
               "sys.exit(main(sys.argv[1:]))"]


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/_sandbox/runs", params={"since": 9e18}, timeout=1).is_success
    except httpx.HTTPError:
        return False


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    log = (tmp_path / "sandbox.log").open("wb")
    process = subprocess.Popen([*SUPPORTFLOW, "sandbox", "--port", str(port), "--latency", "0.2"],
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}") or process.poll() is not None,
                   timeout=30, interval=0.1)
        assert process.poll() is None, (tmp_path / "sandbox.log").read_text()
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_a_client_runs_a_turn_and_sigterm_stops_the_server(
    sandbox_process: tuple[subprocess.Popen[bytes], int]
) -> None:
    process, port = sandbox_process
    client = openai.OpenAI(api_key="sk-test", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id="asst_1")
    done = wait_until(lambda: client.beta.threads.runs.retrieve(
        run.id, thread_id=thread.id).status == "completed", timeout=20, interval=0.05)
    assert done
    replies = client.beta.threads.messages.list(thread_id=thread.id, order="asc").data
    assert [message.role for message in replies] == ["user", "assistant"]

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0


def test_a_port_in_use_is_a_plain_error(
    sandbox_process: tuple[subprocess.Popen[bytes], int]
) -> None:
    _, port = sandbox_process
    second = subprocess.run([*SUPPORTFLOW, "sandbox", "--port", str(port)],
                            capture_output=True, text=True, timeout=30)
    assert second.returncode != 0
    assert f"cannot serve on 127.0.0.1:{port}" in second.stderr
    assert "panicked" not in second.stderr and "Traceback" not in second.stderr
