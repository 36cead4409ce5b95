"""py-spy profiles of the stack's processes during a benchmark part, summed up by library.

Only samples of threads holding the GIL are recorded (`--gil`: running Python, not waiting
on a socket), and each sample's innermost frame names the library whose code was running, so
"redis-py 30 %" means 30 % of the Python CPU time was spent in redis-py's own code.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

# (label, pattern of the frame's file), first match wins.
LIBRARIES = [
    ("redis-py", r"[(/]redis/"), ("httpx/httpcore/h11", r"[(/](httpx|httpcore|h11)/"),
    ("celery/kombu/billiard", r"[(/](celery|kombu|billiard|amqp|vine)/"),
    ("json", r"[(/]json/"), ("flask/werkzeug", r"[(/](flask|werkzeug|itsdangerous|jinja2)/"),
    ("flask-limiter/limits", r"[(/](flask_limiter|limits)/"),
    ("marshmallow", r"[(/]marshmallow/"), ("gunicorn", r"[(/]gunicorn/"), ("granian", r"[(/]granian/"),
    ("transitions", r"[(/]transitions/"), ("logging", r"[(/]logging/"),
    ("cryptography", r"[(/]cryptography/"),
    ("supportflow", r"[(/](supportflow|workers)/"),
    ("sockets/ssl/select", r"[(/](socket|ssl|selectors)\.py"),
    ("threading/queue", r"[(/](threading|queue)\.py"),
]


def record(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """Start py-spy on the process and its children for `seconds` (raw collapsed stacks)."""
    spy = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen(
        [str(spy), "record", "--pid", str(pid), "--subprocesses", "--duration", str(int(seconds)),
         "--rate", "50", "--gil", "--nonblocking", "--format", "raw", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summary(raw: Path, top: int = 6) -> str:
    """"library share %, ..." of the busy samples, the largest first."""
    if not raw.exists():
        return "no profile"
    shares: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        label = next((name for name, pattern in LIBRARIES if re.search(pattern, leaf)), "other")
        shares[label] += int(count)
    total = sum(shares.values()) or 1
    return ", ".join(f"{name} {100 * n / total:.0f} %" for name, n in shares.most_common(top))
