// The demo page (/demo): a person signs in with a token and calls another user, built on the
// reference client (/switchboard-client.js) and nothing else.
//
// Links may carry `#token=…&peer=bob` (the fragment never leaves the browser); the token is then
// kept in this tab's sessionStorage and removed from the address bar.
import { SwitchboardClient, tokenClaims } from "/switchboard-client.js";

const $ = (id) => document.getElementById(id);
const ui = {
  connection: $("connection"), signinPanel: $("signin-panel"), signinForm: $("signin-form"), token: $("token"),
  callPanel: $("call-panel"), me: $("me"), signout: $("signout"), callForm: $("call-form"), peer: $("peer"),
  presence: $("presence"), callButton: $("call"), incoming: $("incoming"), incomingText: $("incoming-text"),
  answer: $("answer"), decline: $("decline"), inCall: $("in-call"), mute: $("mute"), camera: $("camera"),
  hangup: $("hangup"), state: $("call-state"), notice: $("notice"), log: $("log"), clearLog: $("clear-log"),
  stage: $("stage"), remoteVideo: $("remote-video"), localVideo: $("local-video"),
  placeholder: $("remote-placeholder"), localLevel: $("local-level"), remoteLevel: $("remote-level"),
  stats: $("media-stats"),
};

const MAX_LOG_ENTRIES = 300;
let client = null;
let presenceTimer = null;
let clockTimer = null;
let statsTimer = null;
let audio = null; // {context, meters: [{analyser, meter}], frame}

// What ended a call, said to a person.
function endMessage(call) {
  const who = call.peerName || call.peer;
  switch (call.endReason) {
    case "offline": return `${who} is offline.`;
    case "busy": return call.endedBy === "remote" ? `${who} is busy.` : `${who} is busy in another call.`;
    case "declined": return call.endedBy === "local" ? "You declined the call." : `${who} declined the call.`;
    case "forbidden": return `You may not call ${who}.`;
    case "rate-limited": return "Too many calls in a short time: wait a minute and try again.";
    case "unavailable": return "The server could not reach the other side just now. Try again.";
    case "timeout": return call.direction === "outgoing" ? `${who} did not answer.` : `Missed call from ${who}.`;
    case "peer-disconnected": return `${who}'s connection was lost.`;
    case "ice-failed":
    case "ice-timeout":
      return "The media connection could not be set up: a firewall may block it (a TURN server helps).";
    case "media-failed": return "The media connection failed.";
    case "network-lost": return "The connection to the server was lost, and the call with it.";
    case "not-connected": return "Not connected to the server: wait until it says Online.";
    default:
      return call.endedBy === "local" ? "Call ended." : `${who} hung up.`;
  }
}

// How much an ending needs attention: the other side hanging up is news, a failure is an error.
function endKind(call) {
  if (["offline", "busy", "declined", "timeout", "peer-disconnected"].includes(call.endReason)) return "warning";
  if (call.endReason === "not-connected") return "warning";
  if (call.endReason === "user-hangup" || !call.endReason) return "info";
  return "error";
}

const STATE_TEXT = {
  inviting: (c) => `Calling ${c.peerName || c.peer}…`,
  ringing: (c) => `Ringing ${c.peerName || c.peer}…`,
  incoming: (c) => `${c.peerName || c.peer} is calling…`,
  connecting: () => "Connecting media…",
  connected: (c) => `Connected with ${c.peerName || c.peer}`,
};

function showNotice(text, kind = "warning") {
  ui.notice.hidden = !text;
  ui.notice.textContent = text || "";
  ui.notice.dataset.kind = kind;
}

// -- signing in ----------------------------------------------------------------------------

function readFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token) sessionStorage.setItem("switchboard-token", token);
  if (params.get("peer")) ui.peer.value = params.get("peer");
  if (token) history.replaceState(null, "", location.pathname + (params.get("peer") ? `#peer=${params.get("peer")}` : ""));
  return token || sessionStorage.getItem("switchboard-token");
}

function signIn(token) {
  const claims = tokenClaims(token);
  if (!claims.sub) {
    showNotice("That is not a Switchboard token (a JWT with a `sub` claim).", "error");
    return;
  }
  showNotice("");
  sessionStorage.setItem("switchboard-token", token);
  client = new SwitchboardClient({ token });
  wire(client);
  ui.me.textContent = claims.name ? `${claims.name} (${claims.sub})` : claims.sub;
  ui.signinPanel.hidden = true;
  ui.callPanel.hidden = false;
  client.connect();
  renderCall(null);
  pollPresence();
  (ui.peer.value ? ui.callButton : ui.peer).focus();
}

