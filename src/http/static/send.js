// Sending from the browser (staff): files start uploading as soon as they are
// picked, into a draft link made on the first one; "Create link" waits for the
// last upload, then sends the rules and shows the link with a copy button.
//
// Markup contract: form#send-form with data-draft (POST: makes the draft,
// answers {uploads, finish, direct}; direct names the draft's direct-upload
// endpoint when the transfer store takes them) and a hidden csrf field; the upload widget
// (#uploader, static/upload.js) inside; #send-status; #result with
// input#link-url; #recipients with .recipient rows (to_name_<n>, to_email_<n>)
// and #add-recipient. A file removed from the list after it reached the
// server is withdrawn from the draft (POST <draft>/withdraw, by its upload)
// before the link is created.
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
  const withdrawals = [];

  // Finished files taken off the list must not be sent: the server drops them.
  new MutationObserver((changes) => {
    for (const c of changes) {
      for (const n of c.removedNodes) {
        // Any file that reached the server (complete, or finishing as it was
        // removed) is withdrawn by its upload; the server sorts out which.
        if (n.dataset && n.dataset.upload && finishUrl) {
          const url = finishUrl.replace(/finish$/, "withdraw");
          const body = { csrf, upload: n.dataset.upload };
          if (n.dataset.state === "complete" && n.dataset.name) body.name = n.dataset.name;
          const w = { url, body, done: false };
          w.sent = post(url, new URLSearchParams(body)).then(() => { w.done = true; }, () => {});
          withdrawals.push(w);
        }
      }
    }
  }).observe(document.getElementById("queue"), { childList: true });

  const recipients = document.getElementById("recipients");
  const addRecipient = document.getElementById("add-recipient");
  if (recipients && addRecipient) {
    let next = 1;
    addRecipient.addEventListener("click", () => {
      const row = recipients.querySelector(".recipient").cloneNode(true);
      for (const input of row.querySelectorAll("input")) {
        const base = input.name.replace(/_\d+$/, "_" + next);
        row.querySelector("label[for=" + input.id + "]").htmlFor = base;
        input.id = input.name = base;
        input.value = "";
      }
      next++;
      addRecipient.parentElement.before(row);
      row.querySelector("input").focus();
    });
  }

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
        // Straight to the bucket when the page offers it (data-direct="").
        if (j.direct && root.dataset.direct !== undefined) root.dataset.direct = j.direct;
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
      // A withdrawal that failed is tried again; the link waits for them all.
      for (const w of withdrawals) {
        await w.sent;
        if (!w.done) {
          await post(w.url, new URLSearchParams(w.body));
          w.done = true;
        }
      }
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
    // What the server would refuse is said now, not after the last upload.
    for (const input of form.querySelectorAll("input[required]")) {
      if (!input.value.trim()) {
        const label = form.querySelector("label[for=" + input.id + "]");
        say("Fill in: " + (label ? label.firstChild.textContent.trim() : input.name) + ".", true);
        input.focus();
        return;
      }
    }
    wanted = true;
    maybeFinish();
  });
})();
