"""Which files are an app's sources: one definition for the build tasks' file_dep, the
dev server's watcher and CI's affected apps.

An app's sources are every file under `apps/<app>/` except those in output and cache
folders (`IGNORED_DIRS`) and dot folders, editors' temporary files (`editor_temporary`)
and dangling symlinks (nothing a build can read; doit would fail on them). Dot files
stay sources: apps need `.babelrc`, `.browserslistrc`, `.npmrc`, `.env`. Under
`public/`, which a build copies into dist/ whole, no folder is skipped: its dot folders
(`.well-known/`) are published, so they are sources too. Nowhere are version-control
folders and OS junk files (`EXCLUDED_NAMES`) sources, nor are they published (the
build drops them from its output, mfe.build.outputs). Symlinked files
and folders are followed (the bundler reads through them), each file named by its path
through the link; a link back to a folder the walk is already in (a cycle) is not
entered again. Walked with `os.scandir`, stat-ing only symlinks: a no-op `doit` on a
10,000-file monorepo must stay fast.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mfe.config import App, Project

IGNORED_DIRS = frozenset({"node_modules", "dist", ".cache", ".turbo", ".vite"})
"""Folders inside an app that are outputs or caches, never build inputs."""
_EDITOR_TEMPORARY = re.compile(r"\.#.*|#.*#|.*~|\..+\.sw[a-px]|4913|sed[A-Za-z0-9]{6}")
"""Emacs' lock links (`.#x.js`) and autosaves (`#x.js#`), backups (`x.js~`), vim's swap
files (`.x.js.swp`, `.swo`, ..., `.swx`), the file vim writes to test a folder (`4913`)
and GNU `sed -i`'s copy (`sedAb12Cd`, renamed over the file it edits)."""


EXCLUDED_NAMES = frozenset({".git", ".hg", ".svn", ".DS_Store", "Thumbs.db", "desktop.ini"})
"""Names (files or folders) never an input and never published, anywhere in an app: a
nested repository (`public/vendor/.git/`: its commits must not rebuild, its hooks and
config must not go public) and what file browsers leave (macOS, Windows)."""

PUBLIC_DIR = "public"
"""The app folder a build copies into dist/ as it is (build-app.mjs, Vite)."""


def excluded(name: str) -> bool:
    """A file or folder that is neither a source nor an output (`EXCLUDED_NAMES`)."""
    return name in EXCLUDED_NAMES


def ignored_dir(name: str) -> bool:
    """A folder whose files are not sources (outputs, caches, dot folders), outside
    `public/` (see `skipped_dir`)."""
    return name in IGNORED_DIRS or name.startswith(".")


def skipped_dir(parts: Sequence[str]) -> bool:
    """Whether the folder at `parts` (relative to its app folder) holds no sources: one of
    them is an `ignored_dir`, and it is not in `public/`, every file of which is copied
    into dist/ (dot folders such as `.well-known/` too), or one of them is `excluded`."""
    if any(excluded(p) for p in parts):
        return True
    return bool(parts) and parts[0] != PUBLIC_DIR and any(ignored_dir(p) for p in parts)


def editor_temporary(name: str) -> bool:
    """A file an editor writes next to the one being edited: saving it must not rebuild.

    Every such name starts with `.`, `#` or `sed`, ends with `~` or is `4913`: the other
    names (nearly all of a no-op `doit`'s thousands) skip the regex."""
    if name[:1] not in (".", "#") and name[-1:] != "~" and name != "4913" and name[:3] != "sed":
        return False
    return _EDITOR_TEMPORARY.fullmatch(name) is not None


_MAYBE_TEMPORARY = frozenset(".#s4")
"""First characters of the names `editor_temporary` may accept but for those ending in `~`:
`walk` asks it about no other file (one set lookup a file instead of a call)."""


