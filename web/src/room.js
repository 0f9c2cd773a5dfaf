// The room page: editor + sidebar (status, people, connections, history).
// All sync and WebRTC is stock y-webrtc; this file only wires stock parts together and shows state.
import * as Y from 'yjs'
import { WebrtcProvider } from 'y-webrtc'
import { IndexeddbPersistence } from 'y-indexeddb'
import { watchArchive } from './archive.js'
import { peerOptions, signalingUrl } from './config.js'
import { createEditor } from './editor.js'
import { mountHistory } from './history.js'
import { loadIdentity, onIdentityChange } from './identity.js'
import { listPeers, renderPeers } from './presence.js'
import { collectStats, renderStats } from './stats.js'
import { el } from './util.js'

/** The shared text's name: the replica's default (`collab replica` reads `codemirror`). */
export const TEXT_NAME = 'codemirror'

/**
 * The IndexedDB database holding this room's document in this browser. Password rooms get their
 * own database per password (a hash of it, never the password itself), so a wrong password never
 * shows the content stored under the right one.
 * @param {string} room
 * @param {string|null} password
 */
export const storageName = async (room, password) => {
  if (!password) return `collab:room:${room}`
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`${room}\u0000${password}`))
  const hex = [...new Uint8Array(digest)].slice(0, 12).map(b => b.toString(16).padStart(2, '0')).join('')
  return `collab:room:${room}:locked:${hex}`
}

/**
 * Ask for a room password in a modal dialog.
 *
 * @example
 *   const password = await askPassword('notes')  // null: "join without password"
 *
 * @param {string} room
 * @param {{message?: string, cancelLabel?: string}} [options]
 * @returns {Promise<string|null>} the password, or null when the person chose to go without
 */
export const askPassword = (room, { message, cancelLabel } = {}) => new Promise(resolve => {
  const input = el('input', { type: 'password', id: 'password-input', autocomplete: 'off', required: true, 'aria-label': 'Room password' })
  const cancel = el('button', { type: 'button', class: 'button button-quiet', value: 'cancel', id: 'password-cancel', text: cancelLabel || 'Join without password' })
  const form = el('form', { method: 'dialog', class: 'dialog-form' }, [
    el('h2', { text: 'This room is protected' }),
    el('p', { class: 'muted' }, [message || 'Enter the password to join ', el('strong', { text: room }), '. It encrypts everything, including signaling; it never leaves this browser.']),
    input,
    el('div', { class: 'dialog-actions' }, [
      cancel,
      el('button', { type: 'submit', class: 'button', value: 'ok', id: 'password-ok', text: 'Join' })
    ])
  ])
  const dialog = el('dialog', { class: 'dialog', id: 'password-dialog' }, [form])
  document.body.append(dialog)
  /** @param {string|null} value */
  const finish = value => {
    dialog.close()
    dialog.remove()
    resolve(value)
  }
  form.addEventListener('submit', event => {
    event.preventDefault()
    if (input.value !== '') finish(input.value)
  })
  cancel.addEventListener('click', () => finish(null))
  dialog.addEventListener('cancel', event => {
    event.preventDefault()
    finish(null)
  })
  dialog.showModal()
  input.focus()
})

/**
 * @param {string} key
 * @param {string} label
 */
const statusRow = (key, label) => el('div', { class: 'status-row', dataset: { key } }, [
  el('dt', { text: label }),
  el('dd', { id: `status-${key}`, dataset: { state: 'pending' }, text: '…' })
])

/**
 * Open a room in `container`. Resolves to a handle whose `destroy()` leaves the room.
 *
 * @example
 *   const room = await openRoomView(document.querySelector('#app'), 'notes', { password: null })
 *   room.destroy()
 *
 * @param {HTMLElement} container
 * @param {string} name room name (the y-webrtc room and the archive's room)
 * @param {{password: string|null, onPasswordChange: (password: string) => void}} options
 */
