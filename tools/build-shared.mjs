// Builds the shared modules (the `shared` pseudo-app): each module specifier listed under
// [shared] in mfe.toml becomes one fingerprinted ES module. Run by the orchestrator
// (`doit build:shared`) in the root:
//   MFE_OUT_DIR           the folder to write (emptied first)
//   MFE_SHARED_SPEC       {"variants": [{"dir": "", "resolveDir": "/abs", "modules": [...]}]}
//                         one variant per distinct set of resolved versions; "" is the default
//   MFE_SHARED_MODULES_OUT where to write {"modules": {"<dir>": {"<specifier>": "<file>"}},
//                         "fallbacks": {"<dir>": {"<specifier>": "<file>"}}} (see buildVariant)
//
// Layout of one variant, chosen for the bytes a page downloads (bench/bench_shared.py):
// - ES module specifiers (lit, lit/decorators.js) are built together with code splitting,
//   so lit's subpaths share one lit-html.
// - CommonJS specifiers (react, react/jsx-runtime, react-dom/client) are bundled into ONE
//   file, `_commonjs-[hash].js`, that exports each one's `module.exports` (m0, m1, ...):
//   split into chunks, every chunk paid its own __commonJS/__toESM helpers, imports,
//   gzip header and lost compression context. The family file also exports the named
//   exports of them all (and the first one's default), so the import map points every one
//   at it: one request for React. Each specifier also gets a thin module written here,
//   `import{m0 as e}from"./_commonjs-….js";export default e;export const{useState,…}=e;`
//   (each export name once; esbuild's output names them twice), mapped instead when an app
//   imports its default export or namespace, or when its names clash with an earlier one's.
// - The two are separate builds: in one build esbuild makes every entry import the chunk of
//   its runtime helpers (as in evanw/esbuild#1747), so Lit would fetch React's __commonJS.
//   When one side imports a package of the other (an ES library on react), one build it is
//   (one copy of each library matters more than those bytes).
import { build, transform } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
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

/** A package.json's data, past a UTF-8 byte order mark (npm reads past one; JSON.parse does not). */
function readJson(file) {
  return JSON.parse(readFileSync(file, 'utf8').replace(/^\uFEFF/, ''));
}

function packageType(file) {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const data = readJson(manifest);
      if (data.name || data.type) return data.type || 'commonjs';
    }
  }
  return 'commonjs';
}

/** `mfe.toml: key 'shared.modules[N]'` of `specifier` (the default variant lists them all, in
 * mfe.toml's order). */
function keyOf(specifier) {
  const index = (spec.variants[0]?.modules ?? []).indexOf(specifier);
  return `mfe.toml: key 'shared.modules${index < 0 ? '' : `[${index}]`}'`;
}

/** The folder of the installed package `name` seen from `dir`, or null. */
function installedAt(name, dir) {
  for (let at = dir; ; at = dirname(at)) {
    const folder = join(at, 'node_modules', name);
    if (existsSync(join(folder, 'package.json'))) return folder;
    if (at === dirname(at)) return null;
  }
}

/** Whether the root's or an app's package.json depends on package `name`. */
function declared(name) {
  const manifests = [join(root, 'package.json')];
  const apps = join(root, 'apps');
  if (existsSync(apps)) {
    for (const app of readdirSync(apps)) manifests.push(join(apps, app, 'package.json'));
  }
  return manifests.some((file) => {
    if (!existsSync(file)) return false;
    const data = readJson(file);
    return ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies'].some(
      (field) => data[field] && name in data[field],
    );
  });
}

/** What to do about a [shared] module specifier Node cannot resolve: npm install helps only
 * when a package.json depends on its package and the package holds that module. */
function unresolvable(specifier, resolveDir, err) {
  const name = packageOf(specifier);
  const at = installedAt(name, resolveDir);
  if (at) {
    const { version } = readJson(join(at, 'package.json'));
    return (
      `${keyOf(specifier)} names '${specifier}', which package '${name}' (${version}) does not ` +
      `provide (${err.code}); fix the specifier to one the apps import, or remove it`
    );
  }
  if (declared(name)) {
    const todo = 'run `npm install`';
    return `${keyOf(specifier)} names '${specifier}', but '${name}' is not installed; ${todo}`;
  }
  return (
    `${keyOf(specifier)} names '${specifier}', but no package.json depends on '${name}' ` +
    `(npm install cannot help): add it to the apps that import it (npm install ${name} -w ` +
    `apps/<app>), or remove '${name}' from shared.packages and its modules`
  );
}

