// The esbuild build shared by every app: `node ../../tools/build-app.mjs`, run in the app's
// folder (its package.json `build` script). Listed under [build] inputs in mfe.toml, so
// editing it rebuilds every app. Build contract (relied on by the `mfe` orchestrator):
//   entry src/main.{js,jsx,ts,tsx} -> <out>/main-[hash].js (+ .map), chunks/ and assets/
//   <out> = $MFE_OUT_DIR (absolute or relative to the app folder) or ./dist; emptied first
//   public/* is copied verbatim (mutable files); no asset-manifest.json is written here
//   on a build error: esbuild's message on stderr, exit code 1
//   the esbuild options live in tools/esbuild-options.mjs (shared with other builds)
import { build } from 'esbuild';
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, parse, relative, resolve } from 'node:path';
import { appOptions, sharedFromEnv } from './esbuild-options.mjs';

const appDir = process.cwd();
const out = resolve(appDir, process.env.MFE_OUT_DIR || 'dist');

function fail(message) {
  process.stderr.write(`build: ${message}\n`);
  process.exit(1);
}

// Emptying the output dir must never remove the app itself or one of its parents.
const fromOut = relative(out, appDir);
if (out === parse(out).root || fromOut === '' || !fromOut.startsWith('..')) {
  fail(`refusing to use ${out} as the output dir (it contains the app folder ${appDir})`);
}

const entry = ['main.jsx', 'main.js', 'main.tsx', 'main.ts']
  .map((name) => join(appDir, 'src', name))
  .find((path) => existsSync(path));
if (!entry) fail(`no entry point: expected src/main.js(x) or src/main.ts(x) in ${appDir}`);

// esbuild writes to a fixed virtual dir (./dist) so sourcemap paths, and thus every
// output byte, do not depend on MFE_OUT_DIR; the files are then written under `out`.
const virtualOut = join(appDir, 'dist');

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

let result;
try {
  result = await build(
    appOptions({
      appDir,
      entry,
      outdir: virtualOut,
      shared: sharedFromEnv(),
      label: process.env.MFE_APP || basename(appDir),
    }),
  );
} catch (err) {
  // esbuild has already printed the errors (logLevel 'warning' includes errors).
  if (!Array.isArray(err?.errors)) process.stderr.write(`${err?.stack || err}\n`);
  process.exit(1);
}

for (const file of result.outputFiles) {
  const target = join(out, relative(virtualOut, file.path));
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, file.contents);
}
const publicDir = join(appDir, 'public');
if (existsSync(publicDir)) cpSync(publicDir, out, { recursive: true });
