// The page's offline shell: a service worker that serves the page's own files (index.html,
// app.js, style.css) network-first and falls back to the last copy it saw. With y-indexeddb
// holding the documents, the page opens and shows a room's text with no server at all.
// Everything else (/api, /signaling, other pages) goes to the network untouched.
const CACHE = 'collab-shell-v1'
const scope = new URL(self.registration.scope)
const INDEX = new URL('index.html', scope).href
const ASSETS = ['app.js', 'style.css'].map(path => new URL(path, scope).href)

self.addEventListener('install', event => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE)
    await cache.addAll([INDEX, ...ASSETS])
    await self.skipWaiting()
  })())
})

self.addEventListener('activate', event => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key !== CACHE) await caches.delete(key)
    }
    await self.clients.claim()
  })())
})

self.addEventListener('fetch', event => {
  const request = event.request
  if (request.method !== 'GET') return
  const url = new URL(request.url)
  if (url.origin !== scope.origin) return
  const path = url.origin + url.pathname
  // the page itself (any ?query, e.g. ?token=) or one of its files; nothing else
  const key = request.mode === 'navigate' && (path === scope.href || path === INDEX)
    ? INDEX
    : ASSETS.includes(path) ? path : null
  if (key === null) return
  event.respondWith((async () => {
    try {
      const response = await fetch(request)
      if (response.ok) {
        const cache = await caches.open(CACHE)
        await cache.put(key, response.clone())
      }
      return response
    } catch (err) {
      const cached = await caches.match(key)
      if (cached) return cached
      throw err
    }
  })())
})
