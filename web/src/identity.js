// Who "I" am to the other people in a room: a name (editable, kept in localStorage) and a colour.
// Published through the awareness protocol as `user: {name, color, colorLight}`, the shape
// y-codemirror.next reads for remote cursors.

const NAME_KEY = 'collab:name'
const COLOR_KEY = 'collab:color'

/** Calm, distinguishable colours; the light variant is the same colour at ~20 % opacity. */
export const PALETTE = [
  '#2563eb', '#db2777', '#059669', '#d97706', '#7c3aed',
  '#0891b2', '#dc2626', '#4d7c0f', '#c026d3', '#0d9488'
]

const ADJECTIVES = ['Quiet', 'Bright', 'Gentle', 'Swift', 'Curious', 'Patient', 'Bold', 'Calm']
const ANIMALS = ['Heron', 'Otter', 'Fox', 'Wren', 'Lynx', 'Finch', 'Badger', 'Moth']

/**
 * @param {string[]} list
 * @returns {string}
 */
const pick = list => list[Math.floor(Math.random() * list.length)]

const storage = {
  /** @param {string} key */
  get: key => {
    try {
      return localStorage.getItem(key)
    } catch (err) {
      console.warn('collab: localStorage unavailable', err)
      return null
    }
  },
  /**
   * @param {string} key
   * @param {string} value
   */
  set: (key, value) => {
    try {
      localStorage.setItem(key, value)
    } catch (err) {
      console.warn('collab: localStorage unavailable', err)
    }
  }
}

/**
 * The local user, created on first visit.
 *
 * @example
 *   const me = loadIdentity()   // { name: 'Quiet Heron', color: '#2563eb', colorLight: '#2563eb33' }
 *
 * @returns {{name: string, color: string, colorLight: string}}
 */
export const loadIdentity = () => {
  let name = storage.get(NAME_KEY)
  if (!name) {
    name = `${pick(ADJECTIVES)} ${pick(ANIMALS)}`
    storage.set(NAME_KEY, name)
  }
  let color = storage.get(COLOR_KEY)
  if (!color || !/^#[0-9a-f]{6}$/i.test(color)) {
    color = pick(PALETTE)
    storage.set(COLOR_KEY, color)
  }
  return { name, color, colorLight: `${color}33` }
}

/**
 * Persist a new display name (trimmed, at most 40 characters) and return the updated identity.
 * @param {string} name
 */
export const saveName = name => {
  const clean = name.trim().slice(0, 40)
  if (clean !== '') storage.set(NAME_KEY, clean)
  return loadIdentity()
}

/** @type {Set<(me: ReturnType<typeof loadIdentity>) => void>} */
const listeners = new Set()

/**
 * Be told when the local user renames themselves.
 * @param {(me: ReturnType<typeof loadIdentity>) => void} fn
 * @returns {() => void} unsubscribe
 */
export const onIdentityChange = fn => {
  listeners.add(fn)
  return () => listeners.delete(fn)
}

/**
 * Wire the header's name field: shows the current name, saves on change.
 * @param {HTMLInputElement} input
 * @param {HTMLElement} dot
 */
export const bindNameField = (input, dot) => {
  /** @param {ReturnType<typeof loadIdentity>} me */
  const show = me => {
    input.value = me.name
    dot.style.backgroundColor = me.color
  }
  show(loadIdentity())
  const commit = () => {
    const me = saveName(input.value)
    show(me)
    for (const fn of listeners) fn(me)
  }
  input.addEventListener('change', commit)
  input.addEventListener('keydown', event => {
    if (event.key === 'Enter') input.blur()
  })
}