/** A message for esbuild's errors when a shared package imports a Node.js built-in (`tty`):
 * it is a package for Node, not for the browser. Null for other errors. */
function nodeOnly(errors) {
  for (const error of errors) {
    const wanted = /Could not resolve "([^"]+)"/.exec(error.text)?.[1];
    if (!wanted || !builtinModules.includes(wanted.replace(/^node:/, ''))) continue;
    const file = (error.location?.file ?? '').split(/[\\/]/);
    const at = file.indexOf('node_modules');
    if (at < 0) continue;
    const name = file[at + 1].startsWith('@') ? `${file[at + 1]}/${file[at + 2]}` : file[at + 1];
    const specifier = (spec.variants[0]?.modules ?? []).find((m) => packageOf(m) === name) ?? name;
    return (
      `${keyOf(specifier)} names '${specifier}', a package for Node.js, not the browser ` +
      `(${error.location.file} imports Node's built-in '${wanted}'); remove '${name}' from ` +
      'shared.packages and its modules'
    );
  }
  return null;
}

/** {specifier, esm, exports?} for one specifier resolved from `resolveDir`. */
function inspect(specifier, resolveDir) {
  const require = createRequire(join(resolveDir, 'noop.js'));
  let file;
  try {
    file = require.resolve(specifier);
  } catch (err) {
    fail(unresolvable(specifier, resolveDir, err));
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

/** The named exports of a CommonJS module's `module.exports` an ES module can re-export. */
function exportNames(exports) {
  return Object.keys(exports).filter((n) => n !== 'default' && IDENTIFIER.test(n));
}

/** `export const{a,b}=local;` for `names` (aliases for names that cannot be bindings). */
function exportStatements(local, names) {
  const plain = names.filter(bindable);
  const other = names.filter((n) => !bindable(n));
  const parts = [];
  if (plain.length) parts.push(`export const{${plain.join(',')}}=${local};`);
  if (other.length) {
    const alias = (i) => `${local}$${i}`;
    parts.push(`const{${other.map((n, i) => `${n}:${alias(i)}`).join(',')}}=${local};`);
    parts.push(`export{${other.map((n, i) => `${alias(i)} as ${n}`).join(',')}};`);
  }
  return parts.join('');
}

/** esbuild's interop: a transpiled ES module (__esModule) default-exports its `default`. */
function defaultOf(local, exports) {
  return exports.__esModule ? `${local}.default` : local;
}

/** The thin ES module of CommonJS specifier number `index` of the family file. */
function thinModule(index, familyFile, exports) {
  const names = exportNames(exports);
  let local = 'e'; // a local name no export name can shadow
  while (names.some((n) => n === local || n.startsWith(`${local}$`))) local = `_${local}`;
  const head = `import{m${index} as ${local}}from"./${familyFile}";`;
  return `${head}export default ${defaultOf(local, exports)};${exportStatements(local, names)}\n`;
}

/**
 * The family file with its specifiers' named exports added (and the first one's default),
 * so that one request loads React: the import map points `react`, `react/jsx-runtime`,
 * `react-dom/client` at this file, not at a thin module each (on HTTP/1.1 the extra
 * requests queued behind the browser's six connections and delayed the first paint).
 * A specifier whose export clashes with an earlier one's (same name, another value) keeps
 * its thin module. `null` when esbuild's output has no `export{x as m0,…}` clause or the
 * added names clash with its own top-level names: the thin modules then serve every one.
 * -> {text, served: [{specifier, whole}]}; `whole`: its default export is this file's.
 */
async function combine(text, cjs) {
  const clause = [...text.matchAll(/export\{([\w$]+ as m\d+(?:,[\w$]+ as m\d+)*)\};?/g)].at(-1);
  if (!clause) return null;
  const pairs = clause[1].split(',').map((item) => item.split(' as ').reverse());
  const local = Object.fromEntries(pairs); // m0 -> esbuild's name for it
  const exported = new Map();
  const parts = [];
  const served = [];
  cjs.forEach(({ specifier, exports }, index) => {
    const names = exportNames(exports);
    if (names.some((n) => exported.has(n) && !Object.is(exported.get(n), exports[n]))) return;
    const fresh = names.filter((n) => !exported.has(n));
    for (const n of fresh) exported.set(n, exports[n]);
    const name = local[`m${index}`];
    if (index === 0) parts.push(`export default ${defaultOf(name, exports)};`);
    parts.push(exportStatements(name, fresh));
    served.push({ specifier, whole: index === 0 });
  });
  const at = clause.index + clause[0].length;
  const combined = text.slice(0, at) + parts.join('') + text.slice(at);
  try {
    await transform(combined, { format: 'esm', loader: 'js', logLevel: 'silent' });
  } catch {
    return null;
  }
  return { text: combined, served };
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
    const message = Array.isArray(err?.errors) ? nodeOnly(err.errors) : null;
    if (message) fail(message);
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

/** A name segment for `text`: its sha256, 8 hex digits. */
function fingerprint(text) {
  return createHash('sha256').update(text).digest('hex').slice(0, 8).toUpperCase();
}

/** Builds one variant into `out`: {modules: {specifier: file}, fallbacks: {specifier: file}}
 * (files relative to the shared dist; a fallback is the module to map instead when an app
 * imports that specifier's default export or namespace, which its family file lacks). */
async function buildVariant(variant) {
  const items = variant.modules.map((specifier) => inspect(specifier, variant.resolveDir));
  const found = {};
  const fallbacks = {};
  for (const { result, cjs } of await builds(items, variant)) {
    let family;
    for (const [path, output] of Object.entries(result.metafile.outputs)) {
      const [namespace, specifier] = (output.entryPoint || '').split(/:(.*)/s);
      if (namespace !== NAMESPACE) continue;
      const file = relative(virtualOut, resolve(root, path));
      if (specifier === FAMILY) family = file;
      else found[specifier] = file;
    }
    const files = new Map(
      result.outputFiles.map((f) => [relative(virtualOut, f.path), f.contents]),
    );
    const familyText = family ? new TextDecoder().decode(files.get(family)) : null;
    const combined = familyText ? await combine(familyText, cjs) : null;
    if (combined) {
      // Renamed by its own content: esbuild's [hash] no longer covers every byte.
      const file = join(dirname(family), `${FAMILY}-${fingerprint(combined.text)}.js`);
      const map = `//# sourceMappingURL=${basename(file)}.map`;
      files.set(file, combined.text.replace(`//# sourceMappingURL=${basename(family)}.map`, map));
      files.delete(family);
      if (files.has(`${family}.map`)) {
        files.set(`${file}.map`, files.get(`${family}.map`));
        files.delete(`${family}.map`);
      }
      family = file;
    }
    for (const [file, contents] of files) write(join(out, file), contents);
    const served = new Map((combined?.served ?? []).map((s) => [s.specifier, s.whole]));
    cjs.forEach(({ specifier, exports }, index) => {
      if (served.get(specifier)) {
        found[specifier] = family; // the family file is its whole module
        return;
      }
      const text = thinModule(index, basename(family), exports);
      const file = join(variant.dir, `${fileStem(specifier)}-${fingerprint(text)}.js`);
      write(join(out, file), text);
      if (served.has(specifier)) [found[specifier], fallbacks[specifier]] = [family, file];
      else found[specifier] = file;
    });
  }
  const inOrder = (map) =>
    Object.fromEntries(variant.modules.filter((m) => m in map).map((m) => [m, map[m]]));
  return { modules: inOrder(found), fallbacks: inOrder(fallbacks) };
}

const modules = {};
const fallbacks = {};
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const variant of spec.variants) {
  const built = await buildVariant(variant);
  modules[variant.dir] = built.modules;
  fallbacks[variant.dir] = built.fallbacks;
}
if (modulesOut) writeFileSync(modulesOut, JSON.stringify({ modules, fallbacks }, null, 2) + '\n');
