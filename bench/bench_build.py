"""No-op `doit` (nothing changed): this monorepo, and a synthetic 50 apps x 200 files.

Targets (issue 2): this monorepo < 0.5 s; the synthetic one < 1.5 s and within 3x of a
plain Python loop that only stats the same files (interpreter start included).

Every command runs as users run it: bytecode caching on (`run.py` drops the sandbox's
PYTHONDONTWRITEBYTECODE; a user's Python writes .pyc files) and warmed by an untimed run.
The synthetic case has two more anchors that show what part of the figure is doit's:
- `doit start-up`: a dodo.py of one up-to-date task, the floor no dodo.py goes below
  (doit's imports and plugin entry-point scans);
- `plain doit, same file_deps`: a dodo.py without mfe, one task per app whose file_dep is
  every source file, so doit stats and checks the same 10,000 files.
On the 2-core machine of the perf issue (CPU time, medians of 25): stat loop 37 ms, doit
start-up 91 ms (2.4x), plain doit 152 ms (4.1x), mfe's no-op 149 ms (4.0x). So `<= 3x the
stat loop` is below what doit itself needs for this work; the ratio to the plain doit
anchor is what mfe adds (about 1x).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from common import copy_monorepo, doit
from run import Case, Context

SYNTHETIC_APPS, FILES_PER_APP = 50, 200
MONOREPO_CASE = "no-op doit, this monorepo"

BUILD_MJS = """\
import {createHash} from 'node:crypto';
import {mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs';
const out = process.env.MFE_OUT_DIR || 'dist';
rmSync(out, {recursive: true, force: true});
mkdirSync(out, {recursive: true});
const body = readdirSync('src').sort().map((f) => readFileSync('src/' + f, 'utf8')).join('\\n');
const hash = createHash('sha256').update(body).digest('hex').slice(0, 8).toUpperCase();
const name = JSON.parse(readFileSync('package.json', 'utf8')).name;
const element = `customElements.define('mfe-${name}', class extends HTMLElement {});\n`;
writeFileSync(`${out}/main-${hash}.js`, element + body);
"""

STAT_LOOP = """\
import os, sys
count = 0
for root in sys.argv[1:]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in ("node_modules", "dist")]
        for name in filenames:
            os.stat(os.path.join(dirpath, name)); count += 1
"""

STARTUP_DODO = """\
DOIT_CONFIG = {"backend": "json", "dep_file": ".doit-db.json", "verbosity": 1}


def task_noop():
    \"\"\"Always up to date.\"\"\"
    return {"actions": [], "uptodate": [True]}
"""

PLAIN_DODO = """\
import os

DOIT_CONFIG = {"backend": "json", "dep_file": ".plain-doit-db.json", "verbosity": 1}


def task_build():
    \"\"\"One task per app, every source file a file_dep: doit alone, without mfe.\"\"\"
    for app in sorted(os.listdir("apps")):
        deps = []
        for dirpath, dirnames, filenames in os.walk(f"apps/{app}"):
            dirnames[:] = [d for d in dirnames if d not in ("node_modules", "dist")]
            deps += [f"{dirpath}/{name}" for name in filenames]
        yield {"name": app, "actions": [], "file_dep": deps}
"""
PLAIN_DODO_FILE = "plain_dodo.py"


def make_synthetic(root: Path) -> Path:
    """50 apps of 200 small source files each, with a trivial Node build script."""
    apps = root / "apps"
    lines = ['[project]\nname = "synthetic"\n']
    for index in range(SYNTHETIC_APPS):
        name = f"app-{index:02d}"
        src = apps / name / "src"
        src.mkdir(parents=True)
        (apps / name / "package.json").write_text(
            json.dumps({"name": name, "private": True, "scripts": {"build": "node build.mjs"}})
        )
        (apps / name / "build.mjs").write_text(BUILD_MJS)
        for number in range(FILES_PER_APP - 2):
            (src / f"module{number:03d}.js").write_text(f"export const v{number} = {number};\n")
        if index == 0:
            lines.append(f'[apps.{name}]\nrole = "parent"\n')
    (root / "mfe.toml").write_text("\n".join(lines))
    (root / "package.json").write_text(
        json.dumps({"name": "synthetic", "private": True, "workspaces": ["apps/*"]})
    )
    (root / "dodo.py").write_text((Path(__file__).parent.parent / "dodo.py").read_text())
    (root / PLAIN_DODO_FILE).write_text(PLAIN_DODO)
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=root, check=True
    )
    doit(root, "-n", "2")
    doit(root, "-f", PLAIN_DODO_FILE)  # records the plain tasks' file states, untimed
    return root


def make_startup(root: Path) -> Path:
    """A dodo.py of one up-to-date task (JSON dep file, as mfe's): doit's start-up alone."""
    root.mkdir()
    (root / "dodo.py").write_text(STARTUP_DODO)
    doit(root)  # writes the dep file and dodo's bytecode, untimed
    return root


def cases(ctx: Context) -> Iterator[Case]:
    if ctx.wants(MONOREPO_CASE):  # `-c "50 apps"` need not build this monorepo first
        repo = copy_monorepo(ctx.tmp / "repo")
        yield Case(
            name=MONOREPO_CASE,
            run=lambda: _noop(repo),
            target="median < 0.5 s",
            check=lambda row: row["median"] < 0.5,
            repeat=10,
        )

    synthetic = make_synthetic(ctx.tmp / "synthetic")
    app_dirs = [str(p) for p in sorted((synthetic / "apps").iterdir())]
    startup = make_startup(ctx.tmp / "startup")
    yield Case(
        name=f"no-op doit, {SYNTHETIC_APPS} apps x {FILES_PER_APP} files",
        run=lambda: _noop(synthetic),
        anchors={
            "python stat loop": lambda: _run([sys.executable, "-c", STAT_LOOP, *app_dirs]),
            "doit start-up": lambda: _noop(startup),
            "plain doit, same file_deps": lambda: _noop(synthetic, "-f", PLAIN_DODO_FILE),
        },
        target="median < 1.5 s and <= 3x the stat loop",
        check=lambda row: row["median"] < 1.5 and row["anchors"]["python stat loop"]["ratio"] <= 3,
    )


def _noop(root: Path, *args: str) -> dict[str, int]:
    output = doit(root, *args)
    ran = [line for line in output.splitlines() if line.startswith(".  ")]
    if ran:
        raise RuntimeError(f"not a no-op: {ran}")
    return {"tasks_up_to_date": output.count("\n-- ")}


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
