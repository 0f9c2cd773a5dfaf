// Where the page connects, the same way collab's own page (web/src/config.js) does it:
// y-webrtc signaling on this origin (`/signaling`), ICE servers from `GET /api/config`.

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]'])

/** The page's `?token=` (access tokens: kept on the signaling URL and sent to the API). */
export const pageToken = () => new URLSearchParams(location.search).get('token')

/**
 * The y-webrtc signaling URL: `ws(s)://<this host>/signaling` (plus `?token=`). For a page
 * served by some other static server, `?signaling=ws://127.0.0.1:8000/signaling` points it at
 * `collab serve`; only loopback overrides are accepted, so a link cannot send a room to a
 * stranger's server.
 * @returns {string}
 */
export const signalingUrl = () => {
  const override = new URLSearchParams(location.search).get('signaling')
  let url = null
  if (override) {
    try {
      const candidate = new URL(override)
      if ((candidate.protocol === 'ws:' || candidate.protocol === 'wss:') && LOOPBACK.has(candidate.hostname)) url = candidate
      else console.warn('tiptap_room: ignoring ?signaling= (only ws://localhost-style overrides)')
    } catch (err) {
      console.warn('tiptap_room: ignoring a malformed ?signaling=', err)
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

/**
 * `fetch` on the API of the server that served the page (where the archive's HTTP API is), with
 * the page's token. Never throws: a network error is `null`.
 * @param {string} path
 * @param {RequestInit} [init]
 * @returns {Promise<Response|null>}
 */
export const api = async (path, init = {}) => {
  const headers = new Headers(init.headers || {})
  const token = pageToken()
  if (token) headers.set('Authorization', `Bearer ${token}`)
  try {
    return await fetch(path, { ...init, headers, credentials: 'same-origin' })
  } catch (err) {
    console.warn('tiptap_room: request failed', path, err)
    return null
  }
}

/** simple-peer options for y-webrtc. y-webrtc spreads this object into every new connection,
 * so refreshing `config` (time-limited TURN credentials) reaches later connections.
 * @type {{config?: RTCConfiguration}} */
export const peerOpts = {}

/**
 * Load `GET /api/config` (`{iceServers, iceTransportPolicy?, credentialTtl?}`) into `peerOpts`.
 * Without it (a server that has no such endpoint) y-webrtc keeps its defaults (public STUN).
 * @returns {Promise<void>}
 */
export const loadConfig = async () => {
  const res = await api('/api/config')
  /** @type {any} */
  const data = res && res.ok ? await res.json().catch(() => null) : null
  if (!data || !Array.isArray(data.iceServers)) return
  /** @type {RTCConfiguration} */
  const config = { iceServers: data.iceServers }
  if (data.iceTransportPolicy === 'relay' || data.iceTransportPolicy === 'all') config.iceTransportPolicy = data.iceTransportPolicy
  peerOpts.config = config
  if (typeof data.credentialTtl === 'number' && data.credentialTtl > 0) {
    setTimeout(loadConfig, Math.max(30000, data.credentialTtl * 500)) // fresh TURN credentials
  }
}
