// Builds the shared modules (the `shared` pseudo-app): each module specifier listed under
// [shared] in mfe.toml becomes one fingerprinted ES module. Run by the orchestrator
// (`doit build:shared`) in the root:
//   MFE_OUT_DIR           the folder to write (emptied first)
//   MFE_SHARED_SPEC       {"variants": [{"dir": "", "resolveDir": "/abs", "modules": [...]}]}
//                         one variant per distinct set of resolved versions; "" is the default
//   MFE_SHARED_MODULES_OUT where to write {"<dir>": {"<specifier>": "<file>"}}
//
// Layout of one variant, chosen for the bytes a page downloads (bench/bench_shared.py):
// - ES module specifiers (lit, lit/decorators.js) are built together with code splitting,
//   so lit's subpaths share one lit-html.
// - CommonJS specifiers (react, react/jsx-runtime, react-dom/client) are bundled into ONE
//   file, `_commonjs-[hash].js`, that exports each one's `module.exports` (m0, m1, ...):
//   split into chunks, every chunk paid its own __commonJS/__toESM helpers, imports,
//   gzip header and lost compression context. Each specifier is then a thin module written
//   here, `import{m0 as e}from"./_commonjs-….js";export default e;export const{useState,…}=e;`
//   (each export name once; esbuild's output names them twice).
// - The two are separate builds: in one build esbuild makes every entry import the chunk of
//   its runtime helpers (as in evanw/esbuild#1747), so Lit would fetch React's __commonJS.
//   When one side imports a package of the other (an ES library on react), one build it is
//   (one copy of each library matters more than those bytes).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { common, packageOf } from './esbuild-options.mjs';

const root = process.cwd();
const out = resolve(root, process.env.MFE_OUT_DIR || 'build/shared/dist');
const spec = JSON.parse(process.env.MFE_SHARED_SPEC || '{"variants": []}');
const modulesOut = process.env.MFE_SHARED_MODULES_OUT;
// A fixed virtual outdir keeps sourcemaps, and so every byte, independent of MFE_OUT_DIR.
const virtualOut = join(root, 'build', 'shared', 'dist');
const NAMESPACE = 'mfe-shared';
const FAMILY = '_commonjs'; // npm names never start with `_`: no clash with a module's stem
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function fail(message) {
  process.stderr.write(`build:shared: ${message}\n`);
  process.exit(1);
}

/** `react/jsx-runtime` -> `react__jsx-runtime`: a file name per module specifier. */
function fileStem(specifier) {
  return specifier
    .replace(/\.m?js$/, '')
    .replace(/^@/, '')
    .replace(/[^A-Za-z0-9_-]+/g, '__');
}

function packageType(file) {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const data = JSON.parse(readFileSync(manifest, 'utf8'));
      if (data.name || data.type) return data.type || 'commonjs';
    }
  }
  return 'commonjs';
}

/** {specifier, esm, exports?} for one specifier resolved from `resolveDir`. */
function inspect(specifier, resolveDir) {
  const require = createRequire(join(resolveDir, 'noop.js'));
  let file;
  try {
    file = require.resolve(specifier);
  } catch (err) {
    fail(`cannot resolve '${specifier}' from ${resolveDir} (${err.code}): run npm install`);
  }
  const esm = file.endsWith('.mjs') || (!file.endsWith('.cjs') && packageType(file) === 'module');
  if (esm) return { specifier, esm };
  // CommonJS has no static exports: list them by loading the production build in Node.
  process.env.NODE_ENV = 'production';
  return { specifier, esm, exports: require(file) };
}

/** Can `name` be a binding in module code (`export const {name} = e`)? */
function bindable(name) {
  if (name === 'await') return false;
  try {
    new Function(`"use strict"; let ${name};`);
    return true;
  } catch {
    return false;
  }
}

/** The thin ES module of CommonJS specifier number `index` of the family file. */
function thinModule(index, familyFile, exports) {
  const names = Object.keys(exports).filter((n) => n !== 'default' && IDENTIFIER.test(n));
  let local = 'e'; // a local name no export name can shadow
  while (names.some((n) => n === local || n.startsWith(`${local}$`))) local = `_${local}`;
  const plain = names.filter(bindable);
  const other = names.filter((n) => !bindable(n));
  // esbuild's interop: a transpiled ES module (__esModule) default-exports its `default`.
  const fallback = exports.__esModule ? `${local}.default` : local;
  const parts = [`import{m${index} as ${local}}from"./${familyFile}";export default ${fallback};`];
  if (plain.length) parts.push(`export const{${plain.join(',')}}=${local};`);
  if (other.length) {
    const alias = (i) => `${local}$${i}`;
    parts.push(`const{${other.map((n, i) => `${n}:${alias(i)}`).join(',')}}=${local};`);
    parts.push(`export{${other.map((n, i) => `${alias(i)} as ${n}`).join(',')}};`);
  }
  return `${parts.join('')}\n`;
}

