"""What each step of a demo agent's script does (`say`, `work`, `ask`, …): see the module docstring of
supervisor/demo/agent.py for the list."""

from __future__ import annotations

import math
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.demo import looks
from supervisor.demo.claude_hooks import permission_decision
from supervisor.demo.durations import parse_duration
from supervisor.demo.limits import limit_message
from supervisor.demo.terminal import out

if TYPE_CHECKING:
    from supervisor.demo.agent import Agent


class EndTurn(Exception):
    """Raised by a step to end the current turn early (an approval was denied, an API error). `hook`: what
    the real Claude Code tells its hooks at that end: Stop, StopFailure, or nothing (a No in its dialog)."""

    def __init__(self, hook: str | None = "Stop", **fields: Any) -> None:
        super().__init__(hook)
        self.hook, self.fields = hook, fields or ({"stop_hook_active": False} if hook == "Stop" else {})


def step_say(agent: Agent, text: Any) -> None:
    out(f"{text}\n")


def step_work(agent: Agent, duration: Any) -> None:
    seconds = parse_duration(duration)
    start = time.monotonic()
    try:
        for frame in range(math.ceil(seconds / 0.5) or 1):
            elapsed = int(time.monotonic() - start)
            out("\r\x1b[K" + looks.look.spin(frame, elapsed, "Working"))
            agent.pause(min(0.5, start + seconds - time.monotonic()))
    finally:
        out("\r\x1b[K")
    out(f"· Worked for {parse_duration(duration):g}s\n")


def step_hang(agent: Agent, duration: Any) -> None:
    """A hung request: the spinner and its elapsed counter keep animating, nothing else happens."""
    seconds = parse_duration(duration)
    start = time.monotonic()
    frame = 0
    try:
        while (left := start + seconds - time.monotonic()) > 0:
            out("\r\x1b[K" + looks.look.spin(frame, int(time.monotonic() - start), "Thinking"))
            agent.pause(min(0.5, left))
            frame += 1
    finally:
        out("\r\x1b[K")


def step_think(agent: Agent, duration: Any) -> None:
    agent.pause(parse_duration(duration), busy=True)


def step_quiet(agent: Agent, duration: Any) -> None:
    agent.pause(parse_duration(duration))


def step_ask(agent: Agent, question: Any) -> None:
    tool_input = {"command": str(question), "description": "asked by the demo agent"}
    if agent.hooks:
        allowed, message = permission_decision(agent.hooks.tool("PermissionRequest", "Bash", tool_input))
        if allowed is not None:
            out(f"{question}\n" + ("approved (by hook)\n" if allowed else f"denied (by hook): {message}\n"))
            if not allowed:
                raise EndTurn
            return
    out(f"{question}\n" + "\n".join(looks.look.options) + "\n")
    notify_at = time.monotonic() + agent.notify_delay if agent.hooks else math.inf
    answers = {**dict(looks.look.answers), "yes": True, "no": False}
    typed = ""
    picked = ""
    answer: bool | None = None
    try:
        while answer is None:
            key = agent.poll(0.1 if notify_at < math.inf else 0.5)
            if agent.hooks and time.monotonic() >= notify_at:
                notify_at = math.inf
                agent.hooks.fire("Notification", "permission_prompt", notification_type="permission_prompt",
                                 message="Claude needs your permission to use Bash")
            if key is None:
                continue
            if key.name == "ctrl-c":
                raise KeyboardInterrupt
            if key.name == "esc":
                answer = False
            elif key.name == "text" and not typed and key.text.lower() in dict(looks.look.answers):
                picked = key.text.lower()
                answer = answers[picked]  # a single key press answers at once
            elif key.name in ("text", "paste"):
                typed += key.text
            elif key.name == "backspace":
                typed = typed[:-1]
            elif key.name == "enter":
                answer, typed = answers.get(typed.strip().lower()), ""
    finally:
        out(f"\x1b[{len(looks.look.options)}A\r\x1b[J")  # the options go, answered or interrupted
    standing = answer and looks.look is looks.GEMINI_LOOK and picked == "2"
    out(("approved for this session\n" if standing else "approved\n") if answer else "denied\n")
    if not answer:
        raise EndTurn(hook=None)  # a No in its own dialog: the real CLI sends no hook at all


def step_box(agent: Agent, duration: Any) -> None:
    """Gemini CLI draws its input box a moment before its trust dialog: keys typed then land in the dialog."""
    end = time.monotonic() + parse_duration(duration)
    agent.editor.draw()
    while (left := end - time.monotonic()) > 0:
        key = agent.poll(min(left, 0.05))
        if key is not None and key.name == "enter":
            agent.held.append(key)
        elif key is not None:
            agent.editor.feed(key)
    agent.editor.erase()
    agent.editor.take()