function signOut() {
  client?.close();
  client = null;
  sessionStorage.removeItem("switchboard-token");
  ui.token.value = "";
  clearTimeout(presenceTimer);
  ui.callPanel.hidden = true;
  ui.signinPanel.hidden = false;
  setConnection("closed", "Signed out");
  stopMedia();
  ui.token.focus();
}

function setConnection(status, text) {
  ui.connection.dataset.status = status;
  ui.connection.textContent = text;
}

// -- presence ---------------------------------------------------------------------------------

async function pollPresence() {
  clearTimeout(presenceTimer);
  if (!client) return;
  const peer = ui.peer.value.trim();
  const inCall = client.currentCall && !client.currentCall.ended;
  if (peer && !inCall && ui.peer.checkValidity()) {
    try {
      const answer = await client.presence(peer);
      if (peer === ui.peer.value.trim()) {
        ui.presence.dataset.online = String(answer.online);
        ui.presence.textContent = answer.online ? "online" : "offline";
      }
    } catch {
      ui.presence.dataset.online = "unknown";
      ui.presence.textContent = "";
    }
  } else if (!peer) {
    ui.presence.dataset.online = "unknown";
    ui.presence.textContent = "";
  }
  presenceTimer = setTimeout(pollPresence, 3000);
}

// -- the client's events ----------------------------------------------------------------------

function wire(c) {
  c.addEventListener("status", ({ detail }) => {
    if (c !== client) return;
    const texts = {
      connecting: "Connecting…",
      open: `Online as ${c.user}`,
      reconnecting: detail.retryIn ? `Offline: reconnecting in ${Math.ceil(detail.retryIn / 1000)} s…` : "Reconnecting…",
      closed: "Offline",
      replaced: "Offline: signed in on another tab or device",
      unauthorized: `Offline: ${detail.reason || "token rejected"}`,
    };
    setConnection(detail.status, texts[detail.status] || detail.status);
    if (detail.status === "replaced") showNotice("This account signed in somewhere else, so this page stopped. Reload to take over again.", "error");
    if (detail.status === "unauthorized") showNotice(`Signing in failed: ${detail.reason}. Sign out and use a fresh token.`, "error");
    renderCall(c.currentCall);
    // Call is disabled until the connection is open: give it the focus then, unless it went elsewhere.
    if (detail.status === "open" && !c.currentCall && [document.body, null].includes(document.activeElement)) {
      (ui.peer.value ? ui.callButton : ui.peer).focus();
    }
  });
  c.addEventListener("frame", ({ detail }) => logFrame(detail));
  c.addEventListener("incoming-call", ({ detail }) => {
    showNotice("");
    renderCall(detail.call);
    ui.answer.focus();
  });
  c.addEventListener("call-state", ({ detail }) => {
    renderCall(detail.call);
    if (detail.state === "ended") {
      // What the other side or the server did is news; what this person just did is not.
      const call = detail.call;
      const theirs = call.endedBy !== "local" || !["user-hangup", "declined"].includes(call.endReason);
      if (theirs && call.endReason !== "glare") showNotice(endMessage(call), endKind(call));
      stopMedia();
      ui.peer.focus();
      pollPresence();
    } else if (detail.state === "connected") {
      startStats(detail.call);
    }
  });
  c.addEventListener("call-glare", () => showNotice("You both called at once: joined their call."));
  c.addEventListener("media-warning", ({ detail }) => showNotice(detail.message));
  c.addEventListener("local-stream", ({ detail }) => attachLocal(detail.stream));
  c.addEventListener("remote-stream", ({ detail }) => attachRemote(detail.call, detail.stream));
  c.addEventListener("error", ({ detail }) => {
    if (detail.reason === "rate-limited") showNotice("Slow down: the server is dropping messages over your budget.");
  });
}

