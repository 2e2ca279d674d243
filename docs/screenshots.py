"""Regenerate the README's pictures of the dashboard (SVG, through Textual's Pilot).

    .venv/bin/python docs/screenshots.py

docs/dashboard.svg   the main screen on the fixed sample world of the snapshot tests (no engine needed)
docs/demo.svg        the real dashboard on `supervisor demo` (its stall and timeout shortened): a scratch
                     repository, the real engine, tmux and the bundled demo agent, once each of its behaviours
                     has shown
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from supervisor.ui.app import SupervisorApp
from supervisor.ui.fake import NOW, FakeSource
from supervisor.ui.testing import loaded, wait_for

DOCS = Path(__file__).resolve().parent
SIZE = (150, 42)


async def shoot(app: SupervisorApp, path: Path, ready: Any) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        app.save_screenshot(str(path))
    print(f"wrote {path}")


def sample() -> None:
    async def ready(pilot: Pilot[Any]) -> None:
        await loaded(pilot, diffstat=True)
        app = pilot.app
        assert isinstance(app, SupervisorApp)
        app.select_agent("ui")
        await loaded(pilot, diffstat=True)

    asyncio.run(shoot(SupervisorApp(FakeSource.sample(), clock=lambda: NOW), DOCS / "dashboard.svg", ready))


def demo() -> None:
    from supervisor.ui.source import EngineSource

    runtime = Path(tempfile.mkdtemp(prefix="svd-", dir="/tmp"))
    repo = Path(tempfile.mkdtemp(prefix="sv-docs-")) / "demo-shop"
    os.environ["SUPERVISOR_RUNTIME_DIR"] = str(runtime)
    subprocess.run([sys.executable, "-m", "supervisor", "demo", str(repo), "--no-ui", "--stall-after", "5s",
                    "--timeout", "12s"], check=True, capture_output=True)
    from supervisor.paths import find_repo

    paths = find_repo(repo)
    try:
        async def ready(pilot: Pilot[Any]) -> None:
            app = pilot.app
            assert isinstance(app, SupervisorApp)
            await loaded(pilot, diffstat=True)
            # Until the demo has shown what it is for: a question, a stall, a timeout, a crash, a commit outside
            # its boundary, one ready to merge.
            await wait_for(pilot, lambda: {item.kind for item in app.board.attention()} >= {
                "waiting", "stalled", "timeout", "exited", "boundary", "ready"}, timeout=90,
                message="the demo's agents needing a human")
            app.select_agent("ui")
            await loaded(pilot, diffstat=True)
            deadline = time.monotonic() + 3
            await wait_for(pilot, lambda: time.monotonic() > deadline, message="a settled picture")

        asyncio.run(shoot(SupervisorApp(EngineSource(paths)), DOCS / "demo.svg", ready))
    finally:
        subprocess.run(["tmux", "-S", str(paths.tmux_socket), "kill-server"], capture_output=True, check=False)
        shutil.rmtree(repo.parent, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)


if __name__ == "__main__":
    sample()
    demo()
