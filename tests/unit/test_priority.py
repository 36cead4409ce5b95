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


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="no autogroups here")
def test_a_session_leader_runs_at_the_nice_value_and_its_autogroup_too() -> None:
    lines = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                           check=True, start_new_session=True).stdout.splitlines()
    assert lines == ["['nice 7', 'autogroup nice 7']", "[]", "7", "7"]


def test_a_process_inside_another_session_leaves_the_group_alone() -> None:
    probe = PROBE.replace("give_way(3)", "give_way(0)")
    lines = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    assert lines[:3] == ["['nice 7']", "[]", "7"]
