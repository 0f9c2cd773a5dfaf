// The room list: rooms the archive knows (GET /api/rooms) and a "new room" form.
// Without an archive (404 or any failure) the page says so and rooms still work peer to peer.
import { el, fetchJson, formatAgo, formatBytes, parseTime, replaceChildren } from './util.js'

const WORDS_A = ['amber', 'quiet', 'north', 'paper', 'linen', 'cedar', 'harbor', 'meadow', 'slate', 'willow']
const WORDS_B = ['notes', 'draft', 'plans', 'ideas', 'journal', 'outline', 'minutes', 'sketch', 'letter', 'story']

/** A friendly random room name, e.g. `cedar-notes-412`. */
export const suggestRoomName = () => {
  /** @param {string[]} list */
  const pick = list => list[Math.floor(Math.random() * list.length)]
  return `${pick(WORDS_A)}-${pick(WORDS_B)}-${Math.floor(100 + Math.random() * 900)}`
}

/** Longest room name accepted by the form. */
export const MAX_ROOM_NAME = 100

/** @typedef {{name: string, size: number|null, updated: Date|null, peers: number|null}} Room */

/**
 * Normalise one `/api/rooms` entry: `{name, size, updated_at, peers}`; null when unusable.
 * @param {any} raw
 * @returns {Room|null}
 */
export const normaliseRoom = raw => {
  if (!raw || typeof raw !== 'object' || typeof raw.name !== 'string' || raw.name === '') return null
  return {
    name: raw.name,
    size: typeof raw.size === 'number' ? raw.size : null,
    updated: parseTime(raw.updated_at),
    peers: typeof raw.peers === 'number' ? raw.peers : null
  }
}

/**
 * Render the rooms page into `container`.
 *
 * @example
 *   const view = renderRoomList(document.querySelector('#app'), { onCreate: (name, pw) => go(name, pw) })
 *   view.destroy()
 *
 * @param {HTMLElement} container
 * @param {{onCreate: (name: string, password: string|null) => void}} options
 */
export const renderRoomList = (container, { onCreate }) => {
  let destroyed = false
  const nameInput = el('input', {
    id: 'new-room-name', type: 'text', maxlength: String(MAX_ROOM_NAME), required: true,
    value: suggestRoomName(), spellcheck: 'false', 'aria-label': 'Room name'
  })
  const passwordInput = el('input', {
    id: 'new-room-password', type: 'password', autocomplete: 'new-password',
    placeholder: 'optional', 'aria-label': 'Room password (optional)'
  })
  const form = el('form', { class: 'new-room card', id: 'new-room' }, [
    el('h2', { text: 'New room' }),
    el('div', { class: 'field-row' }, [
      el('label', { class: 'field' }, [el('span', { class: 'field-label', text: 'Name' }), nameInput]),
      el('label', { class: 'field' }, [el('span', { class: 'field-label', text: 'Password' }), passwordInput]),
      el('button', { type: 'submit', class: 'button', id: 'create-room', text: 'Open room' })
    ]),
    el('p', { class: 'muted small', text: 'Anyone with the link can join. With a password, everything (even signaling) is encrypted; share the password separately.' })
  ])
  form.addEventListener('submit', event => {
    event.preventDefault()
    const name = nameInput.value.trim()
    if (name === '' || name.length > MAX_ROOM_NAME) return
    onCreate(name, passwordInput.value === '' ? null : passwordInput.value)
  })

  const list = el('div', { class: 'room-list card', id: 'room-list', dataset: { state: 'loading' } }, [
    el('p', { class: 'muted', text: 'Loading rooms…' })
  ])
  container.replaceChildren(el('section', { class: 'rooms' }, [
    el('div', { class: 'rooms-intro' }, [
      el('h1', { text: 'Write together' }),
      el('p', { class: 'lead', text: 'Documents travel directly between browsers. An archive keeps a copy when the last person leaves.' })
    ]),
    form,
    el('h2', { class: 'section-title', text: 'Rooms in the archive' }),
    list
  ]))

  const load = async () => {
    const res = await fetchJson('/api/rooms')
    if (destroyed) return
    /** @type {unknown[] | null} */
    const raw = res.ok ? (Array.isArray(res.data) ? res.data : res.data && Array.isArray(res.data.rooms) ? res.data.rooms : null) : null
    if (raw === null) {
      list.dataset.state = 'no-archive'
      replaceChildren(list, [
        el('p', { class: 'empty-title', text: 'No archive' }),
        el('p', { class: 'muted', text: 'This server keeps no archive, so there is no list of rooms. Rooms still work: open one above and share its link.' })
      ])
      return
    }
    const rooms = raw.map(normaliseRoom).filter(/** @returns {r is Room} */ r => r !== null)
      .sort((a, b) => (b.updated ? b.updated.getTime() : 0) - (a.updated ? a.updated.getTime() : 0))
    if (rooms.length === 0) {
      list.dataset.state = 'empty'
      replaceChildren(list, [
        el('p', { class: 'empty-title', text: 'No rooms yet' }),
        el('p', { class: 'muted', text: 'Open a room above; the archive will list it here.' })
      ])
      return
    }
    list.dataset.state = 'rooms'
    replaceChildren(list, [el('ul', { class: 'rooms-ul' }, rooms.map(room => el('li', { class: 'room-item', dataset: { room: room.name } }, [
      el('a', { class: 'room-link', href: `#/room/${encodeURIComponent(room.name)}`, text: room.name }),
      el('span', { class: 'room-meta' }, [
        room.peers ? el('span', { class: 'tag tag-ok', text: `${room.peers} here` }) : null,
        el('span', { class: 'muted', text: room.size === null ? '' : formatBytes(room.size) }),
        el('span', { class: 'muted', text: formatAgo(room.updated), title: room.updated ? room.updated.toLocaleString() : undefined })
      ])
    ])))])
  }
  load()
  const ticker = setInterval(load, 15000)
  return { destroy: () => { destroyed = true; clearInterval(ticker) } }
}
