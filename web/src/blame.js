// Blame: who wrote each line of the shared text at a version (`GET /api/rooms/{room}/blame`).
// Names and colours come from peers' awareness: always set as text, colours through safeColor.
import { el, fetchJson, formatAgo, safeColor } from './util.js'

/** @typedef {{client: number|null, name: string, color: string}} BlameAuthor */
/** @typedef {{line: number, text: string, authors: Array<number|null>, time: number|null}} BlameLine */
/** @typedef {{lines: BlameLine[], authors: BlameAuthor[]}} Blame */

/** @type {(c: unknown) => c is number|null} */
const isClient = c => c === null || typeof c === 'number'

/**
 * Normalise the API's answer (tolerant: anything unexpected becomes null).
 * @param {any} raw
 * @returns {Blame|null}
 */
export const normaliseBlame = raw => {
  if (raw === null || typeof raw !== 'object' || !Array.isArray(raw.lines) || !Array.isArray(raw.authors)) return null
  /** @type {BlameLine[]} */
  const lines = []
  for (const x of raw.lines) {
    if (x === null || typeof x !== 'object' || typeof x.text !== 'string' || typeof x.line !== 'number') continue
    const authors = Array.isArray(x.authors) ? x.authors.filter(isClient) : []
    lines.push({ line: x.line, text: x.text, authors, time: typeof x.time === 'number' ? x.time : null })
  }
  /** @type {BlameAuthor[]} */
  const authors = []
  for (const a of raw.authors) {
    if (a === null || typeof a !== 'object' || (a.client !== null && typeof a.client !== 'number')) continue
    authors.push({ client: a.client, name: typeof a.name === 'string' ? a.name : '', color: typeof a.color === 'string' ? a.color : '' })
  }
  return { lines, authors }
}

/**
 * Fetch the blame of a room at a version; null when unavailable.
 * @param {string} room
 * @param {string} versionId
 */
export const fetchBlame = async (room, versionId) => {
  const res = await fetchJson(`/api/rooms/${encodeURIComponent(room)}/blame?at=${encodeURIComponent(versionId)}`)
  return res.ok ? normaliseBlame(res.data) : null
}

/** Rows the blame view builds at most (a document is peer input: 200,000 one-character
 * lines would be 800,000 DOM nodes in every viewer's tab). */
export const MAX_BLAME_ROWS = 5000

/**
 * The blame view: one row per line, the main author's name in their colour, then the line.
 *
 * @example
 *   panel.append(renderBlame(await fetchBlame('notes', '12')))
 *
 * @param {Blame} blame
 */
export const renderBlame = blame => {
  /** @type {Map<number|null, BlameAuthor>} */
  const byClient = new Map(blame.authors.map(a => [a.client, a]))
  const shown = blame.lines.slice(0, MAX_BLAME_ROWS)
  const hidden = blame.lines.length - shown.length
  /** @param {number|null} client */
  const nameOf = client => byClient.get(client)?.name || (client === null ? 'unknown' : `client ${client}`)
  const rows = shown.map(line => {
    const main = line.authors.length ? line.authors[0] : null
    const who = line.authors.map(nameOf).join(', ') || 'unknown'
    const when = line.time === null ? null : new Date(line.time * 1000)
    return el('div', { class: 'blame-line', dataset: { authors: who } }, [
      el('span', {
        class: 'blame-who',
        text: nameOf(main) + (line.authors.length > 1 ? ` +${line.authors.length - 1}` : ''),
        title: when ? `${who} · ${formatAgo(when)}` : who,
        style: { borderLeftColor: safeColor(byClient.get(main)?.color) }
      }),
      el('span', { class: 'blame-no muted', text: String(line.line) }),
      el('code', { class: 'blame-text', text: line.text === '' ? ' ' : line.text })
    ])
  })
  if (hidden > 0) rows.push(el('p', { class: 'muted small', text: `… ${hidden} more lines (the API's /blame has them all)` }))
  return el('div', { class: 'blame' }, rows.length ? rows : [el('p', { class: 'muted small', text: '(empty)' })])
}
