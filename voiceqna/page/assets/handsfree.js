// Hands-free: the body of the hands-free panel's `js_on_load` (layout.py; Gradio passes `element`,
// `trigger`, `props`, `server` and `watch`). With the switch on, the microphone stays open: an
// AudioWorklet turns it into 16 kHz 16-bit PCM, sent ~100 ms at a time, one request at a time
// (what the microphone gives meanwhile waits for the next one, so nothing is lost when the server
// is slow), to the tab's session on the server (server.handsfree_feed, Gradio's component server:
// behind the page's login). Each request says whether the answer was playing while it was heard
// (window.voiceqnaPlayer.busy()): the server ignores that audio (half-duplex) or, with barge-in,
// watches it for someone interrupting. Its reply gives the state (듣는 중 / 말씀 중), a barge-in
// (stop the answer now, say how much was heard) and the turns that ended: each is shown by the
// page's "turn" event, one after another, as a push-to-talk turn would be (생각 중, 답하는 중).
//
// window.voiceqnaHandsFree is this object, for tests and benchmarks/handsfree.py:
//   .log.posts   each request: {sent, received, first, end (samples), at (capture time of its
//                last sample, performance.now() ms), playing, reply}
//   .log.turns   each turn: {turn, ended (reply received), shown (its "turn" event over)}
//   .log.barge   each barge-in: {at, turn, played}
//   .keepAudio   set true (before switching on) to keep every captured sample in .audio
const SAMPLE_RATE = 16000;
const CHUNK = 1600;  // samples a piece: 100 ms
const MAX_BACKLOG = SAMPLE_RATE * 8;  // kept while the server cannot be reached; older audio is dropped
const ECHO_TAIL_MS = 250;  // after the answer stops, the room still rings: count it as playing a moment longer
const RETRY_MS = 500;
const TURN_TIMEOUT_MS = 300000;
const STATES = {
  off: "",
  listening: "👂 듣는 중 (listening)",
  speech: "🗣️ 말씀 중 (hearing you)",
  thinking: "💭 생각 중 (thinking)",
  answering: "🔊 답하는 중 (answering)",
  blocked: "🔒 마이크를 쓸 수 없어요: https:// 주소로 여세요 (microphone blocked: open the https:// address)",
  failed: "⚠️ 마이크를 열지 못했어요 (could not open the microphone)",
};
// Runs on the audio thread: 128-sample render quanta in, CHUNK-sample Int16 pieces out. At another
// rate than 16 kHz (browsers that will not resample the microphone for us) it averages down.
const WORKLET = `
class VoiceqnaPcm extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.size = options.processorOptions.size;
    this.step = sampleRate / options.processorOptions.rate;
    this.buffer = new Int16Array(this.size);
    this.filled = 0;
    this.sum = 0;
    this.count = 0;
    this.position = 0;
  }
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      this.sum += channel[i];
      this.count++;
      this.position += 1;
      if (this.position < this.step) continue;
      this.position -= this.step;
      const sample = Math.max(-1, Math.min(1, this.sum / this.count));
      this.sum = 0;
      this.count = 0;
      this.buffer[this.filled++] = sample * 32767;
      if (this.filled === this.size) {
        this.port.postMessage(this.buffer.buffer, [this.buffer.buffer]);
        this.buffer = new Int16Array(this.size);
        this.filled = 0;
      }
    }
    return true;
  }
}
registerProcessor("voiceqna-pcm", VoiceqnaPcm);
`;

