"""The signaling service: our two engines against y-webrtc's reference server."""
