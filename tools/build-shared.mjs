// Builds the shared modules (the `shared` pseudo-app): each module specifier listed under
// [shared] in mfe.toml becomes one fingerprinted ES module, and the modules of one variant
// are built together with code splitting, so lit's subpaths share one lit-html and React's
// entry points share one React. Run by the orchestrator (`doit build:shared`) in the root:
//   MFE_OUT_DIR           the folder to write (emptied first)
//   MFE_SHARED_SPEC       {"variants": [{"dir": "", "resolveDir": "/abs", "modules": [...]}]}
//                         one variant per distinct set of resolved versions; "" is the default
//   MFE_SHARED_MODULES_OUT where to write {"<dir>": {"<specifier>": "<file>"}}
// CommonJS packages (react, react-dom) get an ES wrapper that re-exports their named exports.
import { build } from 'esbuild';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { common } from './esbuild-options.mjs';

const root = process.cwd();
const out = resolve(root, process.env.MFE_OUT_DIR || 'build/shared/dist');
const spec = JSON.parse(process.env.MFE_SHARED_SPEC || '{"variants": []}');
const modulesOut = process.env.MFE_SHARED_MODULES_OUT;
// A fixed virtual outdir keeps sourcemaps, and so every byte, independent of MFE_OUT_DIR.
const virtualOut = join(root, 'build', 'shared', 'dist');
const NAMESPACE = 'mfe-shared';
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

/** The ES module source that re-exports one specifier, resolved from `resolveDir`. */
function wrapper(specifier, resolveDir) {
  const require = createRequire(join(resolveDir, 'noop.js'));
  let file;
  try {
    file = require.resolve(specifier);
  } catch (err) {
    fail(`cannot resolve '${specifier}' from ${resolveDir} (${err.code}): run npm install`);
  }
  const esm = file.endsWith('.mjs') || (!file.endsWith('.cjs') && packageType(file) === 'module');
  const quoted = JSON.stringify(specifier);
  if (esm) return `export * from ${quoted};\n`;
  // CommonJS has no static exports: list them by loading the production build in Node.
  process.env.NODE_ENV = 'production';
  const names = Object.keys(require(file)).filter((n) => n !== 'default' && IDENTIFIER.test(n));
  return [
    `import mod from ${quoted};`,
    'export default mod;',
    names.length ? `export const { ${names.join(', ')} } = mod;` : '',
    '',
  ].join('\n');
}

const modules = {};
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const variant of spec.variants) {
  const outdir = join(virtualOut, variant.dir);
  const entryPoints = {};
  for (const specifier of variant.modules) entryPoints[fileStem(specifier)] = specifier;
  const plugin = {
    name: 'mfe-shared-entries',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) =>
        args.kind === 'entry-point' ? { path: args.path, namespace: NAMESPACE } : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: NAMESPACE }, (args) => ({
        contents: wrapper(args.path, variant.resolveDir),
        resolveDir: variant.resolveDir,
        loader: 'js',
      }));
    },
  };
  let result;
  try {
    result = await build({
      ...common,
      absWorkingDir: root,
      entryPoints,
      outdir,
      splitting: true,
      metafile: true,
      plugins: [plugin],
    });
  } catch (err) {
    if (!Array.isArray(err?.errors)) process.stderr.write(`${err?.stack || err}\n`);
    process.exit(1);
  }
  const found = {};
  for (const [path, output] of Object.entries(result.metafile.outputs)) {
    const [namespace, specifier] = (output.entryPoint || '').split(/:(.*)/s);
    if (namespace === NAMESPACE) found[specifier] = relative(virtualOut, resolve(root, path));
  }
  modules[variant.dir] = found;
  for (const file of result.outputFiles) {
    const target = join(out, relative(virtualOut, file.path));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, file.contents);
  }
}
if (modulesOut) writeFileSync(modulesOut, JSON.stringify(modules, null, 2) + '\n');
