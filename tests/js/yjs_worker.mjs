// A long-lived Yjs worker for differential tests: one JSON request per line on stdin, one JSON
// reply per line on stdout ({"id", "ok": true, ...} or {"id", "ok": false, "error"}).
// Binary values (updates, state vectors, awareness updates) travel as base64 strings.
// Text indexes are Yjs' own: UTF-16 code units.
import * as Y from 'yjs'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as readline from 'node:readline'

const docs = new Map() // name -> { doc, updates: Uint8Array[], awareness }

const b64 = (u8) => Buffer.from(u8).toString('base64')
const unb64 = (s) => new Uint8Array(Buffer.from(s, 'base64'))

const getDoc = (name) => {
  const entry = docs.get(name)
  if (!entry) throw new Error(`no doc ${name}`)
  return entry
}

const rootOf = (doc, name, kind) => {
  if (kind === 'text') return doc.getText(name)
  if (kind === 'map') return doc.getMap(name)
  if (kind === 'array') return doc.getArray(name)
  throw new Error(`unknown kind ${kind}`)
}

const handlers = {
  create ({ doc, clientID }) {
    const ydoc = new Y.Doc()
    if (clientID !== undefined) ydoc.clientID = clientID
    const entry = { doc: ydoc, updates: [], awareness: null }
    ydoc.on('update', (update, origin) => { if (origin !== 'quiet') entry.updates.push(update) })
    docs.set(doc, entry)
    return { clientID: ydoc.clientID }
  },
  destroy ({ doc }) {
    const entry = getDoc(doc)
    if (entry.awareness) entry.awareness.destroy()
    entry.doc.destroy()
    docs.delete(doc)
    return {}
  },
  apply ({ doc, update, quiet }) {
    Y.applyUpdate(getDoc(doc).doc, unb64(update), quiet ? 'quiet' : 'remote')
    return {}
  },
  drainUpdates ({ doc }) {
    const entry = getDoc(doc)
    const out = entry.updates.map(b64)
    entry.updates = []
    return { updates: out }
  },
  insert ({ doc, name, index, text, attrs }) {
    getDoc(doc).doc.getText(name).insert(index, text, attrs || undefined)
    return {}
  },
  delete ({ doc, name, index, length }) {
    getDoc(doc).doc.getText(name).delete(index, length)
    return {}
  },
  format ({ doc, name, index, length, attrs }) {
    getDoc(doc).doc.getText(name).format(index, length, attrs)
    return {}
  },
  mapSet ({ doc, name, key, value }) {
    getDoc(doc).doc.getMap(name).set(key, value)
    return {}
  },
  mapDelete ({ doc, name, key }) {
    getDoc(doc).doc.getMap(name).delete(key)
    return {}
  },
  arrayInsert ({ doc, name, index, values }) {
    getDoc(doc).doc.getArray(name).insert(index, values)
    return {}
  },
  arrayDelete ({ doc, name, index, length }) {
    getDoc(doc).doc.getArray(name).delete(index, length)
    return {}
  },
  text ({ doc, name }) {
    const text = getDoc(doc).doc.getText(name)
    return { text: text.toString(), delta: text.toDelta() }
  },
  json ({ doc, roots }) {
    const ydoc = getDoc(doc).doc
    const out = {}
    for (const [name, kind] of Object.entries(roots)) {
      out[name] = kind === 'text' ? ydoc.getText(name).toString() : rootOf(ydoc, name, kind).toJSON()
    }
    return { json: out }
  },
  stateVector ({ doc }) {
    return { sv: b64(Y.encodeStateVector(getDoc(doc).doc)) }
  },
  encodeState ({ doc, sv }) {
    const ydoc = getDoc(doc).doc
    return { update: b64(sv ? Y.encodeStateAsUpdate(ydoc, unb64(sv)) : Y.encodeStateAsUpdate(ydoc)) }
  },
  mergeUpdates ({ updates }) {
    return { update: b64(Y.mergeUpdates(updates.map(unb64))) }
  },
  awarenessCreate ({ doc }) {
    const entry = getDoc(doc)
    entry.awareness = new awarenessProtocol.Awareness(entry.doc)
    clearInterval(entry.awareness._checkInterval)
    return { clientID: entry.awareness.clientID }
  },
  awarenessSetLocal ({ doc, state }) {
    getDoc(doc).awareness.setLocalState(state)
    return {}
  },
  awarenessApply ({ doc, update }) {
    awarenessProtocol.applyAwarenessUpdate(getDoc(doc).awareness, unb64(update), 'remote')
    return {}
  },
  awarenessEncode ({ doc, clients }) {
    const aw = getDoc(doc).awareness
    const ids = clients || Array.from(aw.getStates().keys())
    return { update: b64(awarenessProtocol.encodeAwarenessUpdate(aw, ids)) }
  },
  awarenessStates ({ doc }) {
    const aw = getDoc(doc).awareness
    const states = {}
    for (const [id, state] of aw.getStates()) states[id] = state
    const meta = {}
    for (const [id, m] of aw.meta) meta[id] = m.clock
    return { states, meta }
  },
  ping () {
    return { pong: true }
  }
}

const rl = readline.createInterface({ input: process.stdin, terminal: false })
rl.on('line', (line) => {
  let request
  try {
    request = JSON.parse(line)
  } catch (e) {
    process.stdout.write(JSON.stringify({ id: null, ok: false, error: `bad json: ${e}` }) + '\n')
    return
  }
  const handler = handlers[request.cmd]
  let reply
  try {
    if (!handler) throw new Error(`unknown cmd ${request.cmd}`)
    reply = { id: request.id, ok: true, ...handler(request) }
  } catch (e) {
    reply = { id: request.id, ok: false, error: String(e && e.stack ? e.stack : e) }
  }
  process.stdout.write(JSON.stringify(reply) + '\n')
})
rl.on('close', () => process.exit(0))
