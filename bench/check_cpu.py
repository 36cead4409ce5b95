"""The client's CPU per run check: httpx's transport against kept-alive stdlib connections.

A fixed-response HTTP/1.1 server runs in its own process (asyncio, answers every request with
the same in-progress response), so only the client's CPU is counted (`time.process_time`).
Both paths go through `call_api`, as a check does: the injected-transport path (what every
check took before `http_gets.py`) and the kept-alive path a client gets when it talks to the
API itself.

    .venv/bin/python bench/check_cpu.py [--requests 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from supportflow.adapters.openai_http import OpenAIHttp, call_api, make_openai_http  # noqa: E402

SERVER = r'''
import asyncio, json, sys
body = json.dumps({"id": "resp_1", "object": "response", "status": "in_progress",
                   "output": []}).encode()
reply = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
         b"openai-poll-after-ms: 1000\r\n\r\n" % len(body)) + body

async def serve(reader, writer):
    buffer = b""
    while chunk := await reader.read(65536):
        buffer += chunk
        while b"\r\n\r\n" in buffer:
            _, buffer = buffer.split(b"\r\n\r\n", 1)
            writer.write(reply)
        await writer.drain()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
'''


def per_check_us(http: OpenAIHttp, requests: int) -> float:
    for _ in range(100):  # connections open, caches warm
        call_api(http, "GET", "/responses/resp_1")
    started = time.process_time()
    for _ in range(requests):
        call_api(http, "GET", "/responses/resp_1")
    return (time.process_time() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        options = dict(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-bench",
                       organization=None, project=None, connect_timeout_s=5.0,
                       read_timeout_s=30.0)
        limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
        paths = {"httpx transport": make_openai_http(
                     **options, transport=httpx.HTTPTransport(limits=limits)),  # type: ignore[arg-type]
                 "kept-alive stdlib": make_openai_http(**options)}  # type: ignore[arg-type]
        for round_ in range(1, args.rounds + 1):  # alternated: this machine's speed drifts
            figures = ", ".join(f"{name} {per_check_us(http, args.requests):.0f} us"
                                for name, http in paths.items())
            print(f"round {round_}: client CPU per check: {figures}")
    finally:
        server.kill()


if __name__ == "__main__":
    main()
