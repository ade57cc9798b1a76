"""A stand-in for the browser's Web Speech synthesis, for Chromium tests and benchmarks.

Headless Chromium has no voices, so `STANDIN` (installed with `add_init_script(script(...))`
before the page loads) replaces `speechSynthesis` and `SpeechSynthesisUtterance`: it has the
voices it is given (none until `voiceschanged`, as Chrome loads them late), speaks one utterance
at a time from its own queue, fires `start` after a short engine delay and `end` after a duration
that grows with the text and shrinks with the rate (about 8 syllables a second at rate 1), and
fires `error` ("interrupted" / "canceled") on `cancel()`, as Chrome does. It records every
utterance in `window.__speech.log`: text, lang, voice, rate, when it was queued, started and
ended, and how it ended. Faults on demand: `fail` (texts containing it fail with an error
instead of starting) and `pause_once` (the queue pauses itself after the first start, as
Chrome's sometimes does, until `resume()`).
"""

from __future__ import annotations

import json

LOCAL_KOREAN = {"name": "Yuna", "lang": "ko-KR", "localService": True, "voiceURI": "Yuna (ko-KR)"}
NETWORK_KOREAN = {"name": "Google 한국의", "lang": "ko-KR", "localService": False, "voiceURI": "Google 한국의"}
ENGLISH = {"name": "Samantha", "lang": "en-US", "localService": True, "voiceURI": "Samantha (en-US)"}

STANDIN = """
(() => {
  const config = %s;
  const state = { voices: [], queue: [], current: null, paused: false, pausedOnce: false, listeners: [], log: [] };
  window.__speech = state;
  class Utterance extends EventTarget {
    constructor(text) {
      super();
      Object.assign(this, { text: text || "", lang: "", voice: null, rate: 1, pitch: 1, volume: 1,
                            onstart: null, onend: null, onerror: null });
    }
  }
  const fire = (u, type, extra) => {
    const event = new Event(type);
    Object.assign(event, { utterance: u, elapsedTime: 0 }, extra || {});
    u.dispatchEvent(event);
    const handler = u["on" + type];
    if (handler) handler.call(u, event);
  };
  const next = () => {
    if (state.current || state.paused || !state.queue.length) return;
    const entry = state.queue.shift();
    state.current = entry;
    const u = entry.utterance;
    setTimeout(() => {
      if (state.current !== entry) return;
      if (config.fail && u.text.includes(config.fail)) {
        Object.assign(entry, { ended: performance.now(), how: "synthesis-failed" });
        state.current = null;
        fire(u, "error", { error: "synthesis-failed" });
        return next();
      }
      entry.started = performance.now();
      fire(u, "start");
      if (config.pause_once && !state.pausedOnce) {
        state.pausedOnce = true;
        state.paused = true;
        entry.pausedAt = performance.now();
      }
      const syllables = u.text.replace(/\\s/g, "").length;
      entry.duration = (syllables * config.ms_per_syllable) / (u.rate || 1);
      entry.remaining = entry.duration;
      if (!state.paused) run(entry);
    }, config.start_delay_ms);
  };
  const run = (entry) => {
    entry.resumedAt = performance.now();
    entry.timer = setTimeout(() => {
      if (state.current !== entry) return;
      Object.assign(entry, { ended: performance.now(), how: "end" });
      state.current = null;
      fire(entry.utterance, "end");
      next();
    }, entry.remaining);
  };
  const synth = new EventTarget();
  Object.defineProperties(synth, {
    speaking: { get: () => Boolean(state.current) },
    pending: { get: () => state.queue.length > 0 },
    paused: { get: () => state.paused },
  });
  synth.onvoiceschanged = null;
  synth.getVoices = () => state.voices.slice();
  synth.speak = (u) => {
    const entry = { utterance: u, text: u.text, lang: u.lang, voice: u.voice ? u.voice.name : null, rate: u.rate,
                    queued: performance.now(), started: null, ended: null, how: null };
    state.log.push(entry);
    state.queue.push(entry);
    next();
  };
  synth.cancel = () => {
    const now = performance.now();
    for (const entry of state.queue) {
      Object.assign(entry, { ended: now, how: "canceled" });
      fire(entry.utterance, "error", { error: "canceled" });
    }
    state.queue = [];
    const current = state.current;
    state.current = null;
    state.paused = false;
    if (current) {
      clearTimeout(current.timer);
      Object.assign(current, { ended: now, how: "interrupted" });
      fire(current.utterance, "error", { error: "interrupted" });
    }
  };
  synth.pause = () => { state.paused = true; };
  synth.resume = () => {
    if (!state.paused) return;
    state.paused = false;
    const entry = state.current;
    if (entry && entry.started !== null && entry.timer === undefined) run(entry);
    next();
  };
  const load = () => {
    state.voices = config.voices.map((v) => Object.assign(Object.create(null), { default: false }, v));
    const event = new Event("voiceschanged");
    synth.dispatchEvent(event);
    if (synth.onvoiceschanged) synth.onvoiceschanged(event);
  };
  setTimeout(load, config.voices_after_ms);
  Object.defineProperty(window, "speechSynthesis", { value: synth, configurable: true });
  window.SpeechSynthesisUtterance = Utterance;
})();
"""


def script(voices: list[dict], ms_per_syllable: float = 125.0, start_delay_ms: float = 40.0,
           voices_after_ms: float = 300.0, fail: str = "", pause_once: bool = False) -> str:
    """The init script for a browser whose voices are `voices` (loaded `voices_after_ms` late)."""
    config = {"voices": voices, "ms_per_syllable": ms_per_syllable, "start_delay_ms": start_delay_ms,
              "voices_after_ms": voices_after_ms, "fail": fail, "pause_once": pause_once}
    return STANDIN % json.dumps(config, ensure_ascii=False)
