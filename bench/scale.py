"""The scale benchmark of issue 9: parts (a)-(d) on the real stack, printed as one table.

  .venv/bin/python bench/scale.py                      # every part, the issue's sizes
  .venv/bin/python bench/scale.py --parts a --small    # one part, small sizes
  .venv/bin/python bench/scale.py --code /tmp/sf-before --json before.json
  .venv/bin/python bench/scale.py --compare before.json after.json

(a) added reply latency and API calls per turn, runs of 2-8 s, the flows side by side;
(b) ingest: the widget route and the signed webhook route, with workers running (wrk);
(c) conversations waiting on 5-minute runs, 10 s polls: lateness at the sandbox, worker RSS,
    Redis bytes per conversation;
(d) overload: twice the measured capacity for a minute, then half of it: queue over time,
    completion, duplicate replies, time to drain.
Everything is measured from outside: replies through the API, runs and checks as the sandbox
recorded them, memory from /proc and Redis, queues from the broker.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import load  # noqa: E402
import spy  # noqa: E402
from stack import FLOWS, Stack, rss_bytes  # noqa: E402

Rows = list[tuple[str, str, Any, str]]  # part, figure, value, target
TARGETS_A = {"default": "p50 <= 1, p95 <= 2 (1,000)",
             "webhooks": "p50 <= 0.3, p95 <= 0.5 (1,000)"}


def part_a(stack: Stack, sizes: list[int], flows: list[str], rows: Rows, turns: int = 1) -> None:
    """Added latency (reply in the transcript - the run's real completion) and calls per turn;
    the polling flows side by side, then (with webhooks) the webhook flow alone, none and 5 %
    of the events dropped: an event wakes any conversation waiting on its response, so the
    sandbox sends none while the polling flows are measured. With `turns` > 1, each
    conversation the bot answered gets its next message once the reply is there."""
    passes: list[tuple[list[str], float | None]] = [(flows, None)] if flows else []
    if stack.webhook_secret:
        passes += [(["webhooks"], 0.0), (["webhooks"], 0.05)]
    for names, drop in passes:
        settings: dict[str, Any] = {"latency_range_s": [2, 8]}
        if drop is not None:
            settings.update(webhook_url=f"{stack.base}/v1/integrations/openai/default",
                            webhook_secret=stack.webhook_secret, webhook_drop_rate=drop)
        stack.configure_sandbox(**settings)
        note = f", {drop:.0%} of webhooks dropped" if drop else ""
        if turns > 1:
            note += f", {turns} turns each"
        _latencies(stack, sizes, names, rows, note, turns)


def _latencies(stack: Stack, sizes: list[int], flows: list[str], rows: Rows, note: str,
               turns: int) -> None:
    for size in sizes:
        since = time.time()
        started = load.start_many(stack.base, flows, size)
        ids = [s.conversation for s in started]
        answered(stack, ids, timeout=180)
        for turn in range(2, turns + 1):
            more = [cid for cid, state in zip(ids, stack.states(ids), strict=True)
                    if state == "wait_for_user"]
            load.say_many(stack.base, more, turn)
            load.wait_for(lambda more=more, turn=turn: all(stack.turn_done(more, turn)),
                          timeout=180, every=0.5)
        records = stack.run_records(since)
        completed = _completions(records["runs"])
        replies = load.bot_messages(stack.base, ids)
        by_flow: dict[str, list[float]] = defaultdict(list)
        calls: dict[str, list[int]] = defaultdict(list)
        turns_made: dict[str, int] = defaultdict(int)
        for s in started:
            done = completed.get(s.conversation, [])
            bot = replies.get(s.conversation) or []
            for reply, finished in zip(bot, done, strict=False):
                by_flow[s.flow].append(reply["at"] - finished)
            calls[s.flow].append(records["calls"].get(s.conversation, 0))
            turns_made[s.flow] += max(len(done), 1)
        for flow in flows:
            added = by_flow[flow]
            rows.append(("a", f"{size} conv.: {flow}{note}: added latency p50 / p95 (s), answered",
                         f"{fmt(load.percentile(added, 0.5))} / {fmt(load.percentile(added, 0.95))}"
                         f", {len(added)}/{turns_made[flow]}", TARGETS_A.get(flow, "")))
            if "dropped" in note:
                rows.append(("a", f"{size} conv.: {flow}{note}: added latency p99 / max (s)",
                             f"{fmt(load.percentile(added, 0.99))} / {fmt(max(added, default=None))}",
                             "p99 <= the poll interval"))
            rows.append(("a", f"{size} conv.: {flow}{note}: API calls per turn",
                         fmt(sum(calls[flow]) / turns_made[flow] if calls[flow] else None),
                         "<= 2.5" if flow == "webhooks" else "<= 3 + polls"))


def _completions(runs: list[list[Any]]) -> dict[str, list[float]]:
    """Each conversation's turns, in order: when the last run of the turn really completed
    (a turn with tool calls makes several)."""
    by_turn: dict[tuple[str, str], tuple[float, float]] = {}
    for conversation, turn, _, created, completed, _ in runs:
        if conversation and completed is not None:
            key = (conversation, turn)
            if key not in by_turn or created >= by_turn[key][0]:
                by_turn[key] = (created, completed)
    ordered: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for (conversation, _), times in by_turn.items():
        ordered[conversation].append(times)
    return {cid: [done for _, done in sorted(times)] for cid, times in ordered.items()}


def part_b(stack: Stack, seconds: int, rows: Rows, profile: bool = False) -> None:
    """Messages per second and latency of the two ingest routes, with workers running."""
    stack.configure_sandbox(latency_s=2.0)
    widget = [s.conversation for s in load.start_many(stack.base, ["default"], 1000)]
    out = stack.cli("inboxes", "create", "bench", "--flow", "default", "--callback-url",
                    f"{stack.sandbox_root}/_sandbox/sink/bench")
    secret = re.search(r"inbound secret[^:]*: (whsec_\S+)", out).group(1)  # type: ignore[union-attr]
    for route, connections in (("widget", 16), ("widget", 64), ("webhook", 16), ("webhook", 64)):
        count = seconds * 5000
        lines = (load.widget_requests(widget, count) if route == "widget"
                 else load.webhook_requests("bench", secret, 1000, count))
        spying = (spy.record(stack.pid("web"), seconds - 1, stack.work / f"web-{route}.raw")
                  if profile and connections == 64 else None)
        cpu_before = stack.cpu_by_process()
        started = time.monotonic()
        result = load.run_wrk(stack.base, lines, stack.work, connections, seconds)
        cpu = {name: (used - cpu_before[name]) / (time.monotonic() - started)
               for name, used in stack.cpu_by_process().items()}
        if spying is not None:
            spying.wait()
            rows.append(("b", f"profile of the web, {route} route (busy time by library)",
                         spy.summary(stack.work / f"web-{route}.raw"), ""))
        target = ">= 2000/s, p99 <= 50 ms" if route == "widget" else ">= 1500/s"
        rows.append(("b", f"{route} route, {connections} connections: msg/s, p50 / p99 (ms)",
                     f"{result.rate:.0f}, {result.p50_ms:.1f} / {result.p99_ms:.1f}"
                     + (f" ({result.errors} not 2xx)" if result.errors else ""), target))
        rows.append(("b", f"{route} route, {connections} connections: CPU (cores) web / worker(s) "
                     "/ sandbox / redis; web ms per message",
                     " / ".join(f"{cpu[n]:.2f}" for n in ("web", "worker", "sandbox", "redis"))
                     + f"; {1000 * cpu['web'] / max(result.rate, 1):.2f}", ""))
        time.sleep(3)


def part_c(stack: Stack, conversations: int, window_s: float, rows: Rows,
           profile: bool = False) -> None:
    """Conversations waiting on 5-minute runs polled every 10 s: lateness, RSS, Redis bytes."""
    stack.configure_sandbox(latency_s=300.0)
    before = stack.used_memory()
    since = time.time()
    started = load.start_many(stack.base, ["fixed10"], conversations)
    ids = [s.conversation for s in started]
    if not load.wait_for(lambda: stack.redis.scard("sf:state:poll") >= conversations,
                         timeout=300, every=2.0):
        rows.append(("c", "runs started", stack.redis.scard("sf:state:poll"), str(conversations)))
    begin = time.time() + 15  # every conversation past its first checks
    time.sleep(15)
    spying = [(name, spy.record(stack.pid(name), window_s, stack.work / f"{name}-c.raw"))
              for name in ("worker", "sandbox")] if profile else []
    cpu_before = stack.cpu_by_process()
    time.sleep(window_s)
    end = time.time()
    for name, process in spying:
        process.wait()
        rows.append(("c", f"profile of the {name} (busy time by library)",
                     spy.summary(stack.work / f"{name}-c.raw"), ""))
    cpu = {name: (used - cpu_before[name]) / (end - begin)
           for name, used in stack.cpu_by_process().items()}
    rows.append(("c", "CPU used in the window: worker(s) / sandbox / web / redis (cores)",
                 " / ".join(f"{cpu[n]:.2f}" for n in ("worker", "sandbox", "web", "redis")), ""))
    records = stack.run_records(since)
    gaps, checks = [], 0
    for row in records["runs"]:
        inside = [t for t in row[5] if begin <= t <= end]
        checks += len(inside)
        gaps.extend(later - earlier - 10.0 for earlier, later in pairwise(inside))
    rss = sum(rss_bytes(stack.pid(name)) for name in stack.workers)
    per_conversation = (stack.used_memory() - before) / conversations
    depth = stack.queue_depth()
    rows += [
        ("c", f"{conversations} waiting, 10 s polls: lateness p50 / p99 (s)",
         f"{fmt(load.percentile(gaps, 0.5))} / {fmt(load.percentile(gaps, 0.99))}", "p99 <= 1"),
        ("c", "run checks per second", fmt(checks / (end - begin)), str(conversations // 10)),
        ("c", "CPU per run check: worker / redis (ms)", " / ".join(
            f"{1000 * cpu[n] * (end - begin) / max(checks, 1):.2f}" for n in ("worker", "redis")),
         ""),
        ("c", "Redis bytes per waiting conversation", f"{per_conversation:.0f}", "<= 5000"),
        ("c", "worker RSS, all processes (MB)", f"{rss / 2**20:.0f}", "<= 500"),
        ("c", "broker queue ready / reserved at the end", f"{depth['ready']} / {depth['reserved']}",
         ""),
    ]
    del ids


def part_d(stack: Stack, probe: int, phase_s: float, rows: Rows, profile: bool = False) -> None:
    """Twice the measured capacity for `phase_s`, then half of it; then drain."""
    stack.configure_sandbox(latency_range_s=[2, 8])
    capacity = _capacity(stack, probe)
    rows.append(("d", "capacity: whole turns per second (replies 15-45 s into a burst, "
                 "runs of 2-8 s)", fmt(capacity), ">= 100"))
    started: list[load.Started] = []
    samples: list[tuple[float, dict[str, int], int]] = []
    begin = time.time()

    def sample() -> None:
        ids = [s.conversation for s in list(started)]
        waiting = sum(1 for s in stack.states(ids) if s not in ("wait_for_user", "handed_off"))
        samples.append((time.time() - begin, stack.queue_depth(), waiting))

    import threading

    stop = threading.Event()

    def sampler() -> None:
        while not stop.wait(2.0):
            sample()

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    spying = (spy.record(stack.pid("worker"), phase_s - 1, stack.work / "worker-d.raw")
              if profile else None)
    load.paced(stack.base, "default", 2 * capacity, phase_s, started)
    overload_end = time.time()
    if spying is not None:
        spying.wait()
        rows.append(("d", "profile of the worker in the overload (busy time by library)",
                     spy.summary(stack.work / "worker-d.raw"), ""))
    load.paced(stack.base, "default", capacity / 2, phase_s, started)
    ids = [s.conversation for s in started]
    done = answered(stack, ids, timeout=900)
    drained = time.time()
    stop.set()
    thread.join()
    replies = load.bot_messages(stack.base, ids)
    replied = sum(1 for cid in ids if len(replies.get(cid) or []) >= 1)
    duplicates = sum(1 for cid in ids if len(replies.get(cid) or []) > 1)
    peak = max((d["ready"] for _, d, _ in samples), default=0)
    rows += [
        ("d", f"offered: {2 * capacity:.0f}/s for {phase_s:.0f} s, then {capacity / 2:.0f}/s "
         f"for {phase_s:.0f} s: conversations", len(ids), ""),
        ("d", "answered / duplicate replies", f"{replied} / {duplicates}",
         f"{len(ids)} / 0" if done else "all / 0 (timed out)"),
        ("d", "broker queue peak (ready tasks)", peak, f"<= {int(1.1 * len(ids))}"),
        ("d", "time to drain after the overload (s)", fmt(drained - overload_end), ""),
        ("d", "queue over time (s: ready/reserved/due, unanswered)",
         " ".join(f"{t:.0f}:{d['ready']}/{d['reserved']}/{d['due']},{w}"
                  for t, d, w in samples[::5]), ""),
    ]


def _capacity(stack: Stack, probe: int) -> float:
    """Whole turns per second the stack completes while saturated: a burst of `probe`
    conversations (runs of 2-8 s), and the replies that land between 15 s and 45 s after it
    began, while some are still unanswered (replies cluster at poll times, so the spread of a
    burst that the stack absorbs says nothing about its capacity)."""
    started = load.start_many(stack.base, ["default"], probe)
    ids = [s.conversation for s in started]
    begin = min(s.sent_at for s in started)
    answered(stack, ids, timeout=900)
    replies = load.bot_messages(stack.base, ids)
    times = sorted(m[0]["at"] for m in replies.values() if m)
    window = [t for t in times if begin + 15 <= t <= begin + 45]
    if times and times[-1] <= begin + 45:
        print(f"capacity: the burst of {probe} was answered within 45 s: a lower bound",
              file=sys.stderr)
    return max(1.0, len(window) / 30)


def answered(stack: Stack, ids: list[str], timeout: float) -> bool:
    """Wait until every conversation is answered (waits for the customer, or for a person)."""
    return load.wait_for(
        lambda: all(s in ("wait_for_user", "handed_off") for s in stack.states(ids)),
        timeout=timeout, every=0.5)


def parse_delays(text: str) -> list[float]:
    """"1.5x8,2,3" -> [1.5 (eight times), 2, 3]."""
    delays: list[float] = []
    for part in text.split(","):
        value, _, times = part.partition("x")
        delays += [float(value)] * int(times or 1)
    return delays


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(rows: Rows, columns: list[str]) -> str:
    lines = ["| part | figure | " + " | ".join(columns) + " | target |",
             "| --- | --- | " + " | ".join("---" for _ in columns) + " | --- |"]
    lines += [f"| {part} | {figure} | {value} | {target} |" for part, figure, value, target in rows]
    return "\n".join(lines)


def compare(before: Path, after: Path) -> str:
    """One table of two runs (same figures, in the order of the first)."""
    old = {(r[0], r[1]): r for r in json.loads(before.read_text())["rows"]}
    new = {(r[0], r[1]): r for r in json.loads(after.read_text())["rows"]}
    keys = list(dict.fromkeys([*old, *new]))
    lines = ["| part | figure | before | after | target |", "| --- | --- | --- | --- | --- |"]
    for key in keys:
        a, b = old.get(key), new.get(key)
        target = (b or a)[3]  # type: ignore[index]
        lines.append(f"| {key[0]} | {key[1]} | {a[2] if a else '-'} | {b[2] if b else '-'} | "
                     f"{target} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="the tree under test")
    parser.add_argument("--parts", default="abcd")
    parser.add_argument("--small", action="store_true", help="small sizes, to try it out")
    parser.add_argument("--webhooks", action="store_true",
                        help="(a) also runs the webhook flow (0 and 5 %% dropped)")
    parser.add_argument("--turns", type=int, default=1,
                        help="(a) customer messages per conversation, each after the reply")
    parser.add_argument("--only-webhooks", action="store_true",
                        help="(a) the webhook flow only (with --webhooks)")
    parser.add_argument("--flow", action="append", default=[], metavar="NAME=DELAYS",
                        help="(a) also runs this poll schedule, e.g. d15=1.5x8,2,3,5,10")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="environment of the code's processes, e.g. WORKER_CONCURRENCY=64")
    parser.add_argument("--workers", type=int, default=1,
                        help="run the Procfile's worker process this many times")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the web in (b), the worker in (c) and (d)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        print(compare(*args.compare))
        return
    small = args.small
    flows = [] if args.only_webhooks else ["fixed10", "default", "poll1"]
    for spec in args.flow:
        name, _, delays = spec.partition("=")
        FLOWS[name] = {"delays": parse_delays(delays)}
        flows.append(name)
    extra_env = dict(item.partition("=")[::2] for item in args.env)
    rows: Rows = []
    work = Path(tempfile.mkdtemp(prefix="sf-scale-"))
    print(f"work folder (logs): {work}", file=sys.stderr)
    for part in args.parts:
        stack = Stack(args.code.resolve(), work / part, webhooks=args.webhooks,
                      extra_env=extra_env, workers=args.workers)
        try:
            if part == "a":
                part_a(stack, [20, 60] if small else [100, 1000], flows, rows, args.turns)
            elif part == "b":
                part_b(stack, 5 if small else 15, rows, args.profile)
            elif part == "c":
                part_c(stack, 1000 if small else 10_000, 30 if small else 90, rows, args.profile)
            elif part == "d":
                part_d(stack, 300 if small else 6000, 20 if small else 60, rows, args.profile)
            elif part == "t":  # capacity only: how the execution model compares
                rows.append(("t", f"capacity, whole turns per second ({extra_env or 'defaults'}, "
                                   f"{args.workers} worker process(es))",
                             fmt(_capacity(stack, 300 if small else 6000)), ""))
        finally:
            stack.close()
        print(table([r for r in rows if r[0] == part], ["value"]), file=sys.stderr)
    print(table(rows, [str(args.code)]))
    if args.json:  # rows of parts not run now are kept, so parts can run one at a time
        kept = json.loads(args.json.read_text())["rows"] if args.json.exists() else []
        merged = [r for r in kept if r[0] not in args.parts] + [list(r) for r in rows]
        merged.sort(key=lambda r: r[0])
        args.json.write_text(json.dumps({"code": str(args.code), "rows": merged}, indent=1))


if __name__ == "__main__":
    main()
