"""The `supportflow` command: check flows, run the sandbox, show settings, run everything locally."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from supportflow.cli_inboxes import add_inboxes_parser, run_deliveries, run_inboxes
from supportflow.cli_tokens import add_tokens_parser, run_tokens
from supportflow.cli_vault import add_vault_parser, run_vault
from supportflow.flowconfig import FlowDirectory, FlowError, load_flow_file
from supportflow.settings import Settings, env_name, load_settings


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="supportflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    flows = commands.add_parser("flows", help="work with flow files")
    flow_commands = flows.add_subparsers(dest="flows_command", metavar="ACTION")
    check = flow_commands.add_parser("check", help="validate every flow file of a folder")
    check.add_argument("--dir", type=Path, help="the flows folder (default: SUPPORTFLOW_FLOWS_DIR "
                                                "or config/flows)")

    sandbox = commands.add_parser("sandbox", help="run the local stand-in for the OpenAI API")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8765)
    sandbox.add_argument("--latency", type=float, default=0.5, metavar="S",
                         help="seconds before a run finishes (default 0.5)")
    sandbox.add_argument("--knowledge", type=Path, help="the knowledge file (default: "
                                                        "config/sandbox/knowledge.yaml)")

    dev = commands.add_parser("dev", help="run Redis, the sandbox, workers, beat and the web app")
    dev.add_argument("--port", type=int, default=5000, help="the web app's port (default 5000)")
    dev.add_argument("--data", type=Path, default=Path("var"),
                     help="folder for Redis data and the beat schedule (default ./var)")
    dev.add_argument("--redis-url", help="use this Redis instead of starting an embedded one")
    dev.add_argument("--sandbox-port", type=int, default=8765)
    dev.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")

    add_vault_parser(commands)
    add_tokens_parser(commands)
    add_inboxes_parser(commands)

    config = commands.add_parser("config", help="print the effective settings, secrets masked")
    config.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `supportflow` command; returns the exit code (2 for bad usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse: --help (0) or bad usage (2)
        return int(stop.code or 0) if not isinstance(stop.code, str) else 2
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("supportflow: error: name a command: flows check, sandbox, dev, vault, tokens or config",
              file=sys.stderr)
        return 2
    if args.command == "flows" and args.flows_command is None:
        print("usage: supportflow flows check [--dir DIR]\n"
              "supportflow flows: error: name an action: check", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
    except ValueError as error:
        print(f"supportflow: error: bad setting in the environment: {error}", file=sys.stderr)
        return 2
    handlers = {"flows": flows_check, "sandbox": run_sandbox, "dev": run_dev, "config": show_config,
                "vault": run_vault, "tokens": run_tokens,
                "inboxes": run_inboxes, "deliveries": run_deliveries}
    return handlers[args.command](args, settings)


def flows_check(args: argparse.Namespace, settings: Settings) -> int:
    """Validate every flow file; print OK per flow or the errors; 1 when any is bad."""
    folder: Path = args.dir or settings.flows_dir
    if not folder.is_dir():
        print(f"{folder}: no such folder", file=sys.stderr)
        return 1
    paths = sorted(folder.glob("*.yaml"))
    if not paths:
        print(f"{folder}: no flow files (*.yaml)", file=sys.stderr)
        return 1
    failed = False
    for path in paths:
        try:
            flow = load_flow_file(path)
        except FlowError as error:
            failed = True
            print(f"ERROR {error}")
        else:
            print(f"OK    {path}: flow {flow.name!r} ({flow.backend.kind.value} backend, "
                  f"{flow.thread_scope.value} threads)")
    if failed:
        return 1
    try:
        directory = FlowDirectory.load(folder, settings.default_flow)
    except FlowError as error:
        print(f"ERROR {error}")
        return 1
    print(f"{len(directory.flows)} flow(s) OK; default: {directory.default!r}")
    return 0


def run_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the sandbox assistant until interrupted."""
    from supportflow.sandbox.server import serve

    knowledge: Path = args.knowledge or settings.sandbox_knowledge
    if not knowledge.is_file():
        print(f"supportflow: error: no knowledge file at {knowledge}", file=sys.stderr)
        return 2
    print(f"sandbox assistant on http://{args.host}:{args.port}/v1 "
          f"(latency {args.latency} s, knowledge {knowledge})", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        serve(args.host, args.port, knowledge, args.latency)
    except KeyboardInterrupt:
        pass
    except OSError as error:
        print(f"supportflow: error: cannot serve on {args.host}:{args.port}: {error}",
              file=sys.stderr)
        return 1
    return 0


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def show_config(args: argparse.Namespace, settings: Settings) -> int:
    """Print the effective settings with secrets masked."""
    values = settings.redacted()
    if args.json:
        print(json.dumps(values, indent=2, default=str))
        return 0
    width = max(len(name) for name in values)
    for name, value in values.items():
        print(f"{name:<{width}} = {value}    # {env_name(name)}")
    print(f"{'assistant':<{width}} = "
          f"{'sandbox' if settings.uses_sandbox else 'OpenAI'} at {settings.assistant_base_url}")
    return 0


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on host:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def run_dev(args: argparse.Namespace, settings: Settings) -> int:
    """Run the whole service on this machine until Ctrl-C."""
    from supportflow.runtime import dev

    for port, what in ((args.port, "--port"), (args.sandbox_port, "--sandbox-port")):
        if not 0 < port < 65536:
            print(f"supportflow: error: {what} must be a port number", file=sys.stderr)
            return 2
        if port_in_use(port) and (what == "--port" or settings.uses_sandbox):
            print(f"supportflow: error: port {port} is already in use; pick another with {what}",
                  file=sys.stderr)
            return 1
    return dev.run(dev.DevOptions(
        web_port=args.port, data_dir=args.data.resolve(), redis_url=args.redis_url,
        sandbox_port=args.sandbox_port, concurrency=args.concurrency,
    ), settings)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
