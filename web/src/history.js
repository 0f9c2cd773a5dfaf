// The history panel: the archive's timeline of a room, with preview, blame, restore and
// "Open a copy from here" (a fork). Shown only when `GET /api/rooms/{room}/versions` answers
// 200; hidden otherwise.
import { fetchBlame, renderBlame } from './blame.js'
import { roomHash } from './router.js'
import { el, fetchJson, formatAgo, formatBytes, parseTime, replaceChildren } from './util.js'

/** @param {string} room */
const roomPath = room => `/api/rooms/${encodeURIComponent(room)}`

/** @typedef {{id: string, when: Date|null, size: number|null, label: string|null, contributors: number|null}} Version */

/**
 * Normalise one version entry from the API (tolerant about field names).
 * @param {any} raw
 * @returns {Version|null}
 */
export const normaliseVersion = raw => {
  if (raw === null || typeof raw !== 'object') {
    return typeof raw === 'string' || typeof raw === 'number' ? { id: String(raw), when: null, size: null, label: null, contributors: null } : null
  }
  const id = raw.id ?? raw.version ?? raw.seq
  if (typeof id !== 'string' && typeof id !== 'number') return null
  const when = parseTime(raw.created_at ?? raw.at ?? raw.timestamp ?? raw.time ?? raw.updated_at)
  const size = typeof raw.size === 'number' ? raw.size : null
  const label = typeof raw.label === 'string' && raw.label !== '' ? raw.label : typeof raw.kind === 'string' ? raw.kind : null
  const contributors = Array.isArray(raw.contributors) ? raw.contributors.length : null
  return { id: String(id), when, size, label, contributors }
}

/**
 * Fetch the versions list; null when the archive has no history endpoint (404, error…).
 * @param {string} room
 */
export const fetchVersions = async room => {
  const res = await fetchJson(`${roomPath(room)}/versions`)
  if (res.status !== 200 || res.data === null) return null
  /** @type {unknown[] | null} */
  const list = Array.isArray(res.data) ? res.data : Array.isArray(res.data.versions) ? res.data.versions : null
  if (!list) return null
  return list.map(normaliseVersion).filter(/** @returns {v is Version} */ v => v !== null)
}

/**
 * Mount the history panel in `section`; it stays hidden unless the endpoint exists.
 *
 * @example
 *   const history = mountHistory(document.querySelector('#history'), 'notes')
 *   history.refresh(); history.destroy()
 *
 * @param {HTMLElement} section
 * @param {string} room
 */
