"""The signaling service: our server against y-webrtc's reference server."""