const handsFree = {
  on: false,
  bargeIn: false,
  token: null,
  media: null,
  context: null,
  queue: [],  // captured pieces not yet sent: {pcm, playing, at, end}
  sending: false,
  captured: 0,  // samples captured since switched on
  serverState: "listening",
  waiting: [],  // turns that ended and wait to be shown, in order
  showing: null,  // the turn whose "turn" event runs
  showingSince: 0,
  busyUntil: 0,
  heardSent: null,  // the last turn whose answer was reported heard
  problem: null,
  keepAudio: false,
  audio: [],
  log: { posts: [], turns: [], barge: [] },

  async start() {
    if (this.on) return;
    if (!window.isSecureContext || !(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)) {
      this.problem = "blocked";
      this.setSwitch(false);
      render();
      return;
    }
    this.on = true;
    this.problem = null;
    this.resetSession();
    window.voiceqnaPlayer?.unlock();  // this click is the gesture that lets the answer play
    render();
    try {
      this.media = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
      });
      await this.listen();
    } catch (error) {
      console.error("voiceqna hands-free: the microphone could not be opened", error);
      this.stop();
      this.problem = "failed";
      render();
      return;
    }
    if (!this.on) return this.release();  // switched off while the browser asked for the microphone
    this.open();
  },

  async listen() {
    const url = URL.createObjectURL(new Blob([WORKLET], { type: "application/javascript" }));
    for (const rate of [SAMPLE_RATE, undefined]) {  // 16 kHz if the browser resamples the microphone, else its own rate
      const context = new AudioContext(rate ? { sampleRate: rate } : {});
      try {
        await context.audioWorklet.addModule(url);
        const node = new AudioWorkletNode(context, "voiceqna-pcm", { processorOptions: { size: CHUNK, rate: SAMPLE_RATE } });
        node.port.onmessage = (event) => this.take(new Int16Array(event.data));
        context.createMediaStreamSource(this.media).connect(node);
        if (context.state === "suspended") await context.resume();
        this.context = context;
        return;
      } catch (error) {
        context.close();
        if (!rate) throw error;
      }
    }
  },

  stop() {
    if (!this.on) return;
    this.on = false;
    if (this.token) server.handsfree_close({ token: this.token });
    this.token = null;
    this.queue = [];
    this.waiting = [];
    this.release();
    this.setSwitch(false);
    render();
  },

  release() {
    for (const track of this.media ? this.media.getTracks() : []) track.stop();
    this.context?.close();
    this.media = null;
    this.context = null;
  },

  resetSession() {
    this.token = null;
    this.queue = [];
    this.waiting = [];
    this.showing = null;
    this.captured = 0;
    this.serverState = "listening";
    this.audio = [];
  },

  open() {
    // The server makes the tab's session (and a conversation if the page has none); its token
    // comes back as this component's value (watch below).
    this.token = null;
    trigger("listen", {});
  },

  playing() {
    const now = performance.now();
    if (window.voiceqnaPlayer?.busy()) this.busyUntil = now + ECHO_TAIL_MS;
    return now < this.busyUntil;
  },

  take(pcm) {
    if (!this.on) return;
    this.captured += pcm.length;
    if (this.keepAudio) this.audio.push(pcm);
    this.queue.push({ pcm, playing: this.playing(), at: performance.now(), end: this.captured });
    let queued = this.queue.reduce((n, piece) => n + piece.pcm.length, 0);
    while (queued > MAX_BACKLOG) queued -= this.queue.shift().pcm.length;
    this.pump();
  },

  async pump() {
    if (this.sending || !this.token || !this.queue.length) return;
    // One request at a time, all that waits, as long as the player's state is the same for all of it.
    const playing = this.queue[0].playing;
    let count = 0;
    while (count < this.queue.length && this.queue[count].playing === playing) count++;
    const pieces = this.queue.splice(0, count);
    const last = pieces[pieces.length - 1];
    const post = { sent: performance.now(), first: pieces[0].end - pieces[0].pcm.length, end: last.end, at: last.at,
                   playing, received: null, reply: null };
    const token = this.token;
    this.sending = true;
    let reply;
    try {
      const speak = !["browser", "off"].includes(window.voiceqnaSpeech?.effective());  // else text only
      reply = await server.handsfree_feed({ token, audio: base64(pieces), playing, barge_in: this.bargeIn, speak });
    } catch (error) {
      reply = undefined;
    }
    this.sending = false;
    post.received = performance.now();
    post.reply = reply || null;
    this.log.posts.push(post);
    if (this.log.posts.length > 20000) this.log.posts.shift();
    if (!this.on || token !== this.token) return;
    if (!reply) {  // not reachable (Gradio logs why): send it again in a moment
      this.queue.unshift(...pieces);
      setTimeout(() => this.pump(), RETRY_MS);
      return;
    }
    if (reply.error === "gone") {  // the session ended (idle too long, or the server restarted): a new one
      this.queue.unshift(...pieces);
      this.open();
      return;
    }
    if (reply.error) console.warn("voiceqna hands-free:", reply.error);
    this.serverState = reply.state;
    if (reply.barge_in) this.interrupt();
    for (const turn of reply.turns || []) {
      this.waiting.push(turn);
      this.log.turns.push({ turn, ended: post.received, shown: null });
    }
    this.show();
    render();
    this.pump();
  },

  interrupt() {
    // Someone talks over the answer: silence it now, and let the server keep only what was heard.
    const player = window.voiceqnaPlayer;
    if (!player) return;
    const turn = player.turn;
    player.stop();
    const played = player.played();
    this.busyUntil = 0;
    this.log.barge.push({ at: performance.now(), turn, played });
    if (turn) server.handsfree_interrupt({ token: this.token, turn, played });
  },

  show() {
    // The page shows one turn at a time, in order: the next "turn" event starts when the last is over.
    if (this.showing && performance.now() - this.showingSince > TURN_TIMEOUT_MS) this.showing = null;
    if (this.showing || !this.waiting.length || !this.token) return;
    this.showing = this.waiting.shift();
    this.showingSince = performance.now();
    trigger("turn", { token: this.token, turn: this.showing });
  },

  shown(turn) {
    const entry = this.log.turns.find((t) => t.turn === turn);
    if (entry && entry.shown === null) entry.shown = performance.now();
    if (this.showing === turn) this.showing = null;
    this.show();
    render();
  },

  checkHeard() {
    // The answer of the turn being shown has been played to its end: the server stores it now
    // (it holds a hands-free turn until then, so that a barge-in stores only what was heard).
    const player = window.voiceqnaPlayer;
    const turn = this.showing;
    if (!turn || !this.token || this.heardSent === turn || !player || player.turn !== turn || !player.over()) return;
    this.heardSent = turn;
    server.handsfree_heard({ token: this.token, turn });
  },

  state() {
    if (this.problem) return this.problem;
    if (!this.on) return "off";
    if (this.playing()) return "answering";
    if (this.serverState === "speech") return "speech";
    if (this.showing || this.waiting.length || !this.token) return "thinking";
    return "listening";
  },

  setSwitch(on) {
    const box = element.querySelector("input.handsfree-on");
    if (box) box.checked = on;
  },

  beacon() {
    // The tab is closing: end its session now rather than after the idle timeout.
    if (!this.token) return;
    const config = window.gradio_config || {};
    const component = (config.components || []).find((c) => c.props && c.props.elem_id === "handsfree");
    const root = config.root || window.location.origin;
    const url = new URL(`${(config.api_prefix || "/gradio_api").replace(/^\//, "")}/component_server/`,
                        root.endsWith("/") ? root : `${root}/`);
    const body = JSON.stringify({ data: { token: this.token }, component_id: component ? component.id : null,
                                  fn_name: "handsfree_close", session_hash: window.__gradio_session_hash__ || "" });
    navigator.sendBeacon(url.href, new Blob([body], { type: "application/json" }));
    this.token = null;
  },
};

