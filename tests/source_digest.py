"""A content digest of a generated source folder, for the generators' determinism tests."""

from __future__ import annotations

import gzip
import hashlib
import sqlite3
from pathlib import Path


def folder_digest(folder: Path) -> str:
    """SHA-256 over every file's path and content: gzip files decompressed, SQLite databases by
    their SQL dump (their bytes vary with page layout, their content does not)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        if path.suffix == ".gz":
            digest.update(gzip.decompress(path.read_bytes()))
        elif path.suffix == ".db":
            with sqlite3.connect(path) as db:
                for line in db.iterdump():
                    digest.update(line.encode())
            db.close()
        else:
            digest.update(path.read_bytes())
    return digest.hexdigest()
