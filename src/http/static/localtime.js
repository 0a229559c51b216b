// Times in the viewer's local time: every <time datetime> written by the
// server (in UTC, which stays the text without script and the hover title)
// is shown in the browser's time zone. Loaded as a file: the pages allow no
// inline script.
(() => {
  const fmt = new Intl.DateTimeFormat(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    timeZoneName: "short",
  });
  for (const el of document.querySelectorAll("time[datetime]")) {
    const at = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(at.getTime())) continue;
    if (!el.title) el.title = el.textContent;
    el.textContent = fmt.format(at);
    el.dataset.local = "1";
  }
})();
