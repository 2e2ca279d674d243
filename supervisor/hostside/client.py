"""`supervisor` for an agent on a host: `python3 host-VERSION.pyz client hook|guard|helper|msg|report|status|task`,
run by the agent's CLI hooks, its pre-commit guard and the agent itself (through the `supervisor` shim on its
PATH). Each is the local subcommand of that name, talking to the agent's own socket on the host
(SUPERVISOR_SOCKET), which the host program relays home: the engine takes the request as that agent's.

`hook` never fails the agent: when the engine cannot be reached (the link is down, so nothing listens on the
socket) or does not answer within the hook's wait, the event is spooled in the agent's spool folder on the host
with its id, and the engine applies it once the link is back (once: by its id). A PermissionRequest is held until
the engine answers it (a human approves or denies, or approval.timeout lets it go).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import posixpath
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from . import hookevents, taskboard
from .pane_options import add_helper_options, add_msg_options, add_report_options

HOOK_WAIT = 5.0  # seconds a hook waits for the engine before it spools its event (as `supervisor hook`)


class Unreached(Exception):
    """The engine did not take the request: nothing listens (the link is down), or no answer came."""


class Refused(Exception):
    """The engine answered with an error."""

    def __init__(self, message: str, hint: str | None = None, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code


def request(socket_path: str, method: str, params: dict[str, Any], timeout: float | None) -> Any:
    """One request through the agent's socket → its result; Unreached or Refused."""
    line = json.dumps({"method": method, "params": params}, separators=(",", ":")).encode() + b"\n"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(socket_path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise Unreached("nothing answers on the agent's socket") from exc
        try:
            sock.sendall(line)
            reply = _read_reply(sock)
        except TimeoutError as exc:
            raise Unreached(f"the engine did not answer {method} in time") from exc
        except OSError as exc:
            raise Unreached(f"the engine did not answer: {exc.strerror or exc}") from exc
    finally:
        sock.close()
    if reply.get("ok"):
        return reply.get("result")
    if reply.get("unheard") is True:  # refused by the host program (too many open, unreadable): not the engine
        raise Unreached(str(reply.get("error")))
    code = reply.get("exit_code")
    raise Refused(str(reply.get("error")), reply.get("hint") if isinstance(reply.get("hint"), str) else None,
                  code if isinstance(code, int) and not isinstance(code, bool) else 1)


def _read_reply(sock: socket.socket) -> dict[str, Any]:
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        if chunk.endswith(b"\n"):
            break
    data = b"".join(chunks)
    if not data.strip():
        raise OSError(errno.ECONNRESET, "the connection closed without an answer")
    try:
        reply = json.loads(data)
    except ValueError:
        raise OSError(errno.EPROTO, "an unreadable answer") from None
    if not isinstance(reply, dict):
        raise OSError(errno.EPROTO, "an unreadable answer")
    return reply


SOCKET_FILE = "agent.sock"  # in the agent's own folder of ROOT/run (supervisor/hosts/remote/layout.py)


def spool_of(socket_path: str) -> str | None:
    """The agent's hook spool beside its socket on the host (`ROOT/run/NAME/agent.sock` →
    `ROOT/spool/NAME/hooks`); None for any other socket."""
    folder, file = posixpath.split(socket_path)
    run_folder, name = posixpath.split(folder)
    root, run = posixpath.split(run_folder)
    if run != "run" or file != SOCKET_FILE or not name or name.startswith("."):
        return None
    return posixpath.join(root, "spool", name, "hooks")


# the commands -------------------------------------------------------------------------------------------


def cmd_hook(args: argparse.Namespace) -> int:
    """As `supervisor hook`: the event on stdin to the engine, or into the spool; never fails the agent."""
    socket_path = os.environ.get("SUPERVISOR_SOCKET")
    agent = os.environ.get("SUPERVISOR_AGENT")
    if not socket_path or not agent:
        return 0  # not an agent supervisor started
    raw = sys.stdin.buffer.read(hookevents.HOOK_INPUT + 1)
    try:
        event = hookevents.unread(raw) if len(raw) > hookevents.HOOK_INPUT else json.loads(raw or b"{}")
    except ValueError:
        event = {"hook_event_name": "unparsable", "raw": raw[:200].decode(errors="replace")}
    if not isinstance(event, dict):
        event = {"hook_event_name": "unparsable"}
    if isinstance(event.get("prompt"), str):
        event["prompt"] = event["prompt"][:4096]
    event = hookevents.fit(event)
    held = event.get("hook_event_name") == "PermissionRequest"  # held until a human answers
    at = time.time()
    key = f"{at:.6f}-{os.getpid()}"
    try:
        result = request(socket_path, "hook", {"event": event, "at": at, "key": key},
                         None if held else HOOK_WAIT)
        if isinstance(result, dict) and result.get("output"):
            print(json.dumps(result["output"]))
    except Refused:
        return 0  # the engine answered (e.g. refused the caller): nothing to keep
    except (Unreached, OSError):
        folder = spool_of(socket_path)
        if folder is not None:
            with contextlib.suppress(OSError):
                hookevents.spool(folder, event, at=at, key=key)
    return 0


def cmd_guard(args: argparse.Namespace) -> int:
    """As `supervisor guard` (the pre-commit hook): the staged changes go home, where the engine checks them
    against the agent's contract (its own copy: never the SESSION.md here, which the agent can edit)."""
    top, common, git_dir = _git("rev-parse", "--path-format=absolute", "--show-toplevel", "--git-common-dir",
                                "--git-dir").decode("utf-8", "surrogateescape").split("\n")[:3]
    if os.path.realpath(git_dir) == os.path.realpath(common):
        return 0  # the clone's own worktree: not an agent's
    merge_head = _git("rev-parse", "--git-path", "MERGE_HEAD").decode().strip()
    merging = os.path.exists(merge_head if os.path.isabs(merge_head) else os.path.join(top, merge_head)) \
        or any(key.startswith("GITHEAD_") for key in os.environ)
    raw = _git("diff", "--cached", "--name-status", "-z", "--no-renames", "--no-color", "--no-ext-diff",
               "--ignore-submodules=none")
    socket_path = _own_socket()
    verdict = request(socket_path, "guard", {"changes": name_status(raw), "merge": merging}, 60)
    verdict = verdict if isinstance(verdict, dict) else {}
    said = verdict.get("refused") or verdict.get("note")
    if said:  # paths byte for byte as git gave them
        sys.stderr.flush()
        sys.stderr.buffer.write(str(said).encode("utf-8", "surrogateescape"))
        sys.stderr.buffer.flush()
    return 1 if verdict.get("refused") else 0


def name_status(raw: bytes) -> list[list[str | None]]:
    """[status, path, old path or None] of each change in `git diff --name-status -z` (paths as UTF-8 with
    surrogateescape: any bytes survive the way home)."""
    fields = raw.split(b"\0")
    if fields and fields[-1] == b"":
        fields.pop()
    changes: list[list[str | None]] = []
    index = 0
    while index < len(fields):
        status = fields[index].decode("ascii", "replace")
        if status[:1] in ("R", "C") and index + 2 < len(fields):
            changes.append([status, _decode(fields[index + 2]), _decode(fields[index + 1])])
            index += 3
        elif index + 1 < len(fields):
            changes.append([status, _decode(fields[index + 1]), None])
            index += 2
        else:
            raise Refused(f"commit refused: unexpected output of git diff: {raw[:200]!r}")
    return changes


def cmd_helper(args: argparse.Namespace) -> int:
    task = args.task
    if args.task_file:
        try:
            with open(args.task_file, encoding="utf-8") as handle:
                task = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise Refused(f"cannot read --task-file: {getattr(exc, 'strerror', None) or exc}: {args.task_file}",
                          exit_code=2) from None
    params = {"name": args.name, "role": args.role, "task": task, "paths": args.paths or None,
              "parent": args.parent, "wait": not args.no_wait}
    agent = request(_own_socket(), "helper", params, 600)
    if args.json:
        print(json.dumps(agent, indent=2))
        return 0
    delivered = " (task delivered)" if task and not args.no_wait else ""
    if agent["state"] == "waiting":
        delivered = f" — it needs you first: {agent['waiting_reason']}; the task follows once its prompt shows " \
                    f"(`supervisor attach {agent['name']}`)"
    print(f"{agent['name']}: {agent['state']} in {agent['worktree']} on {agent['branch']}{delivered}")
    return 0


def cmd_msg(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    sent = request(_own_socket(), "msg", {"to": args.to, "text": text}, 600)
    print(f"to {sent['to']}: saved in {sent['file']}; delivered {sent['delivered']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    agent = request(_own_socket(), "report", {"waiting_for": args.waiting_for}, 600)
    waits = ", ".join(args.waiting_for) or "nobody"
    print(f"{agent['name']}: waiting for {waits}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    status = request(_own_socket(), "status", {}, 60)
    if args.json:
        print(json.dumps({"running": True, **status}, indent=2))
        return 0
    print(f"engine: running, pid {status['pid']}, since {status['started_at']}, "
          f"{status['live']} live of {status['agents']} agents")
    return 0


def cmd_task(args: argparse.Namespace) -> int:
    """As `supervisor task` (the same words: taskboard.py), through the agent's own socket: it claims as itself."""
    socket_path = _own_socket()
    try:
        return taskboard.run(args, lambda method, params: request(socket_path, method, params, 600))
    except taskboard.BadInput as exc:
        raise Refused(str(exc), exit_code=2) from None


def _own_socket() -> str:
    given = os.environ.get("SUPERVISOR_SOCKET")
    if not given:
        raise Refused("this is not an agent's pane: SUPERVISOR_SOCKET is not set",
                      hint="on a host, `supervisor` serves the agents supervisor started there")
    return given


def _git(*args: str) -> bytes:
    try:
        done = subprocess.run(["git", *args], capture_output=True, check=False)
    except FileNotFoundError:
        raise Refused("git is not installed") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip()
        raise Refused(f"git {args[0]} failed: {detail or f'exit status {done.returncode}'}")
    return done.stdout


def _decode(path: bytes) -> str:
    return path.decode("utf-8", "surrogateescape")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="supervisor", description="supervisor, as an agent on this host sees it",
                                     allow_abbrev=False)  # whole option names only, as at home
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser("helper", help="start a helper under this agent, within its contract")
    add_helper_options(p, "this agent")
    p.set_defaults(func=cmd_helper)
    p = sub.add_parser("msg", help="leave a message for another agent of the same tree")
    add_msg_options(p)
    p.set_defaults(func=cmd_msg)
    p = sub.add_parser("report", help="say which agents this one waits for (deadlock detection)")
    add_report_options(p)
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("status", help="whether the engine answers, and what it watches")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    taskboard.register(sub, cmd_task)
    sub.add_parser("hook").set_defaults(func=cmd_hook)  # what agent-CLI hooks run
    sub.add_parser("guard").set_defaults(func=cmd_guard)  # what the pre-commit hook runs
    return parser


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    try:
        return int(args.func(args))
    except Refused as exc:
        _say(exc.message, exc.hint)
        return exc.exit_code
    except Unreached as exc:
        if args.command == "guard":
            _say(f"commit refused: the engine cannot be reached from this host now ({exc}); an agent's commits are "
                 "checked against the contract the engine keeps", "commit again once the host's link is back")
        else:
            _say(f"the engine cannot be reached from this host now ({exc})",
                 "the engine reconnects on its own; hook events wait in the agent's spool until then")
        return 1
    except BrokenPipeError:
        return 0
    except OSError as exc:
        _say(f"the agent's socket cannot be used: {exc.strerror or exc}", None)
        return 1
    except KeyboardInterrupt:
        return 130


def _say(message: str, hint: str | None) -> None:
    print(f"supervisor: error: {message}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
