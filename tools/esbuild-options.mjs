// The esbuild options every build in this monorepo uses, in one place: the app builds
// (tools/build-app.mjs, and any long-lived context such as `doit serve`'s) and the shared
// modules (tools/build-shared.mjs). Listed under [build] inputs in mfe.toml.
//
// Shared dependencies: the orchestrator passes MFE_SHARED as JSON
//   {"packages": ["lit", "react", ...], "modules": ["lit", "react/jsx-runtime", ...]}
// An app build leaves each listed module specifier as a bare `import` (the page's import
// map resolves it to the one shared copy) and refuses any other specifier of a shared
// package, which would otherwise bundle a second copy of that library.

/** Options common to every build: ES modules for the browser, fingerprinted names. */
export const common = {
  bundle: true,
  format: 'esm',
  minify: true,
  sourcemap: true,
  target: 'es2020',
  platform: 'browser',
  write: false,
  entryNames: '[name]-[hash]',
  chunkNames: 'chunks/[name]-[hash]',
  assetNames: 'assets/[name]-[hash]',
  jsx: 'automatic',
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
};

/** `{packages, modules}` from MFE_SHARED (absent: nothing is shared). */
export function sharedFromEnv(env = process.env) {
  if (!env.MFE_SHARED) return { packages: [], modules: [] };
  const parsed = JSON.parse(env.MFE_SHARED);
  return { packages: parsed.packages ?? [], modules: parsed.modules ?? [] };
}

/** The package name of a bare specifier: `lit/x.js` -> `lit`, `@s/p/x` -> `@s/p`. */
export function packageOf(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** esbuild plugin: shared module specifiers stay external, other subpaths are an error. */
export function externalShared({ packages, modules }, label = 'this app') {
  const listed = new Set(modules);
  const names = new Set(packages);
  return {
    name: 'mfe-external-shared',
    setup(build) {
      if (names.size === 0) return;
      build.onResolve({ filter: /^[@a-zA-Z]/ }, (args) => {
        if (listed.has(args.path)) return { path: args.path, external: true };
        if (names.has(packageOf(args.path))) {
          return {
            errors: [
              {
                text:
                  `${label} imports '${args.path}' from the shared package ` +
                  `'${packageOf(args.path)}', but [shared] modules in mfe.toml does not list it: ` +
                  'add it there so the page keeps one copy of the library',
              },
            ],
          };
        }
        return undefined;
      });
    },
  };
}

/** The options of one app build (entry file, esbuild's virtual outdir, shared modules). */
export function appOptions({ appDir, entry, outdir, shared, label }) {
  return {
    ...common,
    absWorkingDir: appDir,
    entryPoints: [entry],
    outdir,
    splitting: false,
    plugins: [externalShared(shared, label)],
  };
}
