"""Build, serve and publish orchestrator for micro-frontend monorepos.

Folders: `build/` (one app's sources, bundler, manifest, input keys), `envs/` (the
environment backends and their AWS session), `publish/` (upload, release, rollback),
`serve/` (the dev server), `ci/` (affected apps, build cache, the CI pipeline) and
`tasks/` (the doit adapter). Shared by all: `project` (the model), `config` (reads
`mfe.toml` into it, with `toml_table`), `shell` (the page), `errors`, `files` (atomic
writes), `doitdb` (doit's dependency file) and `doitcmds` (doit's commands: a user's
command-line mistakes in one line).
"""
