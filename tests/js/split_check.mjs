// Long-lived real-Yjs worker for the Python tests (tests/protocol/).
//
// Protocol: one JSON request per stdin line, one JSON response per stdout line, in order.
// Binary values travel as base64. Requests:
//   {op: "build", scenario, seed, size?}          -> {update, roots, sv}
//   {op: "apply", updates: [b64], roots: {name: kind}} -> {roots: {name: json}, sv, pending, pendingEach}
//   {op: "snapshot", updates: [b64]}                -> {snapshot}  (Y.encodeSnapshot after applying)
//   {op: "any_roundtrip", values: [b64]}            -> {values: [b64]}  (readAny then writeAny)
//   {op: "encrypt_json", password, room, values: [b64 writeAny]} -> {envelopes: [b64]}
//   {op: "decrypt_json", password, room, envelopes: [b64]}     -> {values: [b64 writeAny]}
// Errors: {error: "message"}.
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as prng from 'lib0/prng'
import { createInterface } from 'node:readline'
import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { deriveKey, encryptJson, decryptJson } from '../../node_modules/y-webrtc/src/crypto.js'

const b64 = (u8) => Buffer.from(u8).toString('base64')
const unb64 = (s) => new Uint8Array(Buffer.from(s, 'base64'))

const ROOT_KINDS = {
  text: (doc, name) => doc.getText(name),
  map: (doc, name) => doc.getMap(name),
  array: (doc, name) => doc.getArray(name),
  xml: (doc, name) => doc.getXmlFragment(name)
}

const jsonOf = (type) => {
  if (type instanceof Y.XmlFragment) return type.toString()
  if (type instanceof Y.Text) return { text: type.toString(), delta: deltaJson(type) }
  return type.toJSON()
}

const deltaJson = (ytext) => ytext.toDelta().map((op) => {
  const out = {}
  if (typeof op.insert === 'string') out.insert = op.insert
  else if (op.insert instanceof Y.AbstractType) out.insert = { type: jsonOf(op.insert) }
  else out.insert = op.insert
  if (op.attributes) out.attributes = op.attributes
  return out
})

const rootsJson = (doc, roots) => {
  const out = {}
  for (const [name, kind] of Object.entries(roots)) out[name] = jsonOf(ROOT_KINDS[kind](doc, name))
  return out
}

const ALPHABET = ['a', 'b', ' ', '\n', 'é', 'ß', '中', '😀', '𝄞', 'z']

const randText = (gen, n) => {
  let s = ''
  for (let i = 0; i < n; i++) s += prng.oneOf(gen, ALPHABET)
  return s
}

// A UTF-16 index that does not fall inside a surrogate pair.
const safeIndex = (gen, str) => {
  let i = prng.uint32(gen, 0, str.length)
  if (i > 0 && i < str.length && str.charCodeAt(i) >= 0xdc00 && str.charCodeAt(i) <= 0xdfff) i--
  return i
}

const safeDelete = (gen, str) => {
  if (str.length === 0) return null
  let i = safeIndex(gen, str)
  if (i >= str.length) i = str.length - 1
  if (i > 0 && str.charCodeAt(i) >= 0xdc00 && str.charCodeAt(i) <= 0xdfff) i--
  let len = prng.uint32(gen, 1, Math.min(4, str.length - i))
  const end = i + len
  if (end < str.length && str.charCodeAt(end) >= 0xdc00 && str.charCodeAt(end) <= 0xdfff) len++
  return [i, len]
}

const newDoc = (clientID, gc = true) => {
  const doc = new Y.Doc({ gc })
  doc.clientID = clientID
  return doc
}

