// A stock y-webrtc WebrtcProvider in Node, talking to a signaling server.
// Node has no WebRTC, so simple-peer gets a minimal fake RTCPeerConnection (peerOpts.wrtc) that
// produces and records SDP offers/answers and ICE candidates: everything y-webrtc and simple-peer
// do on the signaling path is the real npm code. WebSocket is the `ws` package, wrapped to log
// every frame sent and received. Output: one JSON object per line on stdout.
//   node tests/js/signaling_ywebrtc_peer.mjs <signalingUrl> <room> <password|-> <label>
import WS from 'ws'

const [url, room, password, label] = process.argv.slice(2)
const out = (obj) => process.stdout.write(JSON.stringify({ label, ...obj }) + '\n')

class LoggingWebSocket extends WS {
  constructor (...args) {
    super(...args)
    this.addEventListener('message', (ev) => out({ event: 'recv', frame: String(ev.data) }))
  }

  send (data, ...rest) {
    out({ event: 'sent', frame: String(data) })
    return super.send(data, ...rest)
  }
}
globalThis.WebSocket = LoggingWebSocket

let pcCount = 0
class FakeRTCPeerConnection {
  constructor () {
    this.id = `${label}-pc${++pcCount}`
    this.localDescription = null
    this.remoteDescription = null
    this.signalingState = 'stable'
    this.iceConnectionState = 'new'
    this.iceGatheringState = 'new'
    this.connectionState = 'new'
  }

  createDataChannel (name) {
    return { label: name, readyState: 'connecting', bufferedAmountLowThreshold: 0, close () {}, send () {} }
  }

  async createOffer () { return { type: 'offer', sdp: `v=0 offer-from-${this.id}` } }
  async createAnswer () { return { type: 'answer', sdp: `v=0 answer-from-${this.id}` } }

  async setLocalDescription (desc) {
    this.localDescription = desc
    // one trickled host candidate after the description, like a browser would
    setTimeout(() => this.onicecandidate?.({
      candidate: { candidate: `candidate:1 1 udp 2122260223 10.77.0.9 9 typ host ufrag ${this.id}`, sdpMLineIndex: 0, sdpMid: '0' }
    }), 0)
  }

  async setRemoteDescription (desc) {
    this.remoteDescription = { type: desc.type, sdp: desc.sdp }
    out({ event: 'remote-description', type: desc.type, sdp: desc.sdp })
  }

  async addIceCandidate (cand) {
    out({ event: 'candidate-added', candidate: cand.candidate })
  }

  getTransceivers () { return [] }
  close () {}
}
const wrtc = {
  RTCPeerConnection: FakeRTCPeerConnection,
  RTCSessionDescription: class { constructor (init) { this.type = init.type; this.sdp = init.sdp } },
  RTCIceCandidate: class { constructor (init) { Object.assign(this, init) } }
}

const Y = await import('yjs')
const { WebrtcProvider } = await import('y-webrtc')
const doc = new Y.Doc()
const provider = new WebrtcProvider(room, doc, {
  signaling: [url],
  password: password === '-' ? null : password,
  peerOpts: { wrtc },
  filterBcConns: true
})
provider.on('peers', (ev) => out({ event: 'peers', added: ev.added, removed: ev.removed }))
const waitRoom = setInterval(() => {
  if (provider.room) {
    clearInterval(waitRoom)
    out({ event: 'ready', peerId: provider.room.peerId })
  }
}, 5)
process.stdin.on('end', () => { provider.destroy(); process.exit(0) })
process.stdin.resume()
