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
 * - `saved`: some replica's stored state vector covers everything this client wrote
 *   (`sv.get(doc.clientID) >= Y.getState(doc.store, doc.clientID)`), or this client never edited;
 * - `unsaved`: a replica is present but has not stored our latest changes yet.
 *
 * @example
 *   archiveStatus(doc, provider.awareness)  // { state: 'saved', replicas: 1 }
 *
 * @param {Y.Doc} doc
 * @param {{getStates: () => Map<number, any>}} awareness
 * @returns {{state: 'absent'|'saved'|'unsaved', replicas: number}}
 */
export const archiveStatus = (doc, awareness) => {
  const mine = Y.getState(doc.store, doc.clientID)
  let replicas = 0
  let saved = false
  awareness.getStates().forEach((state, clientID) => {
    if (clientID === doc.clientID || !isReplica(state)) return
    replicas++
    const sv = replicaStateVector(state)
    if (mine === 0 || (sv && (sv.get(doc.clientID) || 0) >= mine)) saved = true
  })
  if (replicas === 0) return { state: 'absent', replicas }
  return { state: saved ? 'saved' : 'unsaved', replicas }
}
