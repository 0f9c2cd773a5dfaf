"""signaling: a FastAPI drop-in for y-webrtc's signaling server. Never imports ``collab``."""
