"""What the tmux server spends on the watcher's commands, and how it grows with the panes it holds.

    .venv/bin/python bench/tmux_costs.py [--sessions 0,300] [--repeat 2000]

For each count in --sessions: a tmux server with that many idle sessions besides one pane whose history and screen
hold coloured lines, and a control-mode client (as the engine's) that sends each command COUNT times, ten to a
write, and waits for the replies. Prints the server's CPU per command (its /proc stat: 10 ms granularity, so
REPEAT should be in the thousands). What it showed on tmux 3.3a (load 10-15):

- a history row captured with its colours (`capture-pane -e`) costs about 8 µs, against about 3 without: the look's
  spare rows are paid per row;
- every pass of the server's event loop costs it about 2 µs per pane it holds, whatever woke it (a write of commands,
  16 KB of replies written, any pane's output): at 300 panes, a round trip of one command costs about 700 µs and a
  20 KB reply about 1.1 ms, against 20 µs and 400 µs with no other session. What watching costs the server grows
  with the panes times the round trips and bytes of a tick.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

LINES = ("for i in $(seq 2000); do printf '\\033[32mstep %s\\033[0m: editing module_%s.py\\n' $i $i; done;"
         " exec sleep 100000")


def measure(sessions: int, repeat: int) -> None:
    runtime = Path(tempfile.mkdtemp(prefix="svtc-", dir="/tmp"))
    socket = str(runtime / "sock")

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-S", socket, *args], capture_output=True, text=True).stdout.strip()

    tmux("-f", "/dev/null", "new-session", "-d", "-s", "_engine", "-x", "160", "-y", "48", "exec sleep 100000")
    tmux("set-option", "-g", "history-limit", "50000")
    for index in range(sessions):
        tmux("new-session", "-d", "-s", f"s{index}", "-x", "160", "-y", "48", "exec sleep 100000")
    pane = tmux("new-session", "-d", "-s", "a", "-x", "160", "-y", "48", "-P", "-F", "#{pane_id}", LINES)
    server = int(tmux("display-message", "-p", "#{pid}"))
    time.sleep(2)
    client = subprocess.Popen(["tmux", "-S", socket, "-C", "attach-session", "-t", "=_engine", "-f",
                               "no-output,ignore-size,read-only"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert client.stdin is not None and client.stdout is not None
    stdin, stdout = client.stdin, client.stdout

    def cpu() -> float:
        with open(f"/proc/{server}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def per_command(command: str) -> float:
        data = ("\n".join([command] * 10) + "\n").encode()
        before = cpu()
        for _ in range(repeat // 10):
            stdin.write(data)
            stdin.flush()
            replies = b""
            while replies.count(b"\n%end ") + replies.count(b"\n%error ") < 10:
                replies += os.read(stdout.fileno(), 1 << 20)
        return (cpu() - before) / repeat * 1e6

    commands = {
        "display-message (history size)": f"display-message -p -t {pane} '#{{history_size}}'",
        "history, 2 rows with colours": f"capture-pane -p -e -S -2 -E -1 -t {pane}",
        "history, 11 rows with colours": f"capture-pane -p -e -S -11 -E -1 -t {pane}",
        "history, 11 rows without": f"capture-pane -p -S -11 -E -1 -t {pane}",
        "screen, joined (-J)": f"capture-pane -p -J -t {pane}",
        "screen with colours (-e)": f"capture-pane -p -e -t {pane}",
        "20 KB of history": f"capture-pane -p -S -400 -t {pane}",
        "nothing (display-message -p x)": "display-message -p x",
    }
    try:
        per_command("display-message -p x")  # warm up
        for name, command in commands.items():
            print(f"[{sessions} sessions] {name:32} {per_command(command):7.1f} µs", flush=True)
    finally:
        stdin.close()
        client.wait()
        tmux("kill-server")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", default="0,300", help="idle sessions besides the measured pane, comma-separated")
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    for count in (int(part) for part in args.sessions.split(",")):
        measure(count, args.repeat)


if __name__ == "__main__":
    main()
