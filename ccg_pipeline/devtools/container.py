"""What a container of `deploy/Dockerfile` sees of its file system, without a Docker engine.

The native deployment runs the services as the current user, which hides the failure an
operator meets first: the compose services run as uid 50000, and a named volume mounted where
the image has no directory starts out owned by root, so nothing can be written there. This
module reads the Dockerfile far enough to know who owns each path the image creates (`USER`,
`COPY --chown`, and `RUN` lines of `mkdir -p`, `install -d` and `chown`), prepares each volume
as Docker would (a copy of the image's directory and its owner when the image has one, an empty
root-owned directory when it has not), makes read-only mounts unwritable for that user, and runs
a service's command as the compose `user:`.

It is a reading of the forms this project's Dockerfile uses, not a Dockerfile interpreter: a
`RUN` line of another form changes no ownership here, and `test_container_faithful.py` would
then fail for the path it needs, which is the point.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ccg_pipeline.deploy import compose

DOCKERFILE = compose.REPO_ROOT / "deploy" / "Dockerfile"
# The user each base image ends with, and the users it defines (name -> uid).
BASE_IMAGES = {"apache/airflow": ("airflow", {"root": 0, "airflow": 50000})}


@dataclass
class Image:
    """Owners (uid) of the directories and files the image's build creates."""

    users: dict[str, int]
    owners: dict[PurePosixPath, int] = field(default_factory=dict)

    def owner(self, path: str) -> int | None:
        """The uid that owns `path` in the image, None when the image has no such path."""
        return self.owners.get(PurePosixPath(path))

    def _uid(self, who: str) -> int:
        name = who.split(":")[0]
        return int(name) if name.isdigit() else self.users[name]

    def _create(self, path: str, uid: int) -> None:
        target = PurePosixPath(path)
        for parent in reversed(target.parents):
            if str(parent) != "/":
                self.owners.setdefault(parent, 0)
        self.owners[target] = uid


def read_image(dockerfile: Path = DOCKERFILE) -> Image:
    """The ownership a build of `dockerfile` leaves, from its FROM, USER, COPY and RUN lines."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    base = lines[0].split()[1].split(":")[0]
    user, users = BASE_IMAGES.get(base, ("root", {"root": 0}))
    image = Image(dict(users))
    for line in lines[1:]:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "USER":
            user = rest.strip()
        elif keyword == "COPY":
            words = shlex.split(rest)
            chown = next((w.split("=", 1)[1] for w in words if w.startswith("--chown=")), None)
            destination = [w for w in words if not w.startswith("--")][-1]
            image._create(destination.rstrip("/") or "/", image._uid(chown or user))
        elif keyword == "RUN":
            for command in re.split(r"&&|;", rest):
                _run(image, shlex.split(command), image._uid(user))
    return image


def _run(image: Image, words: list[str], uid: int) -> None:
    if not words:
        return
    program, args = words[0], words[1:]
    paths = [a for a in args if a.startswith("/")]
    if program == "mkdir":
        for path in paths:
            image._create(path, uid)
    elif program == "install" and "-d" in args:
        owner = args[args.index("-o") + 1] if "-o" in args else None
        for path in paths:
            image._create(path, image._uid(owner) if owner else uid)
    elif program == "chown" and args:
        new_owner = image._uid(next(a for a in args if not a.startswith("-")))
        for path in paths:
            if image.owner(path) is not None:
                image.owners[PurePosixPath(path)] = new_owner


def prepare_volume(image: Image, mount: str, where: Path) -> Path:
    """A new named volume mounted at `mount`: Docker copies the image's directory there (with
    its owner), or creates an empty directory owned by root when the image has none."""
    where.mkdir(parents=True, exist_ok=True)
    owner = image.owner(mount)
    os.chown(where, 0 if owner is None else owner, 0)
    where.chmod(0o755)
    return where


def make_read_only(tree: Path) -> None:
    """A `:ro` mount as the container's user meets it: nothing in it writable by them."""
    for path in [tree, *tree.rglob("*")]:
        os.chown(path, 0, 0, follow_symlinks=False)
        mode = path.stat().st_mode
        path.chmod(stat.S_IMODE(mode) & ~0o222 | 0o444 | (0o111 if path.is_dir() else 0))


def _blocked_ancestor(path: Path) -> tuple[Path, Path] | None:
    """(the first folder above `path` that others cannot enter, its child towards `path`)."""
    parts = path.resolve().parts
    for depth in range(1, len(parts) - 1):
        folder = Path(*parts[: depth + 1])
        if not folder.stat().st_mode & stat.S_IXOTH:
            return folder, folder / parts[depth + 1]
    return None


def _reachable(paths: list[Path]) -> str:
    """Shell lines that, in a private mount namespace, make `paths` reachable for any user as
    they are in the image (its Python lives in world-readable folders; here a folder such as
    /root may hide the interpreter): a tmpfs over each closed folder, with the needed child
    bound back into it. Nothing changes outside the namespace."""
    plan: dict[Path, set[Path]] = {}
    for path in paths:
        found = _blocked_ancestor(path)
        if found:
            plan.setdefault(found[0], set()).add(found[1])
    lines = []
    for blocked, children in plan.items():
        stashes = {child: Path(tempfile.mkdtemp(prefix="ccg-stash-")) for child in children}
        lines += [
            f"mount --bind {shlex.quote(str(c))} {shlex.quote(str(t))}" for c, t in stashes.items()
        ]
        lines.append(f"mount -t tmpfs -o mode=755 tmpfs {shlex.quote(str(blocked))}")
        for child, stash in stashes.items():
            lines += [
                f"mkdir -p {shlex.quote(str(child))}",
                f"mount --bind {shlex.quote(str(stash))} {shlex.quote(str(child))}",
            ]
    return "\n".join(lines)


def run_as(
    user: str, command: list[str], env: dict[str, str], log: Path, timeout: float = 600
) -> int:
    """Run `command` as compose's `user:` ("uid:gid"), with no supplementary groups, in a mount
    namespace where this Python and the repository are reachable as in the image."""
    uid, _, gid = user.partition(":")
    needed = [Path(sys.base_prefix), Path(sys.prefix), compose.REPO_ROOT]
    script = "set -e\n" + _reachable(needed) + '\nexec setpriv "$@"\n'
    switch = [f"--reuid={uid}", f"--regid={gid or 0}", "--clear-groups", "--", *command]
    with log.open("ab") as out:
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *switch],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        ).returncode
