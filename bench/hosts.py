"""What watching agents on hosts costs: 2 hosts × AGENTS agents over real ssh, against the local watch at the same
count and a naive watcher over ssh, all in the same run.

    .venv/bin/python bench/hosts.py [--agents 50] [--seconds 60] [--baseline-seconds 20] [--no-local]

Needs root, as the tests' hosts do: the hosts are real sshd servers on 127.0.0.2 and 127.0.0.3, each logging in
as a user of its own (tests/sshd.py sets them up). The engine runs here (the home side) with both hosts in its
supervisor.yaml, and AGENTS agents are started on each host, of the same light kinds as bench/watch.py's (a
quarter print a line a second, a quarter work in bursts, half stay silent), plus one probe on each host.

It measures, in turns of 20 s watched and 20 s with the engine stopped (the agents run on in their hosts' tmux):
- the home engine with every process it runs or keeps (its ssh clients, the local tmux control client, git…);
- each host's supervisor: the host program and its children (tmux control clients relayed home, git, ps…), the
  sshd session carrying the link, and what its tmux server uses over the unwatched turns;
- hook → state across ssh: a hook event sent on the host by the probe agent, from its pane, through its own
  socket there (as the agent's CLI hook sends it) until `show` at home has the new state; beside
  it the link's round trip (the engine's own ping);
- each host's keeper of its panes' transcripts (supervisor/hostside/keeper.py): while the engine is connected
  (counted in what supervising adds), and, once, while it is away (the keeper then writes down what the panes
  show: its CPU and the tmux server's over its unwatched figure); killed for the unwatched turns, so that those
  measure the tmux server alone;
- a naive watcher over ssh, with the engine stopped: one `ssh HOST tmux capture-pane` per pane per second on
  10 panes of each host, its cost (the ssh clients here; the sshd sessions and their tmux clients on the host,
  and the tmux server over its unwatched figure) scaled to AGENTS panes;
- unless --no-local, bench/watch.py's local watch at AGENTS agents first, for the per-agent comparison.

Costs are in % of one core, and per agent in µs of CPU per agent-second (1% of a core at 100 agents is 100 µs).
Targets: each host's cost per agent no more than the local watch's; the home engine <= 1% of a core per 100
remote agents; hook → state <= 1 s plus the round trip. BENCH_PROFILE works as in bench/watch.py (the home
engine profiled, into DIR/engine-hosts-N.prof or .threads).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import watch  # bench/watch.py: the local watch, its agents, engines and CPU accounting

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests import sshd  # the tests' real sshd hosts

TURN_SECONDS = watch.TURN_SECONDS
SETTLE_SECONDS = 10.0  # after an engine starts: its links up, its agents adopted, every pane looked at once
AT_100_TARGET = 1.0  # % of a core for the home engine, per 100 remote agents
NAIVE_PANES = 10

# The probe agent's own command on the host, in its pane (its socket answers only its pane's processes): one
# hook event per line read from the FIFO `in` of its worktree, written to its socket (SUPERVISOR_SOCKET) as its
# CLI's hook writes it; says on the FIFO `out` when it sent each (CLOCK_MONOTONIC: the same clock as the bench's,
# on the same machine) and what the engine answered.
PROBE = """\
import json, os, socket, sys, time
for fifo in ("in", "out"):
    if not os.path.exists(fifo):
        os.mkfifo(fifo)
print("probe", flush=True)
events, said = open("in"), open("out", "w")
for line in events:
    event = json.loads(line)
    at = time.time()
    sent = time.monotonic()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.environ["SUPERVISOR_SOCKET"])
    sock.sendall(json.dumps({"method": "hook", "params": {"event": event, "at": at, "key": "%f" % at}}).encode()
                 + b"\\n")
    reply = sock.makefile("rb").readline()
    sock.close()
    said.write(json.dumps({"sent": sent, "answered": time.monotonic(), "reply": reply.decode()[:200]}) + "\\n")
    said.flush()
time.sleep(100000)
"""


class HomeTree(watch.Tree):
    """The engine's tree, with its ssh clients told apart."""

    def kind(self, pid: int, command: list[str]) -> str:
        if command[:1] == ["ssh"]:
            return "ssh"
        return super().kind(pid, command)


