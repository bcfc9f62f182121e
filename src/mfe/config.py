"""Load and validate `mfe.toml` plus the apps discovered under `apps/*/package.json`.

Everything else in the package takes a `Project`, never raw TOML, so a typo in the
config is reported once, here, with the file and the dotted key.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from mfe import settings
from mfe.config_envs import check_ports, load_envs
from mfe.errors import ConfigError, shown
from mfe.project import (
    CONFIG_FILE,
    SHARED_APP,
    STATE_DIR,
    App,
    BuildSettings,
    CiSettings,
    Environment,
    EnvKind,
    Project,
    PublishSettings,
    SharedSettings,
)
from mfe.toml_table import Table

__all__ = [
    "CONFIG_FILE",
    "SHARED_APP",
    "STATE_DIR",
    "App",
    "BuildSettings",
    "CiSettings",
    "EnvKind",
    "Environment",
    "Project",
    "PublishSettings",
    "SharedSettings",
    "defaults_only",
    "gone_app_message",
    "gone_apps_left_out",
    "load_project",
    "package_name_clash",
    "parse_toml",
]

_LEAVE_GONE_OUT: ContextVar[bool] = ContextVar("mfe_leave_gone_apps_out", default=False)


@contextmanager
def gone_apps_left_out() -> Iterator[None]:
    """Within: an [apps.NAME] table whose folder was deleted leaves that app out of the
    project (named in `Project.gone`) instead of failing the load. `doit serve` loads
    (and runs doit) this way, so the other apps keep building while it asks for the table
    to go; every other command still refuses such a config."""
    token = _LEAVE_GONE_OUT.set(True)
    try:
        yield
    finally:
        _LEAVE_GONE_OUT.reset(token)


def gone_app_message(name: str) -> str:
    """What to do about an [apps.NAME] table without its folder."""
    return (
        f"{CONFIG_FILE}: [apps.{name}] names an app, but its folder apps/{name}/ is "
        f"missing (no apps/{name}/package.json); remove the [apps.{name}] table from "
        f"{CONFIG_FILE}, or restore the folder"
    )


def load_project(root: Path) -> Project:
    """Read `<root>/mfe.toml` and the apps; raise ConfigError naming file and key (the
    file relative to the root, as every other message names a project file: doit runs
    from there)."""
    root = root.resolve()
    file = Path(CONFIG_FILE)
    try:
        raw = parse_toml(_utf8_text(root / file, file))
    except FileNotFoundError:
        raise ConfigError(
            f"{file}: not found; create it (see README.md, 'Configuration')"
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"{file}: is a folder, not a file; remove it and create the file "
            "(see README.md, 'Configuration')"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot be read ({exc.strerror}); fix its permissions") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None

    top = Table(file, "", raw)
    top.expect("project", "apps", "publish", "build", "ci", "shared", "env")
    project_table = top.sub("project")
    name = project_table.get("name", str)
    if not name:
        raise project_table.error("project.name", "is required (a short slug such as 'shop')")
    project_table.done()

    shared_table = top.data.get("shared")
    reserved = {shared_table.get("dev_port")} if isinstance(shared_table, dict) else set()
    apps, gone = _load_apps(root, top.sub("apps"), reserved)
    publish = settings.load_publish(top.sub("publish"))
    build = _load_build(root, top.sub("build"))
    ci = settings.load_ci(top.sub("ci"))
    shared = settings.load_shared(root, top.sub("shared"), apps)
    envs = load_envs(name, top.sub("env"), apps)  # after [shared]: `urls` may name its app
    top.done()

    check_ports(file, apps, envs)
    _check_elements(file, apps)
    project = Project(root, name, apps, envs, publish, build, ci, shared, gone)
    from mfe.envs.naming import check_names  # the naming rules live with the resource names

    check_names(project, file, [e for e in envs.values() if e.provisioned])
    return project


def parse_toml(text: str) -> dict[str, Any]:
    """mfe.toml's tables. A leading byte-order mark (Notepad saves one) is no TOML, and
    tomllib stops at it, but it means nothing in a UTF-8 file: read past it, as git, npm
    and editors do."""
    return tomllib.loads(text.removeprefix("\ufeff"))


def defaults_only(root: Path) -> Project:
    """The project mfe.toml's defaults make, without apps: what `doit list` and `doit help`
    describe the tasks with while mfe.toml does not load (`mfe.tasks.described`)."""
    envs = load_envs("project", Table(Path(CONFIG_FILE), "env", {}), {})
    return Project(root.resolve(), "project", {}, envs, PublishSettings(), BuildSettings())


def _load_build(root: Path, table: Table) -> BuildSettings:
    """`[build]`: every input must be a file now, or each app's build task fails on it
    later with doit's message, which names neither mfe.toml nor the key."""
    inputs = table.strings("inputs")
    for index, name in enumerate(inputs):
        path = root / name
        if not path.is_file():
            what = "is a folder (list the files in it)" if path.is_dir() else "does not exist"
            raise table.error(
                f"{table.key('inputs')}[{index}]",
                f"names {shown(name)}, which {what} (paths are relative to the folder of "
                f"{CONFIG_FILE}); fix the path or remove it",
            )
    build = BuildSettings(inputs=inputs, env=table.strings("env"))
    table.done()
    return build


