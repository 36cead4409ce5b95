"""Load for the scale benchmark: conversations through the widget API, replies read back
through it, and wrk for the ingest routes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

QUESTIONS = ["How long does shipping take?", "Can I return an item?", "Do you take PayPal?",
             "What are your opening hours?"]
_local = threading.local()
# Each conversation's visitor token (widget routes that have them want it as a bearer token).
TOKENS: dict[str, str] = {}


def auth(conversation: str) -> dict[str, str]:
    token = TOKENS.get(conversation)
    return {"Authorization": f"Bearer {token}"} if token else {}


def client(base: str) -> httpx.Client:
    """This thread's pooled client of the web app."""
    found = getattr(_local, "clients", {}).get(base)
    if found is None:
        found = httpx.Client(base_url=base, timeout=120)
        _local.clients = {**getattr(_local, "clients", {}), base: found}
    return found


@dataclass
class Started:
    conversation: str
    flow: str
    sent_at: float


def start_one(base: str, flow: str, index: int) -> Started:
    """A conversation on the flow with one customer message."""
    http = client(base)
    response = http.post("/v1/conversations", json={"contact": {"id": f"c{index}-{uuid.uuid4().hex[:6]}"},
                                                   "flow": flow})
    response.raise_for_status()
    conversation = response.json()["conversation_id"]
    if response.json().get("visitor_token"):
        TOKENS[conversation] = response.json()["visitor_token"]
    sent = time.time()
    http.post(f"/v1/conversations/{conversation}/messages", headers=auth(conversation),
              json={"text": QUESTIONS[index % len(QUESTIONS)]}).raise_for_status()
    return Started(conversation, flow, sent)


def start_many(base: str, flows: list[str], count: int, threads: int = 32) -> list[Started]:
    """`count` conversations, round robin over the flows, as fast as `threads` clients go."""
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda i: start_one(base, flows[i % len(flows)], i), range(count)))


def say(base: str, conversation: str, text: str) -> None:
    """One more customer message in the conversation."""
    client(base).post(f"/v1/conversations/{conversation}/messages", headers=auth(conversation),
                      json={"text": text}).raise_for_status()


def say_many(base: str, conversations: list[str], turn: int, threads: int = 32) -> None:
    """Each conversation's next message (a question the sandbox answers), side by side."""
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda cid: say(base, cid, QUESTIONS[turn % len(QUESTIONS)]),
                      conversations))


def paced(base: str, flow: str, rate: float, seconds: float, into: list[Started],
          threads: int = 48) -> None:
    """Start conversations at `rate` per second for `seconds` (each with one message)."""
    begin, sent = time.monotonic(), 0
    with ThreadPoolExecutor(threads) as pool:
        while (elapsed := time.monotonic() - begin) < seconds:
            due = int(elapsed * rate) - sent
            for _ in range(max(0, due)):
                index = len(into) + sent
                pool.submit(lambda i=index: into.append(start_one(base, flow, i)))
                sent += 1
            time.sleep(0.02)


def bot_messages(base: str, ids: Iterable[str], threads: int = 16) -> dict[str, list[dict[str, Any]]]:
    """Each conversation's bot messages after the welcome, through the API."""

    def read(cid: str) -> tuple[str, list[dict[str, Any]]]:
        page = client(base).get(f"/v1/conversations/{cid}/messages", headers=auth(cid),
                                params={"after": 1, "limit": 100}).json()
        return cid, [m for m in page["messages"] if m["author"] == "bot"]

    with ThreadPoolExecutor(threads) as pool:
        return dict(pool.map(read, list(ids)))


def wait_for(check: Callable[[], bool], timeout: float, every: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return False


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ----- wrk -----

WRK_SCRIPT = r"""
local lines, index, step = {}, 0, 1
function setup(thread)
  thread:set("offset", counter or 0)
  counter = (counter or 0) + 1
end
function init(args)
  step = tonumber(args[2])
  local position = 0
  for line in io.lines(args[1]) do
    if position % step == offset then
      local f = "([^\t]*)"
      local path, body, id, ts, sig, bearer = line:match(
        "^" .. f .. "\t" .. f .. "\t" .. f .. "\t" .. f .. "\t" .. f .. "\t" .. f .. "$")
      local headers = {["Content-Type"] = "application/json"}
      if bearer ~= "" then headers["Authorization"] = "Bearer " .. bearer end
      if id ~= "" then
        headers["webhook-id"] = id
        headers["webhook-timestamp"] = ts
        headers["webhook-signature"] = sig
      end
      table.insert(lines, wrk.format("POST", path, headers, body))
    end
    position = position + 1
  end
end
function request()
  index = index % #lines + 1
  return lines[index]
end
"""


def sign(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    """A Standard Webhooks signature (v1, HMAC-SHA256 of id.timestamp.body)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def widget_requests(conversations: list[str], count: int) -> list[str]:
    """Lines for WRK_SCRIPT: customer messages spread over the conversations, unique ids."""
    lines = []
    for n in range(count):
        cid = conversations[n % len(conversations)]
        body = json.dumps({"text": QUESTIONS[n % len(QUESTIONS)], "client_message_id": f"w{n}"})
        lines.append(f"/v1/conversations/{cid}/messages\t{body}\t\t\t\t{TOKENS.get(cid, '')}")
    return lines


def webhook_requests(inbox: str, secret: str, helpdesk_conversations: int, count: int) -> list[str]:
    """Signed helpdesk messages for WRK_SCRIPT, each with its own webhook-id."""
    now, lines = int(time.time()), []
    for n in range(count):
        external = f"hd-{n % helpdesk_conversations}"
        body = json.dumps({"conversation": {"id": external},
                           "contact": {"id": f"cust-{n % helpdesk_conversations}"},
                           "message": {"id": f"hm{n}", "text": QUESTIONS[n % len(QUESTIONS)]}})
        webhook_id = f"msg_{n}_{uuid.uuid4().hex[:8]}"
        lines.append(f"/v1/webhooks/{inbox}\t{body}\t{webhook_id}\t{now}\t"
                     f"{sign(secret, webhook_id, now, body)}\t")
    return lines


@dataclass
class WrkResult:
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int


def run_wrk(base: str, lines: list[str], work: Path, connections: int, seconds: int,
            threads: int = 2) -> WrkResult:
    """wrk at `connections` for `seconds` over the request lines; rate and latency."""
    if shutil.which("wrk") is None:
        raise SystemExit("part (b) needs wrk on PATH: apt-get install wrk")
    script, data = work / "wrk.lua", work / f"wrk-{uuid.uuid4().hex[:6]}.tsv"
    script.write_text(WRK_SCRIPT)
    data.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
         "-s", str(script), base, "--", str(data), str(threads)],
        capture_output=True, text=True, check=True).stdout
    (work / f"wrk-{connections}.out").write_text(out)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return WrkResult(rate, _latency(out, "50%"), _latency(out, "99%"),
                     int(errors.group(1)) if errors else 0)


def _latency(out: str, label: str) -> float:
    found = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if not found:
        return float("nan")
    value, unit = float(found.group(1)), found.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