const SCENARIOS = {
  // Contents that cannot be cut: a `size`-byte Uint8Array (ContentBinary) and a big embed.
  unsplittable (gen, size) {
    const doc = newDoc(4)
    doc.getMap('m').set('bin', new Uint8Array(size).fill(7))
    doc.getText('t').insertEmbed(0, { blob: 'e'.repeat(size) })
    return { doc, roots: { m: 'map', t: 'text' } }
  },
  // Many single keystrokes (inserts and deletes), astral chars included.
  keystrokes (gen, size) {
    const doc = newDoc(1)
    const t = doc.getText('t')
    for (let i = 0; i < size; i++) {
      const s = t.toString()
      const del = safeDelete(gen, s)
      if (del !== null && prng.bool(gen) && prng.uint32(gen, 0, 3) === 0) t.delete(del[0], del[1])
      else t.insert(safeIndex(gen, s), prng.oneOf(gen, ALPHABET))
    }
    return { doc, roots: { t: 'text' } }
  },
  // Like keystrokes but ASCII only and without reading the text back (fast for 10^5+ edits):
  // one struct per keystroke, the worst case for a per-struct splitter.
  typing (gen, size) {
    const doc = newDoc(1)
    const t = doc.getText('t')
    for (let i = 0; i < size; i++) {
      if (t.length > 0 && prng.uint32(gen, 0, 5) === 0) t.delete(prng.uint32(gen, 0, t.length - 1), 1)
      else t.insert(prng.uint32(gen, 0, t.length), String.fromCharCode(97 + (i % 26)))
    }
    return { doc, roots: { t: 'text' } }
  },
  // One huge paste (size UTF-16 units-ish) with astral chars everywhere.
  paste (gen, size) {
    const doc = newDoc(2)
    doc.getText('t').insert(0, randText(gen, size))
    return { doc, roots: { t: 'text' } }
  },
  // The automerge-paper keystroke trace (first `size` transactions; 0 = all).
  trace (gen, size) {
    const data = JSON.parse(gunzipSync(readFileSync(process.env.TRACE_PATH)).toString())
    const doc = newDoc(3)
    const t = doc.getText('t')
    const txns = size > 0 ? data.txns.slice(0, size) : data.txns
    for (const txn of txns) {
      doc.transact(() => {
        for (const [pos, del, ins] of txn.patches) {
          if (del > 0) t.delete(pos, del)
          if (ins) t.insert(pos, ins)
        }
      })
    }
    return { doc, roots: { t: 'text' } }
  },
  // Everything else: formatting, embeds, maps, arrays, nested types, XML, binary, deletions,
  // several clients with concurrent edits, gc off so deleted content stays as ContentDeleted/GC.
  rich (gen, size) {
    const docs = [newDoc(10, prng.bool(gen)), newDoc(2 ** 53 - 7), newDoc(300)]
    for (let round = 0; round < size; round++) {
      for (const doc of docs) {
        const t = doc.getText('t')
        const m = doc.getMap('m')
        const a = doc.getArray('a')
        const x = doc.getXmlFragment('x')
        const op = prng.uint32(gen, 0, 11)
        const s = t.toString()
        switch (op) {
          case 0: t.insert(safeIndex(gen, s), randText(gen, prng.uint32(gen, 1, 40))); break
          case 1: t.insert(safeIndex(gen, s), randText(gen, 5), { bold: true, color: '#f00' }); break
          case 2: { const d = safeDelete(gen, s); if (d) t.delete(d[0], d[1]); break }
          case 3: { const i = safeIndex(gen, s); t.format(i, Math.min(3, s.length - i), { italic: prng.bool(gen) || null }); break }
          case 4: t.insertEmbed(safeIndex(gen, s), { image: 'x.png', n: prng.uint32(gen, 0, 9) }); break
          case 5: m.set('k' + prng.uint32(gen, 0, 5), prng.oneOf(gen, [1, -2.5, 'str😀', null, true, [1, 'a', { b: 2 }], { deep: { x: [1, 2] } }, new Uint8Array([1, 2, 3]), 2 ** 40, -(2 ** 31)])); break
          case 6: { const sub = new Y.Map(); sub.set('n', prng.uint32(gen, 0, 100)); const st = new Y.Text(); st.insert(0, randText(gen, 4)); sub.set('txt', st); a.insert(prng.uint32(gen, 0, a.length), [sub]); break }
          case 7: a.insert(prng.uint32(gen, 0, a.length), [prng.uint32(gen, 0, 1000), 'v' + round, { o: round }, new Uint8Array([round & 255])]); break
          case 8: if (a.length > 0) a.delete(prng.uint32(gen, 0, a.length - 1), 1); break
          case 9: { const el = new Y.XmlElement('p'); el.setAttribute('class', 'c' + round); const xt = new Y.XmlText(); xt.insert(0, randText(gen, 6)); el.insert(0, [xt]); x.insert(prng.uint32(gen, 0, x.length), [el]); break }
          case 10: if (m.size > 0) m.delete(prng.oneOf(gen, Array.from(m.keys()))); break
          default: { const nested = new Y.Array(); nested.push(['n', 1]); m.set('arr', nested); break }
        }
      }
      if (round % 7 === 6) {
        // sync everyone pairwise (multiple clients interleave in every doc)
        for (const d1 of docs) for (const d2 of docs) if (d1 !== d2) Y.applyUpdate(d2, Y.encodeStateAsUpdate(d1, Y.encodeStateVector(d2)))
      }
    }
    for (const d1 of docs) for (const d2 of docs) if (d1 !== d2) Y.applyUpdate(d2, Y.encodeStateAsUpdate(d1, Y.encodeStateVector(d2)))
    return { doc: docs[0], roots: { t: 'text', m: 'map', a: 'array', x: 'xml' } }
  }
}

