"""Fresh-clone `doit ci`: warm S3 build cache versus building from scratch (issue 6).

Every measured run starts from a new `git clone` (no node_modules, no doit state, no
dist/), like a fresh CI runner, against one moto server that holds the cache and the
site buckets. Warm: the cache holds every app (primed once, untimed). Anchors:
`cache=off` from the same fresh clone, once with `npm ci` (a real fresh runner) and
once with node_modules copied in (build + test + publish only).
Targets: warm under 15% of the cold (`npm ci`) run on this monorepo (issue 14; issue 6
asked 25%), under 25% on a synthetic 20-app monorepo (copies of the Lit `payments` app,
esbuild, a test script each).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import copy_sources, doit, use_port
from run import Case, Context

SYNTHETIC_APPS = 20
AWS_ENV = {
    "MFE_CACHE_KEY": "bench-secret-" + "x" * 32,  # signs the build cache entries
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def start_moto(ctx: Context) -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    log = (ctx.tmp / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **AWS_ENV},
    )
    ctx.stack.callback(log.close)
    ctx.stack.callback(lambda: (proc.terminate(), proc.wait(timeout=10)))
    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return port
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"moto did not start: {(ctx.tmp / 'moto.log').read_text()}")
        time.sleep(0.1)


def git(root: Path, *args: str) -> None:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {root}: {result.stderr}")


def finish_synthetic(target: Path, template: Path, lines: list[str], port: int) -> Path:
    """Write the synthetic monorepo's mfe.toml, resolve its lockfile, commit it."""
    shutil.rmtree(template)
    (target / "mfe.toml").write_text("\n".join(lines))
    subprocess.run(
        ["npm", "install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=target,
        check=True,
    )
    shutil.rmtree(target / "node_modules")  # each run installs its own, as a runner does
    return commit_all(target, port)


def commit_all(root: Path, port: int) -> Path:
    use_port(root, port)
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.email=b@example.com", "-c", "user.name=bench", "add", "-A")
    git(root, "-c", "user.email=b@example.com", "-c", "user.name=bench", "commit", "-qm", "x")
    return root


def this_monorepo(target: Path, port: int) -> Path:
    copy_sources(target)
    return commit_all(target, port)


def synthetic(target: Path, port: int) -> Path:
    """A parent plus 19 Lit fragments copied from `payments`, one npm workspace each."""
    copy_sources(target)
    apps = target / "apps"
    template = apps / "payments"
    for old in list(apps.iterdir()):
        if old.name not in ("mfe-parent", "payments"):
            shutil.rmtree(old)
    lines = ['[project]\nname = "synthetic"\n\n[apps.mfe-parent]\nrole = "parent"\n']
    for index in range(SYNTHETIC_APPS - 1):
        name = f"frag-{index:02d}"
        shutil.copytree(template, apps / name)
        package = json.loads((apps / name / "package.json").read_text())
        package["name"] = name
        (apps / name / "package.json").write_text(json.dumps(package, indent=2) + "\n")
        entry = apps / name / "src" / "main.js"  # each fragment registers its own element
        entry.write_text(entry.read_text().replace("'mfe-payments'", f"'mfe-{name}'"))
        lines.append(f'[apps.{name}]\nelement = "mfe-{name}"\n')
    return finish_synthetic(target, template, lines, port)


class FreshClone:
    """`setup` makes a new clone before every timed run; the runs use `self.path`."""

    def __init__(self, origin: Path, scratch: Path, modules: Path) -> None:
        self.origin, self.scratch, self.modules = origin, scratch, modules
        self.count = 0
        self.path = scratch / "none"

    def setup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self.count += 1
        self.path = self.scratch / f"clone-{self.count}"
        git(self.scratch, "clone", "-q", str(self.origin), str(self.path))

    def ci(self, *args: str, copy_modules: bool = False) -> dict[str, Any]:
        if copy_modules:
            subprocess.run(["cp", "-a", str(self.modules), str(self.path)], check=True)
        doit(self.path, "ci", *args, env=AWS_ENV)
        report = json.loads((self.path / ".mfe" / "local" / "ci-report.json").read_text())
        caches = [app["cache"] for app in report["apps"].values()]
        return {
            "hits": caches.count("hit"),
            "misses": caches.count("miss"),
            "npm_ci": (self.path / "node_modules").is_dir() and not copy_modules,
            "uploaded": sum(app["uploaded"] for app in report["apps"].values()),
        }


def _cases(label: str, origin: Path, ctx: Context, target: float) -> Case:
    scratch = ctx.tmp / f"runs-{label.replace(' ', '-')}"
    scratch.mkdir()
    # node_modules for the 'copied in' anchor, and a priming run that fills the cache.
    (scratch / "primer").mkdir()
    primer = FreshClone(origin, scratch / "primer", Path())
    primer.setup()
    doit(primer.path, "install")
    modules = scratch / "node_modules"
    shutil.copytree(primer.path / "node_modules", modules, symlinks=True)
    doit(primer.path, "ci", env=AWS_ENV)
    clone = FreshClone(origin, scratch, modules)
    return Case(
        name=f"fresh-clone doit ci, warm cache, {label}",
        run=lambda: clone.ci(),
        setup=clone.setup,
        anchors={
            "cold: cache=off, npm ci": lambda: clone.ci("cache=off"),
            "cold: cache=off, node_modules copied": lambda: clone.ci(
                "cache=off", copy_modules=True
            ),
        },
        target=f"warm < {target:.0%} of cold (npm ci)",
        check=lambda row: row["anchors"]["cold: cache=off, npm ci"]["ratio"] < target,
    )


def cases(ctx: Context) -> Iterator[Case]:
    port = start_moto(ctx)
    yield _cases("this monorepo", this_monorepo(ctx.tmp / "origin-repo", port), ctx, 0.15)
    origin = synthetic(ctx.tmp / "origin-synthetic", port)
    yield _cases(f"synthetic {SYNTHETIC_APPS} apps", origin, ctx, 0.25)
