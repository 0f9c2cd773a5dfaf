// Unit tests of the page's pure logic, on real Yjs (node --test). Run by test_web_units.py.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import { isReplica, watchArchive } from '../../web/src/archive.js'
import { normaliseVersion } from '../../web/src/history.js'
import { listPeers } from '../../web/src/presence.js'
import { normaliseRoom } from '../../web/src/rooms.js'
import { parseRoute, roomHash } from '../../web/src/router.js'
import { fromBase64, parseTime, safeColor, safeName } from '../../web/src/util.js'

const awarenessOf = entries => ({ getStates: () => new Map(entries) })
const replicaState = sv => ({ user: { name: 'archive', color: '#6b7280' }, collab: { role: 'replica', sv } })

// ---- "saved to archive": green only on the server's word (watchArchive + an injected `ask`)

const replicaAwareness = entries => {
  const handlers = new Set()
  let states = new Map(entries)
  return {
    getStates: () => states,
    on: (_event, f) => handlers.add(f),
    off: (_event, f) => handlers.delete(f),
    set: next => { states = new Map(next); handlers.forEach(f => f()) }
  }
}
const settle = () => new Promise(resolve => setImmediate(resolve))

test('saved: absent without a replica in the room, and the server is not asked', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const doc = new Y.Doc()
  doc.getText('codemirror').insert(0, 'hello')
  const asked = []
  const watch = watchArchive({ room: 'r', doc, awareness: replicaAwareness([[7, { user: { name: 'Bob' } }]]), onChange: () => {}, ask: async b => { asked.push(b); return true } })
  t.mock.timers.tick(5000)
  await settle()
  assert.equal(watch.state(), 'absent')
  assert.equal(asked.length, 0)
  watch.destroy()
})

test('saved: a claim in awareness is only a hint; the server answer decides', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const doc = new Y.Doc()
  doc.getText('codemirror').insert(0, 'hello')
  // a peer claiming to be the archive, advertising a state vector that covers everything
  const forged = { collab: { role: 'replica', sv: Buffer.from(Y.encodeStateVector(doc)).toString('base64') } }
  let answer = false
  const asked = []
  const watch = watchArchive({ room: 'r', doc, awareness: replicaAwareness([[9, forged]]), onChange: () => {}, ask: async b => { asked.push(b); return answer } })
  t.mock.timers.tick(0)
  await settle()
  assert.equal(asked.length, 1)
  assert.equal(watch.state(), 'unsaved')
  // what is posted is this document's snapshot: delete set + state vector
  assert.deepEqual(Y.decodeSnapshot(asked[0]).sv, Y.snapshot(doc).sv)
  answer = true
  t.mock.timers.tick(800) // backoff after "not yet": 400 ms doubled
  await settle()
  assert.equal(watch.state(), 'saved')
  watch.destroy()
})

test('saved: every change, delete-only included, is unsaved until confirmed again', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const doc = new Y.Doc()
  const text = doc.getText('codemirror')
  text.insert(0, 'hello world')
  const pending = []
  const watch = watchArchive({ room: 'r', doc, awareness: replicaAwareness([[9, { collab: { role: 'replica', sv: '' } }]]), onChange: () => {}, ask: b => new Promise(resolve => pending.push({ b, resolve })) })
  t.mock.timers.tick(0)
  await settle()
  pending.shift().resolve(true)
  await settle()
  assert.equal(watch.state(), 'saved')
  const sv = Y.encodeStateVector(doc)
  text.delete(0, 6) // deletes do not move the state vector ...
  assert.deepEqual(Y.encodeStateVector(doc), sv)
  assert.equal(watch.state(), 'unsaved') // ... but the badge is not green any more
  t.mock.timers.tick(400)
  await settle()
  const asked = pending.shift()
  assert.equal(Y.decodeSnapshot(asked.b).ds.clients.size, 1) // the deletion is in what is asked
  // an answer about an older generation never confirms a newer one
  text.insert(0, '!')
  asked.resolve(true)
  await settle()
  assert.equal(watch.state(), 'unsaved')
  t.mock.timers.tick(400)
  await settle()
  pending.shift().resolve(true)
  await settle()
  assert.equal(watch.state(), 'saved')
  watch.destroy()
})

test('saved: no answer (server down) is unsaved and retried with backoff', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const doc = new Y.Doc()
  doc.getText('codemirror').insert(0, 'x')
  let calls = 0
  const watch = watchArchive({ room: 'r', doc, awareness: replicaAwareness([[9, { collab: { role: 'replica' } }]]), onChange: () => {}, ask: async () => { calls++; return null } })
  for (const step of [0, 800, 1600, 3200, 5000, 5000]) {
    t.mock.timers.tick(step)
    await settle()
  }
  assert.equal(calls, 6)
  assert.equal(watch.state(), 'unsaved')
  watch.destroy()
})

