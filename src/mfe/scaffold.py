"""`doit new_app name=NAME stack=lit|react`: a working micro-frontend in one command.

Writes `apps/NAME/` (a package.json building with the shared build script, a custom
element `mfe-NAME` in `src/`), appends an `[apps.NAME]` table with a free dev port to
mfe.toml (appended as text, so its comments stay), and runs `npm install` so the
lockfile knows the new workspace -- what `amplify init` did for each app. Anything that
fails (Ctrl-C included) undoes the folder, the config change and the lockfile (npm writes it
in place). Also: the one line said when an app folder exists that npm has not installed yet
(instead of `npm ci`'s usage text).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from pathlib import Path

from mfe.build.installed import require_npm
from mfe.build.lockslice import Packages, parse_lockfile
from mfe.config import CONFIG_FILE, load_project
from mfe.envs.naming import NameClash
from mfe.errors import MfeError
from mfe.files import read_json, write_atomic
from mfe.project import SHARED_APP, Project

NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
NPM_INSTALL = ("npm", "install", "--no-audit", "--no-fund", "--loglevel=error")
BUILD_SCRIPT = "node ../../tools/build-app.mjs"
DEFAULT_RANGES = {"lit": "^3.3.0", "react": "^19.2.0", "react-dom": "^19.2.0", "esbuild": "*"}
STACKS = {"lit": ("lit",), "react": ("react", "react-dom")}

LIT_MAIN = """\
// Entry of the __NAME__ micro-frontend: registers the Lit element <__TAG__>.
import { LitElement, css, html } from 'lit';

const TAG = '__TAG__';

class __CLASS__ extends LitElement {
  static styles = css`:host { display: block; }`;

  render() {
    return html`<section><h2 id="__NAME__-heading">__TITLE__</h2><p>New micro-frontend.</p></section>`;
  }
}

if (!customElements.get(TAG)) customElements.define(TAG, __CLASS__);
"""

REACT_MAIN = """\
// Entry of the __NAME__ micro-frontend: React rendered inside <__TAG__>.
import { createRoot } from 'react-dom/client';

const TAG = '__TAG__';

function App() {
  return (
    <section>
      <h2 id="__NAME__-heading">__TITLE__</h2>
      <p>New micro-frontend.</p>
    </section>
  );
}

class __CLASS__ extends HTMLElement {
  constructor() {
    super();
    this._shadow = this.attachShadow({ mode: 'open' });
    this._root = null;
  }

  connectedCallback() {
    if (!this._root) this._root = createRoot(this._shadow);
    this._root.render(<App />);
  }

  disconnectedCallback() {
    this._root?.unmount();
    this._root = null;
  }
}

if (!customElements.get(TAG)) customElements.define(TAG, __CLASS__);
"""


def new_app_message(name: str, then: str) -> str:
    """The one line for an app folder whose dependencies npm has not installed yet."""
    return f"new app {name}: run `npm install`, then {then}"


def check_installed(project: Project, command: str = "doit") -> None:
    """MfeError for what `npm ci` cannot install from, in one line (npm's own answer is its
    usage text): a missing or unreadable lockfile (a merge conflict left in it), or an
    app's workspace missing from it. `command`: the one to run again after `npm install`."""
    missing = _not_locked(project, _locked(project))
    if missing:
        raise MfeError(new_app_message(missing[0], then=f"run `{command}` again"))


def uninstalled_apps(project: Project) -> list[str]:
    """The apps whose workspace the lockfile lacks: `npm install` has not run since their
    folder came (`doit new_app` runs it a moment after writing the folder and mfe.toml).
    [] when the lockfile itself is missing or unreadable: `install` says that."""
    try:
        locked = _locked(project)
    except MfeError:
        return []
    return _not_locked(project, locked)


def _locked(project: Project) -> Packages:
    lockfile = project.lockfile
    name = lockfile.relative_to(project.root).as_posix()
    try:
        text = lockfile.read_text("utf-8", errors="replace")
    except FileNotFoundError:
        raise MfeError(f"{name} is missing; run `npm install` to write it") from None
    return parse_lockfile(text, name)


def _not_locked(project: Project, locked: Packages) -> list[str]:
    return [
        app.name
        for app in project.apps.values()
        if app.role != "shared" and app.path.relative_to(project.root).as_posix() not in locked
    ]


