#!/usr/bin/env node
// Build the co-editing page into web/dist/ (what `collab serve` serves at `/`).
//
//   node web/build.mjs             always rebuild
//   node web/build.mjs --if-stale  rebuild only when a source is newer than the bundle
//   node web/build.mjs --dev       no minification (readable stack traces)
//
// Output: web/dist/index.html, style.css, sw.js (offline shell), app.js (+ app.js.map).
// Everything is bundled from the stock npm packages (yjs, y-webrtc, CodeMirror 6,
// y-codemirror.next, y-indexeddb); the page loads nothing from other origins.
import { build } from 'esbuild'
import { copyFileSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const dist = join(here, 'dist')
const args = new Set(process.argv.slice(2))
const bundle = join(dist, 'app.js')
const statics = ['index.html', 'style.css', 'sw.js']

/** @param {string} dir @returns {string[]} */
const listFiles = dir => readdirSync(dir, { withFileTypes: true }).flatMap(entry => {
  const path = join(dir, entry.name)
  return entry.isDirectory() ? listFiles(path) : [path]
})

const newestSource = () => {
  const sources = [
    ...listFiles(join(here, 'src')),
    ...statics.map(name => join(here, name)),
    fileURLToPath(import.meta.url),
    join(here, '..', 'package-lock.json')
  ]
  return Math.max(...sources.map(path => statSync(path).mtimeMs))
}

const builtAt = () => {
  try {
    return Math.min(...[bundle, ...statics.map(name => join(dist, name))].map(p => statSync(p).mtimeMs))
  } catch {
    return -Infinity // something is missing: build
  }
}

if (args.has('--if-stale') && builtAt() >= newestSource()) {
  process.exit(0)
}

mkdirSync(dist, { recursive: true })
await build({
  entryPoints: [join(here, 'src', 'main.js')],
  outfile: bundle,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020'],
  minify: !args.has('--dev'),
  sourcemap: true,
  legalComments: 'linked',
  logLevel: 'warning'
})
for (const name of statics) {
  copyFileSync(join(here, name), join(dist, name))
}
console.log(`web: built ${bundle}`)
