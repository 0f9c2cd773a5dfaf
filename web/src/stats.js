// Per-connection numbers from RTCPeerConnection.getStats(): round-trip time and bytes moved.
// simple-peer keeps its RTCPeerConnection at `webrtcConn.peer._pc`.
import { el, formatBytes, replaceChildren } from './util.js'

/**
 * @typedef {{peerId: string, connected: boolean, synced: boolean, rttMs: number|null,
 *            bytesSent: number|null, bytesReceived: number|null}} ConnStats
 */

/**
 * Read the selected ICE candidate pair of one RTCPeerConnection.
 * @param {RTCPeerConnection} pc
 * @returns {Promise<{rttMs: number|null, bytesSent: number|null, bytesReceived: number|null}>}
 */
const pairStats = async pc => {
  const report = await pc.getStats()
  /** @type {RTCIceCandidatePairStats|null} */
  let pair = null
  for (const stat of report.values()) {
    if (stat.type === 'transport' && stat.selectedCandidatePairId) {
      pair = report.get(stat.selectedCandidatePairId) || pair
    }
  }
  if (!pair) {
    for (const stat of report.values()) {
      if (stat.type === 'candidate-pair' && stat.state === 'succeeded' && (stat.nominated || !pair)) pair = stat
    }
  }
  if (!pair) return { rttMs: null, bytesSent: null, bytesReceived: null }
  const rtt = typeof pair.currentRoundTripTime === 'number' ? pair.currentRoundTripTime * 1000 : null
  return {
    rttMs: rtt,
    bytesSent: typeof pair.bytesSent === 'number' ? pair.bytesSent : null,
    bytesReceived: typeof pair.bytesReceived === 'number' ? pair.bytesReceived : null
  }
}

/**
 * Stats for every y-webrtc connection of a room.
 *
 * @example
 *   const stats = await collectStats(provider.room)  // [{peerId, rttMs: 0.4, bytesSent: 5120, ...}]
 *
 * @param {any} room provider.room (may be null)
 * @returns {Promise<ConnStats[]>}
 */
export const collectStats = async room => {
  if (!room) return []
  const conns = [...room.webrtcConns.entries()]
  return Promise.all(conns.map(async ([peerId, conn]) => {
    const base = { peerId, connected: !!conn.connected, synced: !!conn.synced }
    const pc = conn.peer && conn.peer._pc
    if (!pc || pc.connectionState === 'closed') return { ...base, rttMs: null, bytesSent: null, bytesReceived: null }
    try {
      return { ...base, ...(await pairStats(pc)) }
    } catch (err) {
      console.warn('collab: getStats failed', err)
      return { ...base, rttMs: null, bytesSent: null, bytesReceived: null }
    }
  }))
}

/**
 * Render connection stats into a container.
 * @param {HTMLElement} container
 * @param {ConnStats[]} stats
 * @param {(peerId: string) => {name: string, color: string}|null} who maps a signaling peer id to a person
 */
export const renderStats = (container, stats, who) => {
  if (stats.length === 0) {
    replaceChildren(container, [el('p', { class: 'muted small', text: 'No direct connections yet.' })])
    return
  }
  replaceChildren(container, stats.map(s => {
    const person = who(s.peerId)
    return el('div', { class: 'conn', dataset: { peerId: s.peerId, connected: String(s.connected) } }, [
      el('div', { class: 'conn-head' }, [
        el('span', { class: 'person-dot', style: { backgroundColor: person ? person.color : '#94a3b8' }, 'aria-hidden': 'true' }),
        el('span', { class: 'conn-name', text: person ? person.name : `peer ${s.peerId.slice(0, 8)}` }),
        el('span', { class: `tag ${s.connected ? 'tag-ok' : 'tag-wait'}`, text: s.connected ? 'connected' : 'connecting' })
      ]),
      el('dl', { class: 'conn-figures' }, [
        el('dt', { text: 'RTT' }), el('dd', { class: 'rtt', text: s.rttMs === null ? '—' : `${s.rttMs < 10 ? s.rttMs.toFixed(1) : Math.round(s.rttMs)} ms` }),
        el('dt', { text: 'sent' }), el('dd', { text: s.bytesSent === null ? '—' : formatBytes(s.bytesSent) }),
        el('dt', { text: 'received' }), el('dd', { text: s.bytesReceived === null ? '—' : formatBytes(s.bytesReceived) })
      ])
    ])
  }))
}
