"""Render the shell page (`shell/index.html.j2` -> `build/<env>/index.html`) per environment.

The page is the only mutable file a typical release changes: it pins every app's
fingerprinted entry URL with its SRI hash, so it must be exact (StrictUndefined,
no empty URLs), reproducible (build id from content, never a clock) and written
atomically (a failed render keeps the previous page).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from markupsafe import Markup

from mfe.build.elements import check_element
from mfe.build.manifest import AssetManifest, read_manifest
from mfe.config import CONFIG_FILE, SHARED_APP, Environment, Project
from mfe.envs.backend import backend_for
from mfe.envs.outputs import Outputs
from mfe.errors import MfeError
from mfe.files import write_atomic
from mfe.importmap import ImportMap, build_import_map, check_placement
from mfe.output import warn_once
from mfe.publish.versions import ca_key

if TYPE_CHECKING:  # jinja2 is imported when a page is rendered, not when doit loads
    import jinja2

TEMPLATE = "index.html.j2"
FAVICON = "favicon.svg"


@dataclass(frozen=True)
class Entry:
    url: str
    integrity: str
    """sha384 SRI value from the app's asset-manifest.json."""


@dataclass(frozen=True)
class AppContext:
    name: str
    element: str
    base_url: str
    entries: list[Entry]
    role: str


def template_path(project: Project) -> Path:
    return project.shell_dir / TEMPLATE


