"""Incremental CI: per-app input keys, lockfile slices, affected apps, an S3 build cache."""