class HostTree(watch.Tree):
    """The host program's tree: the program itself, the tmux control clients it relays, what else it runs."""

    def kind(self, pid: int, command: list[str]) -> str:
        if pid == self.root:
            return "engine"  # the host program
        return "control client" if command[:1] == ["tmux"] and "-C" in command else "other"


@dataclass
class HostSide:
    """One host's processes of ours while the engine is connected."""

    name: str
    program: HostTree
    sessions: list[int]  # the sshd processes carrying the link
    sessions_start: float
    server: int  # its tmux server

    def sessions_spent(self) -> float:
        return watch.cpu_seconds(self.sessions) - self.sessions_start


@dataclass
class HostFigures:
    name: str
    program: float = 0.0  # % of a core
    control: float = 0.0
    other: float = 0.0
    sshd: float = 0.0
    server: float = 0.0
    bare: float = 0.0
    keeper: float = 0.0  # the keeper of its panes' transcripts, while the engine is connected
    away: float = 0.0  # … and while the engine is away: its CPU and the tmux server's over `bare`
    naive_home: float = 0.0  # the naive watcher, scaled to the agents: its ssh clients here
    naive_host: float = 0.0  # … and on the host (sshd sessions, their shells and tmux clients, the server's share)
    naive_rate: float = 0.0  # the captures a second it managed on NAIVE_PANES panes

    @property
    def added(self) -> float:
        return self.program + self.control + self.other + self.sshd + self.keeper + max(0.0, self.server - self.bare)


@dataclass
class Figures:
    agents: int  # per host
    seconds: float = 0.0
    home: dict[str, float] = field(default_factory=dict)
    hosts: dict[str, HostFigures] = field(default_factory=dict)
    hook_latency: list[float] = field(default_factory=list)
    round_trip_ms: list[float] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    local: watch.Run | None = None

    @property
    def home_total(self) -> float:
        return sum(self.home.values())