test('isReplica', () => {
  assert.equal(isReplica(null), false)
  assert.equal(isReplica({ collab: 'replica' }), false)
  assert.equal(isReplica({ collab: { role: 'replica' } }), true)
})

test('peers: you, direct (open connection), relayed (awareness only), replica by elimination', () => {
  const conns = new Map([
    ['peer-bob', { connected: true }],
    ['peer-carol', { connected: false }],
    ['peer-replica', { connected: true }]
  ])
  const states = [
    [1, { user: { name: 'Me', color: '#2563eb' }, collab: { peerId: 'peer-me' } }],
    [2, { user: { name: 'Bob', color: '#db2777' }, collab: { peerId: 'peer-bob' } }],
    [3, { user: { name: 'Carol', color: 'red; background:url(x)' }, collab: { peerId: 'peer-carol' } }],
    [4, { user: { name: 'Dan' }, collab: { peerId: 'peer-dan' } }],
    [5, replicaState('')]
  ]
  const peers = listPeers(awarenessOf(states), { webrtcConns: conns }, 1)
  const byName = Object.fromEntries(peers.map(p => [p.name, p]))
  assert.equal(peers[0].name, 'Me')
  assert.equal(byName.Me.link, 'you')
  assert.equal(byName.Bob.link, 'direct')
  assert.equal(byName.Carol.link, 'relayed')
  assert.equal(byName.Carol.color, '#64748b') // not a plain colour: replaced
  assert.equal(byName.Dan.link, 'relayed')
  assert.equal(byName.archive.link, 'direct')
  assert.equal(byName.archive.role, 'replica')
  // without the unclaimed open connection the replica is relayed
  conns.delete('peer-replica')
  assert.equal(listPeers(awarenessOf(states), { webrtcConns: conns }, 1).find(p => p.role === 'replica').link, 'relayed')
  // another tab of this browser (BroadcastChannel) is neither direct nor relayed
  const tabs = listPeers(awarenessOf(states), { webrtcConns: conns, bcConns: new Set(['peer-dan']) }, 1)
  assert.equal(tabs.find(p => p.name === 'Dan').link, 'tab')
  // the room may not exist yet (password key still being derived)
  assert.equal(listPeers(awarenessOf(states), null, 1).filter(p => p.link === 'direct').length, 0)
})

test('untrusted names and colours', () => {
  assert.equal(safeName('<img src=x onerror=alert(1)>'), '<img src=x onerror=alert(1)>')
  assert.equal(safeName({ toString: () => 'x' }), 'Anonymous')
  assert.equal(safeName('   '), 'Anonymous')
  assert.equal(safeName('a'.repeat(500)).length, 60)
  assert.equal(safeColor('#ABCDEF'), '#ABCDEF')
  assert.equal(safeColor('#abc'), '#abc')
  assert.equal(safeColor('url(javascript:1)'), '#64748b')
  assert.equal(fromBase64('%%%'), null)
  assert.deepEqual([...fromBase64('AQID')], [1, 2, 3])
})

test('routes', () => {
  assert.deepEqual(parseRoute(''), { view: 'rooms' })
  assert.deepEqual(parseRoute('#/'), { view: 'rooms' })
  assert.deepEqual(parseRoute('#/room/notes'), { view: 'room', name: 'notes', locked: false })
  assert.deepEqual(parseRoute('#/room/a%2Fb%3Fc?locked=1'), { view: 'room', name: 'a/b?c', locked: true })
  assert.deepEqual(parseRoute('#/room/%E0%A4%A'), { view: 'rooms' }) // malformed escape
  assert.deepEqual(parseRoute('#/room/%20'), { view: 'rooms' })
  for (const name of ['notes', 'team notes', 'a/b?c#d', 'é🙂']) {
    for (const locked of [false, true]) assert.deepEqual(parseRoute(roomHash(name, locked)), { view: 'room', name, locked })
  }
})

test('API entries are normalised defensively', () => {
  assert.deepEqual(normaliseRoom({ name: 'r', size: 10, updated_at: 1700000000, peers: 2, loaded: true }),
    { name: 'r', size: 10, updated: new Date(1700000000 * 1000), peers: 2 })
  assert.equal(normaliseRoom({ name: 5 }), null)
  assert.equal(normaliseRoom(null), null)
  const v = normaliseVersion({ id: 3, seq: 10, created_at: 1700000000.5, label: '', contributors: [1, 2] })
  assert.deepEqual(v, { id: '3', when: new Date(1700000000500), size: null, label: null, contributors: 2 })
  assert.equal(normaliseVersion({ label: 'no id' }), null)
  assert.equal(parseTime('2024-01-02T03:04:05Z').toISOString(), '2024-01-02T03:04:05.000Z')
  assert.equal(parseTime('yesterday'), null)
  assert.equal(parseTime(undefined), null)
})