function renderCall(call) {
  const live = call && !call.ended;
  const online = client?.status === "open";
  ui.callForm.hidden = !!live;
  ui.callButton.disabled = !online;
  ui.incoming.hidden = !(live && call.state === "incoming");
  ui.inCall.hidden = !(live && call.state !== "incoming");
  ui.camera.hidden = !(live && call.video);
  if (live && call.state === "incoming") {
    ui.incomingText.textContent = `${call.peerName ? `${call.peerName} (${call.peer})` : call.peer} is calling you: ${call.video ? "video" : "audio"} call`;
  }
  ui.state.dataset.state = call ? call.state : "idle";
  // On a phone the video goes first during a call, but not over a ringing call's Answer button.
  document.querySelector("main.demo").dataset.live = String(!!live && call.state !== "incoming");
  clearInterval(clockTimer);
  if (!live) {
    ui.state.textContent = call ? "Call ended" : online ? "No call" : "Not connected";
    ui.placeholder.textContent = call ? "Call ended" : "No call yet";
    return;
  }
  const base = STATE_TEXT[call.state](call);
  const paint = () => {
    let text = base;
    if (call.state === "connected" && call.connectedAt) {
      const s = Math.floor((Date.now() - call.connectedAt) / 1000);
      text += ` · ${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
    }
    if (call.mediaState === "disconnected") text += " (media interrupted)";
    if (!online) text += " (signaling offline)";
    ui.state.textContent = text;
  };
  paint();
  if (call.state === "connected") clockTimer = setInterval(paint, 1000);
  ui.placeholder.textContent = call.video ? base : `${base} (audio call)`;
}

// -- media ------------------------------------------------------------------------------------

function attachLocal(stream) {
  ui.localVideo.srcObject = stream;
  ui.stage.dataset.local = String(stream.getVideoTracks().length > 0);
  meter(stream, ui.localLevel);
}

function attachRemote(call, stream) {
  if (ui.remoteVideo.srcObject !== stream) ui.remoteVideo.srcObject = stream;
  ui.stage.dataset.video = String(call.video && stream.getVideoTracks().length > 0);
  if (stream.getAudioTracks().length > 0) meter(stream, ui.remoteLevel);
}

/** A level meter for the stream's audio (WebAudio), drawn every frame while the call lasts. */
function meter(stream, element) {
  if (!stream.getAudioTracks().length || element.dataset.stream === stream.id) return;
  element.dataset.stream = stream.id;
  if (!audio) {
    audio = { context: new AudioContext(), meters: [], frame: 0 };
    const samples = new Float32Array(1024);
    const draw = () => {
      for (const m of audio.meters) {
        m.analyser.getFloatTimeDomainData(samples);
        let sum = 0;
        for (const v of samples) sum += v * v;
        m.element.value = Math.min(1, Math.sqrt(sum / samples.length) * 4);
      }
      audio.frame = requestAnimationFrame(draw);
    };
    audio.frame = requestAnimationFrame(draw);
  }
  audio.context.resume().catch(() => {});
  const analyser = audio.context.createAnalyser();
  analyser.fftSize = 1024;
  audio.context.createMediaStreamSource(stream).connect(analyser);
  audio.meters = audio.meters.filter((m) => m.element !== element).concat({ analyser, element });
}

function stopMedia() {
  clearInterval(statsTimer);
  clearInterval(clockTimer);
  ui.remoteVideo.srcObject = null;
  ui.localVideo.srcObject = null;
  ui.stage.dataset.video = "false";
  ui.stage.dataset.local = "false";
  ui.stats.textContent = "Media statistics appear during a call.";
  if (audio) {
    cancelAnimationFrame(audio.frame);
    audio.context.close().catch(() => {});
    audio = null;
  }
  for (const m of [ui.localLevel, ui.remoteLevel]) {
    m.value = 0;
    delete m.dataset.stream;
  }
  ui.mute.setAttribute("aria-pressed", "false");
  ui.mute.textContent = "Mute";
  ui.camera.setAttribute("aria-pressed", "false");
  ui.camera.textContent = "Camera off";
}

function startStats(call) {
  clearInterval(statsTimer);
  let last = null;
  const tick = async () => {
    if (call.ended) return clearInterval(statsTimer);
    const s = await call.stats();
    const now = performance.now();
    const rate = last ? ((s.bytesReceived - last.bytes) * 8) / ((now - last.at) / 1000) / 1000 : 0;
    last = { bytes: s.bytesReceived, at: now };
    const mb = (n) => (n / 1e6).toFixed(2);
    ui.stats.textContent = `Received ${mb(s.bytesReceived)} MB (${Math.round(rate)} kbit/s) · sent ${mb(s.bytesSent)} MB · packets lost ${s.packetsLost}`;
  };
  tick();
  statsTimer = setInterval(tick, 1000);
}

function toggleTrack(kind, button, onText, offText) {
  const stream = client?.currentCall?.localStream;
  const tracks = stream ? stream.getTracks().filter((t) => t.kind === kind) : [];
  if (!tracks.length) return showNotice(kind === "video" ? "There is no camera in this call." : "There is no microphone in this call.");
  const off = button.getAttribute("aria-pressed") !== "true";
  tracks.forEach((t) => (t.enabled = !off));
  button.setAttribute("aria-pressed", String(off));
  button.textContent = off ? onText : offText;
}

// -- the signal log -----------------------------------------------------------------------------

function summary(json, message) {
  if (!json) return message ? `${message.to ? `to ${message.to}: ` : ""}${message.content.slice(0, 120)}` : "undecodable frame";
  const rest = { ...json };
  for (const k of ["type", "from", "fromName"]) delete rest[k];
  for (const k of ["offer", "answer"]) if (rest[k]?.sdp) rest[k] = `sdp ${(rest[k].sdp.length / 1024).toFixed(1)} KiB`;
  if (rest.candidate?.candidate) rest.candidate = rest.candidate.candidate.replace(/^candidate:/, "").slice(0, 70);
  if (Array.isArray(rest.iceServers)) rest.iceServers = rest.iceServers.map((s) => [].concat(s.urls).join(" ")).join(", ") || "none";
  if (typeof rest.callId === "string") rest.callId = rest.callId.slice(0, 8);
  const text = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
  return text;
}

function logFrame({ direction, message, json }) {
  const li = document.createElement("li");
  const fromServer = direction === "in" && message && message.from === "";
  li.className = `dir-${direction}${fromServer ? " notice-frame" : ""}`;
  const time = new Date().toISOString().slice(11, 23);
  const kind = json?.type || (message ? `message (type ${message.contentType})` : "error");
  const peer = direction === "out" ? (message?.to ? `→ ${message.to}` : "") : fromServer ? "server" : `← ${message?.from}`;
  for (const [cls, text] of [["t", time + " "], ["d", direction === "out" ? "sent " : "got "], ["k", kind], ["p", ` ${peer} `], ["s", summary(json, message)]]) {
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = text;
    li.append(span);
  }
  const atBottom = ui.log.scrollTop + ui.log.clientHeight >= ui.log.scrollHeight - 4;
  ui.log.append(li);
  while (ui.log.children.length > MAX_LOG_ENTRIES) ui.log.firstElementChild.remove();
  if (atBottom) ui.log.scrollTop = ui.log.scrollHeight;
}

// -- controls -------------------------------------------------------------------------------------

ui.signinForm.addEventListener("submit", (e) => {
  e.preventDefault();
  signIn(ui.token.value.trim());
});
ui.token.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    ui.signinForm.requestSubmit();
  }
});
ui.signout.addEventListener("click", signOut);
ui.peer.addEventListener("input", () => {
  ui.presence.dataset.online = "unknown";
  ui.presence.textContent = "";
  clearTimeout(presenceTimer);
  presenceTimer = setTimeout(pollPresence, 400);
});
ui.callForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const peer = ui.peer.value.trim();
  if (peer === client.user) return showNotice("That is you: call someone else.", "error");
  showNotice("");
  const video = ui.callForm.elements.kind.value === "video";
  try {
    await client.call(peer, { video });
    ui.hangup.focus();
  } catch (error) {
    showNotice(String(error.message || error), "error");
  }
});
ui.answer.addEventListener("click", async () => {
  try {
    await client.accept();
    ui.hangup.focus();
  } catch (error) {
    showNotice(String(error.message || error), "error");
  }
});
ui.decline.addEventListener("click", () => client.reject());
ui.hangup.addEventListener("click", () => client.hangup());
ui.mute.addEventListener("click", () => toggleTrack("audio", ui.mute, "Unmute", "Mute"));
ui.camera.addEventListener("click", () => toggleTrack("video", ui.camera, "Camera on", "Camera off"));
ui.clearLog.addEventListener("click", () => ui.log.replaceChildren());
window.addEventListener("hashchange", () => {
  const token = readFragment();
  if (token && (!client || client.token !== token)) {
    client?.close();
    signIn(token);
  }
});

// For the browser console (and the end-to-end tests): `demo.client.currentCall.pc`.
window.demo = { get client() { return client; } };

const saved = readFragment();
if (saved) signIn(saved);
else ui.token.focus();
