// Entry point: hash routing between the room list (`#/`) and a room (`#/room/<name>`).
// A room link may carry `?locked=1` in the hash ("this room has a password": ask for it);
// the password itself is never put in the URL and is kept in memory only.
import { bindNameField } from './identity.js'
import { askPassword, openRoomView } from './room.js'
import { renderRoomList } from './rooms.js'
import { parseRoute, roomHash } from './router.js'
import { el, replaceChildren } from './util.js'

/** @type {Map<string, string>} room name → password, for this page's lifetime only */
const passwords = new Map()

const app = /** @type {HTMLElement} */ (document.getElementById('app'))
const crumbs = /** @type {HTMLElement} */ (document.getElementById('crumbs'))
/** @type {{destroy: () => void} | null} */
let current = null
let generation = 0

/** Renders run one after another (a room must be left before it can be opened again). */
let queue = Promise.resolve()
const render = () => {
  const gen = ++generation
  queue = queue.then(() => (gen === generation ? show(gen) : undefined)).catch(err => {
    console.error('collab: could not show the page', err)
    app.replaceChildren(el('p', { class: 'error', text: `Something went wrong: ${err && err.message ? err.message : err}` }))
  })
  return queue
}

/** @param {number} gen */
const show = async gen => {
  if (current) {
    current.destroy()
    current = null
  }
  const route = parseRoute(location.hash)
  if (route.view === 'rooms') {
    document.title = 'collab'
    replaceChildren(crumbs, [el('span', { class: 'crumb', text: 'Rooms' })])
    current = renderRoomList(app, {
      onCreate: (name, password) => {
        if (password) passwords.set(name, password)
        location.hash = roomHash(name, !!password)
      }
    })
    return
  }
  const { name, locked } = route
  document.title = `${name} · collab`
  replaceChildren(crumbs, [
    el('a', { class: 'crumb', href: '#/', text: 'Rooms' }),
    el('span', { class: 'crumb-sep', 'aria-hidden': 'true', text: '/' }),
    el('span', { class: 'crumb crumb-current', text: name })
  ])
  app.replaceChildren(el('p', { class: 'muted loading', text: 'Opening room…' }))
  if (locked && !passwords.has(name)) {
    const password = await askPassword(name)
    if (gen !== generation) return
    if (password !== null) passwords.set(name, password)
  }
  const room = await openRoomView(app, name, {
    password: passwords.get(name) || null,
    onPasswordChange: password => {
      passwords.set(name, password)
      if (location.hash === roomHash(name, true)) render()
      else location.hash = roomHash(name, true)
    }
  })
  if (gen !== generation) {
    room.destroy()
    return
  }
  current = room
}

bindNameField(
  /** @type {HTMLInputElement} */ (document.getElementById('me-name')),
  /** @type {HTMLElement} */ (document.getElementById('me-dot'))
)
window.addEventListener('hashchange', () => { render() })
render()

// The offline shell (web/sw.js): lets the page open without the server; documents come from
// IndexedDB. Service workers need a secure context (https, or http://127.0.0.1 / localhost).
if ('serviceWorker' in navigator && window.isSecureContext) {
  navigator.serviceWorker.register('sw.js').catch(err => console.warn('collab: no offline shell', err))
}