def measure(box: sshd.SshHosts, count: int, args: argparse.Namespace) -> Figures:
    from supervisor.client import call
    from supervisor.paths import find_repo

    scratch = Path(tempfile.mkdtemp(prefix="sv-bench-hosts-"))
    runtime = Path(tempfile.mkdtemp(prefix="svh-", dir="/tmp"))
    os.environ.update({"HOME": str(scratch), "SHELL": "/bin/sh", "SUPERVISOR_RUNTIME_DIR": str(runtime)})
    repo = scratch / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@b"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (repo / "README.md").write_text("bench\n")
    folders = {name: box.fresh_dir(name) for name in box.hosts}
    hosts = "".join(f"  {name}:\n    ssh: {name}\n    ssh_config: {box.config}\n    dir: {folders[name]}\n"
                    f"    max_agents: {count + 1}\n" for name in box.hosts)
    (repo / "supervisor.yaml").write_text("agent:\n  profile: generic\n  command: sleep 100000\n  stagger: 0s\n"
                                          "limits:\n  idle_after: 5s\n  stall_after: 1h\n"
                                          f"hosts:\n{hosts}")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    paths = find_repo(repo)
    figures = Figures(count, hosts={name: HostFigures(name) for name in box.hosts})
    try:
        start_engine(paths, box)
        print(f"[{count} per host] starting {count} agents on each of {', '.join(box.hosts)}…", flush=True)
        started = time.monotonic()
        for index in range(count):
            command = agent_command(index)
            for name in box.hosts:
                call(paths, "start", {"name": f"{name}-a{index:03d}", "command": command, "wait": False,
                                      "host": name}, timeout=600)
        for name in box.hosts:
            call(paths, "start", {"name": f"{name}-probe", "command": f"python3 -I -c {shlex.quote(PROBE)}",
                                  "wait": False, "host": name}, timeout=600)
        watch._until(lambda: all_placed(paths), timeout=1200, what="every agent in its pane on its host")
        print(f"[{count} per host] all started in {time.monotonic() - started:.0f} s", flush=True)
        time.sleep(SETTLE_SECONDS)

        turns = max(1, round(args.seconds / TURN_SECONDS))
        print(f"[{count} per host] measuring {turns} turns of {TURN_SECONDS:.0f} s watched and "
              f"{TURN_SECONDS:.0f} s with no supervisor…", flush=True)
        home: dict[str, float] = {}
        spent: dict[str, dict[str, float]] = {name: {} for name in box.hosts}
        watched = 0.0
        for turn in range(turns):
            if turn:
                start_engine(paths, box)
                watch._until(lambda: all_placed(paths), timeout=300, what="every agent adopted again")
                time.sleep(SETTLE_SECONDS)
            sides = {name: host_side(box, name, folders[name]) for name in box.hosts}
            tree = HomeTree(int(call(paths, "status")["pid"]))
            servers = {name: watch.cpu_seconds([side.server], children=False) for name, side in sides.items()}
            kept = {name: keepers(box, name, folders[name]) for name in box.hosts}
            kept_at = {name: watch.cpu_seconds(pids, children=False) for name, pids in kept.items()}
            began = time.monotonic()
            time.sleep(TURN_SECONDS)
            watched += time.monotonic() - began
            for kind, seconds in tree.since().items():
                home[kind] = home.get(kind, 0.0) + seconds
            for name, side in sides.items():
                mine = spent[name]
                for kind, seconds in side.program.since().items():
                    mine[kind] = mine.get(kind, 0.0) + seconds
                mine["sshd"] = mine.get("sshd", 0.0) + side.sessions_spent()
                mine["keeper"] = mine.get("keeper", 0.0) + watch.cpu_seconds(kept[name], children=False) \
                    - kept_at[name]
                mine["server"] = mine.get("server", 0.0) + watch.cpu_seconds([side.server], children=False) \
                    - servers[name]
            figures.states = states(paths)
            watch.stop_engine(paths)
            for name in box.hosts:  # the engine away: the keepers would write down the panes (measured below)
                end_keepers(box, name, folders[name])
            bare = {name: watch.cpu_seconds([side.server], children=False) for name, side in sides.items()}
            time.sleep(TURN_SECONDS)
            for name, side in sides.items():
                spent[name]["bare"] = spent[name].get("bare", 0.0) + watch.cpu_seconds(
                    [side.server], children=False) - bare[name]
        figures.seconds = watched
        figures.home = {kind: 100.0 * seconds / watched for kind, seconds in home.items()}
        for name, mine in spent.items():
            host = figures.hosts[name]
            host.program = 100.0 * mine.get("engine", 0.0) / watched
            host.control = 100.0 * mine.get("control client", 0.0) / watched
            host.other = 100.0 * mine.get("other", 0.0) / watched
            host.sshd = 100.0 * mine.get("sshd", 0.0) / watched
            host.keeper = 100.0 * mine.get("keeper", 0.0) / watched
            host.server = 100.0 * mine.get("server", 0.0) / watched
            host.bare = 100.0 * mine.get("bare", 0.0) / (turns * TURN_SECONDS)
        figures.load = os.getloadavg()

        start_engine(paths, box)
        watch._until(lambda: all_placed(paths), timeout=300, what="every agent adopted again")
        time.sleep(SETTLE_SECONDS)
        for name in box.hosts:
            figures.hook_latency += probe_hook(paths, name)
        figures.round_trip_ms = [float(row["latency_ms"]) for row in call(paths, "hosts")
                                 if row["name"] in box.hosts and row.get("latency_ms") is not None]
        sockets = {name: tmux_socket(box, name, folders[name]) for name in box.hosts}
        kept = {name: keepers(box, name, folders[name]) for name in box.hosts}
        watch.stop_engine(paths)

        print(f"[{count} per host] measuring the keepers with the engine away for {TURN_SECONDS:.0f} s…", flush=True)
        servers = {name: tmux_server(box, name, folders[name]) for name in box.hosts}
        at = {name: watch.cpu_seconds([*kept[name], servers[name]], children=False) for name in box.hosts}
        began = time.monotonic()
        time.sleep(TURN_SECONDS)
        took = time.monotonic() - began
        for name in box.hosts:
            host = figures.hosts[name]
            spent = watch.cpu_seconds([*kept[name], servers[name]], children=False) - at[name]
            host.away = max(0.0, 100.0 * spent / took - host.bare)
            end_keepers(box, name, folders[name])

        print(f"[{count} per host] measuring the naive watcher over ssh for {args.baseline_seconds:.0f} s…",
              flush=True)
        for name in box.hosts:
            host = figures.hosts[name]
            host.naive_home, host.naive_host, host.naive_rate = naive(box, name, sockets[name],
                                                                      args.baseline_seconds, host.bare, count)
    finally:
        with contextlib.suppress(Exception):
            call(paths, "shutdown", autostart=False)
        for name in box.hosts:  # the agents and their tmux servers there (box.clean removes the folders)
            with contextlib.suppress(Exception):
                box.ssh(name, "sh", "-c", f'for s in {folders[name]}/*/tmux.sock; do tmux -S "$s" kill-server; '
                        "done", check=False)
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)
    return figures