const handlers = {
  build ({ scenario, seed, size }) {
    const gen = prng.create(seed)
    const { doc, roots } = SCENARIOS[scenario](gen, size)
    return { update: b64(Y.encodeStateAsUpdate(doc)), roots: rootsJson(doc, roots), kinds: roots, sv: b64(Y.encodeStateVector(doc)) }
  },
  apply ({ updates, roots }) {
    const doc = new Y.Doc()
    // pendingEach[i]: did Yjs have to park structs/deletions after applying update i?
    const pendingEach = []
    for (const u of updates) {
      Y.applyUpdate(doc, unb64(u))
      pendingEach.push(doc.store.pendingStructs !== null || doc.store.pendingDs !== null)
    }
    const pending = doc.store.pendingStructs !== null || doc.store.pendingDs !== null
    return { roots: rootsJson(doc, roots), sv: b64(Y.encodeStateVector(doc)), pending, pendingEach }
  },
  snapshot ({ updates }) {
    // Y.encodeSnapshot(Y.snapshot(doc)) after applying `updates`: the bytes the page posts
    const doc = new Y.Doc()
    for (const u of updates) Y.applyUpdate(doc, unb64(u))
    return { snapshot: b64(Y.encodeSnapshot(Y.snapshot(doc))) }
  },
  any_roundtrip ({ values }) {
    return {
      values: values.map((v) => {
        const decoder = decoding.createDecoder(unb64(v))
        const value = decoding.readAny(decoder)
        if (decoding.hasContent(decoder)) throw new Error('trailing bytes after readAny')
        const encoder = encoding.createEncoder()
        encoding.writeAny(encoder, value)
        return b64(encoding.toUint8Array(encoder))
      })
    }
  },
  async encrypt_json ({ password, room, values }) {
    const key = await deriveKey(password, room)
    const out = []
    for (const v of values) out.push(b64(await encryptJson(decoding.readAny(decoding.createDecoder(unb64(v))), key)))
    return { envelopes: out }
  },
  async decrypt_json ({ password, room, envelopes }) {
    const key = await deriveKey(password, room)
    const out = []
    for (const e of envelopes) {
      const value = await decryptJson(unb64(e), key)
      const encoder = encoding.createEncoder()
      encoding.writeAny(encoder, value)
      out.push(b64(encoding.toUint8Array(encoder)))
    }
    return { values: out }
  }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity })
// Requests are handled strictly one after another so responses stay in order.
let chain = Promise.resolve()
rl.on('line', (line) => {
  chain = chain.then(async () => {
    let response
    try {
      const request = JSON.parse(line)
      response = await handlers[request.op](request)
    } catch (e) {
      response = { error: String(e && e.stack ? e.stack : e) }
    }
    process.stdout.write(JSON.stringify(response) + '\n')
  })
})