export const mountHistory = (section, room) => {
  let destroyed = false
  let available = false
  /** @type {Version | null} */
  let selected = null
  const list = el('ol', { class: 'versions' })
  const preview = el('pre', { class: 'preview', hidden: true })
  const restore = el('button', { class: 'button button-small', type: 'button', hidden: true, text: 'Restore' })
  const blameButton = el('button', { class: 'button button-quiet button-small', type: 'button', hidden: true, text: 'Blame', title: 'Who wrote each line of this version' })
  const copy = el('button', { class: 'button button-quiet button-small', type: 'button', hidden: true, text: 'Open a copy from here', title: 'A new room whose history starts at this version' })
  const blameView = el('div', { class: 'blame-view', hidden: true })
  const note = el('p', { class: 'muted small', hidden: true })
  const save = el('button', { class: 'button button-quiet button-small', type: 'button', id: 'save-version', text: 'Save version', title: 'Record the current text as a version' })
  replaceChildren(section.querySelector('.panel-body') ?? section, [list, preview, blameView, el('div', { class: 'history-actions' }, [restore, blameButton, copy, save]), note])

  save.addEventListener('click', async () => {
    save.disabled = true
    const res = await fetchJson(`${roomPath(room)}/versions`, { method: 'POST' })
    save.disabled = false
    note.hidden = res.ok
    if (!res.ok) note.textContent = `Could not save a version (${res.status || 'network'}).`
    refresh()
  })

  /** @param {Version} version */
  const showPreview = async version => {
    selected = version
    for (const item of list.querySelectorAll('li')) item.classList.toggle('selected', item.dataset.id === version.id)
    preview.dataset.versionId = version.id
    const res = await fetchJson(`${roomPath(room)}/text?at=${encodeURIComponent(version.id)}`)
    if (destroyed || selected !== version) return
    let text = null
    if (res.ok) {
      if (typeof res.data === 'string') text = res.data
      else if (res.data && typeof res.data.text === 'string') text = res.data.text
      else if (res.data === null) text = res.text
    }
    preview.hidden = false
    preview.textContent = text === null ? 'Preview unavailable.' : text === '' ? '(empty)' : text
    restore.hidden = text === null
    blameButton.hidden = text === null
    copy.hidden = text === null
    blameView.hidden = true
    note.hidden = true
  }

  blameButton.addEventListener('click', async () => {
    const version = selected
    if (!version) return
    blameButton.disabled = true
    const blame = await fetchBlame(room, version.id)
    blameButton.disabled = false
    if (destroyed || selected !== version) return
    note.hidden = blame !== null
    if (blame === null) {
      note.textContent = 'Blame unavailable for this version.'
      return
    }
    replaceChildren(blameView, [renderBlame(blame)])
    blameView.dataset.versionId = version.id
    blameView.hidden = false
    preview.hidden = true
  })

  copy.addEventListener('click', async () => {
    if (!selected) return
    const to = `${room}-copy-${Math.random().toString(36).slice(2, 8)}`
    copy.disabled = true
    const res = await fetchJson(`${roomPath(room)}/fork?at=${encodeURIComponent(selected.id)}&to=${encodeURIComponent(to)}`, { method: 'POST' })
    copy.disabled = false
    if (destroyed) return
    if (res.ok) {
      location.hash = roomHash(to, false)
      return
    }
    note.hidden = false
    note.textContent = res.status === 429 ? 'Too many copies just now: try again in a little while.' : `Could not open a copy (${res.status || 'network'}).`
  })

  restore.addEventListener('click', async () => {
    if (!selected) return
    restore.disabled = true
    const res = await fetchJson(`${roomPath(room)}/restore?at=${encodeURIComponent(selected.id)}`, { method: 'POST' })
    restore.disabled = false
    note.hidden = false
    note.textContent = res.ok
      ? 'Restored. The change reaches everyone in the room.'
      : res.status === 429 ? 'Too many restores just now: try again in a little while.' : `Restore failed (${res.status || 'network'}).`
    if (res.ok) refresh()
  })

  const refresh = async () => {
    const versions = await fetchVersions(room)
    if (destroyed) return
    section.hidden = versions === null
    available = versions !== null
    if (versions === null) return
    if (versions.length === 0) {
      replaceChildren(list, [el('li', { class: 'muted small', text: 'No versions yet.' })])
      return
    }
    replaceChildren(list, versions.slice().reverse().map(v => el('li', {
      class: 'version',
      dataset: { id: v.id },
      tabindex: '0',
      on: {
        click: () => showPreview(v),
        keydown: (/** @type {KeyboardEvent} */ e) => { if (e.key === 'Enter') showPreview(v) }
      }
    }, [
      el('span', { class: 'version-when', text: v.when ? formatAgo(v.when) : `#${v.id}`, title: v.when ? v.when.toLocaleString() : undefined }),
      el('span', {
        class: 'version-meta muted',
        text: [
          v.label,
          v.size === null ? null : formatBytes(v.size),
          v.contributors ? `${v.contributors} ${v.contributors === 1 ? 'author' : 'authors'}` : null
        ].filter(Boolean).join(' · ')
      })
    ])))
  }

  refresh()
  return { refresh, get available () { return available }, destroy: () => { destroyed = true } }
}