def agent_command(index: int) -> str:
    mix = (watch.CHATTY, watch.SILENT, watch.BURSTY, watch.SILENT)
    return f"sh -c {shlex.quote(mix[index % len(mix)].format(offset=index % 25))}"


def start_engine(paths: Any, box: sshd.SshHosts) -> None:
    """An engine (profiled under BENCH_PROFILE, as bench/watch.py's), once every host's link is up."""
    from supervisor.client import call

    watch.start_engine(paths, "hosts")  # type: ignore[arg-type]

    def up() -> bool:
        return all(row["state"] == "up" for row in call(paths, "hosts") if row["name"] in box.hosts)

    watch._until(up, timeout=300, what="every host's link up")


def all_placed(paths: Any) -> bool:
    """Every agent on its host has a pane there and a judged state (none starting, none unreachable)."""
    from supervisor.client import call

    agents = call(paths, "ls", {})
    return bool(agents) and all(agent["state"] not in ("starting", "unreachable") for agent in agents)


def states(paths: Any) -> dict[str, int]:
    from supervisor.client import call

    found: dict[str, int] = {}
    for agent in call(paths, "ls", {}):
        found[agent["state"]] = found.get(agent["state"], 0) + 1
    return found


def host_side(box: sshd.SshHosts, name: str, folder: str) -> HostSide:
    """The host program serving the engine's link to host `name` (found by its `dir`), the sshd processes carrying
    it (those under the host's sshd listener), and the host's tmux server for the repository."""
    host = box.hosts[name]
    assert host.process is not None
    program = None
    for process in psutil.process_iter(["username", "cmdline"]):
        command = process.info["cmdline"] or []
        if process.info["username"] == host.user and command[:1] == ["python3"] and command[-1:] == [folder]:
            program = process
    if program is None:
        raise SystemExit(f"bench: no host program found on {name}")
    sessions = []
    parent = program.parent()
    while parent is not None and parent.pid != host.process.pid:
        sessions.append(parent.pid)
        parent = parent.parent()
    return HostSide(name, HostTree(program.pid), sessions, watch.cpu_seconds(sessions), tmux_server(box, name, folder))


def tmux_server(box: sshd.SshHosts, name: str, folder: str) -> int:
    """Host `name`'s tmux server for the repository."""
    host = box.hosts[name]
    server = None
    root = str(host.home / folder.removeprefix("~/"))
    for process in psutil.process_iter(["username", "name", "cmdline"]):
        if process.info["username"] == host.user and (process.info["name"] or "").startswith("tmux") \
                and any(root in word for word in process.info["cmdline"] or []) \
                and not any(word == "-C" for word in process.info["cmdline"] or []) \
                and process.ppid() == 1:
            server = process.pid
    if server is None:
        raise SystemExit(f"bench: no tmux server found on {name}")
    return server


def keepers(box: sshd.SshHosts, name: str, folder: str) -> list[int]:
    """The keeper of host `name`'s panes' transcripts (`host.pyz keep ROOT SOCKET`; none before it started)."""
    host = box.hosts[name]
    root = str(host.home / folder.removeprefix("~/"))
    return [process.pid for process in psutil.process_iter(["username", "cmdline"])
            if process.info["username"] == host.user and "keep" in (process.info["cmdline"] or [])
            and any(word.startswith(root) for word in process.info["cmdline"] or [])]


def end_keepers(box: sshd.SshHosts, name: str, folder: str) -> None:
    """End the keepers of host `name` (the next engine's link starts one again)."""
    for pid in keepers(box, name, folder):
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()


