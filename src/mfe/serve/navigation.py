"""The SPA fallback of the deployed site (`infra/spa-fallback.js`, the parent
distribution's CloudFront Function), for the dev server's shell port: a deep link
(`/accounts/overview`) opened or reloaded in a tab gets the page there as it does
deployed (and under Vite), not a 404 that only `doit serve` would show.

The same rule: a navigation is a request whose last path segment has no `.` and whose
`Accept` names text/html; under `/previews/NAME/` it gets that preview's page, and under
`/_shared/` (the shared modules) never a page. Anything else stays a 404.
"""

from __future__ import annotations

import re

PAGE = "/index.html"
_PREVIEW = re.compile(r"^/previews/([^/]+)(/|$)")


def page_for(path: str, accept: str | None) -> str | None:
    """The page a request for `path` gets (`/index.html`, `/previews/NAME/index.html`),
    or None: a file, served as is or a 404."""
    if path.startswith("/_shared/"):
        return None
    if "." in path.rpartition("/")[2]:
        return None  # a file name: a missing script or image stays a 404
    if "text/html" not in (accept or ""):
        return None  # fetch() and assets: no page instead of a 404
    preview = _PREVIEW.match(path)
    return f"/previews/{preview.group(1)}/index.html" if preview else PAGE
