"""Incremental CI: `doit ci` builds only what changed and restores the rest from a cache.

`run` is the pipeline; `affected` finds the apps changed since a base ref; `cache`,
`archive`, `signing`, `trust` and `records` are the S3 build cache (deterministic
archives, signed entries, who may write, build times); `steps` installs and runs the
apps' tests; `report` writes `ci-report.json` and the job summary. The input keys and
lockfile slices live in `mfe.build`, which the build tasks share.
"""
