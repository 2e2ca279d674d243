"""What one host link costs: connecting (with and without installing the host program), a call's round trip,
and a small commit carried each way as a bundle.

    .venv/bin/python bench/link.py                       # the host program run here (no ssh)
    .venv/bin/python bench/link.py --ssh box1 [--ssh-config FILE] [--dir ~/supervisor-bench]
    sudo .venv/bin/python bench/link.py --test-sshd      # the tests' loopback sshd (tests/sshd.py; needs root)

A version of the host program made for the run (a marker file in the zipapp) is installed on the first
connection, so the install is measured; it is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from supervisor.config import HostConfig
from supervisor.hosts import bundles
from supervisor.hosts.hostapp import HostApp, build
from supervisor.hosts.link import Link, local_argv
from supervisor.hosts.ssh import ssh_argv

IDENTITY = {"GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "b@example.com", "GIT_COMMITTER_NAME": "Bench",
            "GIT_COMMITTER_EMAIL": "b@example.com"}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


@contextlib.contextmanager
def transport(args: argparse.Namespace) -> Iterator[tuple[str, Callable[[HostApp, str], list[str]]]]:
    if args.test_sshd:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests import sshd

        root = Path(tempfile.mkdtemp(prefix="sv-sshd-bench-"))
        box = sshd.start(root)
        try:
            yield "box1", lambda app, folder: host_argv(str(box.config), "box1", app.boot_words(folder))
        finally:
            box.stop()
            shutil.rmtree(root, ignore_errors=True)
    elif args.ssh:
        yield args.ssh, lambda app, folder: host_argv(args.ssh_config, args.ssh, app.boot_words(folder))
    else:
        yield "local", lambda app, folder: local_argv(app, folder)


def host_argv(config: str | None, destination: str, words: list[str]) -> list[str]:
    return ssh_argv(HostConfig(name="bench", ssh=destination, ssh_config=Path(config) if config else None), *words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ssh", help="a destination your ssh accepts")
    parser.add_argument("--ssh-config", help="the ssh config file (ssh -F)")
    parser.add_argument("--dir", default=f"~/supervisor-bench-{uuid.uuid4().hex[:8]}")
    parser.add_argument("--test-sshd", action="store_true", help="the tests' loopback sshd (needs root)")
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    app = build({"bench-marker": uuid.uuid4().hex.encode()})
    for key, value in IDENTITY.items():
        os.environ.setdefault(key, value)
    with transport(args) as (name, argv_for):
        links = []
        for label in ("first connection (installs)", "second connection"):
            link = Link(name, argv_for(app, args.dir), app=app)
            took = timed(link.connect)
            print(f"{label:32} {ms(took)}  installed={link.installed}")
            links.append(link)
        links[0].close()
        link = links[1]
        for op, call_args in (("ping", {}), ("run", {"argv": ["true"]})):
            times = [timed(lambda op=op, call_args=call_args: link.call(op, **call_args)) for _ in range(args.calls)]
            print(f"{op + ' round trip (median)':32} {ms(statistics.median(times))}  (p90 "
                  f"{ms(sorted(times)[int(len(times) * 0.9)])}, {args.calls} calls)")
        with tempfile.TemporaryDirectory() as scratch:
            repo = Path(scratch) / "repo"
            repo.mkdir()
            git = ["git", "-C", str(repo)]
            subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
            (repo / "a.txt").write_text("base\n")
            subprocess.run([*git, "add", "a.txt"], check=True)
            subprocess.run([*git, "commit", "-q", "-m", "base"], check=True)
            clone = f"{args.dir}/repo.git"
            print(f"{'push: a new clone, one commit':32} "
                  f"{ms(timed(lambda: bundles.push(link, repo, clone, {'refs/heads/main': 'main'})))}")
            (repo / "a.txt").write_text("next\n")
            subprocess.run([*git, "commit", "-q", "-am", "next"], check=True)
            print(f"{'push: one commit more':32} "
                  f"{ms(timed(lambda: bundles.push(link, repo, clone, {'refs/heads/main': 'main'})))}")
            link.call("run", argv=["sh", "-c", f"git -C {clone} branch -f agent/x main && "
                                   f"git -C {clone} worktree add -q ../wt agent/x && cd ../wt && "
                                   "echo work > b.txt && git add b.txt && git commit -q -m work"],
                      cwd=clone, env=IDENTITY)
            namespace = "refs/supervisor/hosts/bench"
            print(f"{'fetch: one commit home':32} "
                  f"{ms(timed(lambda: bundles.fetch(link, repo, clone, ['refs/heads/agent/x'], namespace)))}")
            print(f"{'fetch: nothing new':32} "
                  f"{ms(timed(lambda: bundles.fetch(link, repo, clone, ['refs/heads/agent/x'], namespace)))}")
        link.call("run", argv=["sh", "-c", f"rm -rf {args.dir} ~/.local/share/supervisor/host-{app.version}.pyz"])
        link.close()


if __name__ == "__main__":
    main()
