#!/usr/bin/env node
// Build the TipTap room page into dist/ (or --outdir DIR): esbuild bundles src/main.js with the
// stock npm packages (yjs, y-webrtc, @tiptap/*, y-prosemirror) from the checkout's node_modules.
//
//   node examples/tiptap_room/build.mjs                 build into examples/tiptap_room/dist
//   node examples/tiptap_room/build.mjs --outdir DIR    build somewhere else (the tests do)
//   node examples/tiptap_room/build.mjs --if-stale      only when a source is newer than the bundle
//   node examples/tiptap_room/build.mjs --dev           no minification
import { build } from 'esbuild'
import { copyFileSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const argv = process.argv.slice(2)
const flags = new Set(argv.filter(a => a.startsWith('--') && a !== '--outdir'))
const outIndex = argv.indexOf('--outdir')
const dist = outIndex >= 0 && argv[outIndex + 1] ? resolve(argv[outIndex + 1]) : join(here, 'dist')
const statics = ['index.html', 'style.css']
const bundle = join(dist, 'app.js')

const sources = () => [
  ...readdirSync(join(here, 'src')).map(name => join(here, 'src', name)),
  ...statics.map(name => join(here, name)),
  fileURLToPath(import.meta.url),
  join(here, '..', '..', 'package-lock.json')
]
const newest = paths => Math.max(...paths.map(path => statSync(path).mtimeMs))
const builtAt = () => {
  try {
    return Math.min(...[bundle, ...statics.map(name => join(dist, name))].map(p => statSync(p).mtimeMs))
  } catch {
    return -Infinity // something is missing: build
  }
}

if (flags.has('--if-stale') && builtAt() >= newest(sources())) process.exit(0)

mkdirSync(dist, { recursive: true })
await build({
  entryPoints: [join(here, 'src', 'main.js')],
  outfile: bundle,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: !flags.has('--dev'),
  sourcemap: true,
  legalComments: 'linked',
  logLevel: 'warning'
})
for (const name of statics) copyFileSync(join(here, name), join(dist, name))
console.log(`tiptap_room: built ${bundle}`)
