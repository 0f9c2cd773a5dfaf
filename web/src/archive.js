// "Saved to archive": true only when the SERVER confirms that the archive durably holds this
// browser's document — every struct and every deletion (a Yjs snapshot: delete set + state
// vector; deletions do not move state vectors).
//
// Awareness is written by peers, so it is only a hint: the replica's awareness state is
//   {"user": {"name": "archive", "color": "#6b7280"},
//    "collab": {"role": "replica", "sv": "<base64 state vector it stored durably>", "peerId": "…"}}
// and any peer could claim that. The page therefore asks `POST /api/rooms/{room}/saved` (same
// origin) with `Y.encodeSnapshot(Y.snapshot(doc))`; only `{"saved": true}` turns the badge green,
// and only for the document generation it was asked about.
import * as Y from 'yjs'
import { fetchJson } from './util.js'

/** @typedef {import('y-protocols/awareness').Awareness} Awareness */

/**
 * True when an awareness state belongs to an archival replica.
 * @param {any} state
 */
export const isReplica = state =>
  !!state && typeof state === 'object' && !!state.collab && typeof state.collab === 'object' &&
  state.collab.role === 'replica'

/**
 * Watch whether the archive durably holds this browser's document, confirmed by the server.
 *
 * The state is `absent` (no replica in the room, nothing confirmed), `unsaved` (a replica is
 * present, the server has not confirmed the current document), or `saved` (the server said the
 * archive holds exactly this document generation or more). Every document update makes the
 * state `unsaved` again until a new confirmation; checks are debounced while typing and back off
 * (up to 5 s) while the answer is "not yet".
 *
 * @example
 *   const watch = watchArchive({ room: 'notes', doc, awareness, onChange: render })
 *   watch.state()  // 'saved' | 'unsaved' | 'absent'
 *   watch.destroy()
 *
 * @param {{room: string, doc: Y.Doc, awareness: Awareness, password?: string|null,
 *          onChange: () => void, ask?: (body: Uint8Array<ArrayBuffer>) => Promise<boolean|null>}} options
 *   `ask` posts a snapshot and resolves to the server's answer (null: no answer); injectable.
 */
export const watchArchive = ({ room, doc, awareness, password = null, onChange, ask }) => {
  const post = ask || (async body => {
    /** @type {Record<string, string>} */
    const headers = { 'Content-Type': 'application/octet-stream' }
    if (password) headers['X-Collab-Room-Password'] = password
    const res = await fetchJson(`/api/rooms/${encodeURIComponent(room)}/saved`, { method: 'POST', body, headers })
    return res.ok && res.data ? res.data.saved === true : null
  })
  let generation = 0
  let confirmed = -1
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null
  let inflight = false
  let delay = 400
  let lastHint = ''
  let destroyed = false
  const replicaPresent = () => {
    let found = false
    awareness.getStates().forEach((state, clientID) => {
      if (clientID !== doc.clientID && isReplica(state)) found = true
    })
    return found
  }
  const state = () => confirmed === generation ? 'saved' : replicaPresent() ? 'unsaved' : 'absent'
  /** @param {number} ms */
  const schedule = ms => {
    if (timer !== null || destroyed) return
    timer = setTimeout(check, ms)
  }
  const check = async () => {
    timer = null
    if (destroyed || confirmed === generation || !replicaPresent()) return onChange()
    if (inflight) return schedule(delay)
    inflight = true
    const asked = generation
    /** @type {boolean|null} */
    let saved
    try {
      // lib0's encoder writes into a fresh ArrayBuffer (never a SharedArrayBuffer): a valid body
      saved = await post(/** @type {Uint8Array<ArrayBuffer>} */ (Y.encodeSnapshot(Y.snapshot(doc))))
    } finally {
      inflight = false
    }
    if (destroyed) return
    if (saved === true) {
      if (asked > confirmed) confirmed = asked
      delay = 400
    } else {
      delay = Math.min(delay * 2, 5000)
    }
    onChange()
    if (confirmed !== generation) schedule(delay)
  }
  const onUpdate = () => {
    generation++
    onChange()
    schedule(400)
  }
  const onAwareness = () => {
    // the replica advertises what it stored: a change is a good moment to ask again
    let hint = ''
    awareness.getStates().forEach((s, clientID) => {
      if (clientID !== doc.clientID && isReplica(s)) hint += `${clientID}:${s.collab.sv};`
    })
    if (hint !== lastHint) {
      lastHint = hint
      delay = 400
      if (confirmed !== generation) schedule(50)
      else onChange()
    }
  }
  doc.on('update', onUpdate)
  awareness.on('change', onAwareness)
  schedule(0)
  return {
    state,
    destroy: () => {
      destroyed = true
      if (timer !== null) clearTimeout(timer)
      doc.off('update', onUpdate)
      awareness.off('change', onAwareness)
    }
  }
}
