// switchboard-client.js: the reference browser client for Switchboard (PROTOCOL.md v1.1).
//
// One plain ES module, no build step and no dependencies:
//   import { SwitchboardClient } from "/switchboard-client.js";
//   const client = new SwitchboardClient({ token });
//   client.addEventListener("incoming-call", (e) => client.accept());
//   client.addEventListener("remote-stream", (e) => (video.srcObject = e.detail.stream));
//   client.connect();
//   await client.call("bob", { video: true });
//
// The ChatMessage protobuf encoding is written out here by hand instead of using a protobuf
// library: the message has 13 scalar fields (proto/chatmessage.proto), which is about a hundred
// lines, and a library would mean npm and a bundler for every page that uses this file. The
// encoding follows proto3 exactly (fields in number order, defaults omitted, unknown fields
// skipped); Tests/integration/test_client_protobuf.py checks it against the official bindings.

// ------------------------------------------------------------------------------------------
// ChatMessage protobuf

/** The ChatMessage fields: [number, name, kind], in field-number order. */
const FIELDS = [
  [1, "avatar", "string"],
  [2, "fromUsername", "string"],
  [3, "from", "string"],
  [4, "to", "string"],
  [5, "content", "string"],
  [6, "contentType", "int32"],
  [7, "type", "string"],
  [8, "messageType", "int32"],
  [9, "url", "string"],
  [10, "fileSuffix", "string"],
  [11, "file", "bytes"],
  [12, "timestamp", "int64"],
  [13, "duration", "int32"],
];
const FIELD_BY_NUMBER = new Map(FIELDS.map((f) => [f[0], f]));

/** contentType values (proto/chatmessage.proto). */
export const ContentType = Object.freeze({ TEXT: 1, FILE: 2, IMAGE: 3, VOICE: 4, VIDEO: 5, SIGNAL: 6 });
/** messageType values. */
export const MessageType = Object.freeze({ DIRECT: 1, GROUP: 2 });

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** A ChatMessage with every field at its proto3 default. */
export function emptyChatMessage() {
  return {
    avatar: "", fromUsername: "", from: "", to: "", content: "", contentType: 0, type: "",
    messageType: 0, url: "", fileSuffix: "", file: new Uint8Array(0), timestamp: 0, duration: 0,
  };
}

function pushVarint(out, value) {
  // value: a BigInt in [0, 2^64).
  while (value >= 0x80n) {
    out.push(Number(value & 0x7fn) | 0x80);
    value >>= 7n;
  }
  out.push(Number(value));
}

function int32Value(name, value) {
  if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
    throw new RangeError(`ChatMessage.${name} must be an int32, got ${value}`);
  }
  return value;
}

/** Encodes a ChatMessage (a plain object; missing fields are defaults) to protobuf bytes. */
export function encodeChatMessage(message) {
  const out = [];
  for (const [number, name, kind] of FIELDS) {
    const value = message[name];
    if (value === undefined || value === null) continue;
    if (kind === "string" || kind === "bytes") {
      let bytes;
      if (kind === "string") {
        if (typeof value !== "string") throw new TypeError(`ChatMessage.${name} must be a string`);
        bytes = utf8Encoder.encode(value);
      } else {
        if (!(value instanceof Uint8Array)) throw new TypeError(`ChatMessage.${name} must be a Uint8Array`);
        bytes = value;
      }
      if (bytes.length === 0) continue;
      pushVarint(out, BigInt((number << 3) | 2));
      pushVarint(out, BigInt(bytes.length));
      for (const b of bytes) out.push(b);
    } else {
      let big;
      if (kind === "int32") {
        big = BigInt(int32Value(name, value));
      } else {
        big = typeof value === "bigint" ? value : BigInt(value);
        if (big !== BigInt.asIntN(64, big)) throw new RangeError(`ChatMessage.${name} must be an int64`);
      }
      if (big === 0n) continue;
      pushVarint(out, BigInt(number << 3));
      pushVarint(out, BigInt.asUintN(64, big)); // negative numbers take all ten bytes, as in proto3
    }
  }
  return Uint8Array.from(out);
}

function readVarint(bytes, position) {
  let value = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    if (position.at >= bytes.length) throw new RangeError("ChatMessage: truncated varint");
    const b = bytes[position.at++];
    value |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return BigInt.asUintN(64, value);
    shift += 7n;
  }
  throw new RangeError("ChatMessage: varint longer than 10 bytes");
}

