// The browser's own voice: the body of the voice panel's `js_on_load` (page/voice.py; Gradio
// passes `element` and `server`). Two jobs:
//
// 1. The choice (🔊 음성): 브라우저 음성 (the browser's Korean voice, Web Speech API), 서버 음성 (the
//    server's speech engine) or 끄기 (off); which Korean voice, and its speed; kept in localStorage
//    ("voiceqna-voice") once the person changes something. Without a saved choice: the browser voice
//    when the browser has a LOCAL Korean voice (localService, lang ko…), else the server's. A network
//    voice (localService false: the text goes to the browser vendor's servers) is used only when the
//    person picks it, and the note beside the list says so. Voices that load late (voiceschanged)
//    are taken in. The panel's value ("browser", "server", "off") goes with each turn the page asks
//    for: only "server" has the server synthesize the answer.
//
// 2. Speaking (window.voiceqnaSpeech, driven by the answer's queue, assets/player.js): each sentence
//    as it arrives, one utterance at a time (lang ko-KR), in order; a long sentence is split at
//    commas (Chrome stops an utterance after ~15 s), a paused or stalled queue is resumed, an
//    utterance that fails or never starts is skipped (never retried). Each clip (one sentence of the
//    player's log) gets `start` (its first utterance's start) and `end` (its last one's end),
//    performance.now() ms, as the server audio's clips do.
const STORAGE_KEY = "voiceqna-voice";
const MAX_PART_CHARS = 80;  // ~10 s of Korean at speed 1: well under Chrome's ~15 s
const START_TIMEOUT_MS = 8000;  // an utterance that has not started by then is skipped
const WATCH_MS = 250;
const NETWORK_NOTE = "🌐 온라인 음성이에요: 답변 글이 브라우저 회사의 서버로 보내져요 " +
  "(a network voice: the answer's text goes to the browser vendor's servers).";
const NO_VOICE_NOTE = "이 브라우저에는 한국어 음성이 없어요: 서버 음성을 써요 " +
  "(this browser has no Korean voice: the server's voice is used).";
const PICK_NOTE = "로컬 한국어 음성이 없어요: 온라인 음성을 고르면 브라우저 음성을 쓸 수 있어요 " +
  "(no local Korean voice: pick a network voice to use the browser voice).";

const synth = window.speechSynthesis || null;

