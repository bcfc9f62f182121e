// The publish benchmarks' "bundler": names each file of the app's `files/` by a hash of
// its bytes, as esbuild, Vite and webpack name their outputs, so the site's chunks are
// immutable the way a real build's are. `files/main.js` -> `main-<HASH>.js`,
// `files/assets/chunk1.js` -> `assets/chunk1-<HASH>.js` (HASH: 8 base32 characters of the
// sha256, esbuild's alphabet); `files/public/` is copied as is to the output's top level
// (Vite's public folder: robots.txt, site.webmanifest keep a fixed URL).
// Usage, in an app folder: node <this file>   (writes into $MFE_OUT_DIR)
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const out = process.env.MFE_OUT_DIR;
if (!out) {
  console.error('fingerprint_build.mjs: MFE_OUT_DIR is not set; run it through `doit build`');
  process.exit(2);
}

// 8 base32 characters from the first 40 bits of the content's sha256.
function contentHash(bytes) {
  const value = createHash('sha256').update(bytes).digest().readUIntBE(0, 5);
  let text = '';
  for (let shift = 35; shift >= 0; shift -= 5) text += BASE32[Math.floor(value / 2 ** shift) % 32];
  return text;
}

// Relative paths of every file under `folder` (sorted: the same build writes the same names).
function walk(folder, prefix = '') {
  const found = [];
  for (const entry of readdirSync(join(folder, prefix), { withFileTypes: true })) {
    const name = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) found.push(...walk(folder, name));
    else if (entry.isFile()) found.push(name);
  }
  return found.sort();
}

const made = new Set();
function ensureFolder(path) {
  const folder = path.slice(0, path.lastIndexOf('/') + 1);
  if (!made.has(folder)) {
    mkdirSync(join(out, folder), { recursive: true });
    made.add(folder);
  }
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const name of walk('files')) {
  if (name.startsWith('public/')) {
    const target = name.slice('public/'.length);
    ensureFolder(target);
    copyFileSync(join('files', name), join(out, target));
    continue;
  }
  const bytes = readFileSync(join('files', name));
  const suffix = extname(name);
  const target = `${name.slice(0, name.length - suffix.length)}-${contentHash(bytes)}${suffix}`;
  ensureFolder(target);
  writeFileSync(join(out, target), bytes);
}
