"""Building one app: its sources, the bundler run, the asset manifest, and the input keys.

`sources` says which files are an app's inputs (for doit, the watcher and CI alike);
`bundle` runs the app's build script into a scratch folder of its own (`scratch`) and
swaps it into `dist/`; `manifest` writes `asset-manifest.json`; `snapshot` fingerprints
the inputs before the bundler reads them; `elements` reads the custom elements a bundle defines; `lockslice`
and `inputs` key a build on the app's own slice of the lockfile and everything else its
output depends on (the build tasks and CI share them).
"""
