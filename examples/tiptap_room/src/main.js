// A TipTap 2 rich-text room on stock y-webrtc, served and archived by `collab serve`.
//
// Everything that syncs is stock: yjs + y-webrtc carry the document, TipTap's Collaboration
// extension binds the editor to the Y.XmlFragment `default` with y-prosemirror. collab's archival
// replica joins the room like any peer, so the document outlives the last tab, and its HTTP API
// (`/api/rooms/<room>/export?format=html|markdown&root=default`, versions, restore, fork, blame)
// reads the same fragment.
//
// URL: http://HOST:PORT/?name=Ada#my-room   (room after '#', default `tiptap-demo`)
import * as Y from 'yjs'
import { WebrtcProvider } from 'y-webrtc'
import { Editor } from '@tiptap/core'
import StarterKit from '@tiptap/starter-kit'
import Collaboration from '@tiptap/extension-collaboration'
import { api, loadConfig, peerOpts, signalingUrl } from './connection.js'

/** The Y.XmlFragment TipTap's Collaboration extension uses (its `field` option's default). */
export const FRAGMENT = 'default'

const COLORS = ['#d1495b', '#00798c', '#edae49', '#66a182', '#8d6cab', '#2e4057', '#e07a5f']

const room = decodeURIComponent(location.hash.replace(/^#\/?/, '')) || 'tiptap-demo'
window.addEventListener('hashchange', () => location.reload()) // another room: start over

/** @param {string} id @returns {HTMLElement} */
const byId = id => /** @type {HTMLElement} */ (document.getElementById(id))

// ---- who I am: ?name=, else the last name used here, else a guest name
const nameInput = /** @type {HTMLInputElement} */ (byId('me-name'))
const storedName = () => {
  try {
    return localStorage.getItem('tiptap_room:name')
  } catch {
    return null
  }
}
let myName = new URLSearchParams(location.search).get('name') || storedName() || `guest-${Math.floor(Math.random() * 9000 + 1000)}`
/** @param {string} name */
const colorOf = name => COLORS[[...name].reduce((h, c) => (h * 31 + (c.codePointAt(0) || 0)) >>> 0, 7) % COLORS.length]

// ---- the document and the connection (ICE config first: y-webrtc connects on construction)
await loadConfig()
const doc = new Y.Doc()
const provider = new WebrtcProvider(room, doc, { signaling: [signalingUrl()], peerOpts })
const setUser = () => provider.awareness.setLocalStateField('user', { name: myName, color: colorOf(myName) })
setUser()
nameInput.value = myName
nameInput.addEventListener('change', () => {
  myName = nameInput.value.trim() || myName
  nameInput.value = myName
  try {
    localStorage.setItem('tiptap_room:name', myName)
  } catch { /* private mode: keep it for this tab */ }
  setUser()
})
byId('room-name').textContent = `· ${room}`
document.title = `${room} · TipTap room`

// ---- the editor (Collaboration brings its own undo: y-prosemirror's, per user)
const editor = new Editor({
  element: byId('editor'),
  extensions: [StarterKit.configure({ history: false }), Collaboration.configure({ document: doc, field: FRAGMENT })],
  autofocus: false
})

/** @type {Record<string, () => boolean>} */
const commands = {
  bold: () => editor.chain().focus().toggleBold().run(),
  italic: () => editor.chain().focus().toggleItalic().run(),
  h1: () => editor.chain().focus().toggleHeading({ level: 1 }).run(),
  h2: () => editor.chain().focus().toggleHeading({ level: 2 }).run(),
  bulletList: () => editor.chain().focus().toggleBulletList().run(),
  orderedList: () => editor.chain().focus().toggleOrderedList().run(),
  undo: () => editor.chain().focus().undo().run(),
  redo: () => editor.chain().focus().redo().run()
}
/** @type {Record<string, () => boolean>} */
const active = {
  bold: () => editor.isActive('bold'),
  italic: () => editor.isActive('italic'),
  h1: () => editor.isActive('heading', { level: 1 }),
  h2: () => editor.isActive('heading', { level: 2 }),
  bulletList: () => editor.isActive('bulletList'),
  orderedList: () => editor.isActive('orderedList')
}
const buttons = /** @type {HTMLButtonElement[]} */ ([...byId('toolbar').querySelectorAll('button[data-command]')])
for (const button of buttons) {
  const name = button.dataset.command || ''
  button.addEventListener('click', () => commands[name]())
}
editor.on('transaction', () => {
  for (const button of buttons) {
    const isActive = active[button.dataset.command || '']
    if (isActive) button.setAttribute('aria-pressed', String(isActive()))
  }
})

// ---- people (awareness; names are peers' input: textContent only)
/** @param {any} state */
const isReplica = state => !!state && typeof state === 'object' && !!state.collab && state.collab.role === 'replica'
const renderPeople = () => {
  const items = []
  for (const [clientID, state] of provider.awareness.getStates()) {
    const user = state && typeof state.user === 'object' && state.user ? state.user : {}
    const li = document.createElement('li')
    const dot = document.createElement('span')
    dot.className = 'dot'
    dot.style.background = typeof user.color === 'string' ? user.color : '#999'
    const label = document.createElement('span')
    label.textContent = `${typeof user.name === 'string' ? user.name : 'anonymous'}${clientID === doc.clientID ? ' (you)' : ''}${isReplica(state) ? ' (archive)' : ''}`
    li.append(dot, label)
    items.push(li)
  }
  byId('people').replaceChildren(...items)
}
provider.awareness.on('change', renderPeople)
renderPeople()

// ---- "saved to archive": only the server's answer to this document's Yjs snapshot counts
const archiveBadge = byId('status-archive')
let generation = 0
let confirmed = -1
/** @type {ReturnType<typeof setTimeout> | null} */
let timer = null
const replicaPresent = () => [...provider.awareness.getStates()].some(([id, s]) => id !== doc.clientID && isReplica(s))
const showArchive = () => {
  const state = confirmed === generation ? 'saved' : replicaPresent() ? 'unsaved' : 'absent'
  archiveBadge.dataset.state = state
  archiveBadge.textContent = { saved: 'saved to archive', unsaved: 'not saved yet', absent: 'no archive in the room' }[state]
}
const checkSaved = async () => {
  timer = null
  if (confirmed === generation || !replicaPresent()) return showArchive()
  const asked = generation
  const res = await api(`/api/rooms/${encodeURIComponent(room)}/saved`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream' },
    // lib0's encoder writes into a fresh ArrayBuffer (never a SharedArrayBuffer): a valid body
    body: /** @type {Uint8Array<ArrayBuffer>} */ (Y.encodeSnapshot(Y.snapshot(doc)))
  })
  /** @type {any} */
  const answer = res && res.ok ? await res.json().catch(() => null) : null
  if (answer && answer.saved === true) confirmed = Math.max(confirmed, asked)
  showArchive()
  if (confirmed !== generation) scheduleCheck(1000)
}
/** @param {number} ms */
const scheduleCheck = ms => {
  if (timer === null) timer = setTimeout(checkSaved, ms)
}
doc.on('update', () => {
  generation++
  showArchive()
  scheduleCheck(500)
})
provider.awareness.on('change', () => {
  showArchive()
  scheduleCheck(500)
})

// ---- connection status (y-webrtc has no event for "a data channel opened": poll its view)
const showStatus = () => {
  const signaling = provider.signalingConns.some(conn => conn.connected)
  const status = byId('status-signaling')
  status.dataset.state = signaling ? 'connected' : 'disconnected'
  status.textContent = signaling ? 'connected' : 'disconnected'
  const conns = provider.room ? [...provider.room.webrtcConns.values()] : []
  byId('status-peers').textContent = String(conns.filter(conn => conn.connected).length)
}
setInterval(showStatus, 1000)
showStatus()

// For the browser console and the tests (tests/richtext/test_tiptap_browser.py): the stock
// objects, nothing of our own in between.
Object.assign(window, { tiptapRoom: { room, doc, provider, editor, fragment: FRAGMENT } })