const speech = {
  mode: "server",  // what the person chose (or the default)
  voiceURI: "",  // the voice they picked; "" = the first local Korean voice
  rate: 1,
  saved: false,  // a choice is in localStorage: the defaults no longer apply
  queue: [],  // parts waiting: {clip, text, first, last, hooks}
  current: null,  // the part being spoken: {part, utterance, since, started}
  log: [],  // every utterance: {text, voice, rate, queued, started, ended, error}

  load() {
    try {
      const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
      if (saved && ["browser", "server", "off"].includes(saved.mode)) {
        this.mode = saved.mode;
        this.voiceURI = typeof saved.voice === "string" ? saved.voice : "";
        this.rate = Math.min(2, Math.max(0.5, Number(saved.rate) || 1));
        this.saved = true;
      }
    } catch (error) {
      // private mode or a broken entry: the defaults
    }
    if (!this.saved) this.mode = this.local().length ? "browser" : "server";
  },

  save() {
    this.saved = true;
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify({ mode: this.mode, voice: this.voiceURI, rate: this.rate }));
    } catch (error) {
      // storage refused: the choice holds for this page only
    }
  },

  korean() {
    return synth ? synth.getVoices().filter((v) => /^ko([-_]|$)/i.test(v.lang || "")) : [];
  },

  local() {
    return this.korean().filter((v) => v.localService);
  },

  voice() {
    // The picked voice, else the first local Korean one; never a network voice nobody picked.
    const voices = this.korean();
    return voices.find((v) => v.voiceURI === this.voiceURI && this.voiceURI) || voices.find((v) => v.localService) || null;
  },

  effective() {
    // What this page does now: the browser voice needs a voice to speak with.
    if (this.mode === "browser" && !this.voice()) return "server";
    return this.mode;
  },

  // --- speaking, for the player ---

  add(clip, hooks) {
    // One sentence of the current answer: queue its parts. hooks.started(clip) / hooks.ended(clip).
    const parts = this.effective() === "browser" ? split(clip.spoken || clip.text || "") : [];
    if (!parts.length) {
      clip.skipped = true;  // off, no voice, or nothing to say
      hooks.ended(clip);
      return;
    }
    parts.forEach((text, i) => this.queue.push({ clip, text, first: i === 0, last: i === parts.length - 1, hooks }));
    this.next();
  },

  next() {
    if (this.current || !this.queue.length || !synth) return;
    const part = this.queue.shift();
    const utterance = new SpeechSynthesisUtterance(part.text);
    utterance.lang = "ko-KR";
    const voice = this.voice();
    if (voice) utterance.voice = voice;
    utterance.rate = this.rate;
    const entry = { text: part.text, voice: voice ? voice.name : "", rate: this.rate, queued: performance.now(),
                    started: null, ended: null, error: null };
    this.log.push(entry);
    if (this.log.length > 500) this.log.shift();
    this.current = { part, utterance, entry, since: performance.now(), started: false };
    utterance.onstart = () => {
      if (!this.current || this.current.utterance !== utterance) return;
      this.current.started = true;
      entry.started = performance.now();
      if (part.clip.start === null) {
        part.clip.start = entry.started;
        part.hooks.started(part.clip);
      }
    };
    utterance.onend = () => this.finish(utterance, null);
    utterance.onerror = (event) => this.finish(utterance, (event && event.error) || "error");
    if (synth.paused) synth.resume();  // Chrome can leave the queue paused
    synth.speak(utterance);
  },

  finish(utterance, error) {
    // The utterance ended, failed, or was given up on: the next one, never the same again.
    const current = this.current;
    if (!current || current.utterance !== utterance) return;
    this.current = null;
    current.entry.ended = performance.now();
    if (error) {
      current.entry.error = error;
      if (error !== "interrupted" && error !== "canceled") console.warn("voiceqna speech: an utterance failed:", error);
    }
    const { clip, last, hooks } = current.part;
    if (last) {
      if (clip.start !== null) clip.end = performance.now();
      else clip.skipped = true;  // nothing of it was heard
      hooks.ended(clip);
    }
    this.next();
  },

  speaking() {
    return Boolean(this.current) || this.queue.length > 0;
  },

  cancel() {
    // Silence at once (■ stop, Record, barge-in, a new turn); nothing queued is spoken.
    this.queue = [];
    const current = this.current;
    this.current = null;
    if (current) current.entry.ended = current.entry.ended || performance.now();
    if (synth && (current || synth.speaking || synth.pending)) synth.cancel();
  },

  watch() {
    // Chrome's faults: a paused queue, an utterance that never starts, one that never ends.
    const current = this.current;
    if (!current) {
      this.next();
      return;
    }
    if (synth.paused) synth.resume();
    const now = performance.now();
    const waited = now - current.since;
    const longest = START_TIMEOUT_MS + (current.part.text.length * 400) / this.rate;
    if ((!current.started && waited > START_TIMEOUT_MS) || waited > longest
        || (current.started && !synth.speaking && !synth.pending && waited > 1000)) {
      const utterance = current.utterance;
      this.finish(utterance, current.started ? "stalled" : "never started");
      if (!this.current) synth.cancel();  // drop what Chrome still holds, unless the next one is queued
    }
  },
};

function split(text) {
  // A sentence in parts of at most MAX_PART_CHARS: at commas first, then at spaces.
  const parts = [];
  for (const piece of text.replace(/\s+/g, " ").trim().split(/(?<=[,，、;:])\s*/)) {
    if (!piece) continue;
    const last = parts[parts.length - 1];
    if (last !== undefined && last.length + 1 + piece.length <= MAX_PART_CHARS) parts[parts.length - 1] = `${last} ${piece}`;
    else parts.push(piece);
  }
  const out = [];
  for (let part of parts) {
    while (part.length > MAX_PART_CHARS) {
      const cut = part.lastIndexOf(" ", MAX_PART_CHARS);
      const at = cut > MAX_PART_CHARS / 2 ? cut : MAX_PART_CHARS;
      out.push(part.slice(0, at).trim());
      part = part.slice(at).trim();
    }
    if (part) out.push(part);
  }
  return out;
}

// --- the panel ---

