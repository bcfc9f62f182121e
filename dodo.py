"""doit tasks of this monorepo; all logic lives in the `mfe` package (see README.md)."""

from mfe.tasks import generate

globals().update(generate(__file__))
