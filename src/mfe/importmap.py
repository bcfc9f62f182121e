"""The page's import map: one URL per shared module, scopes for apps pinned to another
version, and an `integrity` entry (SRI) for every module the page may load. Specifiers
built into one file (React's) map to it, except one whose default export or namespace
some app's code imports: that one maps to its own module (the manifest's `fallbacks`).

The map is an inline script, so the CSP allows it by its sha256 hash (never
`unsafe-inline`); its text is computed here, once, and must reach the page verbatim.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mfe.build.manifest import JS_SUFFIXES, AssetManifest
from mfe.build.shared import DEFAULT
from mfe.errors import MfeError

# Static imports in bundler output: `import{a}from"lit"`, `import"./chunks/x.js"`.
_IMPORT = re.compile(r"""(?:\bfrom|\bimport)\s*["']([^"']+)["']""")
# Every import of a module, dynamic `import("x")` too, and those that take named exports
# only: `import{a as b}from"x"`, `export{a}from"x"` (unless one is `default`), `import"x"`.
_ANY_IMPORT = re.compile(r"""(?:\bfrom|\bimport)\s*\(?\s*["']([^"']+)["']""")
_NAMED_IMPORT = re.compile(r"""\b(?:import|export)\s*\{([^}]*)\}\s*from\s*["']([^"']+)["']""")
_BARE_IMPORT = re.compile(r"""\bimport\s*["']([^"']+)["']""")
_DEFAULT = re.compile(r"\bdefault\b")


@dataclass(frozen=True)
class ImportMap:
    text: str
    """The JSON exactly as it goes between `<script type="importmap">` and `</script>`."""
    hash_source: str
    """`'sha256-…'` for the CSP's script-src."""
    preloads: dict[str, list[tuple[str, str]]]
    """App -> (url, integrity) of the default shared modules it is the first (in page
    order) to import, with their chunks, in the order it imports them."""
    unused: tuple[str, ...] = ()
    """Shared module specifiers no app imports (see `_unused`)."""


def build_import_map(
    shared_url: str,
    shared: AssetManifest,
    shared_dist: Path,
    apps: dict[str, tuple[str, AssetManifest, Path]],
) -> ImportMap:
    """`apps`: name -> (base URL, manifest, dist). Scope keys are the apps' base URLs."""
    if DEFAULT not in shared.modules:
        raise MfeError(
            f"{shared.app}: asset-manifest.json lists no shared modules; run `doit build:shared`"
        )
    whole = {
        spec
        for _, manifest, dist in apps.values()
        for key, entry in manifest.files.items()
        if key.endswith(JS_SUFFIXES)
        for spec in _whole_imports(dist / key, entry.sha256)
    }
    imported = {
        spec
        for _, manifest, dist in apps.values()
        for key, entry in manifest.files.items()
        if key.endswith(JS_SUFFIXES)
        for spec in _imports(dist / key, entry.sha256)
    }
    modules = _mapped(shared, DEFAULT, whole)
    imports = {spec: shared_url + file for spec, file in modules.items()}
    scopes: dict[str, dict[str, str]] = {}
    for variant, names in shared.scopes.items():
        for name in names:
            if name in apps:
                mapped = _mapped(shared, variant, whole)
                scopes[apps[name][0]] = {spec: shared_url + file for spec, file in mapped.items()}
    integrity = {
        shared_url + key: entry.integrity
        for key, entry in shared.files.items()
        if key.endswith(JS_SUFFIXES)
    }
    for base, manifest, _ in apps.values():
        integrity.update(
            {
                base + key: e.integrity
                for key, e in manifest.files.items()
                if key.endswith(JS_SUFFIXES)
            }
        )
    data: dict[str, object] = {"imports": imports, "integrity": dict(sorted(integrity.items()))}
    if scopes:
        data["scopes"] = scopes
    text = json.dumps(data, indent=1, sort_keys=True)
    # Valid JSON that can never close the script element or open a comment.
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()
    preloads = {
        name: [
            (shared_url + key, shared.files[key].integrity) for key in keys if key in shared.files
        ]
        for name, keys in _imported(shared_dist, shared, modules, apps).items()
    }
    unused = _unused(shared.modules[DEFAULT], imported)
    return ImportMap(text, f"'sha256-{digest}'", preloads, unused)


