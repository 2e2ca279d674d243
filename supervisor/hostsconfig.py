"""`hosts:` of supervisor.yaml (SPEC §12): the machines reached over SSH that run agents, and this machine's
capacity (`hosts.local.max_agents`).

Read by supervisor.config's parser (`read_hosts`), checked as every other key: each error names the file and
line. `dir` is kept as written: `~` there is the host user's home, expanded on the host. `ssh_config` is a file
on this machine, its `~` taken from the password database as OpenSSH takes it (not from `$HOME`).
"""

from __future__ import annotations

import os
import pwd
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

import yaml

if TYPE_CHECKING:
    from supervisor.config.reader import _Section
    from supervisor.config.sections import _Parser

LOCAL: Final = "local"
"""The reserved name of this machine: only its `max_agents` may be set."""
DEFAULT_DIR: Final = "~/supervisor"
DEFAULT_MAX_AGENTS: Final = 10
HOST_KEYS: Final = ("ssh", "ssh_config", "dir", "max_agents", "credentials")
LOCAL_KEYS: Final = ("max_agents",)
HOST_NAME: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
CREDENTIALS_HOST: Final = "host"
"""The agents' CLIs log in on the host itself: none of the user's credentials or CLI settings files leave here."""
CREDENTIALS_COPY: Final = "copy"
"""The user's CLI credentials are copied into each agent's CLI folder there (readable by every agent there)."""
EXAMPLE: Final = "e.g. hosts: {box1: {ssh: box1}} (an alias of your ssh config, or user@host)"


@dataclass(frozen=True)
class HostConfig:
    """One host reached over SSH (`supervisor/hosts/ssh.py` builds the ssh command line from it)."""

    name: str
    ssh: str
    """The destination as the user's own ssh takes it: an alias of their ssh config, `user@host`, `ssh://…`."""
    ssh_config: Path | None = None
    """The ssh config file to read (`ssh -F`), absolute; None: OpenSSH's own default files."""
    dir: str = DEFAULT_DIR
    """Where clones and worktrees live on the host, as written (`~` is the host user's home)."""
    max_agents: int = DEFAULT_MAX_AGENTS
    credentials: str = CREDENTIALS_HOST
    """`host` (log in there) or `copy` (the user's CLI credentials copied to each agent's CLI folder there)."""


@dataclass(frozen=True)
class Hosts:
    remote: Mapping[str, HostConfig]
    """Every host over SSH by name, in the file's order (`local` is never among them)."""
    local_max_agents: int | None
    """`hosts.local.max_agents`; None when unset."""


NO_HOSTS: Final = Hosts(MappingProxyType({}), None)


def read_hosts(parser: _Parser, node: yaml.Node | None) -> Hosts:
    """The `hosts:` mapping at `node` (absent or null: none)."""
    if node is None or (isinstance(node, yaml.ScalarNode) and parser.text(node, "hosts") is None):
        return NO_HOSTS
    if not isinstance(node, yaml.MappingNode):
        parser.fail(node, f"'hosts' must map host names to their settings, got {_shown(node)}", EXAMPLE)
    remote: dict[str, HostConfig] = {}
    local: int | None = None
    lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:null":
            parser.fail(key_node, "keys in 'hosts' must be host names", EXAMPLE)
        name = str(key_node.value)
        if name in lines:
            parser.fail(key_node, f"duplicate host 'hosts.{name}'",
                        f"it is already set on line {lines[name]}; keep one")
        lines[name] = key_node.start_mark.line + 1
        if not HOST_NAME.fullmatch(name):
            parser.fail(key_node, f"invalid host name {name!r}",
                        "host names are 1-32 characters of a-z, 0-9 and '-', starting with a letter or digit")
        if not isinstance(value_node, yaml.MappingNode):
            parser.fail(value_node, f"hosts.{name} must be a mapping of its settings, got {_shown(value_node)}",
                        EXAMPLE)
        if name == LOCAL:
            local = _local(parser, value_node)
        else:
            remote[name] = _host(parser, name, value_node)
    return Hosts(MappingProxyType(remote), local)


def _local(parser: _Parser, node: yaml.MappingNode) -> int | None:
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value in HOST_KEYS and key_node.value not in LOCAL_KEYS:
            parser.fail(key_node, f"hosts.local is this machine: '{key_node.value}' cannot be set for it, only "
                        "max_agents", "give the remote host another name, e.g. hosts: {box1: {ssh: box1}}")
    sec = parser.section(node, "hosts.local", LOCAL_KEYS)
    return None if sec.get("max_agents") is None else parser.integer(sec, "max_agents", DEFAULT_MAX_AGENTS, 1)


def _host(parser: _Parser, name: str, node: yaml.MappingNode) -> HostConfig:
    sec = parser.section(node, f"hosts.{name}", HOST_KEYS)
    ssh_node = sec.get("ssh")
    if ssh_node is None:
        parser.fail(node, f"hosts.{name} needs 'ssh': the destination your own ssh accepts", EXAMPLE)
    ssh = parser.required(ssh_node, f"hosts.{name}.ssh", "a destination such as box1 or user@host").strip()
    if not ssh or ssh.startswith("-") or any(c.isspace() for c in ssh):
        parser.fail(ssh_node, f"hosts.{name}.ssh must be one destination (an alias, host or user@host), got {ssh!r}",
                    "ssh options belong in your ssh config: name it with ssh_config")
    return HostConfig(name=name, ssh=ssh, ssh_config=_ssh_config(parser, sec),
                      dir=_dir(parser, sec), max_agents=parser.integer(sec, "max_agents", DEFAULT_MAX_AGENTS, 1),
                      credentials=parser.choice(sec, "credentials", CREDENTIALS_HOST,
                                                (CREDENTIALS_HOST, CREDENTIALS_COPY)))


def _ssh_config(parser: _Parser, sec: _Section) -> Path | None:
    text = parser.opt_string(sec, "ssh_config")
    if text is None:
        return None
    path = Path(os.path.normpath(parser.repo_root / tilde(text)))
    if not path.is_file():
        parser.fail(sec.get("ssh_config"), f"{sec.dotted('ssh_config')}: no such file: {path}",
                    "name the ssh config file to read (ssh -F), or remove the key for OpenSSH's default files")
    return path


def _dir(parser: _Parser, sec: _Section) -> str:
    text = parser.string(sec, "dir", DEFAULT_DIR).strip()
    if not (text.startswith("/") or text == "~" or text.startswith("~/")) or "\n" in text or "\0" in text:
        parser.fail(sec.get("dir"), f"{sec.dotted('dir')} must be a folder on the host: absolute, or under ~/ "
                    f"(the host user's home), got {text!r}", f"e.g. dir: {DEFAULT_DIR}")
    return text


def tilde(text: str) -> str:
    """`~` and `~user` at the start of `text` expanded from the password database, as OpenSSH does."""
    if not text.startswith("~"):
        return text
    head, sep, rest = text[1:].partition("/")
    try:
        home = pwd.getpwnam(head).pw_dir if head else pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return text
    return home + sep + rest if rest or sep else home


def _shown(node: yaml.Node) -> str:
    from supervisor.config.reader import _describe  # loaded: it is what calls read_hosts

    return _describe(node)
