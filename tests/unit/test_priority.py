"""Workers give way to the web: a higher nice value, for their autogroup too when they lead
their own session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROBE = ("import os; from supportflow.runtime.priority import give_way; "
         "print(give_way(7)); print(give_way(3)); print(os.nice(0)); "
         "from pathlib import Path; group = Path('/proc/self/autogroup'); "
         "print(group.read_text().split()[-1] if group.exists() else 'no autogroup')")


def run_probe(probe: str, *, new_session: bool) -> list[str]:
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          start_new_session=new_session)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def autogroups_work() -> bool:
    # Some kernels and sandboxes list the file but refuse to read it.
    try:
        return bool(Path("/proc/self/autogroup").read_text().split())
    except OSError:
        return False


@pytest.mark.skipif(not autogroups_work(), reason="no readable autogroups here")
def test_a_session_leader_runs_at_the_nice_value_and_its_autogroup_too() -> None:
    lines = run_probe(PROBE, new_session=True)
    assert lines == ["['nice 7', 'autogroup nice 7']", "[]", "7", "7"]


def test_a_process_inside_another_session_leaves_the_group_alone() -> None:
    # Only the process's own nice is asked about: the probe stops before reading the group.
    probe = PROBE.replace("give_way(3)", "give_way(0)").split("; from pathlib")[0]
    lines = run_probe(probe, new_session=False)
    assert lines == ["['nice 7']", "[]", "7"]


def test_an_autogroup_file_that_cannot_be_read_leaves_the_priority_as_it_was(
        tmp_path: Path) -> None:
    unreadable = tmp_path / "autogroup"
    unreadable.mkdir()  # exists, but reading it fails as a refused /proc file would
    probe = ("import os, sys; from pathlib import Path; "
             "from supportflow.runtime.priority import give_way; "
             f"print(give_way(0, autogroup=Path({str(unreadable)!r})))")
    assert run_probe(probe, new_session=True) == ["['autogroup unchanged (Is a directory)']"]
