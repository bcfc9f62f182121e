"""Which part of the build cache a CI run may read and write, from the git ref it builds.

Runs on a trusted ref (default: the repository's default branch; `[ci] trusted_refs`)
read and write the shared prefix. Pull-request runs read the shared prefix and their own
`pr/<number>` prefix and write only the latter; other refs likewise get `ref/<name>`.
Without the `MFE_CACHE_KEY` secret nothing can be verified, so the cache is off.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from mfe.ci import signing
from mfe.ci.affected import git
from mfe.config import Project
from mfe.errors import MfeError

TRUSTED = "trusted"


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

    @property
    def pull_request(self) -> int | None:
        match = re.fullmatch(r"pr/(\d+)", self.write_scope)
        return int(match.group(1)) if match else None


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
    return Trust(ref, trusted, scope, reads, secret, why)


def require_secret(trust: Trust) -> bytes:
    if trust.secret is None:
        raise MfeError(
            f"{signing.SECRET_VAR} is not set: the fan-out CI jobs share their builds through "
            "the signed build cache; add the secret (README, 'CI') to the workflow"
        )
    return trust.secret
