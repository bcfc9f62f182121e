// The floor for `doit serve`'s rebuild: a plain esbuild context() of one app, with the
// options of tools/build-app.mjs (MFE_SHARED as the orchestrator sets it), rebuilt in
// memory on request. Usage, in the monorepo:
//   node <this file> apps/<app>    then one line per rebuild on stdin; answers the ms taken
import { context } from 'esbuild';
import { basename, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { options } from '../tools/build-app.mjs';
import { sharedFromEnv } from '../tools/esbuild-options.mjs';

const appDir = resolve(process.argv[2]);
const settings = options(appDir, sharedFromEnv(), basename(appDir));
const ctx = await context({ ...settings, logLevel: 'silent' });
await ctx.rebuild();
process.stdout.write('ready\n');
for await (const _ of createInterface({ input: process.stdin })) {
  const started = performance.now();
  await ctx.rebuild();
  process.stdout.write(`${(performance.now() - started).toFixed(2)}\n`);
}
await ctx.dispose();
