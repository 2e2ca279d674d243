"""The demo agent's scripts: a YAML file of turns of steps, checked before anything runs, and the built-in
scenarios."""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from supervisor.demo.durations import ScriptError, parse_duration
from supervisor.demo.steps import STEPS

Step = tuple[str, Any]


@dataclass
class Script:
    start: list[Step] = field(default_factory=list)
    turns: list[list[Step]] = field(default_factory=list)



# Built-in scenarios. `$agent` stands for the name of the working directory (the agent's worktree).
SCENARIOS: dict[str, str] = {
    "gentle": """
turns:
  - [say: "Reading the task…", work: 2s, say: "The task is done."]
  - [work: 1s, say: "Had another look; nothing else to change."]
""",
    "worker": """
turns:
  - [say: "Planning the change…", work: 2s, think: 1s, say: "Editing files…", work: 2s,
     say: "All tests pass."]
  - [say: "Following up…", work: 3s, say: "Done with the follow-up."]
""",
    "asker": """
turns:
  - [say: "The build directory is stale.", work: 1s, ask: "Do you want to run `rm -rf build/`?",
     run: "echo removed build/", work: 1s, say: "Cleaned up."]
""",
    "staller": """
turns:
  - [say: "Starting on it…", work: 2s, say: "Waiting for the test database…", quiet: 24h]
""",
    "crasher": """
turns:
  - [say: "Starting on it…", work: 1s, say: "Error: unexpected response from the model API",
     exit: 3]
""",
    "committer": """
turns:
  - [say: "Writing notes…", work: 2s,
     write: {path: notes/$agent.md, content: "Notes written by the demo agent $agent.\\n"},
     commit: "Add notes from $agent", say: "Committed my notes."]
""",
    "boundary": """
turns:
  - [say: "Fixing something outside my area…", work: 1s,
     write: {path: outside/boundary-violation.txt, content: "This file is outside the boundary.\\n"},
     commit: "Touch a file outside the boundary",
     run: "git diff --cached --quiet || git commit -q --no-verify -m 'Touch a file outside the boundary'",
     say: "Committed outside my boundary."]
""",
}
DEFAULT_SCENARIO = "gentle"


def parse_script(text: str, origin: str) -> Script:
    """Parse and check a YAML script; ScriptError says what is wrong."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ScriptError(f"{origin}: {error}") from None
    if not isinstance(data, dict) or set(data) - {"start", "turns"}:
        raise ScriptError(f"{origin}: expected a mapping with the keys `start` and `turns`")

    def steps(value: object, where: str) -> list[Step]:
        if not isinstance(value, list):
            raise ScriptError(f"{origin}: {where}: expected a list of steps")
        result: list[Step] = []
        for i, step in enumerate(value, 1):
            if not isinstance(step, dict) or len(step) != 1 or next(iter(step)) not in STEPS:
                raise ScriptError(f"{origin}: {where}, step {i}: expected one of {', '.join(STEPS)}: …")
            kind, arg = next(iter(step.items()))
            if kind in ("work", "think", "quiet", "box", "limit"):
                parse_duration(arg)
            elif kind == "write" and not (isinstance(arg, dict) and "path" in arg):
                raise ScriptError(f"{origin}: {where}, step {i}: write needs {{path: …, content: …}}")
            elif kind == "exit" and not isinstance(arg, int):
                raise ScriptError(f"{origin}: {where}, step {i}: exit needs an integer")
            result.append((kind, arg))
        return result

    turns = data.get("turns") or []
    if not isinstance(turns, list):
        raise ScriptError(f"{origin}: turns: expected a list of turns")
    return Script(start=steps(data.get("start") or [], "start"),
                  turns=[steps(turn, f"turn {n}") for n, turn in enumerate(turns, 1)])


def builtin_script(name: str) -> Script:
    text = string.Template(SCENARIOS[name]).safe_substitute(agent=Path.cwd().name)
    return parse_script(text, f"scenario {name}")
