// Live countdowns: an element with data-expires (epoch milliseconds) shows the
// time left, in the words the server wrote it with, updated every second. Loaded
// as a file: the pages allow no inline script.
(() => {
  const left = (ms) => {
    if (ms <= 0) return "expired";
    const s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d > 0) return `in ${d} d ${h} h`;
    if (h > 0) return `in ${h} h ${m} min`;
    return `in ${m} min ${s % 60} s`;
  };
  const tick = () => {
    const now = Date.now();
    for (const el of document.querySelectorAll("[data-expires]")) {
      const at = Number(el.dataset.expires);
      if (Number.isFinite(at)) el.textContent = left(at - now);
    }
  };
  tick();
  setInterval(tick, 1000);
})();
