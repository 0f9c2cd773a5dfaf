"""The archival replica and ``collab serve`` as real processes."""
