// The answer's audio queue: the body of the player's `js_on_load` (layout.py; Gradio passes
// `element`, `props` and `watch`). Its value is one turn's Playback: {turn, clips: [{url}], final,
// stopped}. Each sentence's WAV is fetched and decoded as soon as it arrives, then scheduled on
// one Web Audio clock right after the previous one: no gap when the next sentence is ready in
// time, never two at once, always in order.
//
// window.voiceqnaPlayer is the queue, for the page and for what comes next (hands-free):
//   .played()  sentences of the current turn that have started playing (barge-in keeps those)
//   .busy()    the answer is being heard: from its first sentence's start until its last has ended
//              (hands-free ignores the microphone meanwhile, or watches it for barge-in)
//   .stop()    silence at once; the rest of this turn is dropped
//   .log       the current turn (one of .turns)
//   .turns     the last 50 turns: per turn, each sentence's URL, when it arrived, was decoded, started and ended
//              (performance.now() ms; `at`/`until`: the audio clock, s) and the silence before it
//              (`gap`, s): what the tests and benchmarks/page_first_audio.py read
//   .over()    the current turn has been heard to its end (or cut short): hands-free reports it heard
// Each sentence that starts dispatches "voiceqna-playing" (detail: {turn, index}) on the element.
// A turn the browser speaks (its value has `spoken`: each sentence as the voice should read it)
// goes to window.voiceqnaSpeech (assets/speech.js) instead, one utterance per sentence; its clips
// have `spoken` and no URL, and the same arrived/start/end; `skipped`: nothing of it was said.
const player = {
  context: null,
  turn: null,
  turns: [],
  log: null,
  sources: [],
  buffers: [],
  queued: 0,
  endsAt: 0,
  stopped: false,

  unlock() {
    // Browsers start audio only after a user gesture: the Stop click, Enter or Send is one.
    if (!this.context) this.context = new (window.AudioContext || window.webkitAudioContext)();
    if (this.context.state === "suspended") this.context.resume();
    return this.context;
  },

  update(value) {
    if (!value || !value.turn) return;
    if (value.turn !== this.turn) this.begin(value.turn);
    if (value.stopped) this.stop();
    const spoken = value.spoken, speech = spoken ? window.voiceqnaSpeech : null;
    const clips = spoken || value.clips || [];
    if (spoken) this.log.speech = true;
    for (let index = this.log.clips.length; index < clips.length; index++) {
      const clip = { index, url: spoken ? null : resolve(clips[index].url), arrived: performance.now(), ready: null,
                     at: null, until: null, start: null, end: null, gap: null };
      if (spoken) Object.assign(clip, { spoken: spoken[index], skipped: false });
      this.log.clips.push(clip);
      if (this.stopped) continue;
      if (!spoken) this.load(this.turn, clip, clip.url);
      else if (speech) speech.add(clip, this.hooks(this.turn));
      else clip.skipped = true;  // no speech script: nothing can say it
    }
    this.log.final = Boolean(value.final);
    render();
  },

  begin(turn) {
    this.stop();
    this.turn = turn;
    this.log = { turn, clips: [], final: false, stopped: false };
    this.turns.push(this.log);
    if (this.turns.length > 50) this.turns.shift();  // a long session keeps only its recent turns
    this.buffers = [];
    this.queued = 0;
    this.endsAt = 0;
    this.stopped = false;
  },

  async load(turn, clip, url) {
    try {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`${response.status} for ${url}`);
      const buffer = await this.unlock().decodeAudioData(await response.arrayBuffer());
      if (turn !== this.turn || this.stopped) return;
      clip.ready = performance.now();
      this.buffers[clip.index] = buffer;
      while (this.buffers[this.queued]) this.schedule(this.log.clips[this.queued], this.buffers[this.queued++]);
    } catch (error) {
      console.error("voiceqna player: a sentence could not be played", error);
      if (turn === this.turn) {
        this.buffers[clip.index] = null;  // skip it, keep the rest in order
        while (this.buffers[this.queued] === null) this.queued++;
        while (this.buffers[this.queued]) this.schedule(this.log.clips[this.queued], this.buffers[this.queued++]);
      }
    }
  },

  schedule(clip, buffer) {
    const context = this.context;
    const now = context.currentTime;
    const at = Math.max(now, this.endsAt);
    const source = context.createBufferSource();
    source.buffer = buffer;
    source.connect(context.destination);
    source.start(at);
    source.onended = () => {
      this.sources = this.sources.filter((s) => s.source !== source);
      render();
    };
    this.sources.push({ source, at });
    const wall = performance.now() - now * 1000;  // performance.now() of context time 0
    clip.gap = this.endsAt > 0 ? at - this.endsAt : 0;  // > 0: it was not ready when the one before ended
    clip.at = at;  // on the audio clock (s): what order and overlap are checked on
    clip.until = at + buffer.duration;
    clip.start = wall + at * 1000;
    clip.end = wall + clip.until * 1000;
    this.endsAt = clip.until;
    const turn = this.turn;
    setTimeout(() => {
      if (turn !== this.turn || this.stopped) return;
      element.dispatchEvent(new CustomEvent("voiceqna-playing", { bubbles: true, detail: { turn, index: clip.index } }));
      render();
    }, Math.max(0, (at - now) * 1000));
  },

  hooks(turn) {
    // What the browser's voice tells the queue about a sentence of `turn`.
    const current = () => turn === this.turn && !this.stopped;
    return {
      started: (clip) => {
        if (!current()) return;
        element.dispatchEvent(new CustomEvent("voiceqna-playing", { bubbles: true, detail: { turn, index: clip.index } }));
        render();
      },
      ended: () => current() && render(),
    };
  },

  sounding() {
    return this.sources.length > 0 || Boolean(this.log && this.log.speech && window.voiceqnaSpeech?.speaking());
  },

  over() {
    const log = this.log, now = performance.now();
    if (!log || !log.final || this.sounding()) return false;
    return log.clips.every((c) => (c.end !== null && c.end <= now) || c.skipped || this.buffers[c.index] === null
      || (this.stopped && c.start === null));
  },

  busy() {
    if (!this.log || this.stopped) return false;
    const now = performance.now();
    if (!this.log.clips.some((c) => c.start !== null && c.start <= now)) return false;
    if (this.sounding() || !this.log.final) return true;
    if (this.log.speech) return false;
    return this.log.clips.some((c) => this.buffers[c.index] === undefined);  // still loading: it will play
  },

  played() {
    const now = performance.now();
    return this.log ? this.log.clips.filter((c) => c.start !== null && c.start <= now).length : 0;
  },

  stop() {
    this.stopped = true;
    const now = performance.now();
    const speaking = this.sounding();
    if (this.log && this.log.speech) window.voiceqnaSpeech?.cancel();
    if (this.log && speaking) {
      this.log.stopped = true;
      for (const clip of this.log.clips) {
        if (clip.start !== null && clip.start > now) clip.start = clip.end = null;  // never heard
        else if (clip.end !== null && clip.end > now) clip.end = now;  // cut short
        else if (clip.start !== null && clip.end === null) clip.end = now;  // an utterance cut short
      }
    }
    for (const { source } of this.sources) {
      try {
        source.stop();
      } catch (error) {
        // never started: nothing to stop
      }
    }
    this.sources = [];
    render();
  },
};

function resolve(url) {
  // Gradio gives "/gradio_api/file=…"; a page served under a path prefix needs that prefix.
  const root = (window.gradio_config && window.gradio_config.root) || window.location.origin;
  return new URL(url.replace(/^\//, ""), root.endsWith("/") ? root : `${root}/`).href;
}

function render() {
  const log = player.log;
  const playing = player.sounding();
  const started = player.played();
  const total = log ? log.clips.length : 0;
  element.dataset.state = playing ? "playing" : player.stopped && log && log.stopped ? "stopped" : "idle";
  const state = element.querySelector(".answer-player-state");
  if (state) state.textContent = playing ? `▶ ${started} / ${total}${log.final ? "" : "…"}` : total ? `✓ ${total}` : "";
  const stop = element.querySelector(".answer-player-stop");
  if (stop) stop.disabled = !playing;
}

window.voiceqnaPlayer = player;
for (const gesture of ["pointerdown", "keydown", "click", "touchend"]) {  // iOS counts only some of them
  document.addEventListener(gesture, () => player.unlock(), { capture: true, passive: true });
}
element.addEventListener("click", (event) => {
  if (event.target.closest(".answer-player-stop")) player.stop();
});
watch("value", () => player.update(props.value));
player.update(props.value);
render();
