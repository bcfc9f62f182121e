"""What a no-op `doit` pays for beyond doit's own work (bench/bench_build.py times it).

Each guard counts CPU time or work in a fresh interpreter running doit in-process, never
wall time, so a loaded machine does not fail it: the budgets are several times what the
guarded step costs now and a fraction of what it cost before.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

NOOP_DOIT = """
import json, re, sys, time
from doit.doit_cmd import DoitMain

compiled = []
compile = re._compile

def timed_compile(pattern, flags):
    started = time.process_time()
    try:
        return compile(pattern, flags)
    finally:
        caller = sys._getframe(1)
        while caller.f_globals.get("__name__", "").startswith("re"):
            caller = caller.f_back
        module = caller.f_globals.get("__name__", "")
        if module.startswith("mfe"):
            compiled.append([module, str(pattern)[:60], time.process_time() - started])

re._compile = timed_compile
code = DoitMain().run(sys.argv[1:])
print("COST:" + json.dumps({"compiled": compiled}))
sys.exit(code)
"""


def noop_cost(root: Path) -> dict[str, list[list[object]]]:
    """A no-op `doit` in a fresh interpreter: what it cost, as NOOP_DOIT records it."""
    result = subprocess.run(
        [sys.executable, "-c", NOOP_DOIT], cwd=root, capture_output=True, text=True, timeout=300
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "-- build:accounts" in output and ".  " not in output, output  # really a no-op
    line = next(line for line in result.stdout.splitlines() if line.startswith("COST:"))
    return json.loads(line.removeprefix("COST:"))  # type: ignore[no-any-return]


def test_noop_doit_compiles_no_costly_regular_expression(built_monorepo: Path) -> None:
    """mfe's regexes are compiled when a value needs them, and none is costly: the custom
    element name check alone once took ~5 ms of CPU (a Unicode charset) in every `doit`."""
    compiled = noop_cost(built_monorepo)["compiled"]
    costly = [entry for entry in compiled if float(entry[2]) > 0.002]  # type: ignore[arg-type]
    assert not costly, compiled
