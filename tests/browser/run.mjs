// Browser scenarios for tests/browser.rs: drives Debian's Chromium (headless)
// through playwright-core, prints one JSON line with what the page showed, and
// saves screenshots. Usage: node run.mjs SCENARIO '<json options>'.
import { chromium } from "playwright-core";
import path from "node:path";

const [scenario, raw] = process.argv.slice(2);
const opts = JSON.parse(raw || "{}");
const shot = (page, name) =>
  opts.shots ? page.screenshot({ path: path.join(opts.shots, name), fullPage: true }) : null;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // Root in CI containers: Chromium's sandbox needs user namespaces.
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1000, height: 800 } });
const page = await context.newPage();
// Messages the browser logs as errors (failed requests among them), and
// uncaught exceptions of the page's scripts.
const consoleErrors = [];
const pageErrors = [];
page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
page.on("pageerror", (e) => pageErrors.push(String(e)));

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
    await shot(page, "upload-request.png");
    out.items = await uploadAll(opts.files, opts.progressShot);
    await shot(page, "upload-request-done.png");
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
  } else if (scenario === "staff-send") {
    await page.goto(opts.base + "/app");
    await page.fill("#name", opts.user);
    await page.fill("#pw", opts.password);
    await shot(page, "staff-login.png");
    await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
    await shot(page, "staff-dashboard.png");
    await Promise.all([page.waitForNavigation(), page.click("a.btn[href='/app/send']")]);
    await page.setInputFiles("#pick", opts.files);
    await page.fill("#title", opts.title);
    await page.fill("#message", "Here are the files we discussed.");
    await page.selectOption("#expires", "3d");
    await shot(page, "staff-send.png");
    await page.click("#create");
    await page.waitForSelector("#result:not([hidden])", { timeout: opts.timeoutMs || 120000 });
    out.url = await page.inputValue("#link-url");
    out.items = await page.$$eval("#queue .item", (rows) =>
      rows.map((r) => ({ name: r.querySelector(".name").textContent, state: r.dataset.state, sha256: r.dataset.sha256 })));
    await shot(page, "staff-send-done.png");
    await page.goto(opts.base + "/app");
    await shot(page, "staff-dashboard-after.png");
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
