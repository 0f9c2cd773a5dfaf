// Who is in the room, and how we reach them.
//
// y-webrtc knows connections by a random signaling peer id (room.webrtcConns), awareness knows
// people by Yjs clientID; nothing links the two. Each browser therefore publishes its signaling
// peer id in its own awareness state (`collab.peerId`). A person whose peer id has an open
// webrtcConn is "direct"; one we only know through awareness relayed by others is "relayed".
// A peer that does not publish its peer id (e.g. a replica) counts as direct while some open
// connection is not claimed by anybody else's awareness.
import { isReplica } from './archive.js'
import { el, replaceChildren, safeColor, safeName } from './util.js'

/**
 * @typedef {{clientID: number, name: string, color: string, role: 'you'|'replica'|'person',
 *            link: 'you'|'direct'|'relayed'|'tab', peerId: string|null}} PeerInfo
 */

/**
 * Everyone in the room, "you" first, then by name.
 *
 * @example
 *   listPeers(provider.awareness, provider.room, doc.clientID)
 *   // [{clientID: 1, name: 'Ada', link: 'you', ...}, {clientID: 7, name: 'archive', link: 'direct', role: 'replica', ...}]
 *
 * @param {{getStates: () => Map<number, any>}} awareness
 * @param {any} room the y-webrtc Room (provider.room), possibly null while the key is derived
 * @param {number} myClientID
 * @returns {PeerInfo[]}
 */
export const listPeers = (awareness, room, myClientID) => {
  /** @type {Map<string, any>} */
  const conns = room ? room.webrtcConns : new Map()
  const open = new Set([...conns.entries()].filter(([, c]) => c.connected).map(([id]) => id))
  /** @type {Set<string>} other tabs of this browser, reached over BroadcastChannel */
  const tabs = room && room.bcConns ? room.bcConns : new Set()
  /** @type {PeerInfo[]} */
  const peers = []
  const claimed = new Set()
  awareness.getStates().forEach((state, clientID) => {
    const user = state && typeof state.user === 'object' && state.user ? state.user : {}
    const peerId = state && state.collab && typeof state.collab.peerId === 'string' ? state.collab.peerId : null
    if (peerId) claimed.add(peerId)
    const me = clientID === myClientID
    peers.push({
      clientID,
      name: safeName(user.name),
      color: safeColor(user.color),
      role: me ? 'you' : isReplica(state) ? 'replica' : 'person',
      link: me ? 'you' : peerId && open.has(peerId) ? 'direct' : peerId && tabs.has(peerId) ? 'tab' : 'relayed',
      peerId
    })
  })
  let unclaimedOpen = [...open].filter(id => !claimed.has(id)).length
  for (const peer of peers) {
    if (peer.link === 'relayed' && peer.peerId === null && unclaimedOpen > 0) {
      peer.link = 'direct'
      unclaimedOpen--
    }
  }
  /** @param {PeerInfo} p */
  const rank = p => (p.role === 'you' ? 0 : p.role === 'person' ? 1 : 2)
  return peers.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name))
}

const LINK_LABEL = { you: 'you', direct: 'direct', relayed: 'relayed', tab: 'other tab' }

/**
 * Render the people list into `list` (an <ul>). Names are text nodes, never HTML.
 * @param {HTMLElement} list
 * @param {PeerInfo[]} peers
 */
export const renderPeers = (list, peers) => {
  replaceChildren(list, peers.map(peer => el('li', {
    class: 'person',
    dataset: { clientId: String(peer.clientID), link: peer.link, role: peer.role }
  }, [
    el('span', { class: 'person-dot', style: { backgroundColor: peer.color }, 'aria-hidden': 'true' }),
    el('span', { class: 'person-name', text: peer.name }),
    peer.role === 'replica' ? el('span', { class: 'tag tag-archive', text: 'archive' }) : null,
    el('span', {
      class: `tag tag-${peer.link}`,
      text: LINK_LABEL[peer.link],
      title: peer.link === 'direct'
        ? 'Connected to you directly (WebRTC)'
        : peer.link === 'relayed'
          ? 'Known through other peers (no direct connection)'
          : peer.link === 'tab' ? 'Another tab of this browser (BroadcastChannel)' : undefined
    })
  ])))
}
