"""Which cache scope a run gets, from real git refs and GitHub's variables."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mfe.ci import signing, trust
from mfe.config import load_project
from mfe.errors import MfeError

SECRET = "k" * 40


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "apps" / "shell").mkdir(parents=True)
    (root / "apps" / "shell" / "package.json").write_text('{"scripts": {"build": "x"}}')
    (root / "mfe.toml").write_text('[project]\nname = "trust"\n[apps.shell]\nrole = "parent"\n')
    subprocess.run(["git", "init", "-q", "-b", "trunk", str(root)], check=True)
    return root


def test_default_branch_is_trusted_pull_requests_and_others_are_not(
    repo: Path, tmp_path: Path
) -> None:
    project = load_project(repo)
    here = trust.resolve(project, {"MFE_CACHE_KEY": SECRET})  # checked out: trunk, no origin
    # No GitHub event and no origin/HEAD: the default branch is taken to be main.
    assert (here.ref, here.trusted, here.write_scope) == ("refs/heads/trunk", False, "ref/trunk")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"repository": {"default_branch": "trunk"}}))
    github = {"MFE_CACHE_KEY": SECRET, "GITHUB_EVENT_PATH": str(event)}
    main = trust.resolve(project, {**github, "GITHUB_REF": "refs/heads/trunk"})
    assert (main.trusted, main.write_scope, main.read_scopes) == (True, "trusted", ("trusted",))
    assert main.why == (
        "refs/heads/trunk is trusted (the default branch; [ci] trusted_refs in mfe.toml names "
        "others): reads and writes the shared cache"
    )
    pr = trust.resolve(project, {**github, "GITHUB_REF": "refs/pull/42/merge"})
    assert (pr.trusted, pr.write_scope, pr.read_scopes) == (False, "pr/42", ("trusted", "pr/42"))
    assert pr.pull_request == 42
    branch = trust.resolve(project, {**github, "GITHUB_REF": "refs/heads/feature/x y"})
    assert (branch.trusted, branch.write_scope) == (False, "ref/feature-x-y")
    assert trust.resolve(project, {"GITHUB_REF": "refs/heads/trunk"}).secret is None


def test_configured_trusted_refs_replace_the_default_branch(repo: Path) -> None:
    config = repo / "mfe.toml"
    config.write_text(config.read_text() + '[ci]\ntrusted_refs = ["release/*", "refs/tags/v*"]\n')
    project = load_project(repo)
    env = {"MFE_CACHE_KEY": SECRET}
    assert trust.resolve(project, {**env, "GITHUB_REF": "refs/heads/release/2"}).trusted
    tag = trust.resolve(project, {**env, "GITHUB_REF": "refs/tags/v1.0"})
    assert (
        tag.trusted and "trusted ([ci] trusted_refs: refs/heads/release/*, refs/tags/v*)" in tag.why
    )
    assert not trust.resolve(project, {**env, "GITHUB_REF": "refs/heads/main"}).trusted


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(MfeError, match="at least 32"):
        signing.load_secret({"MFE_CACHE_KEY": "short"})
    assert signing.load_secret({"MFE_CACHE_KEY": "  "}) is None


def test_only_a_trusted_ref_goes_live(repo: Path, tmp_path: Path) -> None:
    """One rule for `doit ci` and `doit ci publish`: live, a pull request's preview, or
    nowhere, with a line naming the ref and what makes it deploy."""
    project = load_project(repo)

    def goes(ref: str) -> trust.Destination:
        return trust.destination(trust.resolve(project, {"MFE_CI_REF": ref} if ref else {}))

    assert goes("refs/heads/main") == trust.Destination("live")
    assert goes("refs/pull/42/merge") == trust.Destination("preview", preview="pr-42")
    branch = goes("")  # the checked-out branch: trunk, not the default branch (main)
    assert (branch.where, branch.note) == (
        "none",
        "not published: refs/heads/trunk is not a trusted ref (trusted: refs/heads/main); "
        "to deploy it, add it to [ci] trusted_refs in mfe.toml, or run `doit publish` from a "
        "checkout of it",
    )
    who = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(
        ["git", "-C", str(repo), *who, "commit", "-qm", "c", "--allow-empty"], check=True
    )
    subprocess.run(["git", "-C", str(repo), "checkout", "-q", "--detach"], check=True)
    note = goes("").note
    assert note.startswith("not published: a detached HEAD is no trusted ref")
    assert "set MFE_CI_REF (or GITHUB_REF)" in note and "trusted_refs" not in note


def test_a_folder_without_git_is_named_and_never_trusted(tmp_path: Path) -> None:
    root = tmp_path / "export"  # no .git here or above
    (root / "apps" / "shell").mkdir(parents=True)
    (root / "apps" / "shell" / "package.json").write_text('{"scripts": {"build": "x"}}')
    (root / "mfe.toml").write_text('[project]\nname = "trust"\n[apps.shell]\nrole = "parent"\n')
    project = load_project(root)
    who = trust.resolve(project, {"MFE_CACHE_KEY": SECRET, "GITHUB_REF": "refs/heads/main"})
    assert (who.trusted, who.write_scope) == (False, "ref/no-git")
    assert who.why.startswith(f"{root} is not a git checkout")
    assert "detached" not in who.why
    goes = trust.destination(who)
    assert goes.where == "none" and f"{root} is not a git checkout" in goes.note
    with pytest.raises(MfeError, match=f"{root} is not a git checkout"):
        trust.head_commit(root)
