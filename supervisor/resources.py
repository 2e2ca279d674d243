"""Files shipped with the package: role templates (`contracts/`) and git hook scripts (`hooks/`).

In a wheel they sit in `supervisor/_data/` (pyproject force-includes the top-level folders there); in a
source checkout (an editable install) they are the top-level folders themselves.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The shipped folder `name` ("contracts" or "hooks")."""
    installed = _PACKAGE / "_data" / name
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / name