def _default_ports(table: Table, discovered: list[str], reserved: set[Any]) -> list[int]:
    """One port from 5171 up per discovered app, skipping those set in mfe.toml: a new app
    folder without its own [apps.NAME] table must not take a configured app's port."""
    taken = {data.get("dev_port") for data in table.data.values() if isinstance(data, dict)}
    taken |= reserved
    free = (port for port in range(5171, 65536) if port not in taken)
    return [next(free) for _ in discovered]


def _load_apps(
    root: Path, table: Table, reserved: set[Any]
) -> tuple[dict[str, App], tuple[str, ...]]:
    """The apps, and the [apps.NAME] tables left out because their folder is gone (only
    within `gone_apps_left_out`; otherwise such a table is a ConfigError)."""
    from mfe.envs.naming import SLUG  # an app's name is part of bucket names and URLs

    discovered = sorted(p.parent.name for p in (root / "apps").glob("*/package.json"))
    for name in discovered:
        if not SLUG.fullmatch(name):
            suggested = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "my-app"
            raise ConfigError(
                f"apps/{name}/: an app's folder name is its name (in its bucket, element and "
                f"URLs): lowercase letters, digits and hyphens only; rename the folder, e.g. "
                f"to apps/{suggested}/"
            )
    gone = tuple(sorted(name for name in table.data if name not in discovered))
    for name in gone:
        if not SLUG.fullmatch(name):
            raise ConfigError(
                f"{CONFIG_FILE}: [apps.{json.dumps(name, ensure_ascii=False)}] is not an app's name: the apps are "
                "the folders apps/<name>/ (lowercase letters, digits and hyphens)"
            )
        if not _LEAVE_GONE_OUT.get():
            raise ConfigError(gone_app_message(name))
        table.sub(name)  # read: not an unknown setting
    apps: dict[str, App] = {}
    defaults = iter(_default_ports(table, discovered, reserved))
    packages = {
        name: _read_package_json(root, Path("apps", name, "package.json")) for name in discovered
    }
    clash = package_name_clash(packages)  # serve tells it for a folder copied meanwhile too
    if clash:
        raise ConfigError(clash)
    for name in discovered:
        app_table = table.sub(name)
        role = app_table.get("role", str, "fragment")
        if role not in ("parent", "fragment"):
            raise app_table.error(
                app_table.key("role"), f"must be 'parent' or 'fragment', got {shown(role)}"
            )
        default_element = name if name.startswith("mfe-") else f"mfe-{name}"
        element = app_table.get("element", str, default_element)
        problem = _element_problem(element)
        if problem:
            raise app_table.error(app_table.key("element"), f"is {shown(element)}, which {problem}")
        port = app_table.port("dev_port", next(defaults))
        assert port is not None
        budget = settings.size(app_table, "budget")
        app_table.done()
        apps[name] = App(name, root / "apps" / name, role, port, element, budget)
    table.done()

    if not apps:
        raise ConfigError("apps/: no app found (expected apps/<name>/package.json)")
    parents = [a.name for a in apps.values() if a.role == "parent"]
    if len(parents) != 1:
        raise ConfigError(
            f'{table.file}: exactly one app needs role = "parent" (found {parents or "none"}); '
            "set it under [apps.<name>]"
        )
    # The parent first: it is published last but rendered and listed first.
    return dict(sorted(apps.items(), key=lambda item: item[1].role != "parent")), gone


