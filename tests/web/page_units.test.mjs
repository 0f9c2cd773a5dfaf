// Unit tests of the page's pure logic, on real Yjs (node --test). Run by test_web_units.py.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import { archiveStatus, isReplica, replicaStateVector } from '../../web/src/archive.js'
import { normaliseVersion } from '../../web/src/history.js'
import { listPeers } from '../../web/src/presence.js'
import { normaliseRoom } from '../../web/src/rooms.js'
import { parseRoute, roomHash } from '../../web/src/router.js'
import { fromBase64, parseTime, safeColor, safeName } from '../../web/src/util.js'

const b64 = bytes => Buffer.from(bytes).toString('base64')
const awarenessOf = entries => ({ getStates: () => new Map(entries) })
const replicaState = sv => ({ user: { name: 'archive', color: '#6b7280' }, collab: { role: 'replica', sv } })

test('archive status: absent without a replica', () => {
  const doc = new Y.Doc()
  doc.getText('codemirror').insert(0, 'hello')
  const other = { user: { name: 'Bob' }, collab: { role: 'browser', peerId: 'p1' } }
  assert.deepEqual(archiveStatus(doc, awarenessOf([[doc.clientID, {}], [7, other]])), { state: 'absent', replicas: 0 })
})

test('archive status: saved when the local client never edited', () => {
  const doc = new Y.Doc()
  const empty = b64(Y.encodeStateVector(new Y.Doc()))
  assert.equal(archiveStatus(doc, awarenessOf([[9, replicaState(empty)]])).state, 'saved')
  // nothing to lose, even when the replica's advertisement is unreadable
  assert.equal(archiveStatus(doc, awarenessOf([[9, replicaState('!!!')]])).state, 'saved')
})

test('archive status follows the replica state vector for this client', () => {
  const doc = new Y.Doc()
  const text = doc.getText('codemirror')
  text.insert(0, 'first')
  const replica = new Y.Doc()
  Y.applyUpdate(replica, Y.encodeStateAsUpdate(doc))
  const stored = b64(Y.encodeStateVector(replica))
  assert.equal(archiveStatus(doc, awarenessOf([[9, replicaState(stored)]])).state, 'saved')
  text.insert(5, ' and more')
  assert.equal(archiveStatus(doc, awarenessOf([[9, replicaState(stored)]])).state, 'unsaved')
  // another client's progress does not count for ours
  const other = new Y.Doc()
  other.getText('codemirror').insert(0, 'x'.repeat(100))
  Y.applyUpdate(replica, Y.encodeStateAsUpdate(other))
  assert.equal(archiveStatus(doc, awarenessOf([[9, replicaState(b64(Y.encodeStateVector(replica)))]])).state, 'unsaved')
  Y.applyUpdate(replica, Y.encodeStateAsUpdate(doc))
  assert.equal(archiveStatus(doc, awarenessOf([[9, replicaState(b64(Y.encodeStateVector(replica)))]])).state, 'saved')
})

test('archive status: edits from earlier sessions of this browser count too', () => {
  const earlier = new Y.Doc()
  earlier.getText('codemirror').insert(0, 'written offline yesterday')
  const doc = new Y.Doc() // today's session: y-indexeddb loads yesterday's edits
  Y.applyUpdate(doc, Y.encodeStateAsUpdate(earlier))
  const replica = new Y.Doc()
  const sv = () => b64(Y.encodeStateVector(replica))
  assert.equal(archiveStatus(doc, awarenessOf([[9, replicaState(sv())]])).state, 'saved') // the contract's minimum
  assert.equal(archiveStatus(doc, awarenessOf([[9, replicaState(sv())]]), [earlier.clientID]).state, 'unsaved')
  Y.applyUpdate(replica, Y.encodeStateAsUpdate(earlier))
  assert.equal(archiveStatus(doc, awarenessOf([[9, replicaState(sv())]]), [earlier.clientID]).state, 'saved')
  doc.getText('codemirror').insert(0, 'today: ')
  assert.equal(archiveStatus(doc, awarenessOf([[9, replicaState(sv())]]), [earlier.clientID]).state, 'unsaved')
})

test('archive status: any of several replicas may hold the changes', () => {
  const doc = new Y.Doc()
  doc.getText('codemirror').insert(0, 'abc')
  const behind = b64(Y.encodeStateVector(new Y.Doc()))
  const ahead = b64(Y.encodeStateVector(doc))
  assert.deepEqual(archiveStatus(doc, awarenessOf([[8, replicaState(behind)], [9, replicaState(ahead)]])), { state: 'saved', replicas: 2 })
})

test('archive status: malformed replica states are unsaved, never a crash', () => {
  const doc = new Y.Doc()
  doc.getText('codemirror').insert(0, 'abc')
  for (const sv of [undefined, null, 42, '', '!!!not base64', b64([0xff, 0xff, 0xff]), 'x'.repeat(2 << 20), { a: 1 }]) {
    assert.equal(archiveStatus(doc, awarenessOf([[9, replicaState(sv)]])).state, 'unsaved', String(sv).slice(0, 20))
  }
  assert.equal(replicaStateVector(replicaState(b64([0xff, 0xff, 0xff]))), null)
  assert.equal(isReplica(null), false)
  assert.equal(isReplica({ collab: 'replica' }), false)
  // our own state claiming to be a replica does not count
  assert.equal(archiveStatus(doc, awarenessOf([[doc.clientID, replicaState(b64(Y.encodeStateVector(doc)))]])).state, 'absent')
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
