#!/usr/bin/env node
// Read a room's archived document from `collab serve` and print it as ProseMirror JSON, decoded
// with the page's own schema (TipTap StarterKit) by stock y-prosemirror — what an editor opening
// the room would show, without a browser or a WebRTC connection.
//
//   node examples/tiptap_room/archived_doc.mjs http://127.0.0.1:8000 my-room [--at VERSION]
//   node examples/tiptap_room/archived_doc.mjs --file state.bin      (a saved Yjs V1 update)
//
// Prints `editor.getJSON()`'s shape: {"type":"doc","content":[...]}.
import * as Y from 'yjs'
import { getSchema } from '@tiptap/core'
import StarterKit from '@tiptap/starter-kit'
import { yXmlFragmentToProseMirrorRootNode } from 'y-prosemirror'
import { readFileSync } from 'node:fs'

const FRAGMENT = 'default' // TipTap Collaboration's default field (src/main.js)

const usage = 'usage: archived_doc.mjs SERVER ROOM [--at VERSION] | --file UPDATE'
const args = process.argv.slice(2)
const option = name => {
  const i = args.indexOf(name)
  return i >= 0 ? args.splice(i, 2)[1] : undefined
}
const file = option('--file')
const at = option('--at')

let update
if (file !== undefined) {
  update = new Uint8Array(readFileSync(file))
} else {
  const [server, room] = args
  if (!server || !room) {
    console.error(usage)
    process.exit(2)
  }
  const url = new URL(`/api/rooms/${encodeURIComponent(room)}/update`, server)
  if (at !== undefined) url.searchParams.set('at', at)
  const res = await fetch(url)
  if (!res.ok) {
    console.error(`GET ${url}: ${res.status} ${await res.text()}`)
    process.exit(1)
  }
  update = new Uint8Array(await res.arrayBuffer())
}

const doc = new Y.Doc()
Y.applyUpdate(doc, update)
const schema = getSchema([StarterKit.configure({ history: false })])
const node = yXmlFragmentToProseMirrorRootNode(doc.getXmlFragment(FRAGMENT), schema)
console.log(JSON.stringify(node.toJSON()))