function base64(pieces) {
  const size = pieces.reduce((n, piece) => n + piece.pcm.length, 0);
  const pcm = new Int16Array(size);
  let at = 0;
  for (const piece of pieces) {
    pcm.set(piece.pcm, at);
    at += piece.pcm.length;
  }
  const bytes = new Uint8Array(pcm.buffer);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

let shownState = null;
function render() {
  const state = handsFree.state();
  if (state === shownState) return;
  shownState = state;
  element.dataset.state = state;
  const label = element.querySelector(".handsfree-state");
  if (label) label.textContent = STATES[state];
}

window.voiceqnaHandsFree = handsFree;
element.addEventListener("change", (event) => {
  if (event.target.matches("input.handsfree-on")) {
    if (event.target.checked) handsFree.start();
    else handsFree.stop();
  } else if (event.target.matches("input.handsfree-barge-in")) {
    handsFree.bargeIn = event.target.checked;
  }
});
document.addEventListener("click", (event) => {  // Record (push-to-talk) takes the microphone: hands-free goes off
  if (event.target.closest && event.target.closest("#question-audio .record-button")) handsFree.stop();
}, true);
window.addEventListener("pagehide", () => handsFree.beacon());
watch("value", () => {
  const value = props.value || {};
  if (value.token !== undefined && value.opened && handsFree.on && !handsFree.token) {
    if (value.token) {
      handsFree.token = value.token;
      handsFree.pump();
    } else {
      handsFree.stop();  // the server could not start it: the status line says why
    }
  }
  if (value.over) handsFree.shown(value.over);
  render();
});
handsFree.bargeIn = Boolean(element.querySelector("input.handsfree-barge-in")?.checked);  // HANDSFREE_BARGE_IN
setInterval(() => {  // the player's state changes on its own clock
  handsFree.checkHeard();
  render();
}, 100);
render();