def app_of(project: Project, relative: str) -> str | None:
    """The app whose sources hold `relative` (a root-relative POSIX path of a file, or of
    a folder such as a freshly swapped `dist/`), or None."""
    parts = relative.split("/")
    if len(parts) < 3 or parts[0] != "apps" or parts[1] not in project.apps:
        return None
    inside = parts[2:]
    if skipped_dir(inside[:-1]) or excluded(inside[-1]):
        return None
    if inside[-1] in IGNORED_DIRS and inside[0] != PUBLIC_DIR:
        return None
    if editor_temporary(parts[-1]):
        return None
    return parts[1]


def app_sources(app: App) -> list[Path]:
    """Every file under the app that its build may read (added/deleted files count)."""
    return [app.path / name for name in walk(app.path).files]


def source_files(project: Project, app: App) -> list[str]:
    """`app_sources` as root-relative POSIX strings (doit's file_dep)."""
    prefix = app.path.relative_to(project.root).as_posix()
    return walk(app.path, f"{prefix}/").files


def file_deps(project: Project, app: App) -> list[str]:
    """What `build:<app>` reads, root-relative: its sources and the shared [build] inputs."""
    return source_files(project, app) + list(project.build.inputs)


def linked_folders(app: App) -> dict[Path, Path]:
    """The symlinked folders among the app's sources (nested ones too): link path -> its
    real target. Git and watchdog see only the link, so CI and the watcher look here."""
    return {app.path / name: Path(target) for name, target in walk(app.path).links.items()}


@dataclass
class Walk:
    files: list[str] = field(default_factory=list)
    """Sorted POSIX paths, relative to the walked folder (after `walk`'s `named` prefix),
    of its sources."""
    links: dict[str, str] = field(default_factory=dict)
    """Symlinked folders walked: relative POSIX path -> real path of the target."""


def walk(folder: Path, named: str = "") -> Walk:
    """The sources under `folder`, following symlinked files and folders; each file's name
    starts with `named` (a no-op `doit` takes them as they come, with no second pass).

    Each folder pending carries the real paths of the folders the walk went through to
    reach it: a link whose target is one of them or holds one would walk them again
    without end, so it is skipped (its files are sources through the real path)."""
    found = Walk()
    files = found.files
    pending: list[tuple[str, str, tuple[str, ...]]] = [
        (str(folder), "", (os.path.realpath(folder),))
    ]
    while pending:
        path, prefix, chain = pending.pop()
        try:
            entries = list(os.scandir(path))
        except OSError:  # removed while walked, or unreadable (os.walk skips it too)
            continue
        named_prefix = named + prefix
        for entry in entries:
            name = entry.name
            if excluded(name):
                continue
            if entry.is_file(follow_symlinks=False):  # nearly all: no link, no folder
                if (name[0] in _MAYBE_TEMPORARY or name[-1] == "~") and editor_temporary(name):
                    continue
                files.append(named_prefix + name)
            elif entry.is_dir():
                if ignored_dir(name) and not prefix.startswith(PUBLIC_DIR + "/"):
                    continue
                real = real_dir(entry, chain)
                if real is not None:
                    pending.append((entry.path, prefix + name + "/", (*chain, real)))
                    if entry.is_symlink():
                        found.links[prefix + name] = real
            elif editor_temporary(name):
                continue
            elif not entry.is_symlink() or os.path.exists(entry.path):
                files.append(named_prefix + name)
    files.sort()
    return found


def real_dir(entry: os.DirEntry[str], chain: tuple[str, ...]) -> str | None:
    """The real path of the folder `entry`, reached through the real folders `chain`, or
    None for a symlink whose target is on the chain or holds part of it (a cycle)."""
    if not entry.is_symlink():
        return os.path.join(chain[-1], entry.name)
    target = os.path.realpath(entry.path)
    inside = os.path.join(target, "")  # "/" stays "/"
    if any(real == target or real.startswith(inside) for real in chain):
        return None
    return target
