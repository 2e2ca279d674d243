"""How long from a trigger event to the Slack server receiving the alert, against a bare Slack post.

    .venv/bin/python bench/alerts.py [--alerts 20] [--burst 50] [--group-wait 0.5]

Runs the engine's alert service (router, outbox, Slack worker: the same code the engine runs) on a scratch
repository's store, against the local Slack Web API stand-in of the tests, and times:
  baseline   one `chat.postMessage` through slack-sdk to the same server (the floor for any alert)
  single     ALERTS triggers one after another: trigger event appended → the server receives the post
  burst      BURST agents trigger at once: the time until the server has received all of them
The target for a single alert is at most 1 s plus group_wait.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' Slack stand-in

from slack_sdk.web import WebClient

from supervisor.alerts.service import AlertService
from supervisor.core.model import Agent
from supervisor.core.triggers import Trigger, fire
from supervisor.engine.engine import Engine
from supervisor.paths import RepoPaths
from tests.alert_servers import TOKEN, SlackServer

TARGET = 1.0


def agent(name: str) -> Agent:
    return Agent(name=name, profile="generic", command="true", worktree="/tmp", branch=f"agent/{name}", base="HEAD",
                 target="main", token="t", task="benchmark the alert path")


def wait_for_posts(slack: SlackServer, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while len(slack.posted()) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(slack.posted())} of {count} alerts arrived within {timeout:.0f}s")
        time.sleep(0.001)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=20)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--group-wait", type=float, default=0.5)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="sv-bench-alerts-"))
    os.environ.update({"SUPERVISOR_RUNTIME_DIR": str(scratch / "run"), "SLACK_BOT_TOKEN": TOKEN})
    root = scratch / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    slack = SlackServer().start()
    (root / "supervisor.yaml").write_text(
        f"alerts:\n  tmux: false\n  group_wait: {args.group_wait}s\n  repeat_after: null\n"
        f"  slack: {{token: \"${{SLACK_BOT_TOKEN}}\", channel: \"#agents\", base_url: \"{slack.base_url}\"}}\n")
    engine = Engine(RepoPaths(root=root, common_dir=root / ".git"))
    service = next(s for s in engine.services if isinstance(s, AlertService))
    try:
        client = WebClient(token=TOKEN, base_url=slack.base_url, retry_handlers=[])
        baseline = []
        for index in range(args.alerts):
            started = time.time()
            client.chat_postMessage(channel="#bench", text=f"baseline {index}")
            baseline.append(slack.requests[-1].at - started)
        sent = len(slack.posted())

        service.start()
        single = []
        for index in range(args.alerts):
            fired_at = time.time()
            fire(engine.store, agent(f"solo-{index}"), Trigger.WAITING, "waiting for approval: Bash(make deploy)",
                 screen=["Allow make deploy?"])
            wait_for_posts(slack, sent + index + 1)
            single.append(slack.posted()[-1]["at"] - fired_at)
        sent = len(slack.posted())

        fired_at = time.time()
        for index in range(args.burst):
            fire(engine.store, agent(f"burst-{index}"), Trigger.DONE, "finished its turn")
        wait_for_posts(slack, sent + args.burst)
        burst = max(m["at"] for m in slack.posted()[sent:]) - fired_at
    finally:
        service.stop()
        engine.store.close()
        slack.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    def ms(value: float) -> str:
        return f"{value * 1000:7.1f} ms"

    over = [value - args.group_wait for value in single]
    print(f"group_wait {args.group_wait}s, {args.alerts} single alerts, a burst of {args.burst}")
    print(f"baseline   chat.postMessage      p50 {ms(statistics.median(baseline))}  max {ms(max(baseline))}")
    print(f"single     trigger → received    p50 {ms(statistics.median(single))}  "
          f"p95 {ms(sorted(single)[int(0.95 * (len(single) - 1))])}  max {ms(max(single))}")
    print(f"           beyond group_wait     p50 {ms(statistics.median(over))}  max {ms(max(over))}  "
          f"(target ≤ {TARGET * 1000:.0f} ms: {'met' if max(over) <= TARGET else 'MISSED'})")
    print(f"burst      {args.burst} agents at once       all received after {ms(burst)} "
          f"({ms((burst - args.group_wait) / args.burst)} per alert beyond group_wait)")
    return 0 if max(over) <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
