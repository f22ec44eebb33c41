"""Files only their owner may read, written atomically: subject-request exports, CRM
instructions, marketing lists and evidence reports. One writer, so every such file gets the same
permissions and none is ever seen half-written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def private_dir(path: Path) -> None:
    """Create the folder (and parents) owner-only; an existing folder is made owner-only too."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def write_private(path: Path, text: str) -> None:
    """Write a 0600 file under a temporary hidden name, then rename it into place."""
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    os.replace(partial, path)


def copy_private(source: Path, path: Path) -> None:
    """Copy a file byte for byte into a 0600 file, under a temporary hidden name, then rename it
    into place (whoever owned the source, the copy is its writer's own)."""
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle, source.open("rb") as original:
        shutil.copyfileobj(original, handle)
    os.replace(partial, path)
