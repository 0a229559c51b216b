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
//
// With data-direct (the target is an S3 bucket or Azure container taking
// direct uploads, whichever: the page only PUTs to the URLs wharf gives, and
// sha256.js is loaded), files go straight to the bucket: declared at
// data-direct (or, when it is empty, at the data-direct root.wharfPrepare()
// sets), cut into the parts wharf names, each PUT to a presigned URL
// (three in flight, each retried), while the file is read in order and hashed
// piece by piece (WharfSha256); wharf then checks the parts and the hash and
// publishes the file. After a cut the parts the bucket holds are listed and
// skipped. Empty files take the tus path.
(() => {
  "use strict";
  const root = document.getElementById("uploader");
  if (!root) return;
  const maxSize = root.dataset.maxSize ? Number(root.dataset.maxSize) : null;
  const CHUNK = Number(root.dataset.chunk || 8 * 1024 * 1024);
  const PARALLEL = 2;
  const RETRIES = 8;
  // data-direct="" (the staff send page): the endpoint comes with the draft.
  const DIRECT_ON = root.dataset.direct !== undefined && !!window.WharfSha256;
  let DIRECT = root.dataset.direct || null;
  const PART_PARALLEL = 3;
  const PART_RETRIES = 4;
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
    it.status.textContent = it.checking
      ? "checking…"
      : it.state === "uploading" && it.file.size && it.offset >= it.file.size ? "finishing…" : labels[it.state];
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
    if (it.xhrs) for (const x of it.xhrs) x.abort();
    it.cancelled = true;
    if (it.url && it.state !== "complete") {
      const headers = it.direct ? { "Wharf-Direct": "1" } : { "Tus-Resumable": "1.0.0" };
      fetch(it.url, { method: "DELETE", headers, credentials: "same-origin" }).catch(() => {});
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

  // --- Direct uploads (straight to the bucket) ---

  // A JSON request to wharf's direct endpoints: {status, v}.
  async function api(method, path, body) {
    const headers = { "Wharf-Direct": "1" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(DIRECT + path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let v = {};
    try { v = await r.json(); } catch (_) { /* not JSON */ }
    return { status: r.status, v };
  }

  function apiRefusal(status, v) {
    const e = new Error((v && v.error) || "refused (" + status + ")");
    e.final = [400, 403, 404, 409, 410, 413, 422].includes(status);
    return e;
  }

  // PUTs one part to its presigned URL (no cookies, no custom header);
  // `onProgress` gets the bytes sent so far.
  function putPart(url, body, onProgress, it) {
    const xhr = new XMLHttpRequest();
    const done = new Promise((resolve, reject) => {
      // S3 answers 200 to a part, Azure 201 to a block, GCS 200/201 to a
      // session given its whole part.
      xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(new Error("the bucket answered " + xhr.status)));
      xhr.onerror = () => reject(new Error("network error"));
      xhr.ontimeout = () => reject(new Error("timed out"));
      xhr.onabort = () => reject(new Error("aborted"));
    });
    xhr.open("PUT", url);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    it.xhrs.add(xhr);
    xhr.send(body);
    return done.finally(() => it.xhrs.delete(xhr));
  }

  // Sends part n (its bytes in hand): a fresh URL for each try.
  async function sendPart(it, n, bytes) {
    for (let attempt = 0; ; attempt++) {
      if (it.cancelled) throw new Error("cancelled");
      try {
        const { status, v } = await api("POST", "/" + it.key + "/urls", { parts: [n] });
        if (status !== 200) throw apiRefusal(status, v);
        await putPart(v.urls[String(n)], bytes, (sent) => {
          it.inflight.set(n, sent);
          progress(it);
        }, it);
        it.inflight.delete(n);
        it.sent += bytes.byteLength;
        progress(it);
        return;
      } catch (e) {
        it.inflight.delete(n);
        if (e.final || attempt >= PART_RETRIES) throw e;
        await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
      }
    }
  }

  function progress(it) {
    let inflight = 0;
    for (const v of it.inflight.values()) inflight += v;
    it.offset = Math.min(it.file.size, it.sent + inflight);
    const secs = (performance.now() - it.started) / 1000;
    if (secs > 0.2) it.speed = (it.offset - it.startedAt) / secs;
    render(it);
  }

  // One attempt at a direct upload: declare (once), learn which parts the
  // bucket holds, read the file in order (hashing it) and send the others,
  // three at a time; then ask wharf to check and publish.
  async function directOnce(it) {
    if (!DIRECT && root.wharfPrepare) {
      await root.wharfPrepare();
      DIRECT = root.dataset.direct || null;
    }
    if (!DIRECT) throw Object.assign(new Error("nowhere to upload"), { final: true });
    if (!it.key) {
      const { status, v } = await api("POST", "", { name: it.file.name, size: it.file.size });
      if (status !== 201) throw apiRefusal(status, v);
      taken++;
      showLeft();
      it.key = v.key;
      it.partSize = v.part_size;
      it.parts = v.parts;
      it.url = new URL(DIRECT + "/" + it.key, location.href).href;
      it.row.dataset.upload = it.url;
    }
    const st = await api("GET", "/" + it.key);
    if (st.status !== 200) throw apiRefusal(st.status, st.v);
    if (st.v.state === "complete") return finishDirect(it, st.v);
    if (st.v.state === "failed" || st.v.state === "cancelled") {
      throw Object.assign(new Error(st.v.error || "this upload was cancelled"), { final: true });
    }
    if (st.v.state !== "verifying") {
      const held = new Map((st.v.done || []).map((p) => [p.number, p.size]));
      const hash = new window.WharfSha256();
      it.sent = 0;
      it.inflight = new Map();
      it.started = performance.now();
      it.startedAt = 0;
      const running = new Set();
      let failure = null;
      for (let n = 1; n <= it.parts; n++) {
        if (it.cancelled || failure) break;
        const start = (n - 1) * it.partSize;
        const end = Math.min(start + it.partSize, it.file.size);
        // Read once: the same bytes are hashed and sent.
        const bytes = await it.file.slice(start, end).arrayBuffer();
        hash.update(bytes);
        if (held.get(n) === end - start) {
          it.sent += end - start;
          it.startedAt = it.sent;
          progress(it);
          continue;
        }
        while (running.size >= PART_PARALLEL) await Promise.race(running);
        const p = sendPart(it, n, bytes).catch((e) => { failure = failure || e; });
        const tracked = p.finally(() => running.delete(tracked));
        running.add(tracked);
      }
      await Promise.all(running);
      if (it.cancelled) return;
      if (failure) throw failure;
      it.sha256Local = hash.hex();
    } else if (!it.sha256Local) {
      // Checking already (a retried completion): wait for its end.
      return waitDirect(it);
    }
    it.checking = true;
    render(it);
    const { status, v } = await api("POST", "/" + it.key + "/complete", { sha256: it.sha256Local });
    if (status === 200) return finishDirect(it, v);
    if (status === 202) return waitDirect(it);
    it.checking = false;
    const e = apiRefusal(status, v);
    // Parts missing: the upload stays open and the next try sends them.
    const now = await api("GET", "/" + it.key);
    if (now.status === 200 && now.v.state === "open") e.final = false;
    throw e;
  }

  // Polls until wharf has checked and published (or refused) the upload.
  async function waitDirect(it) {
    it.checking = true;
    render(it);
    for (;;) {
      await new Promise((r) => setTimeout(r, 1000));
      if (it.cancelled) return;
      const { status, v } = await api("GET", "/" + it.key);
      if (status !== 200) throw apiRefusal(status, v);
      if (v.state === "complete") return finishDirect(it, v);
      if (v.state === "verifying") continue;
      it.checking = false;
      throw Object.assign(new Error(v.error || "the upload was refused"), { final: v.state !== "open" });
    }
  }

  function finishDirect(it, v) {
    it.checking = false;
    it.offset = it.file.size;
    it.state = "complete";
    it.savedAs = v.name || it.file.name;
    it.sha256 = v.sha256 || it.sha256Local;
    it.row.dataset.sha256 = it.sha256 || "";
    it.row.dataset.name = it.savedAs;
    it.row.dataset.direct = "1";
  }

  async function run(it) {
    it.state = "uploading";
    render(it);
    changed();
    if (DIRECT_ON && it.file.size > 0) return runDirect(it);
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

  async function runDirect(it) {
    it.direct = true;
    it.xhrs = it.xhrs || new Set();
    while (!it.cancelled && it.state === "uploading") {
      try {
        await directOnce(it);
        it.tries = 0;
      } catch (e) {
        if (it.cancelled) return;
        it.tries++;
        if (e.final || it.tries > RETRIES) {
          it.state = "failed";
          it.error = e.message;
          // Refused for good: wharf removed it and gave its use back; a
          // retry starts a new one.
          if (e.final && it.key) {
            it.key = null;
            it.url = null;
            taken--;
            showLeft();
          }
        } else {
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
