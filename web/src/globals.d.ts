// Globals the page defines (type declarations only; checked by `tsc -p web/tsconfig.json`).

interface Window {
  /** A debugging and test hook set by room.js: the open room's stock objects and Yjs. */
  collabRoom?: Record<string, unknown>
}
