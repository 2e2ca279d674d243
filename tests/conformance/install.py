"""Install the pinned agent CLIs for the conformance suite, once per pin, into a cache folder of their own.

    python tests/conformance/install.py [CLI...]          install (all pins by default), print each binary
    python tests/conformance/install.py --bump [CLI...]   move the pins to the registries' latest releases

Each CLI goes into `${SUPERVISOR_CONFORMANCE_CACHE:-~/.cache/supervisor-conformance}/<cli>-<version>/` (npm
`--prefix` there; a venv and pip for aider), never into the user's environment. A file lock per pin lets xdist
workers ask at once: the first installs, the others wait and reuse it. A pin counts as installed once its
`.installed` stamp is written, after the install succeeded and the binary answered `--version`.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

PINS_FILE = Path(__file__).resolve().parent / "pins.json"


def pins() -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = json.loads(PINS_FILE.read_text())
    return data


def cache_root() -> Path:
    folder = os.environ.get("SUPERVISOR_CONFORMANCE_CACHE")
    return Path(folder).expanduser() if folder else Path.home() / ".cache" / "supervisor-conformance"


def folder(cli: str) -> Path:
    pin = pins()[cli]
    return cache_root() / f"{cli}-{pin['version']}"


def binary(cli: str) -> Path:
    pin = pins()[cli]
    if pin["installer"] == "pip":
        return folder(cli) / "venv" / "bin" / pin["bin"]
    return folder(cli) / "node_modules" / ".bin" / pin["bin"]


def _run(args: list[str], **kwargs: Any) -> None:
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def install(cli: str) -> Path:
    """The pinned CLI's executable, installed first if this pin is not in the cache yet."""
    pin = pins()[cli]
    target = folder(cli)
    target.mkdir(parents=True, exist_ok=True)
    stamp = target / ".installed"
    with open(target.with_name(target.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and binary(cli).exists():
            return binary(cli)
        if pin["installer"] == "npm":
            if shutil.which("npm") is None:
                raise SystemExit(f"the conformance suite installs {pin['package']} with npm, which is not on PATH: "
                                 "install node and npm")
            spec = f"{pin['package']}@{pin['version']}"
            _run(["npm", "install", "--prefix", str(target), "--no-audit", "--no-fund", "--loglevel=error", spec],
                 timeout=1200)
        else:
            spec = f"{pin['package']}=={pin['version']}"
            _run([sys.executable, "-m", "venv", str(target / "venv")], timeout=300)
            _run([str(target / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet", spec], timeout=1800)
        version = subprocess.run([str(binary(cli)), "--version"], capture_output=True, text=True, timeout=120,
                                 env={**os.environ, "HOME": str(target)})
        if pin["version"] not in version.stdout + version.stderr:
            raise RuntimeError(f"{binary(cli)} --version said {version.stdout.strip()!r}, not {pin['version']}")
        stamp.write_text(version.stdout.strip() + "\n")
    return binary(cli)


def latest(cli: str) -> str:
    """The newest release the registry offers for this CLI."""
    pin = pins()[cli]
    if pin["installer"] == "npm":
        done = subprocess.run(["npm", "view", pin["package"], "version"], capture_output=True, text=True,
                              timeout=120, check=True)
        return done.stdout.strip()
    done = subprocess.run([sys.executable, "-m", "pip", "index", "versions", pin["package"]], capture_output=True,
                          text=True, timeout=120, check=True)
    # "aider-chat (0.86.2)" on the first line
    return done.stdout.split("(", 1)[1].split(")", 1)[0].strip()


def bump(clis: list[str]) -> dict[str, tuple[str, str]]:
    """Move the named pins to the latest releases; returns {cli: (old, new)} for those that moved."""
    data = pins()
    moved: dict[str, tuple[str, str]] = {}
    for cli in clis:
        new = latest(cli)
        if new and new != data[cli]["version"]:
            moved[cli] = (data[cli]["version"], new)
            data[cli]["version"] = new
    lines = ",\n".join(f"  {json.dumps(cli)}: {json.dumps(pin)}" for cli, pin in data.items())
    PINS_FILE.write_text("{\n" + lines + "\n}\n")
    return moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clis", nargs="*", help="which CLIs (default: every pin)")
    parser.add_argument("--bump", action="store_true", help="move the pins to the latest releases first")
    args = parser.parse_args(argv)
    clis = args.clis or list(pins())
    unknown = [c for c in clis if c not in pins()]
    if unknown:
        parser.error(f"unknown CLI {unknown[0]!r}; pinned: {', '.join(pins())}")
    if args.bump:
        for cli, (old, new) in bump(clis).items():
            print(f"{cli}: {old} -> {new}")
    for cli in clis:
        print(f"{cli}: {install(cli)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