_PCEN_RANGES = (
    (0x2D, 0x2E),
    (0x30, 0x39),
    (0x5F, 0x5F),
    (0x61, 0x7A),
    (0xB7, 0xB7),
    (0xC0, 0xD6),
    (0xD8, 0xF6),
    (0xF8, 0x37D),
    (0x37F, 0x1FFF),
    (0x200C, 0x200D),
    (0x203F, 0x2040),
    (0x2070, 0x218F),
    (0x2C00, 0x2FEF),
    (0x3001, 0xD7FF),
    (0xF900, 0xFDCF),
    (0xFDF0, 0xFFFD),
    (0x10000, 0xEFFFF),
)
"""The HTML spec's PCENChar as code point ranges: `-`, `.`, digits, `_`, `a-z`, then
non-ASCII. Checked without a regex: compiling one with these ranges took ~5 ms of every
`doit` (its charset tables), longer than checking every app's name."""


def _custom_element_name(name: str) -> bool:
    """`[a-z] PCENChar* '-' PCENChar*`: a lowercase ASCII letter, then PCENChars, a hyphen
    among them."""
    return (
        "a" <= name[:1] <= "z"
        and "-" in name
        and all(any(low <= ord(c) <= high for low, high in _PCEN_RANGES) for c in name)
    )


_RESERVED_ELEMENTS = frozenset(
    {"annotation-xml", "color-profile", "font-face", "font-face-src", "font-face-uri"}
    | {"font-face-format", "font-face-name", "missing-glyph"}
)


def _element_problem(element: str) -> str | None:
    """Why `element` is no valid custom element name (HTML spec: a lowercase ASCII letter,
    then PCENChars with a hyphen among them, not a reserved SVG/MathML name), or None:
    `customElements.define` throws on any other, and the shell writes it into the page."""
    if element in _RESERVED_ELEMENTS:
        return "is reserved by SVG and MathML; choose another name with a hyphen"
    if not _custom_element_name(element):
        return (
            "is no valid custom element name: a lowercase ASCII letter first, a hyphen, no "
            "uppercase ASCII letters, spaces or punctuation but '-', '.', '_' (e.g. 'mfe-accounts')"
        )
    return None


def _utf8_text(path: Path, shown: Path) -> str:
    """The file's text, past a UTF-8 byte order mark (Windows editors save one; npm reads
    past it too); a ConfigError naming the line (of the file `shown`) of a
    byte that is not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{shown}: line {line} holds byte 0x{data[exc.start]:02x}, which is not UTF-8; "
            "save the file as UTF-8"
        ) from None


def package_name_clash(packages: dict[str, Any]) -> str | None:
    """What to do about two app folders whose package.json has the same "name" (an app
    folder copied with `cp -r`), or None: npm workspaces need unique names, and
    `npm install` fails on them ("must not have multiple workspaces with the same name").
    `packages`: each app folder's name -> its parsed package.json."""
    owners: dict[str, str] = {}
    for folder, package in sorted(packages.items()):
        name = package.get("name") if isinstance(package, dict) else None
        if not isinstance(name, str):
            continue
        other = owners.setdefault(name, folder)
        if other == folder:
            continue
        copy, original = (folder, other) if other == name else (other, folder)
        return (
            f'apps/{copy}/package.json: "name" is "{name}", as in apps/{original}/package.json; '
            "npm workspaces need unique names (`npm install` fails on two): rename it "
            f'("name": "{copy}"), then run `npm install`'
        )
    return None


def _read_package_json(root: Path, path: Path) -> dict[str, Any]:
    """package.json (`path` relative to `root`, as its errors name it), checked as far as
    the orchestrator reads it: a `build` script, and `scripts` (which the build and the CI
    tests run) an object of command strings."""
    try:
        data = json.loads(_utf8_text(root / path, path))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON: {exc}") from None
    package: dict[str, Any] = data if isinstance(data, dict) else {}
    scripts = package.get("scripts")
    if "scripts" in package and not isinstance(scripts, dict):
        raise ConfigError(
            f"{path}: key 'scripts' must be an object of npm scripts, got {json.dumps(scripts)}"
        )
    if not scripts or "build" not in scripts:
        raise ConfigError(f'{path}: needs a "build" script under "scripts"')
    for name, command in scripts.items():
        if not isinstance(command, str):
            raise ConfigError(
                f"{path}: key 'scripts.{name}' must be a command string, got {json.dumps(command)}"
            )
    return package


def _check_elements(file: Path, apps: dict[str, App]) -> None:
    """Two apps with one element would mount one app twice and the other never."""
    seen: dict[str, str] = {}
    for app in apps.values():
        if app.role == "shared":
            continue
        if app.element in seen:
            raise ConfigError(
                f"{file}: key 'apps.{app.name}.element' reuses {shown(app.element)}, already the "
                f"element of app '{seen[app.element]}'; give each app its own element"
            )
        seen[app.element] = app.name
