"""The page's import map: one URL per shared module, scopes for apps pinned to another
version, and an `integrity` entry (SRI) for every module the page may load.

The map is an inline script, so the CSP allows it by its sha256 hash (never
`unsafe-inline`); its text is computed here, once, and must reach the page verbatim.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from mfe.build.manifest import AssetManifest
from mfe.build.shared import DEFAULT
from mfe.errors import MfeError

_JS = (".js", ".mjs")
# Static imports in bundler output: `import{a}from"lit"`, `import"./chunks/x.js"`.
_IMPORT = re.compile(r"""(?:\bfrom|\bimport)\s*["']([^"']+)["']""")


@dataclass(frozen=True)
class ImportMap:
    text: str
    """The JSON exactly as it goes between `<script type="importmap">` and `</script>`."""
    hash_source: str
    """`'sha256-…'` for the CSP's script-src."""
    preloads: dict[str, list[tuple[str, str]]]
    """App -> (url, integrity) of the default shared modules it is the first (in page
    order) to import, with their chunks, in the order it imports them."""


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
    imports = {spec: shared_url + file for spec, file in shared.modules[DEFAULT].items()}
    scopes: dict[str, dict[str, str]] = {}
    for variant, names in shared.scopes.items():
        for name in names:
            if name in apps:
                mapped = shared.modules.get(variant, {})
                scopes[apps[name][0]] = {spec: shared_url + file for spec, file in mapped.items()}
    integrity = {
        shared_url + key: entry.integrity
        for key, entry in shared.files.items()
        if key.endswith(_JS)
    }
    for base, manifest, _ in apps.values():
        integrity.update(
            {base + key: e.integrity for key, e in manifest.files.items() if key.endswith(_JS)}
        )
    data: dict[str, object] = {"imports": imports, "integrity": dict(sorted(integrity.items()))}
    if scopes:
        data["scopes"] = scopes
    text = json.dumps(data, indent=1, sort_keys=True)
    # Valid JSON that can never close the script element or open a comment.
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()
    preloads = {
        name: [(shared_url + key, shared.files[key].integrity) for key in keys]
        for name, keys in _imported(shared_dist, shared, apps).items()
    }
    return ImportMap(text, f"'sha256-{digest}'", preloads)


def _imports_of(path: Path) -> list[str]:
    return _IMPORT.findall(path.read_text(encoding="utf-8", errors="replace"))


def _imported(
    shared_dist: Path, shared: AssetManifest, apps: dict[str, tuple[str, AssetManifest, Path]]
) -> dict[str, list[str]]:
    """Per app, in page order: the default shared files its entries import, with the chunks
    those import, each file under the first app that needs it. That is the order the page
    runs them, so the hints fetch the parent's modules first (its first paint waits for
    them, not for a fragment's React); a module no app uses (say `react-dom`) costs no
    request."""
    modules = shared.modules[DEFAULT]
    seen: set[str] = set()
    found: dict[str, list[str]] = {}
    for name, (_, manifest, dist) in apps.items():
        imported = [spec for entry in manifest.entries for spec in _imports_of(dist / entry)]
        todo = [modules[spec] for spec in reversed(imported) if spec in modules]
        found[name] = []
        while todo:  # depth first, in import order
            key = todo.pop()
            if key in seen or key not in shared.files:
                continue
            seen.add(key)
            found[name].append(key)
            folder = key.rpartition("/")[0]
            chunks = [s for s in _imports_of(shared_dist / key) if s.startswith("./")]
            todo += [f"{folder}/{spec[2:]}".lstrip("/") for spec in reversed(chunks)]
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
