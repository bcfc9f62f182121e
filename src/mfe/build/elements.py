"""Which custom elements an app's bundle defines, read from its built entry files.

The shell mounts each app by its `element` (mfe.toml); an element no bundle defines would
publish a page with an empty slot. Bundlers minify `customElements.define(TAG, X)` with
`TAG` renamed, so a name passed through a variable is resolved to the string it was
assigned (`var gd="mfe-accounts"`), and Lit's `@customElement("x-y")` decorator counts too.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from mfe.build.manifest import AssetManifest
from mfe.config import CONFIG_FILE, App, Project
from mfe.errors import ConfigError

_NAME = r"[a-z][a-z0-9._]*-[a-z0-9._-]*"
_QUOTED = rf"""["'`]({_NAME})["'`]"""
_DEFINE = re.compile(rf"""customElements\.define\(\s*(?:{_QUOTED}|([A-Za-z_$][\w$]*)\s*[,)])""")
# Literal text first, the word-boundary check as a lookbehind after it: a pattern that
# starts with text is searched for like a string, one starting with `\b` or a lookbehind is
# tried at every position of the bundle (~40x slower on a 200 kB entry).
_DECORATOR = re.compile(rf"""customElement(?<!\wcustomElement)\(\s*{_QUOTED}\s*\)""")


def defined_elements(source: str) -> set[str]:
    """Custom element names a bundle's JavaScript defines."""
    found: set[str] = set()
    for match in _DEFINE.finditer(source):
        literal, variable = match.groups()
        if literal:
            found.add(literal)
        else:
            name = re.escape(variable)
            assigned = re.compile(rf"{name}(?<![\w$.]{name})\s*=\s*{_QUOTED}")
            found.update(m.group(1) for m in assigned.finditer(source))
    found.update(m.group(1) for m in _DECORATOR.finditer(source))
    return found


def bundle_elements(dist: Path, manifest: AssetManifest) -> set[str]:
    """Elements defined by the entry files the manifest records under `dist`."""
    found: set[str] = set()
    for entry in manifest.entries:
        found |= _file_elements(str(dist / entry), manifest.files[entry].sha256)
    return found


@functools.lru_cache(maxsize=64)
def _file_elements(path: str, sha256: str) -> frozenset[str]:
    """Keyed by content hash: `doit serve` checks every app's entry after each rebuild."""
    del sha256  # the cache key: the same bytes define the same elements
    return frozenset(defined_elements(Path(path).read_text(encoding="utf-8", errors="replace")))


def check_element(project: Project, app: App, dist: Path, manifest: AssetManifest) -> None:
    """ConfigError naming mfe.toml's `apps.<app>.element` unless the bundle defines it."""
    found = bundle_elements(dist, manifest)
    if app.element not in found:
        defined = ", ".join(sorted(found)) or "no custom element"
        raise ConfigError(
            f"{CONFIG_FILE}: key 'apps.{app.name}.element' is {app.element!r}, "
            f"but the built entry of apps/{app.name} ({', '.join(manifest.entries)}) defines "
            f"{defined}; set the element the app registers with customElements.define"
        )