def tmux_socket(box: sshd.SshHosts, name: str, folder: str) -> str:
    root = box.hosts[name].home / folder.removeprefix("~/")
    found = sorted(root.glob("*/tmux.sock"))
    if not found:
        raise SystemExit(f"bench: no tmux socket under {root}")
    return str(found[0])


def probe_hook(paths: Any, name: str, rounds: int = 5) -> list[float]:
    """Hook events sent on host `name` by its probe agent, from its pane, through its socket there, each until
    `show` at home has the state it makes: latencies in seconds."""
    from supervisor.client import call

    agent = f"{name}-probe"
    worktree = Path(call(paths, "show", {"name": agent})["worktree"])  # a host path: the same machine here
    watch._until(lambda: (worktree / "out").exists(), timeout=60, what=f"{agent}'s FIFOs")
    latencies = []
    with open(worktree / "in", "w") as events, open(worktree / "out") as said:
        for round_ in range(rounds):
            for event, expected in (({"hook_event_name": "Notification", "notification_type": "agent_needs_input",
                                      "message": f"probe {round_}"}, "waiting"),
                                    ({"hook_event_name": "UserPromptSubmit", "prompt": "go"}, "working")):
                events.write(json.dumps(event) + "\n")
                events.flush()
                watch._until(lambda e=expected: watch._state(paths, agent) == e, what=f"{agent} {expected}")
                seen = time.monotonic()
                answer = json.loads(said.readline())
                if '"ok":true' not in answer["reply"].replace(" ", ""):
                    raise SystemExit(f"bench: the hook through {agent}'s socket was refused: {answer['reply']}")
                latencies.append(seen - float(answer["sent"]))
    call(paths, "ping")
    return latencies


def naive(box: sshd.SshHosts, name: str, socket: str, seconds: float, bare: float,
          count: int) -> tuple[float, float, float]:
    """One `ssh HOST tmux capture-pane` per pane per second on NAIVE_PANES panes of host `name` (the engine
    stopped), for `seconds`: the CPU of one capture here (the ssh client) and on the host (the sshd session with
    what it ran, and the tmux server over its unwatched figure `bare`), times `count` captures a second → % of a
    core here, % on the host, and the captures a second it managed (a loaded machine makes fewer than asked)."""
    host = box.hosts[name]
    assert host.process is not None
    ssh = ["ssh", "-F", str(box.config), "-T", "-o", "BatchMode=yes", name, "--"]
    listed = subprocess.run([*ssh, shlex.join(["tmux", "-S", socket, "list-panes", "-a", "-F", "#{pane_id}"])],
                            capture_output=True, text=True, check=True, timeout=60).stdout.split()
    panes = [pane for pane in listed if pane.startswith("%")][:NAIVE_PANES]
    server = int(subprocess.run([*ssh, shlex.join(["tmux", "-S", socket, "display-message", "-p", "#{pid}"])],
                                capture_output=True, text=True, check=True, timeout=60).stdout.strip())
    listener = [host.process.pid]
    here, there, server_at = watch.cpu_seconds([os.getpid()]), watch.cpu_seconds(listener), \
        watch.cpu_seconds([server], children=False)
    began = time.monotonic()
    end = began + seconds
    captures = 0
    while time.monotonic() < end:
        second = time.monotonic()
        running = [subprocess.Popen([*ssh, shlex.join(["tmux", "-S", socket, "capture-pane", "-p", "-t", pane])],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
                   for pane in panes]
        for process in running:
            process.wait()
        captures += len(running)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - second)))
    took = time.monotonic() - began
    server_over = max(0.0, watch.cpu_seconds([server], children=False) - server_at - bare / 100 * took)
    home = 100.0 * (watch.cpu_seconds([os.getpid()]) - here) / captures * count
    on_host = 100.0 * (watch.cpu_seconds(listener) - there + server_over) / captures * count
    return home, on_host, captures / took


def per_agent(percent: float, agents: int) -> float:
    return percent / 100 * 1e6 / agents


