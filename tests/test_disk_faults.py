"""A full disk and a read-only store folder, made real in a mount namespace of the test's own: a small tmpfs
over the store folder filled up, and a read-only bind mount over it (tests run as root, so chmod proves
nothing). The CLI, and with it the tmux server, the engine and the agents, run inside the namespace."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.engine.diskfaults import KeepingFileHandler
from tests.conftest import DEMO_AGENT, PYTHON, Sandbox, process_gone, wait_until


class Namespace:
    """A mount namespace held open by a sleeping process; commands enter it with nsenter."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", "3600"])

    def run(self, *command: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            check: bool = True, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        prefix = ["nsenter", "-t", str(self.holder.pid), "-m", *([f"--wd={cwd}"] if cwd else []), "--"]
        done = subprocess.run([*prefix, *command], env=env, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def python(self, code: str) -> str:
        return self.run(PYTHON, "-c", textwrap.dedent(code)).stdout

    def close(self) -> None:
        self.holder.send_signal(signal.SIGKILL)
        self.holder.wait()


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.fail(f"these tests need mount namespaces (root): {probe.stderr.decode().strip()}")
    ns = Namespace()
    wait_until(lambda: ns.run("true", check=False).returncode == 0, message="the namespace")
    try:
        yield ns
    finally:
        ns.close()


def sv(ns: Namespace, box: Sandbox, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The real CLI inside the namespace."""
    return ns.run(PYTHON, "-m", "supervisor", *args, env=box.env, cwd=box.root, check=check)


def events(ns: Namespace, box: Sandbox) -> list[tuple[int, str | None, str]]:
    """The event log as the store's file holds it (read by another process, as a restarted engine would)."""
    return [tuple(row) for row in json.loads(ns.python(f"""
        import json, sqlite3
        db = sqlite3.connect({str(box.paths.db_path)!r})
        print(json.dumps(db.execute("SELECT id, agent, kind FROM events ORDER BY id").fetchall()))
    """))]


def fill(ns: Namespace, folder: Path) -> None:
    """Write a file into `folder` until the disk refuses more."""
    free = ns.python(f"""
        import errno, os
        with open({str(folder / 'filler')!r}, 'wb', buffering=0) as f:
            try:
                while True:
                    f.write(b'x' * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
        print(os.statvfs({str(folder)!r}).f_bavail)
    """)
    assert free.strip() == "0"


def recording_agent(box: Sandbox, record: Path) -> None:
    box.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT} --record {record}\n"
                     "limits:\n  idle_after: 1s\n")


def prompts(record: Path) -> list[str]:
    if not record.exists():
        return []
    return [json.loads(line)["text"] for line in record.read_text().splitlines() if line.strip()]


def one_line(text: str) -> bool:
    return "Traceback" not in text and "internal error" not in text


def test_full_disk_send_and_stop_happen_and_are_recorded_once_space_returns(sandbox: Sandbox, namespace: Namespace,
                                                                              tmp_path: Path) -> None:
    record = tmp_path / "prompts.jsonl"
    recording_agent(sandbox, record)
    state = sandbox.paths.state_dir
    state.mkdir(parents=True)
    namespace.run("mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(state))
    sv(namespace, sandbox, "start", "a1", "--task", "first task")
    pid = json.loads(sv(namespace, sandbox, "show", "a1", "--json").stdout)["pid"]
    wait_until(lambda: prompts(record) == ["first task"], message="the task")

    fill(namespace, state)
    before = events(namespace, sandbox)
    sent = sv(namespace, sandbox, "send", "a1", "typed on a full disk", check=False)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == "a1: sent"
    assert "cannot be written" in sent.stderr and one_line(sent.stderr)
    wait_until(lambda: prompts(record) == ["first task", "typed on a full disk"], message="the sent text")

    # What must be on disk before it happens is refused, in one line, and nothing happens.
    refused = sv(namespace, sandbox, "start", "a2", "--task", "never", check=False)
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[0] == \
        "supervisor: error: a2 was not started: the store cannot be written (database or disk is full)"
    assert not (sandbox.root.parent / "repo-worktrees" / "a2").exists()

    stopped = sv(namespace, sandbox, "stop", "a1", check=False)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == "a1: stopped" and one_line(stopped.stderr)
    wait_until(lambda: process_gone(pid), message="the agent's process to end")
    listed = sv(namespace, sandbox, "ls", "--json")
    assert {a["name"]: a["state"] for a in json.loads(listed.stdout)} == {"a1": "stopped"}
    assert "the store in" in listed.stderr and "wait in memory" in listed.stderr
    status = sv(namespace, sandbox, "engine", "status").stdout
    assert "not written: the store in" in status and "database or disk is full" in status
    assert events(namespace, sandbox) == before  # nothing reached the file

    namespace.run("rm", str(state / "filler"))

    def recorded() -> list[tuple[int, str | None, str]] | None:
        found = events(namespace, sandbox)
        return found if "stopped" in [kind for _id, _agent, kind in found] else None

    after = wait_until(recorded, timeout=45, message="the kept events in the store (tried at most 30 s apart)")
    assert after[:len(before)] == before
    kinds = [kind for _id, agent, kind in after[len(before):] if agent == "a1"]
    assert "sent" in kinds and kinds.index("sent") < kinds.index("stopped")
    assert "not written" not in sv(namespace, sandbox, "engine", "status").stdout
    listed = sv(namespace, sandbox, "ls")
    assert listed.stderr == ""
    log = namespace.run("cat", str(sandbox.paths.engine_log)).stdout
    assert log.count("cannot write the store") == 1 and log.count("is written again") == 1
    assert "Traceback" not in log
    transcript = namespace.run("cat", str(sandbox.paths.transcript("a1"))).stdout
    assert "typed on a full disk" in transcript  # its last screen, kept in memory until it could be written


def test_read_only_folder_send_and_stop_happen_and_the_transcript_follows(sandbox: Sandbox, namespace: Namespace,
                                                                          tmp_path: Path) -> None:
    record = tmp_path / "prompts.jsonl"
    recording_agent(sandbox, record)
    state = str(sandbox.paths.state_dir)
    sv(namespace, sandbox, "start", "a1", "--task", "first task")
    pid = json.loads(sv(namespace, sandbox, "show", "a1", "--json").stdout)["pid"]
    wait_until(lambda: prompts(record) == ["first task"], message="the task")
    sandbox.wait_state("a1", "idle")  # its screen settled: the engine writes nothing more until it changes

    # A folder made read-only by a bind mount still takes writes through files the engine opened before it (a
    # file system gone read-only would refuse those too): its live screen, removed first, is opened again.
    live = f"{sandbox.paths.transcript('a1')}.live"
    namespace.run("sh", "-c", f'rm -f "{live}" && mount --bind "{state}" "{state}" && '
                              f'mount -o remount,ro,bind "{state}"')
    sent = sv(namespace, sandbox, "send", "a1", "typed on a read-only folder", check=False)
    assert sent.returncode == 0 and sent.stdout.strip() == "a1: sent", sent.stderr
    wait_until(lambda: len(prompts(record)) == 2, message="the sent text")
    # the engine writes the agent's new lines on its next tick, and finds the folder read-only then: from that
    # moment every command's answer carries the note
    wait_until(lambda: "not written: the transcripts" in sv(namespace, sandbox, "engine", "status").stdout,
               message="the transcripts found unwritable")
    stopped = sv(namespace, sandbox, "stop", "a1", check=False)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == "a1: stopped"
    assert "the transcripts in" in stopped.stderr and "Read-only file system" in stopped.stderr
    assert one_line(stopped.stderr)
    wait_until(lambda: process_gone(pid), message="the agent's process to end")
    assert "not written: the transcripts" in sv(namespace, sandbox, "engine", "status").stdout

    namespace.run("mount", "-o", "remount,rw,bind", state)
    wait_until(lambda: "not written" not in sv(namespace, sandbox, "engine", "status").stdout,
               message="the transcripts written")
    transcript = namespace.run("cat", str(sandbox.paths.transcript("a1"))).stdout
    assert "typed on a read-only folder" in transcript
    kinds = [kind for _id, agent, kind in events(namespace, sandbox) if agent == "a1"]
    assert kinds.index("sent") < kinds.index("stopped")


def test_read_only_runtime_folder_short_texts_still_go_and_a_long_one_fails_in_one_line(
        sandbox: Sandbox, namespace: Namespace, tmp_path: Path) -> None:
    """The runtime folder holds the file a long text reaches tmux through; a short text needs no file."""
    record = tmp_path / "prompts.jsonl"
    recording_agent(sandbox, record)
    sv(namespace, sandbox, "start", "a1", "--task", "first task")
    wait_until(lambda: prompts(record) == ["first task"], message="the task")
    runtime = str(sandbox.runtime / sandbox.paths.runtime_dir.name)
    namespace.run("mount", "--bind", runtime, runtime)
    namespace.run("mount", "-o", "remount,ro,bind", runtime)
    sent = sv(namespace, sandbox, "send", "a1", "short; and ends in;", check=False)
    assert sent.returncode == 0 and sent.stdout.strip() == "a1: sent", sent.stderr
    wait_until(lambda: prompts(record)[1:] == ["short; and ends in;"], message="the short text")

    long = "y" * 20_000
    sent = sv(namespace, sandbox, "send", "a1", long, check=False)
    assert sent.returncode == 1 and one_line(sent.stderr), sent.stderr
    assert sent.stderr.splitlines()[0].startswith("supervisor: error: a1: the text could not be typed")
    assert "Read-only file system" in sent.stderr.splitlines()[0]
    # A sandbox binds the agent's own runtime folder, which cannot be made now: the agent fails saying so.
    started = sv(namespace, sandbox, "start", "a2", "--no-wait", "--task", long, check=False)
    wait_until(lambda: next((a for a in json.loads(sv(namespace, sandbox, "ls", "--json").stdout)
                             if a["name"] == "a2" and a["state"] == "failed"), None),
               message="a2 failed", timeout=30)
    reason = json.loads(sv(namespace, sandbox, "show", "a2", "--json").stdout)["reason"]
    assert one_line(started.stderr), started.stderr
    # (its own socket, made before its sandbox, is what cannot be made first; never the human's instead)
    assert reason.startswith("not started: ") and "Read-only file system" in reason and one_line(reason), reason
    # Without one, a start task typed by a thread of the engine's: the agent waits for you with the reason.
    sv(namespace, sandbox, "start", "a3", "--isolation", "none", "--no-wait", "--task", long)
    agent = wait_until(lambda: next((a for a in json.loads(sv(namespace, sandbox, "ls", "--json").stdout)
                                     if a["name"] == "a3" and a["state"] == "waiting"), None),
                       message="a3 waiting for its undelivered task")
    assert agent["waiting_reason"].startswith("its task could not be delivered: the text could not be typed")


def test_read_only_folder_without_an_engine_is_one_line(sandbox: Sandbox, namespace: Namespace) -> None:
    state = str(sandbox.paths.state_dir)
    sv(namespace, sandbox, "start", "a1", "--task", "first task")
    sv(namespace, sandbox, "engine", "stop")
    namespace.run("mount", "--bind", state, state)
    namespace.run("mount", "-o", "remount,ro,bind", state)
    listed = sv(namespace, sandbox, "ls", check=False)
    assert listed.returncode == 1
    assert listed.stderr.splitlines()[0] == f"supervisor: error: cannot write {state}: Read-only file system"
    assert len(listed.stderr.splitlines()) == 2 and listed.stderr.splitlines()[1].startswith("hint: ")
    namespace.run("umount", state)
    assert "a1" in sv(namespace, sandbox, "ls").stdout


def test_the_store_keeps_what_a_full_disk_refuses_in_order_and_writes_it_later(namespace: Namespace,
                                                                                tmp_path: Path) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    namespace.run("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder))
    fill_folder = f"""
        import errno, os
        with open({str(folder / 'filler')!r}, 'wb', buffering=0) as f:
            try:
                while True:
                    f.write(b'x' * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    """
    result = namespace.python(f"""
        import json, os, sqlite3
        from pathlib import Path
        from supervisor.core.model import Agent, State
        from supervisor.core.store import Store
        from supervisor.core.unwritten import StoreUnwritable

        def agent(name):
            return Agent(name=name, profile="generic", command="x", worktree="/w", branch="b", base="c",
                         target="main")

        def on_disk():
            db = sqlite3.connect({str(folder / 's.db')!r})
            rows = db.execute("SELECT id, agent, kind, data FROM events ORDER BY id").fetchall()
            state = json.loads(db.execute("SELECT data FROM agents WHERE name = 'a'").fetchone()[0])["state"]
            db.close()
            return rows, state

        store = Store(Path({str(folder / "s.db")!r}))
        a = agent("a")
        store.add_agent(a)
        {textwrap.indent(textwrap.dedent(fill_folder), " " * 8).strip()}
        a.state = State.WORKING
        store.save_agent(a, "state", n=1)
        with store.transaction():
            store.append_event("a", "x", n=2)
            store.append_event("a", "y", n=3)
        try:
            with store.transaction():
                store.append_event("a", "rolled back")
                raise RuntimeError
        except RuntimeError:
            pass
        try:
            store.add_agent(agent("b"))
            refused = None
        except StoreUnwritable as exc:
            refused = exc.message
        kept = [[e.id, e.agent, e.kind, json.dumps(e.data, sort_keys=True)] for e in store.events()]
        report = {{"read": store.get_agent("a").state.value, "kept": kept, "waiting": store.unwritten().waiting,
                   "refused": refused, "b": store.get_agent("b") is not None, "full": on_disk()}}
        assert not store.write_unwritten()
        os.remove({str(folder / 'filler')!r})
        report["written"] = store.write_unwritten()
        report["after"] = on_disk()
        report["fault"] = store.unwritten() is not None
        store.add_agent(agent("b"))
        print(json.dumps(report))
    """)
    report = json.loads(result)
    assert report["read"] == "working"  # read back from memory meanwhile
    assert [kind for _id, _agent, kind, _data in report["kept"]] == ["created", "state", "x", "y"]
    assert report["waiting"] == 2
    assert report["refused"] == "b was not started: the store cannot be written (database or disk is full)"
    assert not report["b"]
    assert [row[2] for row in report["full"][0]] == ["created"] and report["full"][1] == "starting"
    assert report["written"] and not report["fault"]
    assert [list(row) for row in report["after"][0]] == report["kept"]  # same ids, same order, same data
    assert report["after"][1] == "working"


def test_engine_log_rotates(tmp_path: Path) -> None:
    handler = KeepingFileHandler(str(tmp_path / "engine.log"), 200, 9)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("test_engine_log_rotates")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for number in range(40):
            logger.warning("line %02d of the engine's log", number)
    finally:
        logger.removeHandler(handler)
        handler.close()
    files = sorted(tmp_path.glob("engine.log*"), key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0)
    lines = [line for path in files for line in path.read_text().splitlines()]
    assert len(files) > 2
    assert lines == [f"line {number:02d} of the engine's log" for number in range(40 - len(lines), 40)]


def test_waiting_changes_land_one_transaction_at_a_time_and_are_tried_with_a_backoff(namespace: Namespace,
                                                                                      tmp_path: Path) -> None:
    """With room for some of what waits, those land (in order) and are no longer kept; a still full disk is
    tried after 1 s, 2 s, 4 s..., not at every tick."""
    folder = tmp_path / "store"
    folder.mkdir()
    namespace.run("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder))
    result = namespace.python(f"""
        import errno, json, os, sqlite3, time
        from pathlib import Path
        from supervisor.core.store import Store
        from supervisor.engine.diskfaults import DiskWatch

        def fill(name, leave=0):
            with open({str(folder)!r} + "/" + name, 'wb', buffering=0) as f:
                try:
                    while True:
                        f.write(b'x' * 4096)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
            if leave:
                os.truncate({str(folder)!r} + "/" + name, os.path.getsize({str(folder)!r} + "/" + name) - leave)

        def on_disk():
            db = sqlite3.connect({str(folder / 's.db')!r})
            rows = db.execute("SELECT id FROM events WHERE kind = 'big' ORDER BY id").fetchall()
            db.close()
            return [row[0] for row in rows]

        store = Store(Path({str(folder / "s.db")!r}))
        store.append_event(None, "warm")
        fill("filler")
        for number in range(40):
            store.append_event(None, "big", n=number, text="z" * 20_000)
        kept = [e.id for e in store.events(limit=100) if e.kind == "big"]
        waiting = store.unwritten().waiting
        os.remove({str(folder / 'filler')!r})
        fill("filler", leave=200_000)  # room for some of them, not all
        landed = store.write_unwritten()
        partly = {{"landed": landed, "still": store.unwritten().waiting, "on_disk": on_disk()}}

        class Quiet:
            def retry(self):
                pass

        tries = []
        write = store.write_unwritten
        store.write_unwritten = lambda: tries.append(time.monotonic()) or write()
        watch = DiskWatch(store, Quiet(), {str(folder)!r})
        start = time.monotonic()
        while time.monotonic() - start < 3.6:
            watch.retry()
            time.sleep(0.05)
        print(json.dumps({{"kept": kept, "waiting": waiting, **partly,
                          "tries": [round(t - start, 1) for t in tries]}}))
    """)
    report = json.loads(result)
    assert report["waiting"] == 40 and len(report["kept"]) == 40
    assert not report["landed"]
    assert 0 < len(report["on_disk"]) < 40, report["on_disk"]
    assert report["on_disk"] == report["kept"][:len(report["on_disk"])]  # the first ones, in order
    assert report["still"] + len(report["on_disk"]) == 40  # those that landed are no longer kept
    assert len(report["tries"]) == 3 and report["tries"][1] >= 0.9 and report["tries"][2] >= 2.9, report["tries"]


def test_an_alert_attempt_is_on_disk_before_its_post_or_reported_as_not(namespace: Namespace,
                                                                         tmp_path: Path) -> None:
    """The record that an alert is being posted is what keeps a restart from posting it twice: it must be on
    the disk, not kept in memory, before the post. A full disk makes `begin` say so (the post goes ahead, at
    least once); once there is room, it is on disk at once, with what waited before it."""
    folder = tmp_path / "store"
    folder.mkdir()
    namespace.run("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder))
    result = namespace.python(f"""
        import errno, json, os, sqlite3
        from pathlib import Path
        from supervisor.alerts.outbox import Delivery, Outbox
        from supervisor.core.store import Store

        def on_disk():
            db = sqlite3.connect({str(folder / 's.db')!r})
            rows = db.execute("SELECT alert FROM alert_attempts ORDER BY alert").fetchall()
            kinds = [row[0] for row in db.execute("SELECT kind FROM events ORDER BY id")]
            db.close()
            return [row[0] for row in rows], kinds

        store = Store(Path({str(folder / "s.db")!r}))
        outbox = Outbox(store)
        with open({str(folder / 'filler')!r}, 'wb', buffering=0) as f:
            try:
                while True:
                    f.write(b'x' * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        store.append_event(None, "kept")
        full = outbox.begin(Delivery(1, "slack", "auth", 0, None), 1.0)
        full_disk = on_disk()
        os.remove({str(folder / 'filler')!r})
        room = outbox.begin(Delivery(2, "slack", "auth", 0, None), 2.0)
        print(json.dumps({{"full": full, "full_disk": full_disk, "room": room, "after": on_disk()}}))
    """)
    report = json.loads(result)
    assert report["full"] is False and report["full_disk"][0] == []
    assert report["room"] is True
    assert report["after"][0] == [2] and report["after"][1][-1] == "kept"
