// Real Yjs + y-prosemirror + ProseMirror for tests/richtext: a JSON-lines worker (one request
// per stdin line, one reply per stdout line), spoken to by tests/richtext/helpers.py.
//
// It builds documents the way the editors do (y-prosemirror's prosemirrorJSONToYXmlFragment and
// updateYFragment, Quill-style Y.Text inserts/formats, nested Y.Map/Y.Array) and renders them
// the way the JavaScript side would (ProseMirror's DOMSerializer, prosemirror-markdown's
// defaultMarkdownSerializer, Y.Text#toDelta, Y.Doc#toJSON), so Python's collab.render and
// collab.history can be judged against the real libraries.
import * as Y from 'yjs'
import { Schema, DOMSerializer } from 'prosemirror-model'
import { schema as basicSchema } from 'prosemirror-schema-basic'
import { addListNodes } from 'prosemirror-schema-list'
import { defaultMarkdownSerializer } from 'prosemirror-markdown'
import {
  prosemirrorJSONToYXmlFragment, yXmlFragmentToProseMirrorRootNode, yXmlFragmentToProsemirrorJSON,
  updateYFragment
} from 'y-prosemirror'
import { getSchema } from '@tiptap/core'
import StarterKit from '@tiptap/starter-kit'
import { createInterface } from 'node:readline'

// basic + list: the schema prosemirror-markdown's default serializer speaks
const basic = new Schema({
  nodes: addListNodes(basicSchema.spec.nodes, 'paragraph block*', 'block'),
  marks: basicSchema.spec.marks
})
// TipTap's own schema (StarterKit: bulletList, bold, strike, …), as the tiptap_room example uses
const schemas = { basic, tiptap: getSchema([StarterKit]) }

// ------------------------------------------------------------------ a minimal DOM for DOMSerializer
// Only what DOMSerializer.renderSpec uses; outerHTML follows the HTML serialization algorithm
// (text: & < > and U+00A0 escaped; attributes: & " and U+00A0; void elements have no end tag).
const VOID = new Set(['area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr'])
const escText = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\u00a0/g, '&nbsp;')
const escAttr = (s) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/\u00a0/g, '&nbsp;')
class MiniNode {
  constructor (nodeType, name) { this.nodeType = nodeType; this.nodeName = name; this.childNodes = []; this.attrs = [] }
  appendChild (c) { this.childNodes.push(c); return c }
  setAttribute (k, v) { const a = this.attrs.find((x) => x[0] === k); if (a) a[1] = String(v); else this.attrs.push([k, String(v)]) }
  get html () {
    if (this.nodeType === 3) return escText(this.text)
    const inner = this.childNodes.map((c) => c.html).join('')
    if (this.nodeType === 11) return inner
    const attrs = this.attrs.map(([k, v]) => ` ${k}="${escAttr(v)}"`).join('')
    return VOID.has(this.nodeName) ? `<${this.nodeName}${attrs}>` : `<${this.nodeName}${attrs}>${inner}</${this.nodeName}>`
  }
}
const miniDocument = {
  createDocumentFragment: () => new MiniNode(11, '#fragment'),
  createElement: (name) => new MiniNode(1, name),
  createElementNS: (_ns, name) => new MiniNode(1, name),
  createTextNode: (text) => { const n = new MiniNode(3, '#text'); n.text = text; return n }
}

const b64 = (u8) => Buffer.from(u8).toString('base64')
const unb64 = (s) => new Uint8Array(Buffer.from(s, 'base64'))
const load = (updates) => {
  const doc = new Y.Doc()
  for (const u of updates || []) Y.applyUpdate(doc, unb64(u))
  return doc
}

function render (doc, fragment, schemaName) {
  const schema = schemas[schemaName || 'basic']
  const node = yXmlFragmentToProseMirrorRootNode(doc.getXmlFragment(fragment), schema)
  const out = {
    node: node.toJSON(),
    pmjson: yXmlFragmentToProsemirrorJSON(doc.getXmlFragment(fragment)),
    html: DOMSerializer.fromSchema(schema).serializeFragment(node.content, { document: miniDocument }).html,
    text: node.textBetween(0, node.content.size, '\n', '\n')
  }
  if (schema === basic) {
    out.markdown = defaultMarkdownSerializer.serialize(node)
    out.markdown_tight = defaultMarkdownSerializer.serialize(node, { tightLists: true })
  }
  return out
}

