// Runs once when the page has loaded (Gradio's `js`). Browsers give the microphone only to
// secure pages: HTTPS, or http://localhost. Opened over plain HTTP from another machine,
// `navigator.mediaDevices` is missing and recording cannot work: say so, and how to fix it.
// Pressing Record also silences the answer still playing (assets/player.js): the person is
// about to speak.
() => {
  document.addEventListener("click", (event) => {
    if (event.target.closest && event.target.closest("#question-audio .record-button")) window.voiceqnaPlayer?.stop();
  }, true);
  const micBlocked = !window.isSecureContext || !(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  document.documentElement.dataset.micBlocked = String(micBlocked);
  if (!micBlocked) return;
  const show = (tries) => {
    const box = document.querySelector("#mic-warning .mic-warning-box");
    if (!box) {
      if (tries > 0) setTimeout(() => show(tries - 1), 200);
      return;
    }
    const https = new URL(window.location.href);
    https.protocol = "https:";
    for (const link of box.querySelectorAll("a.https-link")) {
      link.href = https.href;
      link.textContent = https.origin;
    }
    const local = new URL(window.location.href);
    local.hostname = "localhost";
    for (const code of box.querySelectorAll(".localhost-url")) code.textContent = local.origin;
    box.classList.add("visible");
  };
  show(50);
}