/** One esbuild build of `items`; `crossed` when they import a package of `foreign`. */
async function bundle(items, variant, foreign) {
  const entryPoints = {};
  const sources = {}; // entry path (a specifier, or FAMILY) -> its source
  for (const { specifier } of items.filter((item) => item.esm)) {
    entryPoints[fileStem(specifier)] = specifier;
    sources[specifier] = `export * from ${JSON.stringify(specifier)};\n`;
  }
  const cjs = items.filter((item) => !item.esm);
  if (cjs.length) {
    entryPoints[FAMILY] = FAMILY;
    sources[FAMILY] = cjs
      .map(({ specifier }, i) => `export const m${i} = require(${JSON.stringify(specifier)});\n`)
      .join('');
  }
  let crossed = false;
  const plugin = {
    name: 'mfe-shared-entries',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind === 'entry-point') return { path: args.path, namespace: NAMESPACE };
        if (foreign.has(packageOf(args.path))) {
          crossed = true; // this build is dropped: the variant is built in one go instead
          return { path: args.path, external: true };
        }
        return undefined;
      });
      b.onLoad({ filter: /.*/, namespace: NAMESPACE }, (args) => ({
        contents: sources[args.path],
        resolveDir: variant.resolveDir,
        loader: 'js',
      }));
    },
  };
  try {
    const result = await build({
      ...common,
      absWorkingDir: root,
      entryPoints,
      outdir: join(virtualOut, variant.dir),
      splitting: true,
      metafile: true,
      plugins: [plugin],
    });
    return { result, crossed, cjs };
  } catch (err) {
    if (!Array.isArray(err?.errors)) process.stderr.write(`${err?.stack || err}\n`);
    process.exit(1);
  }
}

function write(file, contents) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, contents);
}

/** The builds of one variant: ES modules and the CommonJS family apart, unless they meet. */
async function builds(items, variant) {
  const esm = items.filter((item) => item.esm);
  const cjs = items.filter((item) => !item.esm);
  const packagesOf = (list) => new Set(list.map((item) => packageOf(item.specifier)));
  if (esm.length && cjs.length) {
    const first = await bundle(esm, variant, packagesOf(cjs));
    const second = first.crossed ? first : await bundle(cjs, variant, packagesOf(esm));
    if (!second.crossed) return [first, second];
  }
  return [await bundle(items, variant, new Set())];
}

/** Builds one variant into `out`; its {specifier: file} (relative to the shared dist). */
async function buildVariant(variant) {
  const items = variant.modules.map((specifier) => inspect(specifier, variant.resolveDir));
  const found = {};
  for (const { result, cjs } of await builds(items, variant)) {
    let family;
    for (const [path, output] of Object.entries(result.metafile.outputs)) {
      const [namespace, specifier] = (output.entryPoint || '').split(/:(.*)/s);
      if (namespace !== NAMESPACE) continue;
      const file = relative(virtualOut, resolve(root, path));
      if (specifier === FAMILY) family = basename(file);
      else found[specifier] = file;
    }
    for (const file of result.outputFiles) {
      write(join(out, relative(virtualOut, file.path)), file.contents);
    }
    cjs.forEach(({ specifier, exports }, index) => {
      const text = thinModule(index, family, exports);
      const hash = createHash('sha256').update(text).digest('hex').slice(0, 8).toUpperCase();
      const file = join(variant.dir, `${fileStem(specifier)}-${hash}.js`);
      write(join(out, file), text);
      found[specifier] = file;
    });
  }
  return Object.fromEntries(variant.modules.map((specifier) => [specifier, found[specifier]]));
}

const modules = {};
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const variant of spec.variants) modules[variant.dir] = await buildVariant(variant);
if (modulesOut) writeFileSync(modulesOut, JSON.stringify(modules, null, 2) + '\n');