def origin(url: str) -> str:
    """`scheme://host[:port]` of a URL, the unit CSP source lists work in."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def content_security_policy(
    app_urls: list[str], auth_endpoint: str | None, inline_hashes: tuple[str, ...] = ()
) -> str:
    """Allow scripts from exactly the apps' origins (and the inline import map by its hash);
    the sign-in and sign-out may also post to Cognito."""
    origins = sorted({origin(url) for url in app_urls})
    connect = ["'self'", *origins]
    if auth_endpoint and origin(auth_endpoint) not in connect:
        connect.append(origin(auth_endpoint))
    directives = [
        ("default-src", ["'self'"]),
        ("script-src", [*origins, *inline_hashes]),
        ("style-src", ["'self'", "'unsafe-inline'"]),
        ("img-src", ["'self'", "data:", *origins]),
        ("connect-src", connect),
        ("object-src", ["'none'"]),
        ("base-uri", ["'self'"]),
    ]
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives)


def shell_context(
    project: Project,
    env: Environment | str,
    outputs: Outputs | None,
    manifests: dict[str, AssetManifest] | None = None,
    dists: dict[str, Path] | None = None,
) -> dict[str, Any]:
    """Everything the template sees; `outputs` default to the stored ones (none on dev).

    `manifests` (default: the local builds') let publish render the page of a merged
    release: apps not built here come from the live pointer's versions, their JavaScript
    (which the import map and its preloads are read from) from `dists`. A published page
    links the favicon at its content-addressed `_ca/<sha>/` copy, so writing the page alone
    switches it; the dev server serves it by name.
    """
    env = project.env(env)
    backend = backend_for(project, env)
    if outputs is None:
        outputs = backend.stored_outputs()
    local = manifests is None
    if manifests is None:
        manifests = {app.name: read_manifest(app.name, app.dist) for app in project.apps.values()}
    apps: list[AppContext] = []
    for app in project.bundled_apps.values():
        if app.name not in manifests:  # a merged release without it (never published)
            continue
        url = backend.app_url(app, outputs)
        manifest = manifests[app.name]
        if local or all((app.dist / e).is_file() for e in manifest.entries):  # built here
            check_element(project, app, app.dist, manifest)  # mfe.toml may have changed since
        entries = []
        for name in manifest.entries:
            if name not in manifest.files:
                raise MfeError(
                    f"{app.manifest_path}: entry {name!r} is not listed under 'files'; "
                    f"run `doit build:{app.name}` again"
                )
            entries.append(Entry(url + name, manifest.files[name].integrity))
        apps.append(AppContext(app.name, app.element, url, entries, app.role))

    auth = None
    if outputs is not None and outputs.auth is not None:
        auth = {
            "region": outputs.auth.region,
            "user_pool_id": outputs.auth.user_pool_id,
            "client_id": outputs.auth.client_id,
            "endpoint": outputs.auth.endpoint,
        }
    import_map = None
    script_urls = [a.base_url for a in apps]
    if project.shared is not None:
        shared_app = project.apps[SHARED_APP]
        shared_url = backend.app_url(shared_app, outputs)
        script_urls.append(shared_url)
        import_map = build_import_map(
            shared_url,
            manifests[SHARED_APP],
            (dists or {}).get(SHARED_APP, shared_app.dist),
            {
                a.name: (
                    a.base_url,
                    manifests[a.name],
                    (dists or {}).get(a.name, project.apps[a.name].dist),
                )
                for a in apps
            },
        )
        _warn_unused(project, import_map.unused)
    parent = next(a for a in apps if a.role == "parent")
    icon = manifests[parent.name].files.get(FAVICON)
    favicon = None
    if icon is not None:
        favicon = parent.base_url + (ca_key(FAVICON, icon.sha256) if outputs else FAVICON)
    context: dict[str, Any] = {
        "project": project.name,
        "title": project.name,
        "env": env.name,
        "apps": apps,
        "parent": parent,
        "fragments": [a for a in apps if a.role == "fragment"],
        "favicon": favicon,
        "csp": content_security_policy(
            script_urls,
            auth["endpoint"] if auth else None,
            (import_map.hash_source,) if import_map else (),
        ),
        "auth": auth,
        "importmap": Markup(import_map.text) if import_map else "",
        # Every module the page runs, in the order it runs them (see mfe.importmap).
        "preloads": [e for a in apps for e in (*_shared_preloads(import_map, a.name), *a.entries)],
        # Templates written before `preloads`: the shared modules' hints alone.
        "shared_preloads": [e for app in apps for e in _shared_preloads(import_map, app.name)],
    }
    # A function of what the page shows (not of every built file), so a change the page
    # does not reference leaves it byte-identical and its URL is not invalidated.
    build_id = hashlib.sha256(json.dumps(_plain(context), sort_keys=True).encode()).hexdigest()
    build_id = build_id[:12]
    context["build_id"] = build_id
    context["config"] = {"env": env.name, "build_id": build_id, "auth": auth}
    return context


def _warn_unused(project: Project, unused: tuple[str, ...]) -> None:
    """Name each [shared] module no app imports: it only adds to the shared build."""
    listed = project.shared.modules if project.shared else ()
    for spec in unused:
        key = f"shared.modules[{listed.index(spec)}]" if spec in listed else "shared.modules"
        warn_once(
            f"{CONFIG_FILE}: key '{key}': no app imports '{spec}'; remove it from [shared] "
            "modules (its code is built into the shared modules and uploaded for nothing)"
        )


def _shared_preloads(import_map: ImportMap | None, app: str) -> list[Entry]:
    """The shared modules `app` is the first to import (mfe.importmap), as hint entries."""
    return [Entry(u, i) for u, i in import_map.preloads.get(app, [])] if import_map else []


def _plain(value: Any) -> Any:
    """The context as JSON-able data (dataclasses flattened) for the build id."""
    if isinstance(value, (AppContext, Entry)):
        return asdict(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def render_template(project: Project, context: dict[str, Any]) -> str:
    """Render `shell/index.html.j2`; any Jinja failure becomes an MfeError with file and line."""
    import jinja2

    path = template_path(project)
    if not path.is_file():
        raise MfeError(
            f"{_where(project, None, None)}: missing; create the shell template, the Jinja "
            "page that composes the apps (see README.md, 'Layout')"
        )
    try:
        return _environment(path.parent).get_template(TEMPLATE).render(context)
    except jinja2.TemplateSyntaxError as exc:
        where = _where(project, exc.filename, exc.lineno)
        raise MfeError(f"{where}: template syntax error: {exc.message}; fix the template") from None
    except jinja2.UndefinedError as exc:
        file, line = _template_frame(project, exc)
        where = _where(project, file, line)
        known = ", ".join(sorted(context))
        raise MfeError(
            f"{where}: {exc.message}; use one of the shell variables ({known}) or fix the template"
        ) from None
    except jinja2.TemplateNotFound as exc:
        raise MfeError(
            f"{path}: includes {exc.name!r}, which is not in {path.parent}; add it or "
            "fix the include"
        ) from None
    except jinja2.TemplateError as exc:
        file, line = _template_frame(project, exc)
        raise MfeError(f"{_where(project, file, line)}: template error: {exc}") from None
    except Exception as exc:  # a runtime error in template code, e.g. `{{ title + 1 }}`
        file, line = _template_frame(project, exc)
        raise MfeError(
            f"{_where(project, file, line)}: template error: {type(exc).__name__}: {exc}; "
            "fix the template"
        ) from None


@functools.lru_cache(maxsize=8)
def _environment(folder: Path) -> jinja2.Environment:
    """One Jinja environment per template folder: `doit serve` renders the page after
    every rebuild, and Jinja recompiles a template only when its file changed."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        keep_trailing_newline=True,
    )


def _template_frame(project: Project, exc: BaseException) -> tuple[str | None, int | None]:
    """The innermost traceback frame inside `shell/`: Jinja maps it to the template line."""
    folder = str(project.shell_dir.resolve())
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.startswith(folder + os.sep):
            return frame.filename, frame.lineno
    return None, None


def _where(project: Project, file: str | None, line: int | None) -> str:
    path = Path(file) if file else template_path(project)
    try:
        shown = path.resolve().relative_to(project.root).as_posix()
    except ValueError:
        shown = str(path)
    return f"{shown}, line {line}" if line else shown


def render_shell(
    project: Project, env: Environment | str, outputs: Outputs | None, quiet: bool = False
) -> Path:
    """Write `build/<env>/index.html` atomically (only when its bytes change) and return it.
    `quiet`: no "wrote" line (serve re-renders it at every save; its rebuilt line says so)."""
    env = project.env(env)
    context = shell_context(project, env, outputs)
    html = render_template(project, context)
    if context["importmap"]:
        check_placement(html, str(context["importmap"]), _where(project, None, None))
    target = project.page(env.name)
    data = html.encode("utf-8")
    if target.is_file() and target.read_bytes() == data:
        return target
    write_atomic(target, data)
    if not quiet:
        print(f"shell: wrote {target.relative_to(project.root).as_posix()} for env '{env.name}'")
    return target
