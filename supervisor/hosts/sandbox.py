"""An agent's sandbox on this machine: the bubblewrap command line built from a `Spec` by the one core every
machine shares (supervisor/hostside/sandbox.py, which the host program runs on each host too). See that module
for what an agent sees."""

from __future__ import annotations

from supervisor.hostside.sandbox import (
    AS_ROOT_ID,
    DOES_NOT_RUN,
    GITCONFIG,
    MASKED_IN_HOME,
    NOT_INSTALLED,
    SANDBOX_MARK,
    Spec,
    argv,
    folders_to_create,
    from_home,
    launcher,
    probe,
    unique,
    user_runtime_folders,
)

__all__ = [
    "AS_ROOT_ID",
    "DOES_NOT_RUN",
    "GITCONFIG",
    "MASKED_IN_HOME",
    "NOT_INSTALLED",
    "SANDBOX_MARK",
    "Spec",
    "argv",
    "folders_to_create",
    "from_home",
    "launcher",
    "probe",
    "unique",
    "user_runtime_folders",
]
