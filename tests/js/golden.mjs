// Generates tests/data/golden.json with the REAL npm packages (yjs, y-protocols, lib0, y-webrtc).
//
//   node tests/js/golden.mjs > tests/data/golden.json
//
// Deterministic: fixed clientIDs, fixed awareness clocks, and a fixed AES-GCM IV (crypto.js
// draws its IV from crypto.getRandomValues, which is overridden below only while encrypting).
// tests/protocol/test_wire_golden.py re-runs this script and checks the output is identical.
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'
import { readFileSync } from 'node:fs'
import { webcrypto } from 'node:crypto'
import { deriveKey, encryptJson } from '../../node_modules/y-webrtc/src/crypto.js'

const hex = (u8) => Buffer.from(u8).toString('hex')
const build = (fn) => { const e = encoding.createEncoder(); fn(e); return encoding.toUint8Array(e) }
const version = (pkg) => JSON.parse(readFileSync(new URL(`../../node_modules/${pkg}/package.json`, import.meta.url))).version

// JSON description of a JS value (so Python can rebuild exactly what JS had).
const describe = (v) => {
  if (v === undefined) return { undefined: true }
  if (v === null) return null
  if (typeof v === 'boolean') return v
  if (typeof v === 'string') return { str: v }
  if (typeof v === 'number') return { num: Object.is(v, -0) ? '-0' : String(v), integer: Number.isInteger(v) }
  if (typeof v === 'bigint') return { bigint: v.toString() }
  if (v instanceof Uint8Array) return { bytes: hex(v) }
  if (Array.isArray(v)) return { array: v.map(describe) }
  return { object: Object.entries(v).map(([k, x]) => [k, describe(x)]) }
}

const out = {
  generator: 'tests/js/golden.mjs',
  versions: { yjs: version('yjs'), 'y-protocols': version('y-protocols'), lib0: version('lib0'), 'y-webrtc': version('y-webrtc') },
  var_uint: [],
  var_int: [],
  any: [],
  messages: [],
  updates: [],
  crypto: []
}

for (const n of [0, 1, 63, 64, 127, 128, 255, 256, 300, 16383, 16384, 2 ** 21, 2 ** 28 - 1, 2 ** 28, 2 ** 31 - 1, 2 ** 32, 2 ** 35 + 7, 2 ** 49, 2 ** 53 - 1]) {
  out.var_uint.push({ value: n, hex: hex(build((e) => encoding.writeVarUint(e, n))) })
}
for (const n of [0, -0, 1, -1, 63, -63, 64, -64, 127, -128, 8191, 8192, -8192, 2 ** 31 - 1, -(2 ** 31 - 1), 2 ** 31, -(2 ** 31), 2 ** 40, -(2 ** 52), 2 ** 53 - 1, -(2 ** 53 - 1)]) {
  out.var_int.push({ value: Object.is(n, -0) ? '-0' : n, hex: hex(build((e) => encoding.writeVarInt(e, n))) })
}

const anyCases = [
  ['undefined', undefined], ['null', null], ['true', true], ['false', false],
  ['int 0', 0], ['int -0', -0], ['int 1', 1], ['int -1', -1], ['int 63', 63], ['int 64', 64], ['int -64', -64],
  ['int 2^31-1', 2 ** 31 - 1], ['int -(2^31-1)', -(2 ** 31 - 1)], ['int -(2^31)', -(2 ** 31)], ['int 2^31', 2 ** 31],
  ['int 2^40', 2 ** 40], ['int 2^53-1', 2 ** 53 - 1], ['int -(2^53-1)', -(2 ** 53 - 1)], ['int 2^53', 2 ** 53],
  ['float 0.5', 0.5], ['float -1.5', -1.5], ['float 3.25', 3.25], ['float 0.1', 0.1], ['float 1e300', 1e300],
  ['float 1e-300', 1e-300], ['float 2^-149', 2 ** -149], ['float Infinity', Infinity], ['float -Infinity', -Infinity],
  ['float NaN', NaN], ['float token', 1732000000000.4567], ['float max float32', 3.4028234663852886e38],
  ['bigint 0', 0n], ['bigint 2^60', 2n ** 60n], ['bigint -2^63', -(2n ** 63n)], ['bigint 2^63-1', 2n ** 63n - 1n],
  ['string empty', ''], ['string ascii', 'hello'], ['string non-ascii', 'Zoë ✓ 中文'], ['string emoji', '😀👩‍👩‍👧𝄞'],
  ['bytes empty', new Uint8Array([])], ['bytes', new Uint8Array([0, 1, 2, 255])],
  ['array empty', []], ['array mixed', [1, 'a', null, true, [2.5, {}]]],
  ['object empty', {}],
  ['object signal', { to: 'peer-b', from: 'peer-a', type: 'signal', token: 1732000000000.4567, signal: { type: 'candidate', candidate: { candidate: 'candidate:1 1 udp 2122260223 192.168.1.2 54321 typ host', sdpMLineIndex: 0, sdpMid: null } } }],
  ['object announce', { type: 'announce', from: '6f1c2a4e-1d0b-4c1a-9a4e-8f2b1c3d4e5f' }],
  ['object non-ascii keys', { 'ключ': 'значение', '😀': [undefined, -0] }]
]
for (const [name, value] of anyCases) {
  const bytes = build((e) => encoding.writeAny(e, value))
  out.any.push({ name, value: describe(value), tag: bytes[0], hex: hex(bytes) })
}