function render() {
  const mode = element.querySelector("select.voice-mode");
  const names = element.querySelector("select.voice-name");
  const rate = element.querySelector("input.voice-rate");
  const rateValue = element.querySelector(".voice-rate-value");
  const note = element.querySelector(".voice-note");
  const voices = speech.korean();
  if (mode) mode.value = speech.mode;
  if (names) {
    const chosen = speech.voice();
    const options = voices.map((v) => {
      const where = v.localService ? "로컬 (local)" : "🌐 온라인 (network)";
      return `<option value="${escape(v.voiceURI)}">${escape(v.name)} — ${where}</option>`;
    });
    if (!chosen && voices.length) options.unshift('<option value="">— 목소리 고르기 (pick a voice) —</option>');
    const html = options.join("");
    if (names.dataset.options !== html) {
      names.innerHTML = html;
      names.dataset.options = html;
    }
    names.value = chosen ? chosen.voiceURI : "";
    names.disabled = !voices.length;
  }
  if (rate) rate.value = String(speech.rate);
  if (rateValue) rateValue.textContent = `${speech.rate.toFixed(1)}×`;
  element.querySelectorAll(".voice-browser").forEach((label) => { label.hidden = speech.mode !== "browser"; });
  const voice = speech.voice();
  let text = "";
  if (speech.mode === "browser") {
    if (!voices.length) text = NO_VOICE_NOTE;
    else if (!voice) text = PICK_NOTE;
    else if (!voice.localService) text = NETWORK_NOTE;
  }
  if (note) note.textContent = text;
  element.dataset.mode = speech.effective();
  publish();
}

function publish() {
  // The choice goes with each turn the page asks for: the hidden box #voice-mode is its input.
  const box = document.querySelector("#voice-mode textarea, #voice-mode input");
  const mode = speech.effective();
  if (!box || box.value === mode) return;
  box.value = mode;
  box.dispatchEvent(new Event("input", { bubbles: true }));
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

element.addEventListener("change", (event) => {
  const target = event.target;
  if (target.matches("select.voice-mode")) {
    speech.mode = target.value;
    if (speech.mode !== "browser") speech.cancel();
  } else if (target.matches("select.voice-name")) {
    speech.voiceURI = target.value;
  } else if (!target.matches("input.voice-rate")) {
    return;
  }
  speech.save();
  render();
});
element.addEventListener("input", (event) => {
  if (!event.target.matches("input.voice-rate")) return;
  speech.rate = Math.min(2, Math.max(0.5, Number(event.target.value) || 1));
  speech.save();
  render();
});

// --- replaying an answer bubble that has no stored audio (its turn was spoken by the browser) ---

let replays = 0;
function addReplayButtons() {
  if (speech.effective() === "server" && !speech.voice()) return;
  for (const bubble of document.querySelectorAll("#chat .message.bot")) {
    if (bubble.querySelector("audio, .play-btn, .voice-replay") || !bubble.innerText.trim()) continue;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "voice-replay";
    button.title = "다시 듣기 (play again)";
    button.textContent = "🔊";
    bubble.appendChild(button);
  }
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest && event.target.closest("#chat .voice-replay");
  if (!button) return;
  event.preventDefault();
  event.stopPropagation();
  const bubble = button.closest(".message");
  const text = [...bubble.querySelectorAll(".md")].map((part) => part.innerText.trim()).join(" ") || bubble.innerText;
  const reply = await server.voice_sentences({ text });
  const player = window.voiceqnaPlayer;
  if (!player || !reply || !reply.sentences) return;
  const mode = speech.mode;
  if (speech.effective() !== "browser" && speech.voice()) speech.mode = "browser";  // the bubble has no server audio
  player.update({ turn: `replay-${++replays}`, clips: [], spoken: reply.sentences.map((s) => s.spoken), final: true });
  speech.mode = mode;
}, true);

window.voiceqnaSpeech = speech;
speech.load();
if (synth) {
  const changed = () => {
    if (!speech.saved) speech.mode = speech.local().length ? "browser" : "server";
    render();
    addReplayButtons();
  };
  if (synth.addEventListener) synth.addEventListener("voiceschanged", changed);
  else synth.onvoiceschanged = changed;
  setInterval(() => {
    speech.watch();
    publish();  // the box may be drawn after this panel
  }, WATCH_MS);
}
const chat = document.querySelector("#chat");
new MutationObserver(() => addReplayButtons()).observe(chat || document.body, { childList: true, subtree: true });
render();
