"""The usage readers and the usage service on files an agent wrote to hurt them: every record file is in the
agent's own folder, which the agent (or anything it runs) can write. One agent's files never stop, hang or
change another agent's usage. A real store and the real service; only the engine around it is left out."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from supervisor.config import Config, load_config
from supervisor.core.model import Agent, State
from supervisor.core.store import Store
from supervisor.demo.claude_transcript import Transcript
from supervisor.paths import RepoPaths
from supervisor.usage import aider, claude, follow
from supervisor.usage.follow import SOURCES, Finder, Source, read_new
from supervisor.usage.ledger import Ledger
from supervisor.usage.prices import Prices
from supervisor.usage.records import MAX_COUNT, number, timestamp
from supervisor.usage.service import UsageService


@dataclass
class Host:
    """What the usage service uses of an engine: its store, its paths and its configuration."""

    paths: RepoPaths
    store: Store
    config: Config


@pytest.fixture
def host(tmp_path: Path) -> Any:
    paths = RepoPaths(root=tmp_path, common_dir=tmp_path / ".git")
    paths.state_dir.mkdir(parents=True)
    made = Host(paths, Store(paths.db_path), load_config(tmp_path, {}))
    yield made
    made.store.close()


def add(host: Host, name: str, profile: str = "claude", command: str = "claude") -> Path:
    """An agent working, and its state folder."""
    host.store.add_agent(Agent(name=name, profile=profile, command=command, worktree=str(host.paths.root),
                               branch=name, base="0" * 40, target="main", state=State.WORKING))
    folder = host.paths.agent_state(name)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def transcript(folder: Path, session: str = "s1") -> Path:
    path = folder / "projects" / "-work-repo" / f"{session}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def line(ident: str, tokens: Any, timestamp: str = '"2026-12-06T10:00:00Z"', model: str = "claude-sonnet-4-5") -> str:
    """An assistant line of a Claude Code transcript, with `tokens` (JSON text) as its input tokens."""
    return (f'{{"type":"assistant","timestamp":{timestamp},"requestId":"r-{ident}","message":{{"id":"{ident}",'
            f'"model":"{model}","usage":{{"input_tokens":{tokens},"output_tokens":1}}}}}}\n')


def inputs(service: UsageService) -> dict[str, int]:
    return {name: usage.input_tokens for name, usage in service.per_agent().items()}


def service_of(host: Host) -> UsageService:
    return UsageService(host)  # type: ignore[arg-type]  # a Host has what the service uses of an Engine


def test_counts_and_times_are_bounded_and_one_agents_bad_lines_never_stop_anothers_usage(host: Host) -> None:
    assert (number(float("inf")), number(float("nan")), number(-5), number(1e30), number(2**62)) == \
        (0, 0, 0, MAX_COUNT, MAX_COUNT)
    now = time.time()
    assert timestamp(10**400, now) == timestamp(float("inf"), now) == timestamp("9999-01-01", now) == now
    assert timestamp(-1, now) == timestamp(now + 86400, now) == timestamp("2026-13-01", now) == now
    assert timestamp(1_790_000_000, now) == 1_790_000_000.0 and timestamp("2026-12-06T10:00:00Z", now) > 0
    transcript(add(host, "good")).write_text(line("g1", 100))
    transcript(add(host, "evil")).write_text(
        line("e1", "Infinity") + line("e2", "1e30") + line("e3", 2**62) + line("e4", 2**62)
        + line("e5", 1, timestamp="9" * 400) + line("\\ud800", 1)  # a lone surrogate: SQLite takes no such text
        + '{"type":"assistant","usage":' + "[" * 100_000 + "]" * 100_000 + "}\n"  # past Python's recursion limit
        + line("e6", 5))
    service = service_of(host)
    service.step()
    service.step()
    assert inputs(service)["good"] == 100
    assert inputs(service)["evil"] == 3 * MAX_COUNT + 1 + 1 + 5  # every record stored, none past the bound
    answer = service.op_usage()  # `supervisor usage`, `ls` and the dashboard sum what the store holds
    assert answer["total"]["input_tokens"] == 100 + 3 * MAX_COUNT + 7


def test_aiders_reader_passes_over_a_line_that_is_not_an_object() -> None:
    found = aider.read([b'["message_send"]', b'"message_send"', b"7", json.dumps(
        {"event": "message_send", "time": 1_790_000_000,
         "properties": {"main_model": "gpt-5", "prompt_tokens": 9, "completion_tokens": 2}}).encode()], {})
    assert [(r.input, r.output, r.model) for r in found.records] == [(9, 2, "gpt-5")]


def test_a_file_its_reader_fails_on_is_said_once_and_its_other_lines_and_the_other_agents_are_counted(
        host: Host, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def failing(lines: list[bytes], state: dict[str, Any]) -> Any:  # a reader with a bug a line can reach
        if any(b"boom" in one for one in lines):
            raise KeyError("boom")
        return claude.read(lines, state)

    monkeypatch.setitem(SOURCES, "claude", Source("projects", ".jsonl", failing, depth=4))
    transcript(add(host, "good")).write_text(line("g1", 100))
    evil = transcript(add(host, "evil"))
    evil.write_text(line("e1", 10) + '{"boom": "assistant", "usage": 1}\n' + line("e2", 20))
    service = service_of(host)
    with caplog.at_level(logging.WARNING, logger="supervisor.usage.service"):
        service.step()
        with evil.open("a") as handle:
            handle.write('{"boom": 2, "assistant": "usage"}\n' + line("e3", 40))
        service.step()
        service.step()
    assert inputs(service) == {"good": 100, "evil": 70}
    said = [record.getMessage() for record in caplog.records if str(evil) in record.getMessage()]
    assert len(said) == 1 and "passed over" in said[0]


def test_a_file_whose_records_the_store_refuses_is_passed_over_and_said_once_and_the_others_are_stored(
        host: Host, caplog: pytest.LogCaptureFixture) -> None:
    class Refusing(Ledger):
        """The store's tables, refusing evil's records (as for a value no reader foresaw)."""

        @staticmethod
        def _save(db: Any, agent: str, path: str, mark: Any, found: Any) -> None:
            if agent == "evil" and found.records:
                raise ValueError("refused")
            Ledger._save(db, agent, path, mark, found)

    good = transcript(add(host, "good"))
    good.write_text(line("g1", 100))
    evil = transcript(add(host, "evil"))
    evil.write_text(line("e1", 10))
    service = service_of(host)
    service.ledger = Refusing(host.store)
    with caplog.at_level(logging.WARNING, logger="supervisor.usage.service"):
        service.step()
        for path, ident in ((good, "g2"), (evil, "e2")):
            with path.open("a") as handle:
                handle.write(line(ident, 1000))
        service.step()
    assert inputs(service) == {"good": 1100}
    said = [record.getMessage() for record in caplog.records if str(evil) in record.getMessage()]
    assert len(said) == 1 and "could not be stored" in said[0]
    assert Ledger(host.store).marks()[str(evil)][1].offset == evil.stat().st_size  # not read again each pass


def test_a_fifo_or_a_device_named_like_a_record_file_is_passed_over_without_blocking(host: Host) -> None:
    transcript(add(host, "good")).write_text(line("g1", 100))
    evil = add(host, "evil")
    os.mkfifo(transcript(evil))
    os.symlink("/dev/zero", transcript(evil, "zero"))
    os.mkfifo(evil / "fifo-target")
    os.symlink(evil / "fifo-target", transcript(evil, "linked"))
    service = service_of(host)
    passes = [threading.Thread(target=service.step, daemon=True),
              threading.Thread(target=service.op_usage, daemon=True)]  # `supervisor usage` reads first too
    for thread in passes:
        thread.start()
        thread.join(timeout=30)
        assert not thread.is_alive(), "a pass blocked on a FIFO"
    assert inputs(service) == {"good": 100}
    assert list(Finder().files(str(evil), SOURCES["claude"])) == []  # only regular files, no symlink followed
    opened: list[Any] = []
    reader = threading.Thread(target=lambda: opened.append(read_new(transcript(evil), None)), daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert opened == [None]


def test_another_agents_transcript_is_never_counted_as_ones_own_nor_taken_from_its_owner(host: Host) -> None:
    good = transcript(add(host, "good"))
    good.write_text(line("g1", 100))
    service = service_of(host)
    service.step()
    evil = add(host, "evil")  # named before good: read first in a pass
    os.symlink(good, transcript(evil, "linked"))  # a symlink in its own folder
    os.link(good, transcript(evil, "hard"))  # a hard link: the same file under a name in its own folder
    (evil / "projects" / "folder").symlink_to(good.parent, target_is_directory=True)  # a linked folder
    for path in (good, evil / "projects" / "folder" / good.name, transcript(evil, "linked")):
        service.note_hook("evil", {"hook_event_name": "Stop", "transcript_path": str(path)})  # sent by evil
    other = transcript(add(host, "good2"), "s2")  # a new file, named by evil's hook before its owner read it
    other.write_text(line("o1", 7))
    service.note_hook("evil", {"hook_event_name": "Stop", "transcript_path": str(other)})
    service.step()
    assert inputs(service) == {"good": 100, "good2": 7}
    with good.open("a") as handle:
        handle.write(line("g2", 1000))
    service.step()
    assert inputs(service) == {"good": 1100, "good2": 7}  # its owner still reads it on


def test_a_file_reached_by_two_agents_in_one_pass_counts_once(host: Host) -> None:
    """Two agents meeting the same new file in one pass (a hard link made before either read it): the first
    to read it has it (which one is the agents' order: there is no telling which name the CLI wrote)."""
    first = transcript(add(host, "aa"))
    first.write_text(line("a1", 100))
    os.link(first, transcript(add(host, "bb")))
    service = service_of(host)
    service.step()
    service.step()
    assert inputs(service) == {"aa": 100}


def test_a_removed_agents_files_are_not_saved_by_a_pass_under_way_at_its_removal(
        host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = add(host, "c1")
    path = transcript(folder)
    path.write_text(line("m1", 100))
    service = service_of(host)
    service.step()
    with path.open("a") as handle:
        handle.write(line("m2", 1000))
    removed = threading.Event()

    def reading_while_removed(lines: list[bytes], state: dict[str, Any]) -> Any:
        found = claude.read(lines, state)
        if not removed.is_set():  # the agent is removed while this pass reads its file: as the engine removes it
            removed.set()
            host.store.delete_agent("c1")
            shutil.rmtree(folder)
            service.forget("c1")
        return found

    monkeypatch.setitem(SOURCES, "claude", Source("projects", ".jsonl", reading_while_removed, depth=4))
    service.step()
    assert removed.is_set()
    ledger = Ledger(host.store)
    assert ledger.sums(["c1"]) == [] and ledger.contexts() == {} and ledger.marks() == {}
    assert [(s.agent, s.input, s.removed is not None) for s in ledger.sums(removed=True)] == [("c1", 100, True)]
    add(host, "c1")  # a new agent of that name starts from nothing
    service.step()
    assert service.per_agent() == {}


def test_a_pass_that_commits_while_usage_is_being_summed_is_not_hidden_by_the_sum(host: Host) -> None:
    path = transcript(add(host, "c1"))
    path.write_text(line("m1", 100))
    service = service_of(host)
    service.step()
    with path.open("a") as handle:
        handle.write(line("m2", 1000))

    class PassMeanwhile(Ledger):
        """The store's tables, where a pass commits between reading the sums and the contexts."""

        passed = False

        def contexts(self, agents: list[str] | None = None) -> Any:
            if not self.passed:
                self.passed = True
                service.step()
            return super().contexts(agents)

    service.ledger = PassMeanwhile(host.store)
    service.per_agent()  # summed before the pass: 100
    assert inputs(service) == {"c1": 1100}


def test_a_file_made_in_the_same_mtime_tick_as_its_folders_listing_is_found(tmp_path: Path) -> None:
    folder = tmp_path / "projects" / "-work"
    folder.mkdir(parents=True)
    (folder / "a.jsonl").write_text("")
    now = time.time_ns()
    os.utime(folder, ns=(now, now))
    finder = Finder()
    assert [Path(p).name for p in finder.files(str(tmp_path), SOURCES["claude"])] == ["a.jsonl"]
    (folder / "b.jsonl").write_text("")
    os.utime(folder, ns=(now, now))  # the folder's mtime did not move: the same tick
    assert [Path(p).name for p in finder.files(str(tmp_path), SOURCES["claude"])] == ["a.jsonl", "b.jsonl"]


def test_claudes_context_window_is_the_one_claude_code_gives_the_model_as_chosen(host: Host) -> None:
    assert Prices().window("claude-opus-4-6") == 200_000  # Claude Code 2.1.332's own catalog, not LiteLLM's 1M
    assert Prices().window("claude-opus-4-6[1m]") == 1_000_000
    assert claude.window("opus[1m]") == claude.window("claude-opus-4-6[1M]") == 1_000_000
    assert claude.window("opus") is None and claude.window(None) is None
    plain = transcript(add(host, "plain"))
    flag = transcript(add(host, "flag", command="claude --model 'opus[1m]'"))
    env = transcript(add(host, "env", command="ANTHROPIC_MODEL=claude-opus-4-6[1m] claude"))
    folder = add(host, "setting")
    (folder / "settings.json").write_text(json.dumps({"model": "opus[1m]"}))
    setting = transcript(folder)
    for path in (plain, flag, env, setting):
        path.write_text(line("m", 50_000, model="claude-opus-4-6"))
    service = service_of(host)
    service.step()
    percent = {name: usage.context_percent for name, usage in service.per_agent().items()}
    assert percent == {"plain": 25.0, "flag": 5.0, "env": 5.0, "setting": 5.0}


def test_the_finder_and_the_reader_never_follow_a_symlinked_folder(tmp_path: Path) -> None:
    other = tmp_path / "other" / "projects" / "-work"
    other.mkdir(parents=True)
    Transcript(tmp_path / "other", tmp_path).reply("s", {"input": 5})
    own = tmp_path / "own"
    own.mkdir()
    (own / "projects").symlink_to(tmp_path / "other" / "projects", target_is_directory=True)
    assert list(Finder().files(str(own), SOURCES["claude"])) == []
    linked = next((own / "projects").rglob("*.jsonl"))
    assert read_new(linked, None) is not None and read_new(linked, None, str(own)) is None
    assert follow.inside(str(tmp_path / "own" / "x.jsonl"), str(own))
