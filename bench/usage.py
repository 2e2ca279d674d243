"""What reading usage costs the engine: 100 agents whose Claude Code transcripts grow, read by the engine's own
usage service, against the same run with the service off.

    .venv/bin/python bench/usage.py [--agents 100] [--seconds 30] [--every 10]

A writer process appends to each agent's session transcript, as Claude Code writes it, one model response every
EVERY seconds per agent (a tool result of ~8 KB, then the response on three lines with its usage repeated): with
100 agents, 10 responses and ~100 KB a second in all. The engine's `UsageService` runs in this process on a real
store, with its own thread and pauses (every 3 s, and its incremental reads), for SECONDS; then for SECONDS with
the service stopped and the writer still writing. The difference of this process's CPU time is what usage costs.

Target: <= 0.2% of one core at 100 agents. It kept up when every response written was counted once.
(bench/watch.py measures the engine's watch loop; this file leaves it alone.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import MappingProxyType, SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from supervisor.core.model import Agent
from supervisor.core.store import Store
from supervisor.usage.service import UsageService

WRITER = """
import json, sys, time, uuid
from pathlib import Path
from supervisor.demo.claude_transcript import Transcript
root, agents, every, until = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
writers = [Transcript(root / f"a{i:03d}" / "claude", Path("/work/project")) for i in range(agents)]
result = "x" * 8000
n = 0
while time.time() < until:
    for i, writer in enumerate(writers):
        path = writer.path("s")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(json.dumps({"type": "user", "message": {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t", "content": result}]}, "uuid": str(uuid.uuid4())}) + "\\n")
        writer.reply("s", {"input": 10, "output": 100, "cache_read": 20000, "cache_write": 500, "blocks": 3})
        n += 1
        time.sleep(every / len(writers))
print(n)
"""


def cpu() -> float:
    return time.process_time()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between two responses of one agent")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="usage-bench-") as scratch:
        root = Path(scratch)
        store = Store(root / "state.db")
        names = [f"a{i:03d}" for i in range(args.agents)]
        for name in names:
            store.add_agent(Agent(name=name, profile="claude", command="claude", worktree=f"/w/{name}",
                                  branch=f"agent/{name}", base="0" * 40, target="main", token=name))
        engine = SimpleNamespace(store=store, config=SimpleNamespace(prices=MappingProxyType({})),
                                 paths=SimpleNamespace(agent_state=lambda name: root / name / "claude"))
        until = time.time() + 2 * args.seconds + 5
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(args.agents), str(args.every),
                                   str(until)], stdout=subprocess.PIPE, text=True,
                                  cwd=Path(__file__).resolve().parent.parent)
        time.sleep(2)  # every transcript exists
        service = UsageService(engine)  # type: ignore[arg-type]
        service.step()  # what was written before the measure: read once, as after an engine start

        started, at = cpu(), time.monotonic()
        service.start()
        time.sleep(args.seconds)
        service.stop()
        on = (cpu() - started) / (time.monotonic() - at)

        started, at = cpu(), time.monotonic()
        time.sleep(args.seconds)
        off = (cpu() - started) / (time.monotonic() - at)

        written = int((writer.communicate()[0] or "0").strip() or 0)
        service.step()  # what the writer added since
        counted = sum(usage.output_tokens for usage in service.per_agent().values()) // 100
        store.close()
    added = 100 * (on - off)
    print(json.dumps({"agents": args.agents, "seconds": args.seconds, "responses_written": written,
                      "responses_counted": counted, "cpu_percent_usage_on": round(100 * on, 3),
                      "cpu_percent_usage_off": round(100 * off, 3), "usage_adds_percent_of_a_core": round(added, 3)}))
    ok = added <= 0.2 and counted == written
    print(f"usage reading adds {added:.3f}% of a core for {args.agents} agents "
          f"({'within' if ok else 'OVER'} the 0.2% budget; {counted} of {written} responses counted)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
