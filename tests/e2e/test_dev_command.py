"""`supportflow dev` as a new user runs it: the README's curl session against it, then Ctrl-C.

The first test installs the built wheel (not the source checkout) into a fresh virtualenv and
runs it from an empty folder, so the defaults must travel inside the package.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from supportflow import defaults
from supportflow.sandbox.server import start_in_thread
from supportflow.sandbox.store import bearer_fingerprint
from supportflow.settings import PROJECT_ROOT
from tests.helpers import free_port, wait_until

pytestmark = pytest.mark.slow


def readme_curl_session() -> str:
    """The shell block that follows the `curl-session` marker in the README."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- curl-session -->\s*```bash\n(.*?)```", readme, re.S)
    assert found, "the README has no curl session"
    return found.group(1)


def installed_wheel(tmp_path: Path) -> Path:
    """Build the wheel from a copy of the source and install it into a fresh venv; its bin/.

    The venv reaches the dependencies through a .pth file naming this venv's site-packages
    (no network); the editable install there is not active in it, so `supportflow` and
    `workers` come from the wheel alone.
    """
    source = tmp_path / "source"
    for part in ("supportflow", "workers"):
        shutil.copytree(PROJECT_ROOT / part, source / part,
                        ignore=shutil.ignore_patterns("__pycache__", "screenshots"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                    str(source)], check=True, capture_output=True, timeout=120)
    [wheel] = wheels.glob("supportflow-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=60)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", str(wheel)],
                   check=True, capture_output=True, timeout=120)
    return venv / "bin"


@contextmanager
def dev_running(tmp_path: Path, extra_env: dict[str, str],
                bin_dir: Path | None = None) -> Iterator[tuple[str, list[str]]]:
    """Start `supportflow dev` from its console script; yield its URL and printed lines."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "SUPPORTFLOW_")) and k != "PYTHONPATH"}
    env.update(extra_env)
    web_port, sandbox_port = free_port(), free_port()
    folder = tmp_path / "empty"
    folder.mkdir()
    process = subprocess.Popen(
        [str((bin_dir or Path(sys.executable).parent) / "supportflow"), "dev", "--port",
         str(web_port), "--sandbox-port", str(sandbox_port), "--data", "var"],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        wait_until(lambda: "Press Ctrl-C" in "".join(lines) or process.poll() is not None, 90)
        assert process.poll() is None, "".join(lines)
        yield f"http://127.0.0.1:{web_port}", lines
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        reader.join(timeout=5)
    assert code == 0, "".join(lines)
    assert "embedded Redis stopped" in "".join(lines)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{web_port}/healthz", timeout=2)


def run_readme_session(base: str) -> tuple[str, str]:
    """Run the README's curl session; its output and the visitor token it used."""
    script = readme_curl_session() + '\necho "visitor token: $TOKEN"\n'
    session = subprocess.run(["bash", "-euo", "pipefail", "-c", script],
                             env={**os.environ, "BASE": base}, capture_output=True, text=True,
                             timeout=90)
    assert session.returncode == 0, session.stderr
    assert '"state":"wait_for_user"' in session.stdout, session.stdout
    output, _, token = session.stdout.rpartition("visitor token: ")
    assert token.strip().startswith("sfv_"), session.stdout
    return output, token.strip()


def test_the_installed_wheel_serves_the_readme_curl_session_from_an_empty_folder(
    tmp_path: Path,
) -> None:
    bin_dir = installed_wheel(tmp_path)
    shown = subprocess.run([str(bin_dir / "supportflow"), "config", "--json"], cwd=tmp_path,
                           env={"PATH": os.environ["PATH"]}, capture_output=True, text=True,
                           check=True).stdout
    # The flows come from the installed package, not from this checkout.
    assert json.loads(shown)["flows_dir"].startswith(str(tmp_path / "venv"))
    with dev_running(tmp_path, {}, bin_dir) as (base, lines):
        output = "".join(lines)
        for path in ("/v1", "/demo", "/agent", "/ops"):
            assert f"{base}{path}" in output
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        answered, token = run_readme_session(base)
        assert "We ship within 1-2 business days" in answered
        # The sandbox's response events reached the web app and were verified (2xx answers).
        sandbox = re.search(r"assistant\s+sandbox at (\S+)/v1", "".join(lines))
        assert sandbox and f"{base}/v1/integrations/openai/default" in "".join(lines)
        stats = httpx.get(f"{sandbox.group(1)}/_sandbox/stats", timeout=5).json()
        assert stats["webhooks_sent"] >= 1 and stats["webhooks_failed"] == 0
        assert (tmp_path / "empty" / "var" / "redis" / "redis.log").is_file()
        # granian's access log and the app's JSON logs are on, and the token is in neither
        # (the access log has the path, without its query string: no OAuth code lands there).
        logged = "".join(lines)
        assert re.search(r'^web\s+\|.*"GET /v1/conversations/conv-\w+/messages HTTP/1.1" 200 ',
                         logged, re.M)
        assert token not in logged
        assert re.search(r"^sandbox\s+\|", "".join(lines), re.M)
        secret_key = tmp_path / "empty" / "var" / "secret_key"
        assert secret_key.stat().st_mode & 0o077 == 0
        save_it_and_ask(bin_dir, base, output)


