"""Local development server: `doit serve` (see `session.serve`).

Modules: `server` (HTTP), `watch` (watchdog + debounce), `rebuild` (doit in-process),
`reload` (SSE endpoint, injected script, error overlay), `cycle` (one rebuild and its
outcome), `origins` (which hosts and origins may talk to it), `session` (the loop tying
them).
"""

from mfe.serve.session import serve

__all__ = ["serve"]
