// Hash routes: `#/` (room list) and `#/room/<name>` (a room; `?locked=1` = "ask for a password").

/**
 * Parse the location hash.
 * @param {string} hash
 * @returns {{view: 'rooms'} | {view: 'room', name: string, locked: boolean}}
 */
export const parseRoute = hash => {
  const match = /^#\/room\/([^?]+)(?:\?(.*))?$/.exec(hash)
  if (!match) return { view: 'rooms' }
  let name
  try {
    name = decodeURIComponent(match[1])
  } catch {
    return { view: 'rooms' }
  }
  if (name.trim() === '') return { view: 'rooms' }
  const params = new URLSearchParams(match[2] || '')
  return { view: 'room', name, locked: params.get('locked') === '1' }
}

/**
 * The hash of a room's page.
 *
 * @example
 *   roomHash('team notes', true)  // '#/room/team%20notes?locked=1'
 *
 * @param {string} name
 * @param {boolean} locked
 */
export const roomHash = (name, locked) => `#/room/${encodeURIComponent(name)}${locked ? '?locked=1' : ''}`
