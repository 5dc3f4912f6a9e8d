"""Where a user's model file finds its own imports: the import root (standard library only, so the CLI's root
command can check ``--import-path`` without loading torch).

A model file inside a repository imports its siblings the way the repository's scripts do, from the root they run
from (``from utils import logger`` in ``repo/models/enc.py``). As ``python -m``, uvicorn and pytest do, csibench
resolves such imports from the working directory, or from ``--import-path DIR`` (``CSIBENCH_IMPORT_PATH``) when
the repository root is elsewhere. The root goes to child processes through the environment, and into each
manifest's ``source`` so a later rebuild (the measuring worker, a ``bench`` run from another directory) finds it.
"""

from __future__ import annotations

import os
from pathlib import Path

from csibench.errors import UsageError

IMPORT_PATH_ENV = "CSIBENCH_IMPORT_PATH"


def check_import_dir(value: str | Path, what: str = "--import-path") -> Path:
    """The absolute directory ``value`` names; a missing path or a file is one line (exit 2)."""
    path = Path(value).expanduser()
    why = "no such directory" if not path.exists() else "a file, not a directory" if not path.is_dir() else None
    if why:
        raise UsageError(f"{what} {value}: {why}; give the directory your model file's imports are resolved from "
                         f"(the repository root its scripts run from)")
    return path.resolve()


def use_import_root(value: str | Path) -> Path:
    """Check ``value`` and make it the import root of this process and of the processes it starts."""
    root = check_import_dir(value)
    os.environ[IMPORT_PATH_ENV] = str(root)
    return root


def import_root() -> Path:
    """``CSIBENCH_IMPORT_PATH`` when set (checked), else the working directory."""
    given = os.environ.get(IMPORT_PATH_ENV)
    return check_import_dir(given, IMPORT_PATH_ENV) if given else Path.cwd().resolve()