// ----------------------------------------------------------------- sync messages (y-webrtc style)
const messageSync = 0
const messageAwareness = 1
const messageQueryAwareness = 3
const messageBcPeerId = 4

const doc = new Y.Doc()
doc.clientID = 42
const remote = new Y.Doc()
remote.clientID = 2 ** 53 - 1
const emptyDoc = new Y.Doc()
emptyDoc.clientID = 7

const addMessage = (name, kind, bytes, fields) => out.messages.push({ name, kind, hex: hex(bytes), fields })

// a state vector as Yjs encodes it, and as Yjs reads it back ([client, clock] in byte order)
const svFields = (d) => { const sv = Y.encodeStateVector(d); return { state_vector: hex(sv), clocks: Array.from(Y.decodeStateVector(sv).entries()) } }
addMessage('step1 empty doc', 'sync_step1', build((e) => { encoding.writeVarUint(e, messageSync); syncProtocol.writeSyncStep1(e, emptyDoc) }), svFields(emptyDoc))
doc.getText('t').insert(0, 'hello Zoë 😀')
doc.getMap('m').set('k', { nested: [1, 2.5, 'x'] })
remote.getArray('a').insert(0, [1, 'two'])
Y.applyUpdate(doc, Y.encodeStateAsUpdate(remote))
addMessage('step1 two clients', 'sync_step1', build((e) => { encoding.writeVarUint(e, messageSync); syncProtocol.writeSyncStep1(e, doc) }), svFields(doc))
const remoteSv = Y.encodeStateVector(remote)
addMessage('step2 diff', 'sync_step2', build((e) => { encoding.writeVarUint(e, messageSync); syncProtocol.writeSyncStep2(e, doc, remoteSv) }), { update: hex(Y.encodeStateAsUpdate(doc, remoteSv)) })
addMessage('step2 nothing new', 'sync_step2', build((e) => { encoding.writeVarUint(e, messageSync); syncProtocol.writeSyncStep2(e, doc, Y.encodeStateVector(doc)) }), { update: hex(Y.encodeStateAsUpdate(doc, Y.encodeStateVector(doc))) })
let lastUpdate = null
doc.on('update', (u) => { lastUpdate = u })
doc.getText('t').insert(5, ',')
addMessage('update keystroke', 'sync_update', build((e) => { encoding.writeVarUint(e, messageSync); syncProtocol.writeUpdate(e, lastUpdate) }), { update: hex(lastUpdate) })
doc.getText('t').delete(0, 2)
addMessage('update delete', 'sync_update', build((e) => { encoding.writeVarUint(e, messageSync); syncProtocol.writeUpdate(e, lastUpdate) }), { update: hex(lastUpdate) })

// ----------------------------------------------------------------- awareness
const awarenessCases = []
const aw = new awarenessProtocol.Awareness(doc)
aw.setLocalState({ user: { name: 'Zoë 😀 中文', color: '#30bced' }, cursor: null })
const bigAw = new awarenessProtocol.Awareness(remote)
bigAw.setLocalState({ user: { name: 'big id' } })
awarenessProtocol.applyAwarenessUpdate(aw, awarenessProtocol.encodeAwarenessUpdate(bigAw, [remote.clientID]), 'remote')
awarenessCases.push(['awareness local', aw, [doc.clientID]])
awarenessCases.push(['awareness all', aw, [doc.clientID, remote.clientID]])
const emptyAw = new awarenessProtocol.Awareness(emptyDoc)
awarenessCases.push(['awareness initial {}', emptyAw, [emptyDoc.clientID]])
awarenessProtocol.removeAwarenessStates(bigAw, [remote.clientID], 'test')
awarenessCases.push(['awareness null state (2^53-1)', bigAw, [remote.clientID]])
for (const [name, awareness, clients] of awarenessCases) {
  const update = awarenessProtocol.encodeAwarenessUpdate(awareness, clients)
  const entries = clients.map((c) => ({ client_id: c, clock: awareness.meta.get(c).clock, state_json: JSON.stringify(awareness.getStates().get(c) || null) }))
  addMessage(name, 'awareness', build((e) => { encoding.writeVarUint(e, messageAwareness); encoding.writeVarUint8Array(e, update) }), { entries, update: hex(update) })
}
for (const a of [aw, bigAw, emptyAw]) a.destroy()

