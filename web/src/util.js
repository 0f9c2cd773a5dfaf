// Small DOM and HTTP helpers. Text that comes from peers or from the server is always set with
// textContent (never innerHTML), so a name like `<img src=x onerror=alert(1)>` stays text.

/**
 * Create an element.
 *
 * @example
 *   el('li', { class: 'peer', dataset: { state: 'direct' } }, [el('span', {}, ['Ada'])])
 *
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any>} [attrs] `class`, `dataset`, `style` (object), `on` (events) or attributes
 * @param {Array<Node|string|null|undefined|false>} [children] strings become text nodes
 * @returns {HTMLElementTagNameMap[K]} the element of that tag (`el('input')` is an HTMLInputElement)
 */
export const el = (tag, attrs = {}, children = []) => {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue
    if (key === 'class') node.className = String(value)
    else if (key === 'dataset') Object.assign(node.dataset, value)
    else if (key === 'style') Object.assign(node.style, value)
    else if (key === 'on') {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler)
    } else if (key === 'text') node.textContent = String(value)
    else node.setAttribute(key, value === true ? '' : String(value))
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    node.append(typeof child === 'string' ? document.createTextNode(child) : child)
  }
  return node
}

/**
 * Replace all children of `node`.
 * @param {Element} node
 * @param {Array<Node|string|null|undefined|false>} children
 */
export const replaceChildren = (node, children) => {
  node.replaceChildren(...children.filter(c => c !== null && c !== undefined && c !== false))
}

/** The `?token=` of the page URL, if any (kept on the signaling URL and sent to the API). */
export const pageToken = () => new URLSearchParams(location.search).get('token')

/**
 * Fetch JSON from our own origin. Never throws: network errors and non-2xx come back as
 * `{ ok: false, status }` so callers can degrade gracefully ("no archive").
 *
 * @example
 *   const res = await fetchJson('/api/rooms')
 *   if (res.ok) render(res.data)
 *
 * @param {string} path
 * @param {RequestInit} [init]
 * @returns {Promise<{ok: boolean, status: number, data: any, text: string|null, contentType: string}>}
 */
export const fetchJson = async (path, init = {}) => {
  const headers = new Headers(init.headers || {})
  const token = pageToken()
  if (token) headers.set('Authorization', `Bearer ${token}`)
  let res
  try {
    res = await fetch(path, { ...init, headers, credentials: 'same-origin' })
  } catch (err) {
    console.warn('collab: request failed', path, err)
    return { ok: false, status: 0, data: null, text: null, contentType: '' }
  }
  const contentType = res.headers.get('content-type') || ''
  let text = null
  let data = null
  try {
    text = await res.text()
    if (contentType.includes('json') && text !== '') data = JSON.parse(text)
  } catch (err) {
    console.warn('collab: unreadable response', path, err)
    return { ok: false, status: res.status, data: null, text, contentType }
  }
  return { ok: res.ok, status: res.status, data, text, contentType }
}

/**
 * Human-readable byte size.
 * @param {number} n
 */
export const formatBytes = n => {
  if (!Number.isFinite(n) || n < 0) return '—'
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`
  return `${(n / 1024 / 1024).toFixed(1)} MB`
}

/**
 * Parse a server timestamp: ISO string, or epoch seconds / milliseconds.
 * @param {unknown} value
 * @returns {Date|null}
 */
export const parseTime = value => {
  if (typeof value === 'number' && Number.isFinite(value)) {
    return new Date(value < 1e12 ? value * 1000 : value)
  }
  if (typeof value === 'string' && value !== '') {
    const asNumber = Number(value)
    if (Number.isFinite(asNumber)) return parseTime(asNumber)
    const date = new Date(value)
    return Number.isNaN(date.getTime()) ? null : date
  }
  return null
}

/**
 * "3 min ago", "yesterday", or a date.
 * @param {Date|null} date
 */
export const formatAgo = date => {
  if (!date) return '—'
  const seconds = Math.round((Date.now() - date.getTime()) / 1000)
  if (seconds < 45) return 'just now'
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`
  if (seconds < 2 * 86400) return 'yesterday'
  return date.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' })
}

/**
 * Decode standard base64 (with or without padding) into bytes; null when malformed.
 * @param {unknown} value
 * @returns {Uint8Array|null}
 */
export const fromBase64 = value => {
  if (typeof value !== 'string' || value.length > 1 << 20) return null
  try {
    const bin = atob(value)
    const out = new Uint8Array(bin.length)
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
    return out
  } catch {
    return null
  }
}

/**
 * Accept a CSS colour from a peer only if it is a plain hex colour.
 * @param {unknown} value
 * @param {string} fallback
 */
export const safeColor = (value, fallback = '#64748b') =>
  typeof value === 'string' && /^#[0-9a-fA-F]{3,8}$/.test(value) ? value : fallback

/**
 * A display name from untrusted awareness state: a string, trimmed, bounded.
 * @param {unknown} value
 */
export const safeName = value => {
  if (typeof value !== 'string') return 'Anonymous'
  const name = value.trim().slice(0, 60)
  return name === '' ? 'Anonymous' : name
}
