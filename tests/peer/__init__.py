"""The Python WebRTC peer (collab.peer), alone, between Python peers and with stock browsers."""