def report(figures: Figures) -> bool:
    n = figures.agents
    remote = n * len(figures.hosts)
    home = figures.home
    at_100 = figures.home_total * 100 / remote
    local = figures.local.per_agent if figures.local is not None else None
    verdicts = [at_100 <= AT_100_TARGET]
    print()
    print(f"agents watched: {n} on each of {len(figures.hosts)} hosts (+1 probe each), states at the end "
          f"{figures.states}; load average after: {' '.join(f'{x:.2f}' for x in figures.load)} "
          f"on {os.cpu_count()} cores")
    print(f"home engine (its own threads):          {home.get('engine', 0.0):6.2f}% of one core")
    print(f"  its ssh clients (one per host):       {home.get('ssh', 0.0):6.2f}%")
    print(f"  local tmux control client:            {home.get('control client', 0.0):6.2f}%")
    print(f"  other processes it ran (git…):        {home.get('other', 0.0):6.2f}%")
    print(f"home engine with its processes:         {figures.home_total:6.2f}% = {at_100:.2f}% per 100 remote agents"
          f"   (target <= {AT_100_TARGET:.0f}%)  {'OK' if verdicts[0] else 'OVER'}")
    if figures.local is not None:
        print(f"local watch at {n} agents (bench/watch.py, same run): {figures.local.added:.2f}% = "
              f"{local:.0f} µs per agent-second")
    for host in figures.hosts.values():
        mine = per_agent(host.added, n)
        ok = local is None or mine <= local
        verdicts.append(ok)
        naive_total = host.naive_home + host.naive_host
        print(f"host {host.name}:")
        print(f"  host program (its own threads):       {host.program:6.2f}%")
        print(f"  tmux control client it relays:        {host.control:6.2f}%")
        print(f"  other processes it ran (git, ps…):    {host.other:6.2f}%")
        print(f"  sshd carrying the link:               {host.sshd:6.2f}%")
        print(f"  keeper of its panes' transcripts:     {host.keeper:6.2f}%   (with the engine away: "
              f"{host.away:.2f}%, its tmux server's share included)")
        print(f"  tmux server watched / unwatched:      {host.server:6.2f}% / {host.bare:.2f}%")
        print(f"  what supervising adds on the host:    {host.added:6.2f}% = {mine:4.0f} µs per agent-second"
              + (f"   (target <= the local watch's {local:.0f} µs)  {'OK' if ok else 'OVER'}" if local else ""))
        print(f"  naive watcher over ssh, scaled to {n}: {naive_total:6.2f}% = {per_agent(naive_total, n):5.0f} µs "
              f"per agent-second (ssh clients here {host.naive_home:.1f}%, on the host {host.naive_host:.1f}%; "
              f"{host.naive_rate:.1f} captures a second made of {NAIVE_PANES} asked)"
              f"   ({naive_total / (host.added + figures.home_total / len(figures.hosts)):.0f}x ours, "
              "home included)")
    trip = statistics.median(figures.round_trip_ms) if figures.round_trip_ms else 0.0
    hook_ok = max(figures.hook_latency) * 1000 <= 1000 + trip
    verdicts.append(hook_ok)
    print(f"hook on the host -> state at home:      median {statistics.median(figures.hook_latency) * 1000:6.0f} ms,"
          f" max {max(figures.hook_latency) * 1000:6.0f} ms   (round trip {trip:.1f} ms; target <= 1000 ms + round "
          f"trip)  {'OK' if hook_ok else 'OVER'}")
    return all(verdicts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=50, help="agents on each host")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--baseline-seconds", type=float, default=20, help="how long each naive watcher runs")
    parser.add_argument("--no-local", action="store_true", help="leave out the local watch's comparison")
    args = parser.parse_args()
    if args.agents < 1:
        parser.error("--agents: at least 1")
    if os.geteuid() != 0:
        parser.error("needs root: the hosts are real sshd servers with a user each (tests/sshd.py)")
    local = None
    if not args.no_local:
        print(f"[local] bench/watch.py at {args.agents} agents…", flush=True)
        local = watch.measure(args.agents, argparse.Namespace(quiet=False, seconds=args.seconds,
                                                              baseline_seconds=args.baseline_seconds))
        watch.report(local)
    root = Path(tempfile.mkdtemp(prefix="sv-sshd-bench-"))
    box = sshd.start(root)
    try:
        figures = measure(box, args.agents, args)
    finally:
        box.stop()
        box.clean()
        shutil.rmtree(root, ignore_errors=True)
    figures.local = local
    return 0 if report(figures) else 1


if __name__ == "__main__":
    sys.exit(main())
