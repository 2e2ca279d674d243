"""The environment for the git processes supervisor runs itself (and for `merge.check`).

A hook or a user's shell may export variables that point git at another repository, index or object store
(`GIT_DIR` inside a hook, `GIT_INDEX_FILE` during a commit): every git process here must work on the
repository of its own working directory, so those are dropped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

LOCATION_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY",
                 "GIT_PREFIX", "GIT_IMPLICIT_WORK_TREE")


def git_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) without the variables that would redirect git."""
    return {key: value for key, value in (os.environ if base is None else base).items() if key not in LOCATION_VARS}
