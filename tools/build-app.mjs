// The esbuild build shared by every app: `node ../../tools/build-app.mjs`, run in the app's
// folder (its package.json `build` script). Listed under [build] inputs in mfe.toml, so
// editing it rebuilds every app. Build contract (relied on by the `mfe` orchestrator):
//   entry src/main.{js,jsx,ts,tsx} -> <out>/main-[hash].js (+ .map), chunks/ and assets/
//   <out> = $MFE_OUT_DIR (absolute or relative to the app folder) or ./dist; emptied first
//   public/* is copied verbatim, symlinks dereferenced (mutable files); no asset-manifest.json here
//   on a build error: esbuild's message on stderr (files named from the repo root), exit code 1
//   the esbuild options live in tools/esbuild-options.mjs (shared with other builds)
//
// `node tools/build-app.mjs --serve` is the long-lived bundler of `doit serve`: one esbuild
// context per app, rebuilt incrementally (no Node start-up, no cold bundle). It reads one
// JSON request per line on stdin, {"id", "app": <app folder>, "out": <out dir>, "label",
// "shared": <as MFE_SHARED>}, and answers one line, {"id", "ok", "text"} (esbuild's
// messages), on stdout. Both modes build with the same `appOptions` and write the same files.
import { build, context, formatMessages } from 'esbuild';
import { cpSync, existsSync, mkdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, parse, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { appOptions, sharedFromEnv } from './esbuild-options.mjs';

class BuildError extends Error {}

// The monorepo root (this file is <root>/tools/build-app.mjs): messages name files from
// here, as every other line the orchestrator prints does, so terminals can open them.
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The app's entry file, src/main.{jsx,js,tsx,ts}. */
export function entryOf(appDir) {
  const entry = ['main.jsx', 'main.js', 'main.tsx', 'main.ts']
    .map((name) => join(appDir, 'src', name))
    .find((path) => existsSync(path));
  if (!entry) throw new BuildError(`no entry point: expected src/main.js(x) or src/main.ts(x) in ${appDir}`);
  return entry;
}

// esbuild writes to a fixed virtual dir (./dist) so sourcemap paths, and thus every
// output byte, do not depend on MFE_OUT_DIR; the files are then written under `out`.
export function options(appDir, shared, label) {
  return appOptions({ appDir, entry: entryOf(appDir), outdir: join(appDir, 'dist'), shared, label });
}

// Emptying the output dir must never remove the app itself or one of its parents.
function checkOut(appDir, out) {
  const fromOut = relative(out, appDir);
  if (out === parse(out).root || fromOut === '' || !fromOut.startsWith('..')) {
    throw new BuildError(`refusing to use ${out} as the output dir (it contains the app folder ${appDir})`);
  }
}

function emit(result, appDir, out) {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const virtualOut = join(appDir, 'dist');
  for (const file of result.outputFiles) {
    const target = join(out, relative(virtualOut, file.path));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, file.contents);
  }
  const publicDir = join(appDir, 'public');
  // Symlinks dereferenced, as Vite copies public/: dist/ holds files, never links out of it.
  if (existsSync(publicDir)) cpSync(publicDir, out, { recursive: true, dereference: true });
}

async function once() {
  const appDir = process.cwd();
  const out = resolve(appDir, process.env.MFE_OUT_DIR || 'dist');
  let result;
  try {
    checkOut(appDir, out);
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    const settings = options(appDir, sharedFromEnv(), process.env.MFE_APP || basename(appDir));
    result = await build({ ...settings, logLevel: 'silent' });
  } catch (err) {
    if (err instanceof BuildError) process.stderr.write(`build: ${err.message}\n`);
    else if (!Array.isArray(err?.errors)) process.stderr.write(`${err?.stack || err}\n`);
    else process.stderr.write(`${await messages(appDir, err.errors, err.warnings || [])}\n`);
    process.exit(1);
  }
  const warnings = await messages(appDir, [], result.warnings);
  if (warnings) process.stderr.write(`${warnings}\n`);
  emit(result, appDir, out);
}

/** esbuild's messages, as it prints them, with each file named from the repo root. */
async function messages(appDir, errors, warnings) {
  const fromRoot = (message) => {
    const file = message.location?.file;
    if (!file || !['', 'file'].includes(message.location.namespace)) return message; // '' is file
    return { ...message, location: { ...message.location, file: relative(ROOT, resolve(appDir, file)) } };
  };
  const lines = [
    ...(await formatMessages(errors.map(fromRoot), { kind: 'error', color: false })),
    ...(await formatMessages(warnings.map(fromRoot), { kind: 'warning', color: false })),
  ];
  return lines.join('').trimEnd();
}

async function serve() {
  const contexts = new Map(); // app folder -> { key, ctx }
  async function rebuild({ app, out, shared, label }) {
    const appDir = resolve(app);
    checkOut(appDir, resolve(out));
    const settings = options(appDir, shared ?? sharedFromEnv({}), label || basename(appDir));
    const key = JSON.stringify([settings.entryPoints, shared]);
    let known = contexts.get(appDir);
    if (known?.key !== key) {
      await known?.ctx.dispose();
      known = { key, ctx: await context({ ...settings, logLevel: 'silent' }) };
      contexts.set(appDir, known);
    }
    try {
      const result = await known.ctx.rebuild();
      emit(result, appDir, resolve(out));
      return { ok: true, text: await messages(appDir, [], result.warnings) };
    } catch (err) {
      if (!Array.isArray(err?.errors)) throw err;
      return { ok: false, text: await messages(appDir, err.errors, err.warnings || []) };
    }
  }
  const reply = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
  reply({ ready: 'mfe-bundler/1' });
  for await (const line of createInterface({ input: process.stdin })) {
    const request = JSON.parse(line);
    try {
      reply({ id: request.id, ...(await rebuild(request)) });
    } catch (err) {
      const text = err instanceof BuildError ? `build: ${err.message}` : `${err?.stack || err}`;
      reply({ id: request.id, ok: false, text });
    }
  }
  await Promise.all([...contexts.values()].map(({ ctx }) => ctx.dispose()));
}

// Run as a script, not when imported (bench/esbuild_floor.mjs takes its options from here).
if (import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  await (process.argv.includes('--serve') ? serve() : once());
}
