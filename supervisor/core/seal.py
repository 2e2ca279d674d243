"""The keyed digest of stored contracts: what tells the contract the engine stored from one changed behind its
back (an agent without a sandbox can write the store: it is a file of the same user).

The key is 32 random bytes in `.git/supervisor/contract.key` (0600): in the state directory, which a sandbox
hides from agents and which outlives a reboot (the runtime directory does not: a key there would be made anew
at each boot, and every contract would then fail). The digest is an HMAC-SHA256 of the agent's name and its
contract text, kept in the record beside the contract (`extra["contract_digest"]`). Without a sandbox an agent
can read the key too: this catches accidents and careless agents, not a determined process of the same user.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from pathlib import Path

from supervisor.core.model import Agent
from supervisor.files import write_atomically

log = logging.getLogger(__name__)

DIGEST = "contract_digest"  # in an agent's record: the digest of its contract, made by the engine
KEY_BYTES = 32


class Seal:
    """Signs agents' contracts and checks them, with the key at `key_path` (made when missing)."""

    def __init__(self, key_path: Path) -> None:
        self.key_path = key_path
        self.made = False  # the key was made now: records signed with an earlier one fail
        self.key = self._load()

    def _load(self) -> bytes:
        try:
            fd = os.open(self.key_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return self._make()
        with os.fdopen(fd, "rb") as handle:
            if os.fstat(handle.fileno()).st_mode & 0o077:
                os.fchmod(handle.fileno(), 0o600)
            key = handle.read()
        if len(key) != KEY_BYTES:
            log.warning("%s holds %d bytes, not a key of %d: a new key is made", self.key_path, len(key), KEY_BYTES)
            return self._make(replace=True)
        return key

    def _make(self, *, replace: bool = False) -> bytes:
        key = secrets.token_bytes(KEY_BYTES)
        if replace:
            write_atomically(self.key_path, key, mode=0o600, durable=True)
        else:
            try:
                fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o600)
            except FileExistsError:
                return self._load()  # another process made it meanwhile
            with os.fdopen(fd, "wb") as out:
                out.write(key)
                out.flush()
                os.fsync(out.fileno())
        self.made = True
        return key

    def digest(self, agent: Agent) -> str:
        contract = agent.extra.get("contract")
        message = json.dumps([agent.name, contract if isinstance(contract, str) else None], ensure_ascii=False)
        return hmac.new(self.key, message.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()

    def sign(self, agent: Agent) -> None:
        agent.extra[DIGEST] = self.digest(agent)

    def holds(self, agent: Agent) -> bool:
        """Whether the agent's stored digest is the one its contract has (False without a digest)."""
        found = agent.extra.get(DIGEST)
        return isinstance(found, str) and hmac.compare_digest(found, self.digest(agent))


__all__ = ["DIGEST", "Seal"]
