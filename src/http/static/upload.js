// The upload page: files dropped or picked are queued, sent in chunks with the
// tus 1.0 protocol (POST to declare, PATCH per chunk, HEAD to learn where to
// resume after a cut connection), each with its own progress bar, speed and
// state. The page stays usable while uploads run; two run at a time.
//
// Markup contract: an element #uploader with data-endpoint (where uploads are
// declared; or a root.wharfPrepare() that returns it, for pages that make it on
// first use), optional data-max-size / data-max-files, containing #pick (file
// input), #drop (drop zone) and #queue (list). It fires "uploads-changed" on
// #uploader with {queued, running, complete, failed} whenever a state changes.
// Optional: an element #left with data-left (the uses left when the page was
// made) is kept counting down as uploads take uses; data-complete="kept" on
// #uploader says a finished file stays with the sender (an upload request),
// so its button only clears the list and says so.
(() => {
  "use strict";
  const root = document.getElementById("uploader");
  if (!root) return;
  const maxSize = root.dataset.maxSize ? Number(root.dataset.maxSize) : null;
  const CHUNK = Number(root.dataset.chunk || 8 * 1024 * 1024);
  const PARALLEL = 2;
  const RETRIES = 8;
  const queue = document.getElementById("queue");
  const items = [];
  const kept = root.dataset.complete === "kept";
  // Each declared upload takes one of the link's uses; one cancelled before it
  // completed gives it back, a finished one keeps it (even if cleared here).
  const leftEl = document.getElementById("left");
  const leftAtLoad = leftEl ? Number(leftEl.dataset.left) : null;
  let taken = 0;
  const showLeft = () => {
    if (leftEl) leftEl.textContent = String(Math.max(0, leftAtLoad - taken));
  };

  const human = (n) => {
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  };
  const b64 = (s) => btoa(String.fromCharCode(...new TextEncoder().encode(s)));
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  function counts() {
    const c = { queued: 0, running: 0, complete: 0, failed: 0 };
    for (const it of items) {
      if (it.state === "queued") c.queued++;
      else if (it.state === "uploading") c.running++;
      else if (it.state === "complete") c.complete++;
      else if (it.state === "failed") c.failed++;
    }
    return c;
  }

  function render(it) {
    const pct = it.file.size ? Math.floor((it.offset / it.file.size) * 100) : 100;
    it.bar.value = it.state === "complete" ? 100 : pct;
    it.bar.textContent = pct + "%";
    it.pct.textContent = (it.state === "complete" ? 100 : pct) + "%";
    it.row.dataset.state = it.state;
    const labels = { queued: "queued", uploading: "uploading", complete: "complete", failed: "failed" };
    it.status.textContent =
      it.state === "uploading" && it.file.size && it.offset >= it.file.size ? "finishing…" : labels[it.state];
    let info = human(it.offset) + " of " + human(it.file.size);
    if (it.state === "uploading" && it.speed) info += " · " + human(it.speed) + "/s";
    if (it.state === "complete") {
      info = human(it.file.size) + (it.savedAs && it.savedAs !== it.file.name ? " · saved as " + it.savedAs : "");
      if (it.sha256) it.hash.textContent = "SHA-256 " + it.sha256;
    }
    if (it.state === "failed") info = it.error || "failed";
    it.info.textContent = info;
    it.retry.hidden = it.state !== "failed";
    if (it.state === "uploading") it.remove.textContent = "Cancel";
    else if (it.state === "complete" && kept) {
      it.remove.textContent = "Clear from this list";
      it.remove.title = "The sender has received this file; clearing it here does not take it back.";
      it.info.textContent = info + " · received by the sender";
    } else it.remove.textContent = "Remove";
  }

  function changed() {
    root.dispatchEvent(new CustomEvent("uploads-changed", { detail: counts() }));
    pump();
  }

  function add(file) {
    const it = { file, state: "queued", offset: 0, url: null, xhr: null, tries: 0, speed: 0 };
    it.row = el("li", "item");
    const head = el("div", "head");
    head.append(el("span", "name", file.name), it.status = el("span", "state"));
    it.bar = el("progress");
    it.bar.max = 100;
    it.pct = el("span", "pct", "0%");
    it.info = el("div", "info");
    it.hash = el("div", "hash");
    const actions = el("div", "actions");
    it.retry = el("button", "retry", "Retry");
    it.retry.type = "button";
    it.remove = el("button", "remove", "Remove");
    it.remove.type = "button";
    actions.append(it.retry, it.remove);
    const barLine = el("div", "barline");
    barLine.append(it.bar, it.pct);
    it.row.append(head, barLine, it.info, it.hash, actions);
    queue.append(it.row);
    it.retry.addEventListener("click", () => { it.tries = 0; it.state = "queued"; it.error = null; render(it); changed(); });
    it.remove.addEventListener("click", () => drop(it));
    if (maxSize !== null && file.size > maxSize) {
      it.state = "failed";
      it.error = "too large: this link accepts files up to " + human(maxSize);
      it.retry.hidden = true;
    }
    items.push(it);
    render(it);
    if (it.state === "failed") it.retry.hidden = true;
  }

  function drop(it) {
    if (it.xhr) it.xhr.abort();
    it.cancelled = true;
    if (it.url && it.state !== "complete") {
      fetch(it.url, { method: "DELETE", headers: { "Tus-Resumable": "1.0.0" }, credentials: "same-origin" }).catch(() => {});
      taken--;
      showLeft();
    }
    items.splice(items.indexOf(it), 1);
    it.row.remove();
    changed();
  }

  // One request: the XHR (to abort it) and a promise of its completion;
  // `onProgress` gets the bytes sent so far.
  function request(method, url, headers, body, onProgress) {
    const xhr = new XMLHttpRequest();
    const done = new Promise((resolve, reject) => {
      xhr.onload = () => resolve(xhr);
      xhr.onerror = () => reject(new Error("network error"));
      xhr.ontimeout = () => reject(new Error("timed out"));
      xhr.onabort = () => reject(new Error("aborted"));
    });
    xhr.open(method, url);
    xhr.withCredentials = true;
    xhr.setRequestHeader("Tus-Resumable", "1.0.0");
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    if (onProgress) xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.send(body === undefined ? null : body);
    return { xhr, done };
  }

  async function declare(it) {
    // A page may create the place uploads go on first use (root.wharfPrepare).
    const endpoint = root.dataset.endpoint || (root.wharfPrepare && (await root.wharfPrepare()));
    if (!endpoint) throw Object.assign(new Error("nowhere to upload"), { final: true });
    const xhr = await request("POST", endpoint, {
      "Upload-Length": String(it.file.size),
      "Upload-Metadata": "filename " + b64(it.file.name) + ",filetype " + b64(it.file.type || "application/octet-stream"),
    }).done;
    if (xhr.status !== 201) throw refusal(xhr);
    taken++;
    showLeft();
    it.url = new URL(xhr.getResponseHeader("Location"), location.href).href;
    it.row.dataset.upload = it.url;
    if (it.file.size === 0) finish(it, xhr);
  }

  function refusal(xhr) {
    const e = new Error(xhr.responseText || "refused (" + xhr.status + ")");
    // Refusals that a retry cannot fix stop the item at once.
    e.final = [400, 403, 404, 409, 410, 413, 415].includes(xhr.status);
    return e;
  }

  async function where(it) {
    const xhr = await request("HEAD", it.url, {}).done;
    if (xhr.status !== 200) throw refusal(xhr);
    return Number(xhr.getResponseHeader("Upload-Offset"));
  }

  function finish(it, xhr) {
    it.offset = it.file.size;
    it.state = "complete";
    const name = xhr.getResponseHeader("Wharf-File-Name");
    it.savedAs = name ? decodeURIComponent(name) : it.file.name;
    it.sha256 = xhr.getResponseHeader("Wharf-Sha256");
    it.row.dataset.sha256 = it.sha256 || "";
    it.row.dataset.name = it.savedAs;
  }

  async function run(it) {
    it.state = "uploading";
    render(it);
    changed();
    while (!it.cancelled && it.state === "uploading") {
      try {
        if (!it.url) await declare(it);
        else it.offset = await where(it);
        while (it.state === "uploading" && !it.cancelled) {
          const end = Math.min(it.offset + CHUNK, it.file.size);
          const started = performance.now();
          const base = it.offset;
          const patch = request("PATCH", it.url, {
            "Upload-Offset": String(it.offset),
            "Content-Type": "application/offset+octet-stream",
          }, it.file.slice(it.offset, end), (sent) => {
            it.offset = base + sent;
            const secs = (performance.now() - started) / 1000;
            if (secs > 0.2) it.speed = sent / secs;
            render(it);
          });
          it.xhr = patch.xhr;
          const xhr = await patch.done;
          it.xhr = null;
          if (xhr.status === 409 && xhr.getResponseHeader("Upload-Offset")) {
            it.offset = Number(xhr.getResponseHeader("Upload-Offset"));
            continue;
          }
          if (xhr.status !== 204) throw refusal(xhr);
          it.offset = Number(xhr.getResponseHeader("Upload-Offset"));
          it.tries = 0;
          if (it.offset >= it.file.size) finish(it, xhr);
          render(it);
        }
      } catch (e) {
        it.xhr = null;
        if (it.cancelled) return;
        it.tries++;
        if (e.final || it.tries > RETRIES) {
          it.state = "failed";
          it.error = e.message;
        } else {
          // Back off, then ask the server where to continue.
          it.error = "connection lost, resuming…";
          it.info.textContent = it.error;
          await new Promise((r) => setTimeout(r, Math.min(30000, 500 * 2 ** it.tries)));
        }
      }
    }
    render(it);
    changed();
  }

  function pump() {
    let running = items.filter((i) => i.state === "uploading").length;
    for (const it of items) {
      if (running >= PARALLEL) break;
      if (it.state === "queued") {
        running++;
        run(it);
      }
    }
  }

  const pick = document.getElementById("pick");
  pick.addEventListener("change", () => {
    for (const f of pick.files) add(f);
    pick.value = "";
    changed();
  });
  const zone = document.getElementById("drop");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    for (const f of e.dataTransfer.files) add(f);
    changed();
  });
  window.addEventListener("beforeunload", (e) => {
    const c = counts();
    if (c.running || c.queued) { e.preventDefault(); e.returnValue = ""; }
  });
})();
