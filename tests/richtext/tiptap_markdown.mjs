// The Markdown a TipTap document is agreed to have (tests/richtext/test_tiptap_browser.py):
// TipTap ships no Markdown serializer, so it is what prosemirror-markdown's
// defaultMarkdownSerializer writes for the same document in the basic + list schema's names
// (bulletList → bullet_list, orderedList{start} → ordered_list{order}, listItem → list_item,
// bold → strong, italic → em, codeBlock{language} → code_block{params}, hardBreak, horizontalRule)
// — the agreement collab's exporter is held to in tests/richtext/test_render_golden.py.
//
//   echo '{"type":"doc","content":[...]}' | node tests/richtext/tiptap_markdown.mjs
import { Schema } from 'prosemirror-model'
import { schema as basic } from 'prosemirror-schema-basic'
import { addListNodes } from 'prosemirror-schema-list'
import { defaultMarkdownSerializer } from 'prosemirror-markdown'
import { readFileSync } from 'node:fs'

const schema = new Schema({
  nodes: addListNodes(basic.spec.nodes, 'paragraph block*', 'block'),
  marks: basic.spec.marks
})
const NAMES = {
  bulletList: 'bullet_list',
  orderedList: 'ordered_list',
  listItem: 'list_item',
  codeBlock: 'code_block',
  horizontalRule: 'horizontal_rule',
  hardBreak: 'hard_break',
  bold: 'strong',
  italic: 'em'
}

const basicNames = value => {
  if (Array.isArray(value)) return value.map(basicNames)
  if (value === null || typeof value !== 'object') return value
  const out = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, basicNames(v)]))
  if (typeof out.type === 'string') out.type = NAMES[out.type] || out.type
  if (out.type === 'ordered_list' && out.attrs) out.attrs = { order: out.attrs.start ?? 1 }
  if (out.type === 'code_block' && out.attrs) out.attrs = { params: out.attrs.language ?? '' }
  return out
}

const doc = schema.nodeFromJSON(basicNames(JSON.parse(readFileSync(0, 'utf8'))))
process.stdout.write(defaultMarkdownSerializer.serialize(doc))