addMessage('query awareness', 'query_awareness', build((e) => { encoding.writeVarUint(e, messageQueryAwareness) }), {})
for (const [add, peerId] of [[1, '6f1c2a4e-1d0b-4c1a-9a4e-8f2b1c3d4e5f'], [0, 'peer-ü']]) {
  // exactly as y-webrtc's broadcastBcPeerId / Room.disconnect build it
  addMessage(`bc peer id add=${add}`, 'bc_peer_id', build((e) => { encoding.writeVarUint(e, messageBcPeerId); encoding.writeUint8(e, add); encoding.writeVarString(e, peerId) }), { add: add === 1, peer_id: peerId })
}

// ----------------------------------------------------------------- V1 updates + struct layout
const summarize = (update) => {
  const { structs, ds } = Y.decodeUpdate(update)
  return {
    structs: structs.map((s) => [s.id.client, s.id.clock, s.length, s.constructor.name === 'GC' ? 0 : s.constructor.name === 'Skip' ? 10 : s.content.getRef()]),
    ds: Array.from(ds.clients.entries()).map(([client, items]) => [client, items.map((i) => [i.clock, i.len])])
  }
}
const rich = new Y.Doc({ gc: false })
rich.clientID = 3
const rt = rich.getText('t')
rt.insert(0, 'a😀b𝄞c中')
rt.insert(2, 'bold', { bold: true })
rt.insertEmbed(1, { image: 'x.png' })
rt.delete(0, 1)
rich.getMap('m').set('bin', new Uint8Array([1, 2, 3]))
rich.getMap('m').set('n', 2 ** 40)
rich.getMap('m').set('sub', new Y.Map())
rich.getArray('a').insert(0, [new Y.Text('nested'), { j: 1 }])
const el = new Y.XmlElement('p')
rich.getXmlFragment('x').insert(0, [el, new Y.XmlText('txt')])
rich.getMap('m').delete('n')
const other = new Y.Doc()
other.clientID = 2 ** 32 + 5
other.getText('t').insert(0, 'other')
Y.applyUpdate(rich, Y.encodeStateAsUpdate(other))
rich.getText('t').insert(rich.getText('t').length, '!')
const gcDoc = new Y.Doc()
gcDoc.clientID = 9
gcDoc.getText('t').insert(0, 'deleted soon')
gcDoc.getArray('a').insert(0, [1, 2, 3])
gcDoc.getArray('a').delete(0, 3)
gcDoc.getText('t').delete(0, 7)
const gapDoc = new Y.Doc()
gapDoc.clientID = 11
gapDoc.getText('t').insert(0, 'x')
const gapFirst = Y.encodeStateAsUpdate(gapDoc)
gapDoc.getText('t').insert(1, 'y')
const gapSv = Y.encodeStateVector(gapDoc)
gapDoc.getText('t').insert(2, 'z')
// clock 0 and clock 2 of client 11, clock 1 missing -> mergeUpdates writes a Skip struct
const merged = Y.mergeUpdates([Y.encodeStateAsUpdate(other), gapFirst, Y.encodeStateAsUpdate(gapDoc, gapSv)])
for (const [name, update] of [['empty', Y.encodeStateAsUpdate(new Y.Doc())], ['rich gc off', Y.encodeStateAsUpdate(rich)], ['gc on', Y.encodeStateAsUpdate(gcDoc)], ['merged with gap (Skip)', merged]]) {
  out.updates.push({ name, hex: hex(update), ...summarize(update) })
}

// ----------------------------------------------------------------- signaling encryption
const FIXED_IV = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
const realGetRandomValues = webcrypto.getRandomValues.bind(webcrypto)
for (const [password, room, value] of [
  ['secret', 'room', { type: 'announce', from: 'peer-a' }],
  ['pässwörd 🔑', 'комната/ü', { type: 'signal', to: 'b', from: 'a', token: 1732000000000.4567, signal: { type: 'offer', sdp: 'v=0\r\n' } }],
  ['', 'r', [1, 2 ** 40, null, undefined, 'x']]
]) {
  const key = await deriveKey(password, room)
  const raw = new Uint8Array(await webcrypto.subtle.exportKey('raw', key))
  globalThis.crypto.getRandomValues = (arr) => { arr.set(FIXED_IV.subarray(0, arr.length)); return arr }
  const envelope = await encryptJson(value, key)
  globalThis.crypto.getRandomValues = realGetRandomValues
  out.crypto.push({
    password, room, value: describe(value), key_hex: hex(raw), iv_hex: hex(FIXED_IV),
    plain_hex: hex(build((e) => encoding.writeAny(e, value))), envelope_hex: hex(envelope),
    base64: Buffer.from(envelope).toString('base64')
  })
}

process.stdout.write(JSON.stringify(out, null, 1) + '\n')