// plain JSON -> Y types: objects are Y.Map, arrays Y.Array, {"$text": s} a Y.Text
function toY (v) {
  if (Array.isArray(v)) { const a = new Y.Array(); a.insert(0, v.map(toY)); return a }
  if (v !== null && typeof v === 'object') {
    if (typeof v.$text === 'string') return new Y.Text(v.$text)
    const m = new Y.Map()
    for (const [k, x] of Object.entries(v)) m.set(k, toY(x))
    return m
  }
  return v
}

const handlers = {
  // ProseMirror JSON -> Y.XmlFragment (fresh doc, or diffed into `base` like ySyncPlugin does)
  pm ({ doc: json, fragment, client, base, schema: schemaName }) {
    const schema = schemas[schemaName || 'basic']
    const doc = load(base)
    doc.clientID = client ?? 1
    const before = Y.encodeStateVector(doc)
    const node = schema.nodeFromJSON(json)
    if (base) {
      doc.transact(() => updateYFragment(doc, doc.getXmlFragment(fragment), node, { mapping: new Map(), isOMark: new Map() }))
    } else {
      prosemirrorJSONToYXmlFragment(schema, json, doc.getXmlFragment(fragment))
    }
    return { update: b64(Y.encodeStateAsUpdate(doc)), change: b64(Y.encodeStateAsUpdate(doc, before)), ...render(doc, fragment, schemaName) }
  },
  // the ProseMirror view of stored updates
  render ({ updates, fragment, schema }) {
    return render(load(updates), fragment, schema)
  },
  // Quill-style edits on a Y.Text: ["insert", i, s, attrs?], ["format", i, n, attrs], ["delete", i, n]
  text ({ ops, name, client, base }) {
    const doc = load(base)
    doc.clientID = client ?? 1
    const before = Y.encodeStateVector(doc)
    const t = doc.getText(name)
    for (const op of ops) {
      doc.transact(() => {
        if (op[0] === 'insert') t.insert(op[1], op[2], op[3] || undefined)
        else if (op[0] === 'format') t.format(op[1], op[2], op[3])
        else if (op[0] === 'embed') t.insertEmbed(op[1], op[2], op[3] || undefined)
        else t.delete(op[1], op[2])
      })
    }
    return { update: b64(Y.encodeStateAsUpdate(doc)), change: b64(Y.encodeStateAsUpdate(doc, before)), delta: t.toDelta(), string: t.toString() }
  },
  delta ({ updates, name }) {
    const t = load(updates).getText(name)
    return { delta: t.toDelta(), string: t.toString() }
  },
  // set keys of root maps / replace root arrays: {maps: {root: {key: value}}, arrays: {root: [...]}}
  nested ({ maps, arrays, deletes, client, base }) {
    const doc = load(base)
    doc.clientID = client ?? 1
    const before = Y.encodeStateVector(doc)
    doc.transact(() => {
      for (const [root, entries] of Object.entries(maps || {})) {
        for (const [k, v] of Object.entries(entries)) doc.getMap(root).set(k, toY(v))
      }
      for (const [root, keys] of Object.entries(deletes || {})) {
        for (const k of keys) doc.getMap(root).delete(k)
      }
      for (const [root, items] of Object.entries(arrays || {})) {
        const a = doc.getArray(root)
        a.delete(0, a.length)
        a.insert(0, items.map(toY))
      }
    })
    return { update: b64(Y.encodeStateAsUpdate(doc)), change: b64(Y.encodeStateAsUpdate(doc, before)) }
  },
  // what `updates` hold beyond `base` (one update)
  diff ({ base, updates }) {
    return { change: b64(Y.encodeStateAsUpdate(load(updates), Y.encodeStateVector(load(base)))) }
  },
  // Y.Doc#toJSON of the given roots, each read as the given kind
  json ({ updates, roots }) {
    const doc = load(updates)
    const out = {}
    for (const [name, kind] of Object.entries(roots)) {
      const get = { map: 'getMap', array: 'getArray', text: 'getText', xml: 'getXmlFragment' }[kind]
      out[name] = doc[get](name).toJSON()
    }
    return { json: out }
  }
}

const rl = createInterface({ input: process.stdin })
rl.on('line', (line) => {
  let reply
  try {
    const req = JSON.parse(line)
    reply = handlers[req.op](req)
  } catch (e) {
    reply = { error: String(e && e.stack ? e.stack : e) }
  }
  process.stdout.write(JSON.stringify(reply) + '\n')
})