/**
 * Decodes protobuf bytes (Uint8Array or ArrayBuffer) to a ChatMessage object with every field
 * present. `timestamp` is a number (a BigInt beyond Number.MAX_SAFE_INTEGER). Unknown fields are
 * skipped; malformed input throws.
 */
export function decodeChatMessage(input) {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  const message = emptyChatMessage();
  const position = { at: 0 };
  while (position.at < bytes.length) {
    const key = readVarint(bytes, position);
    const number = Number(key >> 3n);
    const wireType = Number(key & 7n);
    if (number === 0) throw new RangeError("ChatMessage: field number 0");
    const field = FIELD_BY_NUMBER.get(number);
    const kind = field?.[2];
    if (wireType === 0) {
      const raw = readVarint(bytes, position);
      if (kind === "int32") message[field[1]] = Number(BigInt.asIntN(32, raw));
      else if (kind === "int64") {
        const signed = BigInt.asIntN(64, raw);
        const asNumber = Number(signed);
        message[field[1]] = Number.isSafeInteger(asNumber) ? asNumber : signed;
      }
    } else if (wireType === 2) {
      const length = Number(readVarint(bytes, position));
      const end = position.at + length;
      if (end > bytes.length) throw new RangeError("ChatMessage: truncated field");
      const slice = bytes.subarray(position.at, end);
      position.at = end;
      if (kind === "string") message[field[1]] = utf8Decoder.decode(slice);
      else if (kind === "bytes") message[field[1]] = slice.slice();
    } else if (wireType === 1 || wireType === 5) {
      position.at += wireType === 1 ? 8 : 4;
      if (position.at > bytes.length) throw new RangeError("ChatMessage: truncated fixed field");
    } else {
      throw new RangeError(`ChatMessage: unsupported wire type ${wireType}`);
    }
  }
  return message;
}

// ------------------------------------------------------------------------------------------
// The client

/** Server notices (PROTOCOL.md §4): each is dispatched as an event of its own `type`. */
export const NOTICE_TYPES = Object.freeze([
  "ice-servers", "call-ringing", "call-failed", "call-hangup", "error", "call-resumed",
  "peer-reconnected", "session-replaced",
]);

/** Signals between the parties (PROTOCOL.md §3, §8), dispatched by `type` as well. */
export const SIGNAL_TYPES = Object.freeze([
  "call-invite", "call-accept", "call-reject", "call-hangup", "offer", "answer", "ice-candidate",
  "call-connected",
]);

const CLOSE_SESSION_REPLACED = 4001;
const CLOSE_HEARTBEAT_TIMEOUT = 4000; // ours: a client may close with 4000-4999
const MAX_QUEUED_SIGNALS = 256; // signals of the current call held while the socket is down
const MAX_QUEUED_CANDIDATES = 512; // remote candidates held until the remote description is set

/** The claims of a JWT (not verified: the server does that), or {} when unreadable. */
export function tokenClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      Array.from(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")))
        .map((c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0"))
        .join(""),
    );
    const claims = JSON.parse(json);
    return claims && typeof claims === "object" ? claims : {};
  } catch {
    return {};
  }
}

