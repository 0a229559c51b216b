// Sending from the browser (staff): files start uploading as soon as they are
// picked, into a draft link made on the first one; "Create link" waits for the
// last upload, then sends the rules and shows the link with a copy button.
//
// Markup contract: form#send-form with data-draft (POST: makes the draft,
// answers {uploads, finish}) and a hidden csrf field; the upload widget
// (#uploader, static/upload.js) inside; #send-status; #result with
// input#link-url.
(() => {
  "use strict";
  const form = document.getElementById("send-form");
  const root = document.getElementById("uploader");
  if (!form || !root) return;
  const status = document.getElementById("send-status");
  const csrf = form.querySelector("input[name=csrf]").value;
  let draft = null;
  let finishUrl = null;
  let wanted = false;
  let finishing = false;
  let counts = { queued: 0, running: 0, complete: 0, failed: 0 };

  const post = async (url, body) => {
    const r = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body,
    });
    const j = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(j.error || "refused (" + r.status + ")");
    return j;
  };

  root.wharfPrepare = () => {
    if (!draft) {
      draft = post(form.dataset.draft, new URLSearchParams({ csrf })).then((j) => {
        root.dataset.endpoint = j.uploads;
        finishUrl = j.finish;
        return j.uploads;
      }, (e) => { draft = null; throw e; });
    }
    return draft;
  };

  const say = (text, error) => {
    status.textContent = text;
    status.className = error ? "err" : "muted";
  };

  async function finish() {
    if (finishing) return;
    finishing = true;
    say("Creating the link…");
    try {
      const body = new URLSearchParams(new FormData(form));
      const j = await post(finishUrl, body);
      const result = document.getElementById("result");
      document.getElementById("link-url").value = j.url;
      result.hidden = false;
      form.hidden = true;
      say("");
      result.scrollIntoView();
    } catch (e) {
      finishing = false;
      wanted = false;
      say(e.message, true);
    }
  }

  function maybeFinish() {
    if (!wanted) return;
    if (counts.running || counts.queued) {
      say("The link will be created when the last file is uploaded (" +
        (counts.running + counts.queued) + " to go).");
    } else if (counts.failed) {
      wanted = false;
      say("Some files failed: retry or remove them, then create the link.", true);
    } else if (counts.complete && finishUrl) {
      finish();
    } else {
      wanted = false;
      say("Add at least one file.", true);
    }
  }

  root.addEventListener("uploads-changed", (e) => {
    counts = e.detail;
    maybeFinish();
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    wanted = true;
    maybeFinish();
  });
})();
