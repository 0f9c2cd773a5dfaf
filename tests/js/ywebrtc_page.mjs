// Test page for tests/peer: the STOCK npm yjs + y-webrtc, nothing else, bundled by esbuild.
// The Python test drives it through window.collabTest (Playwright page.evaluate).
import * as Y from 'yjs'
import { WebrtcProvider } from 'y-webrtc'

const state = { doc: null, provider: null, updates: 0, maxUpdate: 0 }

window.collabTest = {
  // Join `room` on `signaling` (optionally with a password). No ICE servers: host candidates only.
  async start ({ room, signaling, password = null, prefill = 0, prefillClients = 1 }) {
    const doc = new Y.Doc()
    // a document that is already big before connecting, written by `prefillClients` earlier
    // sessions (each a Y.Doc with its own client id, appending prefill/prefillClients chars)
    for (let i = 0; i < prefillClients && prefill > 0; i++) {
      const session = new Y.Doc()
      Y.applyUpdate(session, Y.encodeStateAsUpdate(doc))
      const t = session.getText('codemirror')
      t.insert(t.length, bigText(Math.floor(prefill / prefillClients), 'pre' + i))
      Y.applyUpdate(doc, Y.encodeStateAsUpdate(session, Y.encodeStateVector(doc)))
      session.destroy()
    }
    doc.on('update', (u) => { state.updates++; state.maxUpdate = Math.max(state.maxUpdate, u.length) })
    const provider = new WebrtcProvider(room, doc, {
      signaling: [signaling],
      password,
      peerOpts: { config: { iceServers: [] } }
    })
    state.doc = doc
    state.provider = provider
    // the Room is created once the (PBKDF2) key promise resolved
    while (!provider.room) await new Promise((resolve) => setTimeout(resolve, 5))
    return provider.room.peerId
  },
  text: () => state.doc.getText('codemirror').toString(),
  textLength: () => state.doc.getText('codemirror').length,
  insert (index, s) { state.doc.getText('codemirror').insert(index, s) },
  // Grow the text by `bytes` characters in chunks of `chunk` (separate transactions).
  grow (bytes, chunk = 1000) {
    const t = state.doc.getText('codemirror')
    for (let done = 0; done < bytes; done += chunk) {
      t.insert(t.length, bigText(Math.min(chunk, bytes - done), 'g' + done))
    }
  },
  stateSize: () => Y.encodeStateAsUpdate(state.doc).length,
  setAwareness (s) { state.provider.awareness.setLocalState(s) },
  awarenessStates () {
    const out = {}
    state.provider.awareness.getStates().forEach((v, k) => { out[k] = v })
    return out
  },
  clientId: () => state.doc.clientID,
  // y-webrtc's own view: every WebRTC connection, its flags, and BroadcastChannel peers
  conns () {
    const room = state.provider.room
    if (!room) return { webrtc: [], bc: [] }
    return {
      webrtc: Array.from(room.webrtcConns.entries()).map(([id, c]) => ({
        id, connected: c.connected, synced: c.synced, closed: c.closed
      })),
      bc: Array.from(room.bcConns)
    }
  },
  connectedWith (peerId) {
    const c = state.provider.room && state.provider.room.webrtcConns.get(peerId)
    return !!(c && c.connected)
  },
  syncedWith (peerId) {
    const c = state.provider.room && state.provider.room.webrtcConns.get(peerId)
    return !!(c && c.connected && c.synced)
  },
  stop () { state.provider.destroy(); state.doc.destroy() }
}

function bigText (n, tag) {
  let s = ''
  let i = 0
  while (s.length < n) s += `${tag}:${i++} lorem ipsum dolor sit amet; `
  return s.slice(0, n)
}
