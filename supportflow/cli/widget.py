"""`supportflow widget snippet`: the tag a helpdesk owner puts on their site."""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import urlsplit

from supportflow.adapters.flow_files import FlowDirectory, FlowError
from supportflow.settings import Settings
from supportflow.web.widget_assets import WidgetAssets

COMMAND = "widget"


def register(commands: Any) -> None:
    """Add `widget snippet`."""
    widget = commands.add_parser(COMMAND, help="the chat widget for other sites")
    widget.set_defaults(run=run)
    actions = widget.add_subparsers(dest="widget_command", metavar="ACTION")
    snippet = actions.add_parser("snippet", help="print the embed snippet of this version")
    snippet.add_argument("--url", required=True,
                         help="where SupportFlow is served, e.g. https://support.example.com")
    snippet.add_argument("--flow", help="the flow the widget starts (default: the default flow)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Print the snippet; say which sites the flow lets embed it (on stderr)."""
    if args.widget_command is None:
        print("usage: supportflow widget snippet --url URL [--flow NAME]", file=sys.stderr)
        return 2
    url = urlsplit(args.url)
    if url.scheme not in ("http", "https") or not url.netloc or url.path not in ("", "/"):
        print(f"supportflow widget: error: --url takes an origin such as "
              f"https://support.example.com, not {args.url!r}", file=sys.stderr)
        return 2
    try:
        flows = FlowDirectory.load(settings.flows_dir, settings.default_flow)
        flow = flows.get(args.flow or flows.default)
    except FlowError as error:
        print(f"supportflow widget: error: the flows do not load:\n{error}", file=sys.stderr)
        return 1
    except KeyError:
        print(f"supportflow widget: error: no flow named {args.flow!r} (flows: "
              f"{', '.join(flows.names())})", file=sys.stderr)
        return 1
    print(WidgetAssets.load().snippet(args.url, flow.name))
    sites = ", ".join(flow.widget.allowed_origins) or "none yet"
    print(f"Sites flow {flow.name!r} lets embed it (widget.allowed_origins): {sites}",
          file=sys.stderr)
    return 0
