"""Rich-text archive: every root type (y-prosemirror XML, Quill-formatted text, nested maps and
arrays) renders, diffs and restores as real Yjs + y-prosemirror + ProseMirror say it should."""
