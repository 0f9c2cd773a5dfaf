// The editor: CodeMirror 6 in markdown mode, bound to a Y.Text by stock y-codemirror.next.
import { EditorState } from '@codemirror/state'
import {
  EditorView, keymap, drawSelection, dropCursor,
  highlightSpecialChars, placeholder
} from '@codemirror/view'
import { defaultKeymap, indentWithTab } from '@codemirror/commands'
import { markdown } from '@codemirror/lang-markdown'
import { HighlightStyle, syntaxHighlighting, indentOnInput } from '@codemirror/language'
import { tags } from '@lezer/highlight'
import * as Y from 'yjs'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'

const proseHighlight = HighlightStyle.define([
  { tag: tags.heading1, fontSize: '1.6em', fontWeight: '650', letterSpacing: '-0.01em' },
  { tag: tags.heading2, fontSize: '1.3em', fontWeight: '650' },
  { tag: tags.heading3, fontSize: '1.12em', fontWeight: '650' },
  { tag: [tags.heading4, tags.heading5, tags.heading6], fontWeight: '650' },
  { tag: tags.strong, fontWeight: '650' },
  { tag: tags.emphasis, fontStyle: 'italic' },
  { tag: tags.strikethrough, textDecoration: 'line-through' },
  { tag: tags.link, color: 'var(--accent)' },
  { tag: tags.url, color: 'var(--muted)' },
  { tag: tags.quote, color: 'var(--muted)', fontStyle: 'italic' },
  { tag: tags.monospace, fontFamily: 'var(--font-mono)', fontSize: '0.92em', color: '#9a3412' },
  { tag: [tags.processingInstruction, tags.meta], color: 'var(--faint)' },
  { tag: tags.list, color: 'var(--text)' },
  { tag: tags.contentSeparator, color: 'var(--faint)' }
])

const theme = EditorView.theme({
  '&': { height: '100%', fontSize: '17px', backgroundColor: 'transparent' },
  '&.cm-focused': { outline: 'none' },
  '.cm-scroller': {
    fontFamily: 'var(--font-prose)', lineHeight: '1.7', overflow: 'auto',
    scrollbarWidth: 'thin', scrollbarColor: '#d6d3cd transparent'
  },
  '.cm-content': { padding: '32px 0 30vh', maxWidth: '70ch', margin: '0 auto', caretColor: 'var(--text)' },
  '.cm-line': { padding: '0 28px' },
  '.cm-placeholder': { color: 'var(--faint)', fontStyle: 'italic' },
  '.cm-selectionBackground, &.cm-focused .cm-selectionBackground, ::selection': { backgroundColor: 'rgba(37, 99, 235, 0.18)' },
  // remote carets / labels drawn by y-codemirror.next
  '.cm-ySelectionInfo': {
    fontFamily: 'var(--font-ui)', fontSize: '11px', fontWeight: '600', padding: '1px 5px',
    borderRadius: '4px 4px 4px 0', top: '-1.45em', opacity: '1', letterSpacing: '0.01em'
  },
  '.cm-ySelectionCaret': { borderLeftWidth: '2px', marginLeft: '-1px', marginRight: '-1px' }
})

/**
 * Create the editor bound to `ytext`, with remote cursors from `awareness`.
 *
 * @example
 *   const view = createEditor(parent, doc.getText('codemirror'), provider.awareness)
 *   view.destroy()
 *
 * @param {HTMLElement} parent
 * @param {Y.Text} ytext
 * @param {import('y-protocols/awareness').Awareness} awareness
 * @returns {EditorView}
 */
export const createEditor = (parent, ytext, awareness) => {
  const undoManager = new Y.UndoManager(ytext)
  const state = EditorState.create({
    doc: ytext.toString(),
    extensions: [
      keymap.of([...yUndoManagerKeymap, ...defaultKeymap, indentWithTab]),
      highlightSpecialChars(),
      drawSelection(),
      dropCursor(),
      indentOnInput(),
      EditorView.lineWrapping,
      EditorView.contentAttributes.of({ spellcheck: 'true', 'aria-label': 'Document' }),
      placeholder('Start writing… (markdown works: # heading, **bold**, - list)'),
      markdown(),
      syntaxHighlighting(proseHighlight),
      theme,
      yCollab(ytext, awareness, { undoManager })
    ]
  })
  return new EditorView({ state, parent })
}
