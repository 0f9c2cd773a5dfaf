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

/** The options object handed to y-webrtc: y-webrtc spreads `provider.peerOpts` into every new
 * simple-peer, so replacing `config` here reaches every later connection (fresh TURN
 * credentials) without touching the provider. @type {{config?: RTCConfiguration}} */
const peerOpts = {}
/** @type {Promise<object>|null} */
let peerOptsPromise = null
const RETRY_MS = 30000

/**
 * Fetch `/api/config` into `peerOpts.config`; with time-limited TURN credentials
 * (`credentialTtl`, seconds) fetch again when half of their lifetime has passed.
 * @returns {Promise<void>}
 */
const loadConfig = async () => {
  const res = await fetchJson('/api/config')
  const data = res.ok && res.data && typeof res.data === 'object' ? res.data : null
  if (!data || !Array.isArray(data.iceServers)) {
    if (peerOpts.config) setTimeout(loadConfig, RETRY_MS) // keep the last one, try again
    return
  }
  /** @type {RTCConfiguration} */
  const config = {
    iceServers: data.iceServers.filter((/** @type {any} */ s) => s && typeof s === 'object' && (typeof s.urls === 'string' || Array.isArray(s.urls)))
  }
  // 'relay': only TURN relay candidates (the server hides every peer's address)
  if (data.iceTransportPolicy === 'relay' || data.iceTransportPolicy === 'all') config.iceTransportPolicy = data.iceTransportPolicy
  peerOpts.config = config
  if (typeof data.credentialTtl === 'number' && data.credentialTtl > 0) {
    setTimeout(loadConfig, Math.max(RETRY_MS, data.credentialTtl * 500))
  }
}

/**
 * simple-peer options for y-webrtc. When the server offers `GET /api/config` with
 * `{iceServers: [...], iceTransportPolicy?, credentialTtl?}`, use those (an empty list is
 * valid: LAN / tests); otherwise keep y-webrtc's defaults (public STUN), which real
 * deployments usually want. Always the same object, kept up to date (see `peerOpts`).
 *
 * @example
 *   new WebrtcProvider(room, doc, { signaling: [signalingUrl()], peerOpts: await peerOptions() })
 *
 * @returns {Promise<object>}
 */
export const peerOptions = () => {
  if (!peerOptsPromise) peerOptsPromise = loadConfig().then(() => peerOpts)
  return peerOptsPromise
}
