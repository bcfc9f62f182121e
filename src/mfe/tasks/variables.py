"""The `name=value` command-line variables of the tasks, for their `doit help` / `doit list` doc.

doit prints a task's `params` under `doit help TASK` but knows nothing of the variables read
with `doit.get_var` (`env=`, `base=`, ...), so each task's one-line doc names them.
"""

from __future__ import annotations

VARIABLES = {
    "env": "env=NAME (an [env.NAME] of mfe.toml, default local)",
    "base": "base=GITREF (default: every app, the build cache decides)",
    "cache": "cache=on|off|force",
    "shard": "shard=K/N (build one shard of the ci_plan)",
    "shards": "shards=N (at most N shard jobs)",
    "username": "username=NAME (password from MFE_USER_PASSWORD or a prompt)",
    "app": "app=NAME (one app; the others stay as live)",
    "preview": "preview=NAME (a preview at previews/NAME/, nothing live changes)",
    "name": "name=NAME (the preview to remove)",
    "to": "to=RELEASE (a sequence number or release id from `doit releases`)",
    "new_app_name": "name=NAME (the new app's folder under apps/)",
    "stack": "stack=lit|react",
}


def doc(summary: str, *names: str) -> str:
    """`summary` plus the variables the task reads, on one line (doit keeps only one)."""
    if not names:
        return summary
    return f"{summary} Variables: {', '.join(VARIABLES[name] for name in names)}."
