"""Documents, awareness and the sync room, against real Yjs where it matters."""