def new_app(project: Project, name: str, stack: str) -> None:
    """Scaffold `apps/<name>` with `stack`, register it in mfe.toml, install; or undo all."""
    folder = project.root / "apps" / name
    if not NAME.fullmatch(name or ""):
        raise MfeError(f"new_app: name={name!r} must be lowercase letters, digits and hyphens")
    if name == SHARED_APP and project.shared is not None:
        raise MfeError(
            f"new_app: name={name!r} is reserved for the shared modules ([shared] in "
            f"{CONFIG_FILE}, built into build/{SHARED_APP}/); pick another name="
        )
    if folder.exists() or name in project.apps:
        raise MfeError(f"new_app: {folder} already exists; pick another name=")
    if stack not in STACKS:
        raise MfeError(f"new_app: stack={stack!r} must be one of {', '.join(STACKS)}")
    require_npm()  # before anything is written
    tag = name if name.startswith("mfe-") else f"mfe-{name}"
    port = _free_dev_port(project)
    config = project.root / CONFIG_FILE
    before = config.read_text("utf-8")
    lock_before = project.lockfile.read_bytes() if project.lockfile.is_file() else None
    try:
        _write_app(project, folder, name, stack, tag)
        table = f'\n[apps.{name}]\ndev_port = {port}\nelement = "{tag}"\n'
        config.write_text(_with_app_table(before, table), "utf-8")
        load_project(project.root)  # the result must be a valid config
        result = subprocess.run(
            NPM_INSTALL, cwd=project.root, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise MfeError(f"new_app: `npm install` failed:\n{result.stderr.strip()[-2000:]}")
    except BaseException as exc:
        shutil.rmtree(folder, ignore_errors=True)
        config.write_text(before, "utf-8")
        _restore(project.lockfile, lock_before)  # npm may have written it before it stopped
        if isinstance(exc, NameClash) and exc.app == name:
            raise MfeError(
                f"new_app: name={name!r} cannot be used: {exc.reason}; nothing was "
                "written: pick another name="
            ) from None
        raise
    print(f"new_app: apps/{name} ({stack}) defines <{tag}>, served on dev port {port}")
    print(
        f"new_app: next: commit apps/{name}/, {CONFIG_FILE} and package-lock.json; "
        "`doit serve` serves it now, `doit publish` puts it on the page"
    )


def _restore(path: Path, content: bytes | None) -> None:
    """Put back a file's bytes (`None`: it did not exist)."""
    if content is None:
        path.unlink(missing_ok=True)
    elif not path.is_file() or path.read_bytes() != content:
        write_atomic(path, content)


def _with_app_table(text: str, table: str) -> str:
    """`text` with `table` after the last [apps.*] table (the other apps' neighbour)."""
    lines = text.splitlines(keepends=True)
    headers = [i for i, line in enumerate(lines) if line.startswith("[apps.")]
    if not headers:
        return text.rstrip("\n") + "\n" + table
    end = next((i for i in range(headers[-1] + 1, len(lines)) if lines[i].startswith("[")), None)
    end = len(lines) if end is None else end
    while end > headers[-1] + 1 and (not lines[end - 1].strip() or lines[end - 1][0] == "#"):
        end -= 1  # blank lines and comments above the next table stay with it
    return "".join(lines[:end]).rstrip("\n") + "\n" + table + "".join(lines[end:])


def _write_app(project: Project, folder: Path, name: str, stack: str, tag: str) -> None:
    ranges = {**DEFAULT_RANGES, **_ranges_in_use(project)}
    package = {
        "name": name,
        "version": "0.1.0",
        "private": True,
        "type": "module",
        "description": f"{name} micro-frontend: {stack} <{tag}> custom element",
        "scripts": {"build": BUILD_SCRIPT},
        "dependencies": {dep: ranges[dep] for dep in STACKS[stack]},
        "devDependencies": {"esbuild": ranges["esbuild"]},
    }
    (folder / "src").mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps(package, indent=2) + "\n", "utf-8")
    title = name.replace("-", " ").title()
    cls = title.replace(" ", "") + "Element"
    source, file = (LIT_MAIN, "main.js") if stack == "lit" else (REACT_MAIN, "main.jsx")
    for key, value in (("__NAME__", name), ("__TAG__", tag), ("__CLASS__", cls)):
        source = source.replace(key, value)
    (folder / "src" / file).write_text(source.replace("__TITLE__", title), "utf-8")


def _ranges_in_use(project: Project) -> dict[str, str]:
    """Version ranges the other apps already use, so npm reuses what the lockfile holds."""
    ranges: dict[str, str] = {}
    for app in project.apps.values():
        try:
            data = read_json(app.path / "package.json")
        except (OSError, ValueError):
            continue
        for key in ("dependencies", "devDependencies"):
            ranges.update(data.get(key, {}))
    return ranges


def _free_dev_port(project: Project) -> int:
    """The next port after the apps' ones that no app, environment or process uses."""
    used = {app.dev_port for app in project.apps.values()}
    used |= {env.port for env in project.envs.values() if env.port}
    port = max(app.dev_port for app in project.apps.values()) + 1
    while port in used or not _bindable(port):
        port += 1
    return port


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