function randomCallId() {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function defaultSocketURL() {
  const location = globalThis.location;
  if (!location) throw new Error("SwitchboardClient: give `url` (no page location to derive it from)");
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

/** What a getUserMedia failure means, in words a person can act on. */
export function describeMediaError(error, wanted) {
  const what = wanted.video ? "camera or microphone" : "microphone";
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return `Access to the ${what} was blocked. Allow it in the browser's site settings.`;
    case "NotFoundError":
    case "OverconstrainedError":
      return wanted.video ? "No camera found." : "No microphone found.";
    case "NotReadableError":
    case "AbortError":
      return `The ${what} is in use by another application, or failed to start.`;
    default:
      return `The ${what} could not be opened${error?.message ? `: ${error.message}` : "."}`;
  }
}

/**
 * One call: its id, the other party, and its media. States: `inviting` (our invite is on its
 * way), `ringing` (it rings at the callee), `incoming` (it rings here), `connecting` (accepted;
 * media negotiating), `connected` (media up), `ended` (see `endReason` and `endedBy`).
 * `mediaState` is the RTCPeerConnection's connectionState.
 */
export class Call extends EventTarget {
  constructor(client, { id, peer, peerName = "", direction, video }) {
    super();
    this.client = client;
    this.id = id;
    this.peer = peer;
    this.peerName = peerName;
    this.direction = direction; // "outgoing" | "incoming"
    this.video = video;
    this.state = direction === "outgoing" ? "inviting" : "incoming";
    this.mediaState = "new";
    this.endReason = null;
    this.endedBy = null; // "local" | "remote" | "server"
    this.pc = null;
    this.localStream = null;
    this.remoteStream = null;
    this.connectedAt = null;
    this.startedAt = Date.now();
    this._connectedReported = false;
    this._tracksAdded = false;
    this._pendingCandidates = [];
    this._iceTimer = null;
  }

  get ended() {
    return this.state === "ended";
  }

  /** Bytes and packets of the media so far, summed over the RTP streams. */
  async stats() {
    const totals = { bytesReceived: 0, bytesSent: 0, packetsReceived: 0, packetsLost: 0 };
    if (!this.pc) return totals;
    const report = await this.pc.getStats();
    report.forEach((s) => {
      if (s.type === "inbound-rtp") {
        totals.bytesReceived += s.bytesReceived || 0;
        totals.packetsReceived += s.packetsReceived || 0;
        totals.packetsLost += s.packetsLost || 0;
      } else if (s.type === "outbound-rtp") {
        totals.bytesSent += s.bytesSent || 0;
      }
    });
    return totals;
  }
}

/**
 * A Switchboard connection and at most one call at a time.
 *
 * Events (all `CustomEvent`s; the payload is `event.detail`):
 * - connection: `status` {status: connecting|open|reconnecting|closed|replaced|unauthorized,
 *   code?, reason?, retryIn?}
 * - every notice by its type (NOTICE_TYPES) and every signal by its type (SIGNAL_TYPES): the
 *   JSON content, plus `from`/`fromName` for signals (`from` "" marks the server's call-hangup)
 * - `message` {message}: a direct message (content types 1-5)
 * - `frame` {direction: "in"|"out", message, json}: every frame, for logs
 * - calls: `incoming-call` {call}, `call-state` {call, state}, `local-stream` / `remote-stream`
 *   {call, stream}, `media-warning` {call, reason, message}, `call-glare` {call, replaced}: both
 *   called at once and `call` (theirs) is being accepted in place of `replaced` (ours)
 */
export class SwitchboardClient extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.token  the user's JWT
   * @param {string} [options.url]  ws(s)://host/ws; default: this page's host
   * @param {boolean} [options.reconnect=true]  reconnect with backoff (never after close 4001)
   * @param {number} [options.iceTimeout=30000]  ms from accept to connected before `ice-timeout`
   * @param {number} [options.heartbeatInterval=25000]  ms between heartbeats (0: none)
   * @param {RTCIceServer[]} [options.iceServers]  used until the server's ice-servers notice
   */
  constructor(options) {
    super();
    if (!options?.token) throw new TypeError("SwitchboardClient: `token` is required");
    this.token = options.token;
    this.url = options.url || defaultSocketURL();
    this.httpBase = this.url.replace(/^ws/, "http").replace(/\/ws(\?.*)?$/, "");
    this.reconnect = options.reconnect !== false;
    this.iceTimeout = options.iceTimeout ?? 30000;
    this.heartbeatInterval = options.heartbeatInterval ?? 25000;
    this.minBackoff = options.minBackoff ?? 500;
    this.maxBackoff = options.maxBackoff ?? 30000;
    this.resumeWait = options.resumeWait ?? 2000;
    const claims = tokenClaims(this.token);
    this.user = claims.sub || "";
    this.name = claims.name || "";
    this.tokenExpiry = typeof claims.exp === "number" ? claims.exp * 1000 : null;
    this.iceServers = options.iceServers || [];
    this.iceServersExpireAt = null;
    this.status = "closed";
    this.currentCall = null;
    this._socket = null;
    this._wanted = false;
    this._attempt = 0;
    this._everOpened = false;
    this._retryTimer = null;
    this._heartbeatTimer = null;
    this._pongTimer = null;
    this._queue = [];
    this._resume = null; // {callId, sawIceServers, timer}: checking a call after a reconnect
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _setStatus(status, extra = {}) {
    this.status = status;
    this._emit("status", { status, ...extra });
  }

  // -- connection ------------------------------------------------------------------------

  /** Opens the WebSocket (and keeps it open until `close()`, unless the session is replaced). */
  connect() {
    this._wanted = true;
    clearTimeout(this._retryTimer);
    if (this._socket) return;
    if (this.tokenExpiry !== null && this.tokenExpiry <= Date.now()) {
      this._wanted = false;
      this._setStatus("unauthorized", { reason: "the token has expired" });
      return;
    }
    this._setStatus(this._attempt === 0 ? "connecting" : "reconnecting");
    let socket;
    try {
      // Browsers cannot set headers on a WebSocket: the token goes in as a subprotocol.
      socket = new WebSocket(this.url, ["bearer." + this.token]);
    } catch (error) {
      this._scheduleReconnect(0, String(error));
      return;
    }
    socket.binaryType = "arraybuffer";
    this._socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this._everOpened = true;
      this._attempt = 0;
      this._setStatus("open");
      this._startHeartbeat();
      const call = this.currentCall;
      if (call && !call.ended) this._beginResumeCheck(call);
      else this._flushQueue();
    };
    socket.onmessage = (event) => this._onFrame(event.data);
    socket.onclose = (event) => {
      if (this._socket !== socket) return;
      this._socket = null;
      this._stopHeartbeat();
      this._endResumeCheck();
      if (event.code === CLOSE_SESSION_REPLACED) {
        this._wanted = false;
        this._setStatus("replaced", { code: event.code, reason: "signed in somewhere else" });
        this._endCall(this.currentCall, "network-lost", "local");
        return;
      }
      if (!this._wanted) {
        this._setStatus("closed", { code: event.code, reason: event.reason });
        return;
      }
      if (!opened) this._probeRejectedUpgrade(event);
      else this._scheduleReconnect(event.code, event.reason);
    };
  }

  /** Closes the connection for good (ends the current call first). */
  close() {
    this._wanted = false;
    clearTimeout(this._retryTimer);
    if (this.currentCall && !this.currentCall.ended) this.hangup();
    const socket = this._socket;
    if (socket) socket.close(1000, "bye");
    else this._setStatus("closed");
  }

  /** A failed upgrade shows no status code to a page: ask the HTTP API whether the token is good. */
  async _probeRejectedUpgrade(event) {
    try {
      const response = await fetch(`${this.httpBase}/api/presence/${encodeURIComponent(this.user || "_")}`, {
        headers: { Authorization: `Bearer ${this.token}` },
      });
      if (response.status === 401) {
        this._wanted = false;
        this._setStatus("unauthorized", { reason: "the server rejected the token" });
        this._endCall(this.currentCall, "network-lost", "local");
        return;
      }
    } catch {
      // The server is unreachable: retry below like any other failure.
    }
    if (this._wanted) this._scheduleReconnect(event.code, event.reason);
  }

  _scheduleReconnect(code, reason) {
    if (!this.reconnect) {
      this._wanted = false;
      this._setStatus("closed", { code, reason });
      this._endCall(this.currentCall, "network-lost", "local");
      return;
    }
    // Exponential backoff with jitter, so that a node's clients do not all come back at once.
    const ceiling = Math.min(this.maxBackoff, this.minBackoff * 2 ** this._attempt);
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this._attempt++;
    this._setStatus("reconnecting", { code, reason, retryIn: delay, attempt: this._attempt });
    this._retryTimer = setTimeout(() => this.connect(), delay);
  }

  _startHeartbeat() {
    this._stopHeartbeat();
    if (!this.heartbeatInterval) return;
    // A dead network often shows no close event for minutes: a heartbeat without a pong
    // closes the socket, and reconnecting starts at once.
    this._heartbeatTimer = setInterval(() => {
      this._sendFrame({ type: "heartbeat", content: "ping" });
      clearTimeout(this._pongTimer);
      this._pongTimer = setTimeout(
        () => this._socket?.close(CLOSE_HEARTBEAT_TIMEOUT, "no heartbeat answer"),
        Math.min(10000, this.heartbeatInterval),
      );
    }, this.heartbeatInterval);
  }

  _stopHeartbeat() {
    clearInterval(this._heartbeatTimer);
    clearTimeout(this._pongTimer);
  }

  // -- frames ------------------------------------------------------------------------------

  _sendFrame(fields, json = null) {
    const socket = this._socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    const message = { messageType: MessageType.DIRECT, ...fields };
    socket.send(encodeChatMessage(message));
    if (fields.type !== "heartbeat") this._emit("frame", { direction: "out", message, json });
    return true;
  }

  /** Sends a direct text message. */
  send(to, content) {
    return this._sendFrame({ to, content, contentType: ContentType.TEXT });
  }

  /**
   * Sends a signal. A signal of the current call sent while the socket is down waits (at most
   * 256 of them) and goes out when the connection is back.
   */
  sendSignal(to, type, fields = {}) {
    const json = { type, ...fields };
    const frame = { to, content: JSON.stringify(json), contentType: ContentType.SIGNAL };
    if (this._sendFrame(frame, json)) return true;
    if (json.callId && this.currentCall?.id === json.callId && !this.currentCall.ended) {
      if (this._queue.length >= MAX_QUEUED_SIGNALS) this._queue.shift();
      this._queue.push([frame, json]);
    }
    return false;
  }

  _flushQueue() {
    const queued = this._queue;
    this._queue = [];
    for (const [frame, json] of queued) {
      if (json.callId === this.currentCall?.id && !this.currentCall.ended) this._sendFrame(frame, json);
    }
  }

  _onFrame(data) {
    if (typeof data === "string") return; // the server sends binary frames only
    let message;
    try {
      message = decodeChatMessage(data);
    } catch (error) {
      this._emit("frame", { direction: "in", message: null, json: null, error: String(error) });
      return;
    }
    if ((message.type === "heartbeat" || message.type === "heatbeat") && message.content === "pong") {
      clearTimeout(this._pongTimer);
      return;
    }
    let json = null;
    if (message.contentType === ContentType.SIGNAL) {
      try {
        json = JSON.parse(message.content);
      } catch {
        json = null;
      }
    }
    this._emit("frame", { direction: "in", message, json });
    if (!json || typeof json.type !== "string") {
      if (message.contentType !== ContentType.SIGNAL) this._emit("message", { message });
      return;
    }
    const fromServer = message.from === "";
    const detail = { ...json, from: fromServer ? "" : json.from || message.from, fromName: json.fromName || message.fromUsername };
    this._checkResume(json, fromServer);
    this._handle(json.type, detail, fromServer);
    this._emit(json.type, detail);
  }

  // -- resume (PROTOCOL.md §8) ------------------------------------------------------------

  _beginResumeCheck(call) {
    // v1.1 servers send ice-servers first, then call-resumed for a call that is still on. A
    // v1 server sends neither: after resumeWait without ice-servers the call is kept as it is.
    this._endResumeCheck();
    this._resume = { callId: call.id, sawIceServers: false };
    this._resume.timer = setTimeout(() => this._resolveResume(false), this.resumeWait);
  }

  _checkResume(json, fromServer) {
    const resume = this._resume;
    if (!resume) return;
    if (fromServer && json.type === "ice-servers" && !resume.sawIceServers) {
      resume.sawIceServers = true;
      return;
    }
    if (json.type === "call-resumed" && json.callId === resume.callId) this._resolveResume(true);
    else if (json.type === "call-hangup" && json.callId === resume.callId) this._endResumeCheck();
    else if (resume.sawIceServers) this._resolveResume(false);
  }

  _resolveResume(resumed) {
    const resume = this._resume;
    this._endResumeCheck();
    const call = this.currentCall;
    if (!resume || !call || call.id !== resume.callId || call.ended) return;
    if (resumed || !resume.sawIceServers) {
      this._flushQueue();
    } else {
      // The server did not resume the call: our grace ran out while we were away. The hangup
      // ends it should the server still have it after all (it answers `no-call` otherwise).
      this._queue = [];
      this.sendSignal(call.peer, "call-hangup", { callId: call.id, reason: "network-lost" });
      this._endCall(call, "network-lost", "local");
    }
  }

  _endResumeCheck() {
    if (this._resume) clearTimeout(this._resume.timer);
    this._resume = null;
  }

  // -- signals and notices ------------------------------------------------------------------

  _handle(type, detail, fromServer) {
    const call = this.currentCall && !this.currentCall.ended ? this.currentCall : null;
    const ours = call && detail.callId === call.id;
    switch (type) {
      case "ice-servers":
        if (Array.isArray(detail.iceServers)) {
          this.iceServers = detail.iceServers;
          this.iceServersExpireAt = typeof detail.ttl === "number" ? Date.now() + detail.ttl * 1000 : null;
        }
        break;
      case "call-ringing":
        if (call && call.state === "inviting" && (ours || detail.to === call.peer)) {
          call.id = detail.callId || call.id;
          this._setCallState(call, "ringing");
        }
        break;
      case "call-failed":
        if (!call || call.direction !== "outgoing" || call.state !== "inviting") break;
        if (detail.reason === "glare" && detail.callId) this._adoptStandingCall(call, detail.callId, null);
        else if (!detail.callId || ours) this._endCall(call, detail.reason || "failed", "server", detail.message);
        break;
      case "call-invite":
        if (fromServer) break;
        this._onInvite(call, detail);
        break;
      case "call-accept":
        if (ours && call.direction === "outgoing") this._onAccepted(call);
        break;
      case "call-reject":
        if (ours) this._endCall(call, detail.reason || "declined", "remote");
        break;
      case "call-hangup":
        if (ours) this._endCall(call, detail.reason || "user-hangup", fromServer ? "server" : "remote");
        break;
      case "offer":
        if (ours && detail.offer) this._onOffer(call, detail.offer);
        break;
      case "answer":
        if (ours && detail.answer && call.pc) {
          this._negotiate(call, async () => {
            await call.pc.setRemoteDescription(detail.answer);
            await this._flushCandidates(call);
          });
        }
        break;
      case "ice-candidate":
        if (ours && detail.candidate) this._onRemoteCandidate(call, detail.candidate);
        break;
      case "call-resumed":
        if (ours) this._restartIceIfNeeded(call);
        break;
      case "peer-reconnected":
        if (ours) this._restartIceIfNeeded(call);
        break;
      case "session-replaced":
        this._wanted = false;
        break;
    }
  }

  _onInvite(call, detail) {
    const video = detail.callType === "video";
    if (call) {
      if (detail.callId === call.id) {
        call.video = video; // the invite of a call adopted after glare: nothing rings
        return;
      }
      if (call.direction === "outgoing" && call.state === "inviting" && detail.from === call.peer) {
        // Both called each other at once; the server let their invite stand (PROTOCOL.md §8).
        this._adoptStandingCall(call, detail.callId, video);
        return;
      }
      this.sendSignal(detail.from, "call-reject", { callId: detail.callId, reason: "busy" });
      return;
    }
    const incoming = new Call(this, {
      id: detail.callId, peer: detail.from, peerName: detail.fromName || "", direction: "incoming", video,
    });
    this.currentCall = incoming;
    this._emit("incoming-call", { call: incoming });
    this._setCallState(incoming, "incoming");
  }

  /** Glare: our invite was refused because theirs rings; accept theirs with our media. */
  _adoptStandingCall(ours, callId, video) {
    const adopted = new Call(this, {
      id: callId, peer: ours.peer, peerName: ours.peerName, direction: "incoming", video: video ?? ours.video,
    });
    adopted.localStream = ours.localStream;
    adopted.glare = true;
    ours.localStream = null;
    ours.state = "ended";
    ours.endReason = "glare";
    ours.endedBy = "server";
    this.currentCall = adopted;
    this._emit("call-glare", { call: adopted, replaced: ours });
    this.accept().catch((error) => this._emit("media-warning", { call: adopted, reason: "media-failed", message: String(error) }));
  }

  // -- calls ---------------------------------------------------------------------------------

  /**
   * Calls `user`. Opens the microphone (and camera with `video`) first; a missing device
   * is a `media-warning`, not a failure: the call goes on with what there is.
   * @returns {Promise<Call>}
   */
  async call(user, { video = false } = {}) {
    if (!user) throw new TypeError("call: who to call?");
    if (this.currentCall && !this.currentCall.ended) throw new Error("call: already in a call");
    const call = new Call(this, { id: randomCallId(), peer: user, direction: "outgoing", video });
    this.currentCall = call;
    this._setCallState(call, "inviting");
    const stream = await this._openMedia(call, { audio: true, video });
    if (call.ended || this.currentCall !== call) {
      stream?.getTracks().forEach((t) => t.stop()); // hung up, or glare, while the devices opened
      return call;
    }
    call.localStream = stream;
    call._inviteSent = this.sendSignal(user, "call-invite", { callId: call.id, callType: video ? "video" : "audio" });
    if (!call._inviteSent) this._endCall(call, "not-connected", "local", "Not connected to the server.");
    return call;
  }

  /** Accepts the incoming call (with the camera when it is a video call and `video` is not false). */
  async accept({ video } = {}) {
    const call = this.currentCall;
    if (!call || call.ended || call.direction !== "incoming" || call.state !== "incoming") {
      throw new Error("accept: no incoming call");
    }
    this._setCallState(call, "connecting");
    if (!call.localStream) {
      call.localStream = await this._openMedia(call, { audio: true, video: call.video && video !== false });
    }
    if (call.ended) return call;
    this._createPeerConnection(call);
    this.sendSignal(call.peer, "call-accept", { callId: call.id });
    this._startIceTimer(call);
    return call;
  }

  /** Declines the incoming call; `reason` is `declined` (the default) or `busy`. */
  reject(reason = "declined") {
    const call = this.currentCall;
    if (!call || call.ended || call.state !== "incoming") return;
    this.sendSignal(call.peer, "call-reject", { callId: call.id, reason });
    this._endCall(call, reason, "local");
  }

  /** Ends the current call (or withdraws an invite); `reason` is one of PROTOCOL.md §8's. */
  hangup(reason = "user-hangup") {
    const call = this.currentCall;
    if (!call || call.ended) return;
    if (call.state === "incoming") return this.reject();
    if (call.state !== "inviting" || call._inviteSent) this.sendSignal(call.peer, "call-hangup", { callId: call.id, reason });
    this._endCall(call, reason, "local");
  }

  /** `GET /api/presence/{user}`: {user, online, node}. */
  async presence(user) {
    const response = await fetch(`${this.httpBase}/api/presence/${encodeURIComponent(user)}`, {
      headers: { Authorization: `Bearer ${this.token}` },
    });
    if (!response.ok) throw new Error(`presence: HTTP ${response.status}`);
    return response.json();
  }

  /** `GET /api/ice-servers`: fresh TURN credentials before the notice's `ttl` runs out. */
  async refreshIceServers() {
    const response = await fetch(`${this.httpBase}/api/ice-servers`, {
      headers: { Authorization: `Bearer ${this.token}` },
    });
    if (!response.ok) throw new Error(`ice-servers: HTTP ${response.status}`);
    this._handle("ice-servers", await response.json(), true);
    return this.iceServers;
  }

  async _openMedia(call, wanted) {
    const devices = globalThis.navigator?.mediaDevices;
    if (!devices?.getUserMedia) {
      this._emit("media-warning", {
        call, reason: "no-media",
        message: "This page cannot use a camera or microphone here: open it over https (or on localhost).",
      });
      return null;
    }
    let firstError;
    try {
      return await devices.getUserMedia(wanted);
    } catch (error) {
      firstError = error;
    }
    if (wanted.video) {
      try {
        const audioOnly = await devices.getUserMedia({ audio: true });
        this._emit("media-warning", {
          call, reason: "no-camera", message: `${describeMediaError(firstError, wanted)} Calling with audio only.`,
        });
        return audioOnly;
      } catch {
        // Neither: fall through to receive-only.
      }
    }
    this._emit("media-warning", {
      call, reason: "no-media",
      message: `${describeMediaError(firstError, wanted)} The other side will not hear${wanted.video ? " or see" : ""} you.`,
    });
    return null;
  }

  _createPeerConnection(call) {
    if (this.iceServersExpireAt !== null && this.iceServersExpireAt - Date.now() < 60000) {
      this.refreshIceServers().catch(() => {}); // for the next call; this one uses what there is
    }
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    call.pc = pc;
    pc.onicecandidate = (event) => {
      // Trickle ICE: every candidate goes out as soon as it is found.
      if (event.candidate) this.sendSignal(call.peer, "ice-candidate", { callId: call.id, candidate: event.candidate.toJSON() });
    };
    pc.ontrack = (event) => {
      if (!call.remoteStream) call.remoteStream = event.streams[0] || new MediaStream();
      if (!call.remoteStream.getTracks().includes(event.track)) call.remoteStream.addTrack(event.track);
      this._emit("remote-stream", { call, stream: call.remoteStream });
    };
    pc.onconnectionstatechange = () => {
      if (call.pc !== pc || call.ended) return;
      call.mediaState = pc.connectionState;
      if (pc.connectionState === "connected") {
        clearTimeout(call._iceTimer);
        if (!call._connectedReported) {
          call._connectedReported = true;
          call.connectedAt = Date.now();
          this.sendSignal(call.peer, "call-connected", { callId: call.id });
        }
        this._setCallState(call, "connected");
      } else if (pc.connectionState === "failed") {
        this.hangup(call._connectedReported ? "media-failed" : "ice-failed");
      } else {
        this._emit("call-state", { call, state: call.state, mediaState: call.mediaState });
      }
    };
    if (call.localStream) this._emit("local-stream", { call, stream: call.localStream });
    return pc;
  }

  _addLocalMedia(call) {
    if (call._tracksAdded) return;
    call._tracksAdded = true;
    const pc = call.pc;
    const stream = call.localStream;
    const kinds = call.video ? ["audio", "video"] : ["audio"];
    for (const kind of kinds) {
      const track = stream?.getTracks().find((t) => t.kind === kind);
      if (track) pc.addTrack(track, stream);
      else if (call.direction === "outgoing") pc.addTransceiver(kind, { direction: "recvonly" });
    }
  }

  _onAccepted(call) {
    this._setCallState(call, "connecting");
    this._createPeerConnection(call);
    this._addLocalMedia(call);
    this._startIceTimer(call);
    this._sendOffer(call, false);
  }

  _sendOffer(call, iceRestart) {
    this._negotiate(call, async () => {
      const offer = await call.pc.createOffer(iceRestart ? { iceRestart: true } : undefined);
      await call.pc.setLocalDescription(offer);
      this.sendSignal(call.peer, "offer", { callId: call.id, offer: { type: offer.type, sdp: offer.sdp } });
    });
  }

  _onOffer(call, offer) {
    if (!call.pc) return;
    this._negotiate(call, async () => {
      await call.pc.setRemoteDescription(offer);
      this._addLocalMedia(call);
      const answer = await call.pc.createAnswer();
      await call.pc.setLocalDescription(answer);
      this.sendSignal(call.peer, "answer", { callId: call.id, answer: { type: answer.type, sdp: answer.sdp } });
      await this._flushCandidates(call);
    });
  }

  async _onRemoteCandidate(call, candidate) {
    if (!call.pc || !call.pc.remoteDescription) {
      if (call._pendingCandidates.length < MAX_QUEUED_CANDIDATES) call._pendingCandidates.push(candidate);
      return;
    }
    try {
      await call.pc.addIceCandidate(candidate);
    } catch {
      // A candidate the browser cannot use (another network's) is not a reason to end the call.
    }
  }

  async _flushCandidates(call) {
    const pending = call._pendingCandidates;
    call._pendingCandidates = [];
    for (const candidate of pending) await this._onRemoteCandidate(call, candidate);
  }

  /** Negotiation steps of one call run one at a time, in the order their signals came. */
  _negotiate(call, step) {
    call._negotiation = (call._negotiation || Promise.resolve())
      .then(() => (call.ended ? undefined : step()))
      .catch((error) => {
        if (call.ended) return;
        this._emit("media-warning", { call, reason: "media-failed", message: `Media negotiation failed: ${error}` });
        this.hangup("media-failed");
      });
  }

  _restartIceIfNeeded(call) {
    // After an absence the media path may be gone; the caller (the offerer) restarts ICE.
    if (!call.pc || call.direction !== "outgoing" || call.state === "ringing" || call.state === "inviting") return;
    const state = call.pc.connectionState;
    if (state === "disconnected" || state === "failed") this._sendOffer(call, true);
  }

  _startIceTimer(call) {
    clearTimeout(call._iceTimer);
    if (!this.iceTimeout) return;
    call._iceTimer = setTimeout(() => {
      if (this.currentCall === call && !call.ended && call.state !== "connected") this.hangup("ice-timeout");
    }, this.iceTimeout);
  }

  _setCallState(call, state) {
    call.state = state;
    this._emit("call-state", { call, state, mediaState: call.mediaState });
  }

  _endCall(call, reason, by, message = "") {
    if (!call || call.ended) return;
    clearTimeout(call._iceTimer);
    call.endReason = reason;
    call.endedBy = by;
    call.endMessage = message;
    call.pc?.close();
    call.localStream?.getTracks().forEach((t) => t.stop());
    this._setCallState(call, "ended");
  }
}
