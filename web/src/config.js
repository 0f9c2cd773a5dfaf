// Where the page connects: same-origin signaling, ICE servers from the server's /api/config.
import { fetchJson, pageToken } from './util.js'

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]'])

/**
 * The y-webrtc signaling URL: `ws(s)://<this host>/signaling`, keeping the page's `?token=`.
 *
 * For development and tests, `?signaling=ws://127.0.0.1:4444` points the page at another signaling
 * server (e.g. y-webrtc's own bin/server.js) — accepted only for loopback hosts, so a link can't
 * send someone's room to a stranger's server.
 *
 * @example
 *   // page at https://example.org/?token=abc#/room/notes
 *   signalingUrl()  // 'wss://example.org/signaling?token=abc'
 *
 * @returns {string}
 */
export const signalingUrl = () => {
  const params = new URLSearchParams(location.search)
  const override = params.get('signaling')
  let url
  if (override) {
    try {
      const candidate = new URL(override)
      if ((candidate.protocol === 'ws:' || candidate.protocol === 'wss:') && LOOPBACK.has(candidate.hostname)) {
        url = candidate
      } else {
        console.warn('collab: ignoring ?signaling= (only ws://localhost-style overrides are allowed)')
      }
    } catch (err) {
      console.warn('collab: ignoring malformed ?signaling=', err)
    }
  }
  if (!url) {
    url = new URL('/signaling', location.href)
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:'
    url.search = ''
    url.hash = ''
  }
  const token = pageToken()
  if (token) url.searchParams.set('token', token)
  return url.toString()
}

/** @type {Promise<object>|null} */
let peerOptsPromise = null

/**
 * simple-peer options for y-webrtc. When the server offers `GET /api/config` with
 * `{iceServers: [...]}`, use those (an empty list is valid: LAN / tests); otherwise keep
 * y-webrtc's defaults (public STUN), which real deployments usually want.
 *
 * @example
 *   new WebrtcProvider(room, doc, { signaling: [signalingUrl()], peerOpts: await peerOptions() })
 *
 * @returns {Promise<object>}
 */
export const peerOptions = () => {
  if (!peerOptsPromise) {
    peerOptsPromise = fetchJson('/api/config').then(res => {
      const servers = res.ok && res.data && typeof res.data === 'object' ? res.data.iceServers : undefined
      if (Array.isArray(servers)) {
        const iceServers = servers.filter(s => s && typeof s === 'object' && (typeof s.urls === 'string' || Array.isArray(s.urls)))
        return { config: { iceServers } }
      }
      return {}
    })
  }
  return peerOptsPromise
}