def step_trust(agent: Agent, question: Any) -> None:
    options = [f"{looks.look.selected} 1. Trust folder", "  2. Don't trust"]
    footer = [] if looks.look is looks.GEMINI_LOOK else ["Esc to cancel"]
    out(f"{question}\n\n" + "\n".join([*options, *footer]) + "\n")
    trusted: bool | None = None
    while trusted is None:
        key = agent.held.pop(0) if agent.held else agent.poll(0.5)
        if key is None or key.name == "paste":
            continue
        if key.name == "ctrl-c":
            raise KeyboardInterrupt
        if key.name == "enter" or (key.name == "text" and key.text == "1"):
            trusted = True
        elif key.name == "esc" or (key.name == "text" and key.text == "2"):
            trusted = False
    out(f"\x1b[{len(options) + len(footer) + 1}A\r\x1b[J" + ("trusted\n" if trusted else "not trusted\n"))


def step_write(agent: Agent, spec: Any) -> None:
    path = Path(spec["path"])
    if agent.hooks:
        agent.hooks.tool("PreToolUse", "Write", {"file_path": str(path.absolute())})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(spec.get("content", "")), encoding="utf-8")
    out(f"wrote {path}\n")


def step_commit(agent: Agent, message: Any) -> None:
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True)

    try:
        result = git("add", "-A")
        if result.returncode == 0:
            result = git("commit", "-q", "-m", str(message))
    except OSError as error:
        out(f"commit failed: {error}\n")
        return
    if result.returncode != 0:
        out(result.stdout + result.stderr + f"commit failed (exit {result.returncode})\n")
    else:
        out(f"committed {git('rev-parse', '--short', 'HEAD').stdout.strip()} {message}\n")


def step_run(agent: Agent, command: Any) -> None:
    if agent.hooks:
        answer = agent.hooks.tool("PreToolUse", "Bash", {"command": str(command)})
        decision = (answer.get("hookSpecificOutput") or {}).get("permissionDecision")
        if decision == "deny":
            out(f"denied by PreToolUse hook: {command}\n")
            raise EndTurn
        if decision == "ask":  # like the real CLI: ask for permission first (hooks, then its dialog)
            step_ask(agent, f"Bash({command})")
        try:
            _run(agent, command)
        finally:
            agent.hooks.tool("PostToolUse", "Bash", {"command": str(command)}, tool_response={})
        return
    _run(agent, command)


def _run(agent: Agent, command: Any) -> None:
    out(f"$ {command}\n")
    proc = subprocess.Popen(str(command), shell=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    fd, ends_line = proc.stdout.fileno(), True
    os.set_blocking(fd, False)
    try:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                agent.pause(0.05)
                continue
            if not chunk:
                break
            out(chunk.decode("utf-8", "replace"))
            ends_line = chunk.endswith(b"\n")
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    out(("" if ends_line else "\n") + (f"(exit {code})\n" if code else ""))


def step_spawn(agent: Agent, command: Any) -> None:
    child = subprocess.Popen(str(command), shell=True, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    agent.children.append(child)
    out(f"spawned pid {child.pid}\n")


def step_spawn_detached(agent: Agent, command: Any) -> None:
    # sh (in a new session) starts the command in the background and exits at once: the command is
    # orphaned (re-parented to init or a subreaper) in its own session, with our environment.
    launcher = '/bin/sh -c "$1" </dev/null >/dev/null 2>&1 & echo $!'
    result = subprocess.run(["/bin/sh", "-c", launcher, "sh", str(command)], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, start_new_session=True)
    out(f"spawned detached pid {result.stdout.strip()}\n")


def step_exit(agent: Agent, code: Any) -> None:
    raise SystemExit(int(code))


def step_api_error(agent: Agent, text: Any) -> None:
    out(f"API Error: {text}\n")
    raise EndTurn("StopFailure", error="unknown", last_assistant_message=f"API Error: {text}")


def step_limit(agent: Agent, duration: Any) -> None:
    """A usage limit ends the turn (`duration`: it resets that long from now; None: the one in force, again)."""
    if duration is not None:
        agent.limited_until = time.time() + parse_duration(duration)
    name = next(key for key, value in looks.LOOKS.items() if value is looks.look)
    message = limit_message(name, agent.limited_until)
    out(message + "\n")
    raise EndTurn("StopFailure", error="rate_limit", last_assistant_message=message.strip(" ⎿\u00a0"))


def step_reply(agent: Agent, spec: Any) -> None:
    if agent.hooks and agent.hooks.transcript:
        agent.hooks.transcript.reply(agent.hooks.session_id, dict(spec or {}))


def step_echo_env(agent: Agent, name: Any) -> None:
    out(f"{name}={os.environ.get(str(name), '')}\n")


STEPS: dict[str, Callable[[Agent, Any], None]] = {
    "say": step_say, "work": step_work, "hang": step_hang, "think": step_think, "quiet": step_quiet,
    "ask": step_ask, "box": step_box, "trust": step_trust,
    "write": step_write, "commit": step_commit, "run": step_run, "spawn": step_spawn,
    "spawn_detached": step_spawn_detached, "exit": step_exit, "echo_env": step_echo_env,
    "api_error": step_api_error, "limit": step_limit, "reply": step_reply,
}