export const openRoomView = async (container, name, { password, onPasswordChange }) => {
  const doc = new Y.Doc()
  const ytext = doc.getText(TEXT_NAME)

  // ---- layout
  const archiveBadge = el('span', { id: 'archive-status', class: 'badge', dataset: { state: 'absent' }, text: 'No archive in room' })
  const shareButton = el('button', { type: 'button', class: 'button button-quiet', id: 'share', text: 'Copy link' })
  const lockButton = el('button', { type: 'button', class: 'button button-quiet', id: 'lock', text: password ? 'Change password' : 'Use a password' })
  const editorHost = el('div', { class: 'editor', id: 'editor' })
  const people = el('ul', { class: 'people', id: 'people' })
  const statsBox = el('div', { class: 'stats', id: 'stats' })
  const historySection = el('section', { class: 'panel', id: 'history-panel', hidden: true }, [
    el('h2', { text: 'History' }), el('div', { class: 'panel-body' })
  ])
  container.replaceChildren(el('section', { class: 'room', dataset: { room: name } }, [
    el('div', { class: 'room-head' }, [
      el('div', { class: 'room-title-wrap' }, [
        el('h1', { class: 'room-title', id: 'room-title', text: name }),
        password ? el('span', { class: 'badge badge-lock', id: 'locked', title: 'End-to-end encrypted with a room password', text: 'Password' }) : null,
        archiveBadge
      ]),
      el('div', { class: 'room-actions' }, [shareButton, lockButton])
    ]),
    el('div', { class: 'room-body' }, [
      el('div', { class: 'editor-wrap' }, [editorHost]),
      el('aside', { class: 'sidebar', 'aria-label': 'Room details' }, [
        el('section', { class: 'panel', id: 'status-panel' }, [
          el('h2', { text: 'Status' }),
          el('dl', { class: 'status' }, [
            statusRow('signaling', 'Signaling'),
            statusRow('peers', 'Peers'),
            statusRow('synced', 'Sync'),
            statusRow('offline', 'This browser')
          ])
        ]),
        el('section', { class: 'panel', id: 'people-panel' }, [el('h2', { text: 'People' }), people]),
        el('section', { class: 'panel', id: 'stats-panel' }, [el('h2', { text: 'Connections' }), statsBox]),
        historySection
      ])
    ])
  ]))

  // ---- stock providers
  const dbName = await storageName(name, password)
  const idb = new IndexeddbPersistence(dbName, doc)
  const provider = new WebrtcProvider(name, doc, {
    signaling: [signalingUrl()],
    password: password || undefined,
    peerOpts: await peerOptions()
  })
  const awareness = provider.awareness
  const me = loadIdentity()
  awareness.setLocalStateField('user', { name: me.name, color: me.color, colorLight: me.colorLight })
  const view = createEditor(editorHost, ytext, awareness)

  // ---- history (only if the archive has it)
  const history = mountHistory(historySection, name)
  const historyTicker = setInterval(() => history.refresh(), 30000)

  // ---- status
  let idbSynced = false
  idb.whenSynced.then(() => { idbSynced = true; refresh() })
  /**
   * @param {string} key
   * @param {string} state
   * @param {string} text
   */
  const setStatus = (key, state, text) => {
    const node = document.getElementById(`status-${key}`)
    if (!node) return
    node.dataset.state = state
    node.textContent = text
  }
  let lastArchiveState = 'absent'
  // green only on the server's word (POST /api/rooms/{room}/saved), never on a peer's claim
  const archive = watchArchive({ room: name, doc, awareness, password, onChange: () => setArchive() })
  const setArchive = () => {
    const state = archive.state()
    // a room becomes "archived" (and gets a history) once the replica stored it: look again
    if (state === 'saved' && lastArchiveState !== 'saved' && !history.available) history.refresh()
    lastArchiveState = state
    archiveBadge.dataset.state = state
    archiveBadge.textContent = state === 'saved' ? 'Saved to archive' : state === 'unsaved' ? 'Unsaved changes' : 'No archive in room'
    archiveBadge.title = state === 'saved'
      ? 'The archive holds all your changes.'
      : state === 'unsaved' ? 'The archive has not stored your latest changes yet.' : 'No archival replica is in this room: the text lives only in the browsers.'
  }
  /** @type {string|null} */
  let publishedPeerId = null
  const refresh = () => {
    const room = provider.room
    if (room && publishedPeerId !== room.peerId) {
      publishedPeerId = room.peerId
      awareness.setLocalStateField('collab', { role: 'browser', peerId: room.peerId })
    }
    const signalingUp = provider.signalingConns.some(conn => conn.connected)
    setStatus('signaling', signalingUp ? 'ok' : 'wait', signalingUp ? 'connected' : 'connecting…')
    const conns = room ? [...room.webrtcConns.values()] : []
    const open = conns.filter(c => c.connected)
    const peers = listPeers(awareness, room, doc.clientID)
    const relayed = peers.filter(p => p.link === 'relayed').length
    setStatus('peers', open.length > 0 ? 'ok' : 'none',
      open.length === 0 && relayed === 0 ? 'alone' : `${open.length} direct${relayed ? `, ${relayed} relayed` : ''}`)
    // y-webrtc's own notion ("synced with all peers"); its per-connection flag is only set for
    // peers that answer while the room is not yet synced, so it can't be used per peer.
    const synced = !!(room && room.synced)
    setStatus('synced', conns.length === 0 ? 'none' : synced ? 'ok' : 'wait', conns.length === 0 ? '—' : synced ? 'in sync' : 'syncing…')
    setStatus('offline', idbSynced ? 'ok' : 'wait', idbSynced ? 'kept offline' : 'loading…')
    renderPeers(people, peers)
    setArchive()
  }
  awareness.on('change', refresh)
  provider.on('peers', refresh)
  provider.on('synced', refresh)
  provider.on('status', refresh)
  const ticker = setInterval(refresh, 1000)

  // ---- connection stats
  let statsBusy = false
  const updateStats = async () => {
    if (statsBusy) return
    statsBusy = true
    try {
      const stats = await collectStats(provider.room)
      const peers = listPeers(awareness, provider.room, doc.clientID)
      const byPeerId = new Map(peers.filter(p => p.peerId).map(p => [p.peerId, p]))
      // A peer that doesn't publish its signaling id (the replica) can still be named when it is
      // the only such peer and exactly one connection is unclaimed.
      const anonymous = peers.filter(p => p.role !== 'you' && !p.peerId)
      const unclaimed = stats.filter(s => !byPeerId.has(s.peerId))
      if (anonymous.length === 1 && unclaimed.length === 1) byPeerId.set(unclaimed[0].peerId, anonymous[0])
      renderStats(statsBox, stats, peerId => byPeerId.get(peerId) || null)
    } finally {
      statsBusy = false
    }
  }
  const statsTicker = setInterval(updateStats, 1000)
  provider.on('peers', updateStats)
  updateStats()


  // ---- identity changes
  // y-codemirror.next redraws a remote caret only when its colour string changes (the widget's
  // eq() compares colours only), so a rename alone would leave the old name on everyone else's
  // screen. Alternate the hex digits' case on each rename: same colour, new string.
  let upper = false
  const offIdentity = onIdentityChange(next => {
    upper = !upper
    const color = upper ? next.color.toUpperCase() : next.color.toLowerCase()
    awareness.setLocalStateField('user', { name: next.name, color, colorLight: `${color}33` })
  })

  // ---- actions
  shareButton.addEventListener('click', async () => {
    const url = new URL(location.href)
    url.hash = `#/room/${encodeURIComponent(name)}${password ? '?locked=1' : ''}`
    try {
      await navigator.clipboard.writeText(url.toString())
      shareButton.textContent = 'Link copied'
    } catch (err) {
      console.warn('collab: clipboard unavailable', err)
      window.prompt('Share this link (the password is not in it):', url.toString())
    }
    setTimeout(() => { shareButton.textContent = 'Copy link' }, 2000)
  })
  lockButton.addEventListener('click', async () => {
    const next = await askPassword(name, { message: 'Everyone in the room must use the same password. Set it for ', cancelLabel: 'Cancel' })
    if (next !== null) onPasswordChange(next)
  })

  refresh()
  const handle = {
    name, doc, ytext, provider, awareness, view, idb,
    destroy: () => {
      clearInterval(ticker)
      clearInterval(statsTicker)
      clearInterval(historyTicker)
      archive.destroy()
      history.destroy()
      offIdentity()
      awareness.off('change', refresh)
      provider.off('peers', refresh)
      provider.off('peers', updateStats)
      provider.off('synced', refresh)
      provider.off('status', refresh)
      view.destroy()
      provider.disconnect() // releases the shared signaling connection; destroy() alone keeps it
      provider.destroy()
      idb.destroy()
      doc.destroy()
    }
  }
  // A debugging and test hook: stock objects only, nothing the page relies on.
  window.collabRoom = { ...handle, Y }
  return handle
}
