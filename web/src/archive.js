// "Saved to archive": true only when the archival replica holds this browser's latest changes.
//
// Contract with the replica (collab/replica.py): the replica is a peer whose awareness state is
//   {"user": {"name": "archive", "color": "#6b7280"},
//    "collab": {"role": "replica", "sv": "<base64 Yjs-encoded state vector of what it stored durably>"}}
import * as Y from 'yjs'
import { fromBase64 } from './util.js'

/**
 * True when an awareness state belongs to an archival replica.
 * @param {any} state
 */
export const isReplica = state =>
  !!state && typeof state === 'object' && !!state.collab && typeof state.collab === 'object' &&
  state.collab.role === 'replica'

/**
 * Decode a replica's advertised state vector; null if absent or malformed (never throws).
 * @param {any} state awareness state
 * @returns {Map<number, number>|null}
 */
export const replicaStateVector = state => {
  if (!isReplica(state)) return null
  const bytes = fromBase64(state.collab.sv)
  if (!bytes) return null
  try {
    return Y.decodeStateVector(bytes)
  } catch (err) {
    console.warn('collab: malformed replica state vector', err)
    return null
  }
}

/**
 * Whether this browser's edits are durably archived.
 *
 * - `absent`: no replica in the room's awareness;
 * - `saved`: some replica's stored state vector covers everything this browser wrote
 *   (`sv.get(id) >= Y.getState(doc.store, id)` for `doc.clientID` and for the client ids this
 *   browser used for the room in earlier sessions, whose edits y-indexeddb brought back), or this
 *   browser never edited;
 * - `unsaved`: a replica is present but has not stored our latest changes yet.
 *
 * @example
 *   archiveStatus(doc, provider.awareness)  // { state: 'saved', replicas: 1 }
 *
 * @param {Y.Doc} doc
 * @param {{getStates: () => Map<number, any>}} awareness
 * @param {Iterable<number>} [myClientIDs] client ids this browser wrote with (default: the current one)
 * @returns {{state: 'absent'|'saved'|'unsaved', replicas: number}}
 */
export const archiveStatus = (doc, awareness, myClientIDs = [doc.clientID]) => {
  const mine = new Map()
  for (const id of new Set([doc.clientID, ...myClientIDs])) {
    const clock = Y.getState(doc.store, id)
    if (clock > 0) mine.set(id, clock)
  }
  let replicas = 0
  let saved = false
  awareness.getStates().forEach((state, clientID) => {
    if (clientID === doc.clientID || !isReplica(state)) return
    replicas++
    if (mine.size === 0) {
      saved = true
      return
    }
    const sv = replicaStateVector(state)
    if (sv && [...mine].every(([id, clock]) => (sv.get(id) || 0) >= clock)) saved = true
  })
  if (replicas === 0) return { state: 'absent', replicas }
  return { state: saved ? 'saved' : 'unsaved', replicas }
}

/**
 * The client ids this browser has written a room with, kept in localStorage next to the
 * IndexedDB copy (y-indexeddb restores their edits; the archive must hold those too).
 *
 * @example
 *   const mine = rememberClientIDs('collab:room:notes')
 *   mine.note(doc.clientID); archiveStatus(doc, awareness, mine.ids())
 *
 * @param {string} key storage name of the room
 * @param {number} [limit] how many ids to remember
 */
export const rememberClientIDs = (key, limit = 64) => {
  const storageKey = `${key}:clients`
  /** @type {number[]} */
  let ids = []
  try {
    const raw = JSON.parse(localStorage.getItem(storageKey) || '[]')
    if (Array.isArray(raw)) ids = raw.filter(id => Number.isInteger(id) && id >= 0).slice(-limit)
  } catch (err) {
    console.warn('collab: unreadable client id list, starting afresh', err)
  }
  return {
    ids: () => ids,
    /** @param {number} id */
    note: id => {
      if (ids.includes(id)) return
      ids = [...ids, id].slice(-limit)
      try {
        localStorage.setItem(storageKey, JSON.stringify(ids))
      } catch (err) {
        console.warn('collab: cannot remember client ids', err)
      }
    }
  }
}
