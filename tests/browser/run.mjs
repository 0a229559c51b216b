// Browser scenarios for tests/browser.rs: drives Debian's Chromium (headless)
// through playwright-core, prints one JSON line with what the page showed, and
// saves screenshots. Usage: node run.mjs SCENARIO '<json options>'.
import { chromium } from "playwright-core";
import path from "node:path";

const [scenario, raw] = process.argv.slice(2);
const opts = JSON.parse(raw || "{}");
const shot = (page, name) =>
  opts.shots ? page.screenshot({ path: path.join(opts.shots, name), fullPage: true }) : null;

// A page at desktop (1280) and phone (390) width: NAME.png and NAME-phone.png.
async function shots(page, name) {
  if (!opts.shots) return;
  const size = page.viewportSize();
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: path.join(opts.shots, name + ".png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(opts.shots, name + "-phone.png"), fullPage: true });
  await page.setViewportSize(size);
}

// A link URL as this test reaches it (the configured base URL is not served).
const reach = (u) => (opts.linkBase ? opts.linkBase + u.slice(u.indexOf("/l/")) : u);

async function signIn() {
  await page.goto(opts.base + "/app");
  await page.fill("#name", opts.user);
  await page.fill("#pw", opts.password);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
}

// Opens the dashboard's "+ Create" menu and follows one of its entries.
async function create(href, shotName) {
  await page.goto(opts.base + "/app");
  await page.click("details.create summary");
  if (shotName) await shots(page, shotName);
  await Promise.all([page.waitForNavigation(), page.click("details.create a[href='" + href + "']")]);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // Root in CI containers: Chromium's sandbox needs user namespaces.
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
// Messages the browser logs as errors (failed requests among them), and
// uncaught exceptions of the page's scripts.
const consoleErrors = [];
const pageErrors = [];
page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
page.on("pageerror", (e) => pageErrors.push(String(e)));

// Signs `p` in as `user` (a page of its own browser context).
async function signInAs(p, user, password) {
  await p.goto(opts.base + "/app");
  await p.fill("#name", user);
  await p.fill("#pw", password);
  await Promise.all([p.waitForNavigation(), p.click("button[type=submit]")]);
}

// A visitor in a fresh browser (no cookies): opens `url`, returns the page,
// its HTTP status and what it shows.
async function visit(url) {
  const visitor = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const vpage = await visitor.newPage();
  vpage.on("pageerror", (e) => pageErrors.push(String(e)));
  const r = await vpage.goto(url);
  return {
    context: visitor,
    page: vpage,
    status: r.status(),
    text: await vpage.textContent("body"),
    password: await vpage.isVisible("input[name=password]"),
    email: await vpage.isVisible("input[name=email]"),
  };
}

// Clicks a button of the link's page that posts and comes back; its message.
async function act(p, action) {
  await Promise.all([p.waitForNavigation(), p.click("form[action$='/" + action + "'] button[type=submit]")]);
  return p.textContent("p.flash");
}

// Waits for every queued file to end (complete or failed), noting the highest
// progress each reached; takes a screenshot while the first upload runs.
async function uploadAll(files, shotName) {
  await page.setInputFiles("#pick", files);
  let shotTaken = !shotName;
  const deadline = Date.now() + (opts.timeoutMs || 300000);
  for (;;) {
    const states = await page.$$eval("#queue .item", (rows) =>
      rows.map((r) => ({
        name: r.querySelector(".name").textContent,
        state: r.dataset.state,
        pct: r.querySelector(".pct").textContent,
        bar: Number(r.querySelector("progress").value),
        sha256: r.dataset.sha256 || null,
        direct: r.dataset.direct === "1",
        info: r.querySelector(".info").textContent,
      })));
    if (!shotTaken && states.some((s) => s.state === "uploading" && s.bar > 0 && s.bar < 100)) {
      await shot(page, shotName);
      shotTaken = true;
    }
    if (states.length === files.length && states.every((s) => s.state === "complete" || s.state === "failed")) {
      return states;
    }
    if (Date.now() > deadline) throw new Error("uploads did not finish: " + JSON.stringify(states));
    await page.waitForTimeout(50);
  }
}

const out = { scenario };
try {
  if (scenario === "upload") {
    await page.goto(opts.url);
    out.sha256Vector = await page.evaluate(() =>
      window.WharfSha256 ? new window.WharfSha256().update(new TextEncoder().encode("abc")).hex() : null);
    if (opts.name) {
      // Named pages: desktop and phone width, once done.
      out.items = await uploadAll(opts.files, null);
      await shots(page, opts.name);
    } else {
      await shot(page, "upload-request.png");
      out.items = await uploadAll(opts.files, opts.progressShot);
      await shot(page, "upload-request-done.png");
    }
  } else if (scenario === "password-download") {
    await page.goto(opts.url);
    out.formShown = await page.isVisible("input[name=password]");
    await shot(page, "password-form.png");
    await page.fill("input[name=password]", opts.password);
    await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
    await shot(page, "download-landing.png");
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.click("a.btn[aria-label^='Download ']"),
    ]);
    out.suggested = download.suggestedFilename();
    out.saved = path.join(opts.downloadDir, out.suggested);
    await download.saveAs(out.saved);
  } else if (scenario === "staff-send-direct") {
    // A send whose files go straight to the transfer store's bucket.
    await signIn();
    await page.goto(opts.base + "/app/send");
    await page.fill("#title", opts.title);
    out.sha256Vector = await page.evaluate(() =>
      window.WharfSha256 ? new window.WharfSha256().update(new TextEncoder().encode("abc")).hex() : null);
    out.items = await uploadAll(opts.files, null);
    await shots(page, "staff-send-direct");
    await page.click("#create");
    await page.waitForSelector("#result:not([hidden])", { timeout: 60000 });
    out.url = await page.inputValue("#link-url");
  } else if (scenario === "staff-send") {
    await page.goto(opts.base + "/app");
    await page.fill("#name", opts.user);
    await page.fill("#pw", opts.password);
    await shot(page, "staff-login.png");
    await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
    await shots(page, "staff-dashboard");
    await create("/app/send", "staff-create-menu");
    await page.fill("#title", opts.title);
    await page.fill("#to_name_0", "Bob Buyer");
    await page.fill("#to_email_0", "bob@example.com");
    await page.click("#add-recipient");
    await page.fill("#to_name_1", "Carol Counsel");
    await page.fill("#to_email_1", "carol@example.com");
    await page.fill("#message", "Here are the files we discussed.");
    await page.selectOption("#expires", "3d");
    // A file picked by mistake: it finishes uploading, then is removed.
    if (opts.mistake) {
      const items = await uploadAll([opts.mistake], null);
      if (items[0].state !== "complete") throw new Error("the mistaken file did not upload");
      await page.click("#queue .item .remove");
    }
    await page.setInputFiles("#pick", opts.files);
    await shots(page, "staff-send");
    await page.click("#create");
    await page.waitForSelector("#result:not([hidden])", { timeout: opts.timeoutMs || 120000 });
    out.url = await page.inputValue("#link-url");
    out.items = await page.$$eval("#queue .item", (rows) =>
      rows.map((r) => ({ name: r.querySelector(".name").textContent, state: r.dataset.state, sha256: r.dataset.sha256 })));
    await shots(page, "staff-send-done");
    await page.goto(opts.base + "/app");
    await shots(page, "staff-dashboard-after");
  } else if (scenario === "staff-share") {
    await signIn();
    await create("/app/files", null);
    await shots(page, "staff-files");
    for (const folder of [].concat(opts.folder)) {
      await Promise.all([page.waitForNavigation(), page.click("td.name a:text('" + folder + "')")]);
    }
    await page.check("input[type=checkbox][value='" + opts.file + "']");
    await shots(page, "staff-files-folder");
    await Promise.all([page.waitForNavigation(), page.click("#share-pick button[type=submit]")]);
    await page.fill("#title", opts.title);
    await page.fill("#to", "bob@example.com");
    await page.fill("#message", "The report, as promised.");
    await page.selectOption("#expires", "1w");
    await shots(page, "staff-share");
    await Promise.all([page.waitForNavigation(), page.click("form[action='/app/share'] button[type=submit]")]);
    out.url = await page.inputValue("#link-url");
    await shots(page, "staff-created");
    // The recipient, in a browser of their own.
    const visitor = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 800 } });
    const vpage = await visitor.newPage();
    vpage.on("pageerror", (e) => pageErrors.push(String(e)));
    await vpage.goto(reach(out.url));
    const [download] = await Promise.all([
      vpage.waitForEvent("download"),
      vpage.click("a.btn[aria-label^='Download ']"),
    ]);
    out.suggested = download.suggestedFilename();
    out.saved = path.join(opts.downloadDir, out.suggested);
    await download.saveAs(out.saved);
    await visitor.close();
    // The link's page: its URL can be copied again, its rules edited.
    await page.goto(opts.base + "/app");
    await Promise.all([page.waitForNavigation(), page.click("a[href^='/app/links/']")]);
    out.detailUrl = await page.inputValue("#url");
    await shots(page, "staff-detail");
  } else if (scenario === "staff-request") {
    await signIn();
    await create("/app/request", null);
    await Promise.all([page.waitForNavigation(), page.click("td.name a:text('" + opts.folder + "')")]);
    await shots(page, "staff-request-pick");
    await Promise.all([page.waitForNavigation(), page.click("a.btn:text('Use this folder')")]);
    out.folder = await page.inputValue("#folder");
    await page.fill("#customer", "ACME Ltd");
    await page.fill("#to", "buyer@acme.example");
    await page.fill("#message", "Please upload the signed contracts.");
    await page.fill("#max_files", "3");
    await shots(page, "staff-request");
    // Scrolled to first, as a person does: the page is taller than the window.
    await page.$eval("form#request-form button[type=submit]", (b) => b.scrollIntoView({ block: "center" }));
    await Promise.all([page.waitForNavigation(), page.click("form#request-form button[type=submit]")]);
    out.url = await page.inputValue("#link-url");
    // The customer fills the request.
    await page.goto(reach(out.url));
    await shots(page, "request-visitor");
    out.items = await uploadAll(opts.files, null);
  } else if (scenario === "staff-notifications") {
    // The bell's count on the dashboard, polled until it reaches `want`.
    const bellCount = async (want) => {
      const deadline = Date.now() + 15000;
      for (;;) {
        await page.goto(opts.base + "/app");
        const n = await page.$eval("a.bell", (a) => (a.querySelector(".count") || { textContent: "0" }).textContent);
        if (n === String(want) || Date.now() > deadline) return n;
        await page.waitForTimeout(300);
      }
    };
    const feed = () => page.$$eval("ul.feed li", (rows) =>
      rows.map((r) => ({ kind: r.dataset.kind, unread: r.classList.contains("unread"), text: r.querySelector(".what").textContent })));
    // A visitor downloads the shared file, in a browser of their own.
    const visitorDownload = async () => {
      const visitor = await browser.newContext({ acceptDownloads: true });
      const vpage = await visitor.newPage();
      vpage.on("pageerror", (e) => pageErrors.push(String(e)));
      await vpage.goto(opts.shareUrl);
      const [download] = await Promise.all([
        vpage.waitForEvent("download"),
        vpage.click("a.btn[aria-label^='Download ']"),
      ]);
      await download.saveAs(path.join(opts.downloadDir, "got-" + Date.now()));
      await visitor.close();
    };
    await signIn();
    out.bellBefore = await bellCount(0);
    await visitorDownload();
    // The customer uploads a file to the request: the "left" counter follows,
    // and the finished file's button says the sender keeps it.
    const customer = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const cpage = await customer.newPage();
    cpage.on("pageerror", (e) => pageErrors.push(String(e)));
    cpage.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
    await cpage.goto(opts.requestUrl);
    out.leftBefore = await cpage.textContent("#left");
    await cpage.setInputFiles("#pick", opts.files);
    await cpage.waitForSelector("#queue .item[data-state=complete]", { timeout: 60000 });
    out.leftAfter = await cpage.textContent("#left");
    out.removeLabel = await cpage.textContent("#queue .item .remove");
    if (opts.shots) {
      for (const [w, h, suffix] of [[1280, 800, ""], [390, 844, "-phone"]]) {
        await cpage.setViewportSize({ width: w, height: h });
        await cpage.screenshot({ path: path.join(opts.shots, "request-upload-done" + suffix + ".png"), fullPage: true });
      }
    }
    await customer.close();
    out.bellAfter = await bellCount(2);
    await shots(page, "staff-bell");
    await page.click("a.bell");
    await page.waitForSelector("ul.feed");
    out.feed = await feed();
    await shots(page, "staff-notifications");
    await Promise.all([page.waitForNavigation(), page.click("button:text('Mark all read')")]);
    out.unreadAfterMark = await page.textContent("#unread");
    out.bellAfterMark = await page.$eval("a.bell", (a) => (a.querySelector(".count") || { textContent: "0" }).textContent);
    // Preferences: a display name, and download mails switched off.
    await page.goto(opts.base + "/app/preferences");
    out.downloadMailDefault = await page.isChecked("#mail_downloaded");
    await page.fill("#display_name", "Hana Hart");
    await page.uncheck("#mail_downloaded");
    await Promise.all([page.waitForNavigation(), page.click("form.prefs button[type=submit]")]);
    out.prefsFlash = await page.textContent("p.flash");
    out.downloadMailAfter = await page.isChecked("#mail_downloaded");
    await shots(page, "staff-preferences");
    // Another download: in the feed, unread, but (Rust checks) not mailed.
    await visitorDownload();
    out.bellFinal = await bellCount(1);
    await page.goto(opts.base + "/app/notifications");
    out.feedFinal = await feed();
    // The mail the recipient got, as a mail client shows its HTML part.
    if (opts.mailHtml && opts.shots) {
      await page.goto("file://" + opts.mailHtml);
      await shots(page, "mail-link");
    }
  } else if (scenario === "staff-send-policy") {
    // Sending under a [links] policy: the form says what the policy wants.
    await signIn();
    await create("/app/send", null);
    out.passwordRequired = await page.$eval("#password", (i) => i.required);
    out.passwordLabel = await page.textContent("label[for=password]");
    out.expiryChoices = await page.$$eval("#expires option", (os) => os.map((o) => o.value));
    out.expiryLabel = await page.textContent("label[for=expires]");
    await page.fill("#title", opts.title);
    await page.fill("#to_name_0", "Bob Buyer");
    await page.fill("#to_email_0", "bob@example.com");
    await page.selectOption("#expires", "3d");
    await page.fill("#password", opts.linkPassword);
    await page.setInputFiles("#pick", opts.files);
    await page.click("#create");
    await page.waitForSelector("#result:not([hidden])", { timeout: opts.timeoutMs || 120000 });
    out.url = await page.inputValue("#link-url");
    // The recipient is asked for the password, and sees nothing else first.
    const v = await visit(reach(out.url));
    out.visitor = { status: v.status, password: v.password, text: v.text };
    await v.page.fill("input[name=password]", opts.linkPassword);
    await Promise.all([v.page.waitForNavigation(), v.page.click("button[type=submit]")]);
    out.afterPassword = await v.page.textContent("body");
    await v.context.close();
  } else if (scenario === "staff-edit-gate") {
    // The recipient's gate before: a password.
    let v = await visit(opts.url);
    out.before = { status: v.status, password: v.password, email: v.email };
    await v.context.close();
    // The owner removes the password and names who may open the link.
    await signIn();
    await page.goto(opts.base + opts.detail);
    out.passwordLabel = await page.textContent("label[for=e-pw]");
    await page.check("#e-nopw");
    await page.fill("#e-allow", opts.allow);
    out.editFlash = await act(page, "edit");
    out.allowAfter = await page.inputValue("#e-allow");
    out.passwordLabelAfter = await page.textContent("label[for=e-pw]");
    // The same URL, in another fresh browser: now it asks for an e-mail.
    v = await visit(opts.url);
    out.after = { status: v.status, password: v.password, email: v.email, text: v.text };
    await shots(v.page, "email-gate");
    await v.context.close();
  } else if (scenario === "staff-copy-resend") {
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: opts.base });
    await signIn();
    await page.goto(opts.base + opts.detail);
    out.shown = await page.inputValue("#url");
    await page.click("button[data-copy=url]");
    await page.waitForFunction(() => document.querySelector("button[data-copy=url]").textContent === "Copied");
    out.copied = await page.evaluate(() => navigator.clipboard.readText());
    // The copied URL opens the link in a fresh browser.
    let v = await visit(reach(out.copied));
    out.opened = { status: v.status, text: v.text };
    await v.context.close();
    // Resend mails the same link: the URL keeps working.
    out.resendFlash = await act(page, "resend");
    out.shownAfter = await page.inputValue("#url");
    v = await visit(reach(out.copied));
    out.afterResend = { status: v.status, text: v.text };
    await v.context.close();
  } else if (scenario === "staff-cancel-restore") {
    await signIn();
    await page.goto(opts.base + opts.detail);
    out.revokeFlash = await act(page, "revoke");
    out.ownerRestore = await page.$$eval("form[action$='/restore']", (f) => f.length);
    out.resendAfterCancel = await page.$$eval("form[action$='/resend']", (f) => f.length);
    let v = await visit(opts.url);
    out.cancelled = { status: v.status, text: v.text };
    await shots(v.page, "link-unavailable");
    await v.context.close();
    // An administrator, in a browser of their own, restores it.
    const admin = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const apage = await admin.newPage();
    apage.on("pageerror", (e) => pageErrors.push(String(e)));
    await signInAs(apage, opts.admin, opts.adminPassword);
    await apage.goto(opts.base + opts.detail);
    await shots(apage, "staff-detail-cancelled");
    out.restoreFlash = await act(apage, "restore");
    await admin.close();
    v = await visit(opts.url);
    out.restored = { status: v.status, text: v.text };
    await v.context.close();
  } else if (scenario === "staff-manage") {
    // An administrator's dashboard: everyone's links, search, filters, pages.
    await signIn();
    const ids = () => page.$$eval("table.links tbody tr td:first-child a", (as) =>
      as.map((a) => a.getAttribute("href").split("/").pop()));
    out.adminSees = await ids();
    out.pageText = await page.textContent("nav.pager");
    out.localTime = await page.$eval("time[datetime]", (t) => ({ local: t.dataset.local || null, title: t.title, text: t.textContent }));
    await shots(page, "staff-dashboard-admin");
    await page.fill("#f-q", opts.search);
    await Promise.all([page.waitForNavigation(), page.click("form.search button[type=submit]")]);
    out.searched = await ids();
    await shots(page, "staff-dashboard-search");
    await page.fill("#f-q", "");
    await page.selectOption("#f-status", "expired");
    await Promise.all([page.waitForNavigation(), page.click("form.search button[type=submit]")]);
    out.expired = await ids();
    out.expiredCell = await page.textContent("table.links tbody tr td[data-label=Expires]");
    await page.goto(opts.base + "/app");
    await page.selectOption("#f-sort", "title");
    await page.selectOption("#f-dir", "asc");
    await Promise.all([page.waitForNavigation(), page.click("form.search button[type=submit]")]);
    out.byName = (await ids()).slice(0, 2);
    await page.goto(opts.base + "/app?owner=" + encodeURIComponent(opts.owner));
    await Promise.all([page.waitForNavigation(), page.click("nav.pager a[rel=next]")]);
    out.page2 = await ids();
    out.page2Text = await page.textContent("nav.pager");
    // The address book: a shared client with a contact.
    await page.goto(opts.base + "/app/clients");
    await page.fill("#c-name", "Acme Corp");
    await page.fill("#c-notes", "Key account since 2019");
    await page.check("form[action='/app/clients/add'] input[name=shared]");
    await Promise.all([page.waitForNavigation(), page.click("form[action='/app/clients/add'] button[type=submit]")]);
    await page.click("section.client details summary");
    await page.fill("section.client input[name=name]", "Wile E. Coyote");
    await page.fill("section.client input[name=email]", "wile@acme.example");
    await Promise.all([page.waitForNavigation(), page.click("form[action='/app/clients/contact-add'] button[type=submit]")]);
    await page.click("section.client details summary");
    await shots(page, "staff-clients");
    // Sharing: picking the client suggests its contact; a reference is added.
    await page.goto(opts.base + "/app/share?path=" + encodeURIComponent(opts.file));
    await page.fill("#title", "Plans for Acme");
    await page.selectOption("#client", { label: "Acme Corp" });
    await page.waitForSelector("#contact-suggest button.contact");
    out.suggested = await page.$$eval("#contact-suggest button.contact", (bs) => bs.map((b) => b.dataset.email));
    await page.click("#contact-suggest button.contact");
    out.to = await page.inputValue("#to");
    await page.selectOption("#ref_type", "ticket");
    await page.fill("#ref_value", "OPS-42");
    await shots(page, "staff-share-client");
    await Promise.all([page.waitForNavigation(), page.click("form[action='/app/share'] button[type=submit]")]);
    out.url = await page.inputValue("#link-url");
    // The send page suggests the same contacts into its recipient rows.
    await page.goto(opts.base + "/app/send");
    await page.selectOption("#client", { label: "Acme Corp" });
    await page.click("#contact-suggest button.contact");
    out.sendRecipient = [await page.inputValue("#to_name_0"), await page.inputValue("#to_email_0")];
    // The link's page shows client and reference; the dashboard filters by them.
    await page.goto(opts.base + "/app?ref=OPS-42");
    out.byReference = await ids();
    await Promise.all([page.waitForNavigation(), page.click("table.links a[href^='/app/links/']")]);
    out.detailText = await page.textContent("dl");
    await shots(page, "staff-detail-client");
    await page.goto(opts.base + "/app");
    await page.selectOption("#f-client", { label: "Acme Corp" });
    await Promise.all([page.waitForNavigation(), page.click("form.search button[type=submit]")]);
    out.byClient = await ids();
    await shots(page, "staff-dashboard-client");
    // A user without the share permission: no "+ Create", and 403 on the forms.
    const other = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const opage = await other.newPage();
    opage.on("pageerror", (e) => pageErrors.push(String(e)));
    await opage.goto(opts.base + "/app");
    await opage.fill("#name", opts.viewer);
    await opage.fill("#pw", opts.viewerPassword);
    await Promise.all([opage.waitForNavigation(), opage.click("button[type=submit]")]);
    out.viewerCreate = await opage.$$eval("details.create", (d) => d.length);
    await shots(opage, "staff-dashboard-no-share");
    const r = await opage.goto(opts.base + "/app/send");
    out.viewerSend = r.status();
    await other.close();
  } else {
    throw new Error("unknown scenario " + scenario);
  }
  out.consoleErrors = consoleErrors;
  out.pageErrors = pageErrors;
  console.log(JSON.stringify(out));
} catch (e) {
  console.log(JSON.stringify({ scenario, error: String(e && e.stack || e), consoleErrors, pageErrors }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
