"""Which part of the build cache a CI run may read and write, from the git ref it builds.

Runs on a trusted ref (default: the repository's default branch; `[ci] trusted_refs`)
read and write the shared prefix. Pull-request runs read the shared prefix and their own
`pr/<number>` prefix and write only the latter; other refs likewise get `ref/<name>`.
Without the `MFE_CACHE_KEY` secret nothing can be verified, so the cache is off.

The same ref decides where a run's build goes (`destination`): only a trusted ref publishes
live, a pull request gets its preview `pr-<n>`, any other ref (or a folder that is not a git
checkout) is built, tested and cached but not published.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mfe.ci import signing
from mfe.ci.affected import git, is_checkout, not_a_checkout
from mfe.config import Project
from mfe.errors import MfeError

TRUSTED = "trusted"
NO_GIT = "no-git"


@dataclass(frozen=True)
class Trust:
    ref: str
    """The git ref being built (`refs/heads/main`, `refs/pull/7/merge`, or '' if detached)."""
    trusted: bool
    write_scope: str
    """`trusted`, `pr/<n>` or `ref/<name>`: the only prefix this run writes."""
    read_scopes: tuple[str, ...]
    """Looked up in this order: the shared entries first, then the run's own."""
    secret: bytes | None
    why: str
    checkout: bool = True
    """False when the project root is not in a git checkout (then nothing is trusted)."""
    root: str = ""
    patterns: tuple[str, ...] = ()
    """The trusted refs' patterns (the default branch's, unless `[ci] trusted_refs`)."""

    @property
    def pull_request(self) -> int | None:
        match = re.fullmatch(r"pr/(\d+)", self.write_scope)
        return int(match.group(1)) if match else None


def head_commit(root: Path) -> str:
    """HEAD's commit id, or an error naming the folder when there is no git checkout."""
    if not is_checkout(root):
        raise MfeError(
            f"{not_a_checkout(root)}: the CI fan-out (ci_plan, ci shard=K/N, ci publish) "
            "hands one commit from job to job; run it in a clone of the repository"
        )
    return git(root, "rev-parse", "HEAD").stdout.strip()


def current_ref(project: Project, environ: Mapping[str, str]) -> str:
    """`MFE_CI_REF`, else GitHub's `GITHUB_REF`, else the checked-out branch."""
    ref = environ.get("MFE_CI_REF") or environ.get("GITHUB_REF") or ""
    if ref:
        return ref
    branch = git(project.root, "symbolic-ref", "-q", "HEAD", check=False)
    return branch.stdout.strip() if branch.returncode == 0 else ""


def default_branch(project: Project, environ: Mapping[str, str]) -> str:
    """From the GitHub event (`repository.default_branch`), else `origin/HEAD`, else main."""
    event_path = environ.get("GITHUB_EVENT_PATH")
    if event_path:
        try:
            with open(event_path, encoding="utf-8") as stream:
                branch = json.load(stream).get("repository", {}).get("default_branch")
            if isinstance(branch, str) and branch:
                return branch
        except (OSError, ValueError, AttributeError):
            pass
    origin = git(project.root, "symbolic-ref", "-q", "refs/remotes/origin/HEAD", check=False)
    if origin.returncode == 0 and origin.stdout.strip():
        return origin.stdout.strip().removeprefix("refs/remotes/origin/")
    return "main"


def resolve(project: Project, environ: Mapping[str, str] | None = None) -> Trust:
    environ = os.environ if environ is None else environ
    secret = signing.load_secret(environ)
    root = str(project.root)
    if not is_checkout(project.root):
        scope = f"ref/{NO_GIT}"
        why = f"{not_a_checkout(project.root)}: reads the shared cache, writes only {scope}/"
        return Trust("", False, scope, (TRUSTED, scope), secret, why, False, root)
    ref = current_ref(project, environ)
    patterns = project.ci.trusted_refs or (f"refs/heads/{default_branch(project, environ)}",)
    rule = (
        f"[ci] trusted_refs: {', '.join(patterns)}"
        if project.ci.trusted_refs
        else "the default branch; [ci] trusted_refs in mfe.toml names others"
    )
    pr = re.fullmatch(r"refs/pull/(\d+)/(?:merge|head)", ref)
    if pr:
        scope, trusted = f"pr/{pr.group(1)}", False
        why = f"{ref} is a pull request: reads the shared cache, writes only {scope}/"
    elif ref and any(fnmatch.fnmatchcase(ref, pattern) for pattern in patterns):
        scope, trusted = TRUSTED, True
        why = f"{ref} is trusted ({rule}): reads and writes the shared cache"
    else:
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", ref.removeprefix("refs/heads/")) or "detached"
        scope, trusted = f"ref/{name}", False
        why = (
            f"{ref or 'a detached HEAD'} is not a trusted ref (trusted: {', '.join(patterns)}; "
            f"[ci] trusted_refs in mfe.toml): reads the shared cache, writes only {scope}/"
        )
    reads = (TRUSTED,) if trusted else (TRUSTED, scope)
    return Trust(ref, trusted, scope, reads, secret, why, True, root, tuple(patterns))


@dataclass(frozen=True)
class Destination:
    """Where a CI run's build goes: `live`, the pull request's `preview`, or `none`."""

    where: Literal["live", "preview", "none"]
    preview: str = ""
    """`pr-<n>`, for a preview."""
    note: str = ""
    """For `none`: why nothing is published and how to make this ref deploy."""


def destination(who: Trust) -> Destination:
    """The one rule both `doit ci` and `doit ci publish` follow: only a trusted ref goes
    live; a pull request gets its preview; any other ref (a branch that is not trusted, a
    detached HEAD, no git at all) is built, tested and cached, and published nowhere."""
    if who.trusted:
        return Destination("live")
    if who.pull_request is not None:
        return Destination("preview", preview=f"pr-{who.pull_request}")
    if not who.checkout:
        return Destination(
            "none",
            note=(
                f"not published: {who.root} is not a git checkout, so no ref of it can be "
                "trusted; run CI in a clone of the repository, or publish these files by "
                "hand with `doit publish`"
            ),
        )
    trusted = ", ".join(who.patterns)
    if not who.ref:  # no branch to trust: the job must say which ref it builds
        return Destination(
            "none",
            note=(
                f"not published: a detached HEAD is no trusted ref (trusted: {trusted}); set "
                "MFE_CI_REF (or GITHUB_REF) to the ref the job builds, or check out the branch"
            ),
        )
    return Destination(
        "none",
        note=(
            f"not published: {who.ref} is not a trusted ref (trusted: {trusted}); to deploy "
            "it, add it to [ci] trusted_refs in mfe.toml, or run `doit publish` from a "
            "checkout of it"
        ),
    )


def require_secret(trust: Trust) -> bytes:
    if trust.secret is None:
        raise MfeError(
            f"{signing.SECRET_VAR} is not set: the fan-out CI jobs share their builds through "
            "the signed build cache; add the secret (README, 'CI') to the workflow"
        )
    return trust.secret
