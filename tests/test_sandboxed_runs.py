"""The guards that keep the suite from passing unsandboxed: what tells a sandboxed launch from another, and the
run that stops under CI on a machine with no bubblewrap."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import sandboxed
from tests.conftest import DEMO_AGENT, Sandbox

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None and not sandboxed.in_ci(),
                                 reason="needs bubblewrap (apt-get install bubblewrap)")


@needs_bwrap
def test_the_launches_without_a_sandbox_are_named(sandbox: Sandbox) -> None:
    sandbox.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\n")
    sandbox.sv("start", "boxed")
    sandbox.sv("start", "bare", "--isolation", "none")
    sandbox.wait_state("bare", "idle", "working")
    assert sorted(sandboxed.launches(sandbox.paths.db_path)) == [("bare", "none"), ("boxed", "sandbox")]
    assert sandboxed.unsandboxed(sandbox.paths.db_path) == ["bare (none)"]


def test_under_ci_a_machine_without_bubblewrap_fails_the_run(tmp_path: Path) -> None:
    """No bwrap to be found, CI=true: pytest stops before any test, saying why (skips would pass); without CI the
    same run goes on."""
    def run(ci: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "CI": ci, "PATH": str(tmp_path / "nowhere")}
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k",
                               "no_test_has_this_name"], env=env, capture_output=True, text=True, check=False,
                              cwd=Path(__file__).parent.parent)

    stopped = run("true")
    said = stopped.stdout + stopped.stderr
    assert stopped.returncode == 1 and "CI=true, but bubblewrap is not installed" in said, said
    went_on = run("false")
    assert went_on.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, went_on.stdout + went_on.stderr