def save_it_and_ask(bin_dir: Path, base: str, output: str) -> None:
    """An agent's "save it" (the GPT's action, after OAuth consent) becomes the answer the
    default flow's bot gives a new customer."""
    redis_url = re.search(r"redis\s+(redis://\S+)", output)
    assert redis_url, output
    env = {"PATH": os.environ["PATH"], "SUPPORTFLOW_REDIS_URL": redis_url.group(1)}
    cli = str(bin_dir / "supportflow")
    subprocess.run([cli, "agents", "create", "sam", "--email", "sam@example.test"],
                   input="a long enough password\n", env=env, text=True, check=True,
                   capture_output=True)
    made = subprocess.run([cli, "oauth-clients", "create", "Sams GPT", "--redirect-uri",
                           "http://127.0.0.1:9/callback"], env=env, text=True, check=True,
                          capture_output=True).stdout
    client_id = made.split("client_id:")[1].split()[0]
    secret = made.split("client_secret:")[1].split()[0]
    with httpx.Client(base_url=base, timeout=10) as browser:
        form = browser.get("/signin").text
        browser.post("/signin", data={"identifier": "sam", "password": "a long enough password",
                                      "csrf_token": csrf_of(form)})
        query = {"response_type": "code", "client_id": client_id, "state": "s1",
                 "redirect_uri": "http://127.0.0.1:9/callback", "scope": "knowledge:write knowledge:read"}
        consent = browser.get("/oauth/authorize", params=query)
        allowed = browser.post(str(consent.url), data={"csrf_token": csrf_of(consent.text),
                                                       "decision": "allow"})
        code = httpx.URL(allowed.headers["Location"]).params["code"]
        token = browser.post("/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "client_id": client_id,
            "client_secret": secret, "redirect_uri": "http://127.0.0.1:9/callback",
        }).json()["access_token"]
    answer = "Yes: we gift-wrap any order for $3.50. Choose Gift wrapping at checkout."
    saved = httpx.post(f"{base}/v1/actions/knowledge", timeout=10, json={
        "title": "Gift wrapping", "text": answer}, headers={"Authorization": f"Bearer {token}"})
    assert saved.status_code == 201
    started = httpx.post(f"{base}/v1/conversations", timeout=10,
                         json={"contact": {"id": "gift"}}).json()
    conversation = started["conversation_id"]
    visitor = {"Authorization": f"Bearer {started['visitor_token']}"}

    def reply() -> str | None:
        # Ask once the article is in the store; the sandbox answers from it.
        page = httpx.get(f"{base}/v1/conversations/{conversation}/messages", timeout=5,
                         headers=visitor).json()
        said = [m for m in page["messages"] if m["author"] == "customer"]
        bot = [m["text"] for m in page["messages"] if m["author"] == "bot"]
        if not said:
            httpx.post(f"{base}/v1/conversations/{conversation}/messages", timeout=5,
                       headers=visitor,
                       json={"text": "Do you offer gift wrapping?", "client_message_id": "g1"})
        return bot[-1] if page["state"] == "wait_for_user" and len(bot) > 1 else None

    wait_until(lambda: saved_is_synced(base, saved.json()["id"], token), 30)
    # Polled as a person's widget would be, within the visitor's rate limit.
    assert wait_until(reply, 30, interval=0.5) == answer


def saved_is_synced(base: str, article_id: str, token: str) -> bool:
    found = httpx.get(f"{base}/v1/actions/knowledge", params={"q": "gift wrapping"}, timeout=5,
                      headers={"Authorization": f"Bearer {token}"})
    return found.status_code == 200 and any(
        a["id"] == article_id and a["synced"] for a in found.json()["articles"])


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:300]
    return found.group(1)


def test_dev_with_an_api_key_talks_to_the_api_instead_of_a_sandbox(tmp_path: Path) -> None:
    # The "API" here is a sandbox of the test's own at OPENAI_BASE_URL: dev must start none.
    api = start_in_thread("127.0.0.1", free_port(), defaults.KNOWLEDGE,
                          0.2)
    key = "sk-test-dev-key-0123456789"
    try:
        with dev_running(tmp_path, {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": api.url}) as (base, lines):
            assert not re.search(r"^sandbox\s+\|", "".join(lines), re.M)
            assert "We ship within 1-2 business days" in run_readme_session(base)[0]
            stats = httpx.get(api.url.removesuffix("/v1") + "/_sandbox/stats", timeout=5).json()
            assert bearer_fingerprint(key) in stats["bearer_fingerprints"]
            assert key not in "".join(lines)
    finally:
        api.stop()