def _unused(specifiers: Iterable[str], imported: set[str]) -> tuple[str, ...]:
    """The `specifiers` no app imports: built into the shared modules and uploaded for
    nothing (`react-dom/server` doubles React's shared file). Not a package's main module
    while a subpath of it is imported (`react-dom` with `react-dom/client`): that code
    loads it, so it is in the shared file either way."""
    return tuple(
        spec
        for spec in specifiers
        if spec not in imported and not any(i.startswith(spec + "/") for i in imported)
    )


def _graph(dist: Path, keys: list[str], seen: set[str]) -> list[tuple[str, str]]:
    """(key, text) of the files `keys` name and of the chunks they import (`./…`), depth
    first in import order; files in `seen` are skipped, the others added to it."""
    todo, found = list(reversed(keys)), []
    while todo:
        key = todo.pop()
        if key in seen or not (dist / key).is_file():
            continue
        seen.add(key)
        text = (dist / key).read_text(encoding="utf-8", errors="replace")
        found.append((key, text))
        folder = key.rpartition("/")[0]
        chunks = [spec for spec in _IMPORT.findall(text) if spec.startswith("./")]
        todo += [f"{folder}/{spec[2:]}".lstrip("/") for spec in reversed(chunks)]
    return found


@functools.lru_cache(maxsize=4096)
def _imports(path: Path, sha256: str) -> frozenset[str]:
    """Every specifier the file imports, any way (cached by content like `_whole_imports`)."""
    return frozenset(_ANY_IMPORT.findall(_app_file(path)))


@functools.lru_cache(maxsize=4096)
def _whole_imports(path: Path, sha256: str) -> frozenset[str]:
    """Specifiers the file imports other than by named exports alone: as a default
    (`import R from"react-dom/client"`), a namespace or dynamically. Every JavaScript file
    of an app counts, a lazily loaded chunk too. Cached by content (`doit serve` renders
    the page after every rebuild)."""
    text = _app_file(path)
    named = [s for names, s in _NAMED_IMPORT.findall(text) if not _DEFAULT.search(names)]
    partial = Counter(named + _BARE_IMPORT.findall(text))
    return frozenset(s for s, n in Counter(_ANY_IMPORT.findall(text)).items() if n > partial[s])


def _app_file(path: Path) -> str:
    """The text of an app's built file its manifest lists."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:  # never a guess: it would map a specifier the code cannot use
        raise MfeError(
            f"{path}: missing, though its app's asset-manifest.json lists it; "
            "build that app again (was its dist/ replaced meanwhile?)"
        ) from None


def _mapped(shared: AssetManifest, variant: str, whole: set[str]) -> dict[str, str]:
    """Specifier -> file of one variant: its fallback where code needs the whole module."""
    fallbacks = shared.fallbacks.get(variant, {})
    modules = shared.modules.get(variant, {})
    return {s: fallbacks[s] if s in whole and s in fallbacks else f for s, f in modules.items()}


def _imported(
    shared_dist: Path,
    shared: AssetManifest,
    modules: dict[str, str],
    apps: dict[str, tuple[str, AssetManifest, Path]],
) -> dict[str, list[str]]:
    """Per app, in page order: the default shared files its entries import (with their
    static chunks), with the chunks those import, each file under the first app that needs
    it. That is the order the page runs them, so the hints fetch the parent's modules first
    (its first paint waits for them, not for a fragment's React); a module no app uses (say
    `react-dom`) costs no request."""
    seen: set[str] = set()
    found: dict[str, list[str]] = {}
    for name, (_, manifest, dist) in apps.items():
        code = [text for _, text in _graph(dist, manifest.entries, set())]
        imported = [modules[s] for text in code for s in _IMPORT.findall(text) if s in modules]
        found[name] = [key for key, _ in _graph(shared_dist, imported, seen)]
    return found


def check_placement(html: str, text: str, where: str) -> None:
    """The page must carry the map verbatim (its CSP hash) before any module is fetched."""
    tag = f'<script type="importmap">{text}</script>'
    at = html.find(tag)
    if at < 0:
        raise MfeError(
            f'{where}: the page must contain `<script type="importmap">{{{{ importmap }}}}'
            "</script>` exactly (the CSP allows it by the hash of that text); fix the template"
        )
    for marker in ('<script type="module"', 'rel="modulepreload"'):
        first = html.find(marker)
        if 0 <= first < at:
            raise MfeError(
                f"{where}: the import map must come before every module script and "
                "modulepreload link (browsers ignore a later one); move it up in the template"
            )
