"""The files of a build's output (or of `public/`, which a build copies into it), and the
names a site cannot take, refused at build time rather than halfway through a publish.

Symlinks are followed, as a copy that dereferences them (Vite's, build-app.mjs's) reads
them: a linked folder's files are outputs under the link's name. A link that leads
nowhere, or to a folder that holds it (a copy would never end), is an error naming it.
Version-control folders and OS junk (mfe.build.sources.EXCLUDED_NAMES) are no outputs:
`drop_excluded` removes what a build copied of them from `public/`.
"""

from __future__ import annotations

import os
import shutil
import unicodedata
from pathlib import Path

from mfe.build.sources import excluded, real_dir
from mfe.errors import MfeError

RESERVED_PREFIXES = ("_mfe/", "_ca/")
"""Key prefixes of the orchestrator in every bucket: release state (`_mfe/`) and the
content-addressed copies of mutable files (`_ca/`, mfe.publish.versions.ca_key)."""
MAX_KEY_BYTES = 1024
"""S3's limit on a key's UTF-8 length (moto does not enforce it; S3 does)."""
CA_OVERHEAD = len("_ca/") + 20 + len("/")
"""What `ca_key` puts before a mutable file's key: its copy must fit in MAX_KEY_BYTES too."""


def shown(text: str) -> str:
    """`text` printable on one line: undecodable bytes as `\\xNN`, control characters
    escaped (a newline in a file name must not split the message)."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def name_problem(name: str) -> str | None:
    """Why the output file `name` (POSIX, relative to dist/) cannot be a key of the
    site, or None."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "its name is not UTF-8, which S3 keys and URLs need"
    if any(unicodedata.category(c) == "Cc" for c in name):
        return "its name holds a control character (a newline, a tab?), which S3 keys refuse"
    if size + CA_OVERHEAD > MAX_KEY_BYTES:
        return (
            f"its path is {size} bytes as an S3 key; at most "
            f"{MAX_KEY_BYTES - CA_OVERHEAD} fit ({MAX_KEY_BYTES} with the `_ca/` copy's prefix)"
        )
    for prefix in RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f"the '{prefix}' prefix is reserved for the orchestrator's own keys"
    return None


def files_under(folder: Path, what: str, root: Path | None = None) -> dict[str, Path]:
    """Every file under `folder` by its POSIX path relative to it, sorted, through
    symlinks, none `excluded` (nor in an excluded folder); MfeError (starting with
    `what`, such as `build:payments`) naming a link that leads nowhere or into a cycle,
    or a file whose name the site cannot take (relative to `root`, when given)."""
    found: dict[str, Path] = {}
    pending: list[tuple[str, str, tuple[str, ...]]] = [
        (str(folder), "", (os.path.realpath(folder),))
    ]
    while pending:
        path, prefix, chain = pending.pop()
        for entry in os.scandir(path):
            if excluded(entry.name):
                continue
            name = prefix + entry.name
            where = shown(os.path.relpath(entry.path, root) if root else entry.path)
            if entry.is_symlink() and not os.path.exists(entry.path):
                raise MfeError(
                    f"{what}: {where}: a symlink to {shown(os.readlink(entry.path))}, "
                    "which does not exist; restore its target or remove the link"
                )
            if entry.is_dir():
                real = real_dir(entry, chain)
                if real is None:
                    raise MfeError(
                        f"{what}: {where}: a symlink to a folder that holds it "
                        f"({shown(os.readlink(entry.path))}), which a copy would follow without "
                        "end; remove the link"
                    )
                pending.append((entry.path, name + "/", (*chain, real)))
            elif problem := name_problem(name):
                raise MfeError(f"{what}: {where}: {problem}; rename it")
            else:
                found[name] = Path(entry.path)
    return dict(sorted(found.items()))


def drop_excluded(folder: Path) -> None:
    """Remove the `excluded` files and folders a build wrote under `folder` (its copy of
    `public/`, nested `.git/` and `.DS_Store` included), so the output, the dist/ served by
    `doit serve` and the manifest list the same files. Links are removed, not followed."""
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in [*dirnames, *filenames]:
            if not excluded(name):
                continue
            path = os.path.join(dirpath, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        dirnames[:] = [d for d in dirnames if not excluded(d)]
