// playwright-core). Run from .ci/run after `cargo build --release`:
//   LITH_BIN=target/release/lith node --test tests/browser/
// It builds two sites into a temporary folder, the demo workspace and a hostile one,
// then checks every page for script errors, accessibility (axe-core, light and dark),
// phone layout, the runs filter and sort, and that hostile input never executes.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const bin = path.resolve(repo, process.env.LITH_BIN || "target/release/lith");
const axeSource = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lith-browser-"));
let browser;

function lith(cwd, args) {
  const r = spawnSync(bin, args, { cwd, encoding: "utf8", env: { ...process.env, CI: "true", SOURCE_DATE_EPOCH: "1790000000" } });
  if (r.error) throw r.error;
  return r;
}

function htmlFiles(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...htmlFiles(p));
    else if (e.name.endsWith(".html")) out.push(p);
  }
  return out.sort();
}

function sha256(s) {
  return createHash("sha256").update(s).digest("hex");
}

// A workspace whose names and documents try to run script in the page.
function hostileWorkspace(dir) {
  const id = `<img src=x onerror="window.__pwned=1">'"&`;
  const run = path.join(dir, "out", id);
  fs.mkdirSync(run, { recursive: true });
  const files = {
    "summary.md": "# Pwn\n\n<script>window.__pwned=2</script>\n\n<a href=\"javascript:window.__pwned=3\">x</a> <div onmouseover=\"window.__pwned=4\">hover</div>\n",
    "<svg onload=window.__pwned=5>.json": "{}",
  };
  for (const [name, body] of Object.entries(files)) fs.writeFileSync(path.join(run, name), body);
  fs.writeFileSync(path.join(run, "run_status.json"), JSON.stringify({ run_id: id, state: "<script>window.__pwned=6</script>", note: "</script><script>window.__pwned=7</script>" }));
  const artifacts = Object.entries(files).map(([p, body]) => ({ path: p, file_size: Buffer.byteLength(body), sha256: sha256(body) }));
  artifacts.push({ path: "../../<script>window.__pwned=8</script>", file_size: 1, sha256: "0".repeat(64) });
  fs.writeFileSync(path.join(run, "artifact_index.json"), JSON.stringify({ run_id: id, artifacts, missing: ["<b>x</b>"], status: "ok" }));
  // A second run whose id, state, paths and status values carry bidirectional
  // controls that would reorder what a reviewer reads around them.
  const rlo = "\u202E", lri = "\u2066";
  const bidiId = `run-${rlo}exe.txt`;
  const bidiRun = path.join(dir, "out", bidiId);
  fs.mkdirSync(bidiRun, { recursive: true });
  fs.writeFileSync(path.join(bidiRun, `notes-${rlo}fdp.exe`), "x");
  fs.writeFileSync(path.join(bidiRun, "run_status.json"), JSON.stringify({ run_id: bidiId, state: `complete${rlo} yrev`, owner: `${lri}ci` }));
  fs.writeFileSync(path.join(bidiRun, "artifact_index.json"), JSON.stringify({
    run_id: bidiId, status: "ok", missing: [`gone-${rlo}gpj.exe`],
    artifacts: [{ path: `notes-${rlo}fdp.exe`, file_size: 1, sha256: sha256("y") }, { path: `absent-${rlo}txt.sh`, file_size: 1, sha256: sha256("z") }],
  }));
  fs.writeFileSync(path.join(dir, "out", "LATEST"), "<script>window.__pwned=9</script>");
  fs.writeFileSync(path.join(dir, "manifest.lith"), '(manifest (v "promethean.manifest/v1") (site (title "<script>window.__pwned=10</script>")) (bundles (roots ["out"])))');
}

const demoSite = path.join(tmp, "demo-site");
const singleFile = path.join(tmp, "demo-report.html");
const hostileDir = path.join(tmp, "hostile");

before(async () => {
  assert.ok(fs.existsSync(bin), `${bin} is missing; run cargo build --release first`);
  const demo = lith(repo, ["build", "--out", demoSite, "--quiet"]);
  assert.equal(demo.status, 3, demo.stderr);
  // Rebuilt against itself, so the Changes page (what fails in both builds) is
  // among the pages every test walks.
  // Attested (unsigned), so run pages show their attestation and link its files.
  const again = lith(repo, ["build", "--out", demoSite, "--quiet", "--previous", demoSite, "--history", demoSite, "--single-file", singleFile, "--attest", path.join(tmp, "demo-attestations")]);
  assert.equal(again.status, 3, again.stderr);
  assert.ok(fs.existsSync(path.join(demoSite, "changes/index.html")));
  assert.ok(fs.existsSync(path.join(demoSite, "runs/2026-11-20T0200-a41f/envelope.dsse.json")));
  assert.equal(fs.readFileSync(path.join(demoSite, "history.jsonl"), "utf8").trim().split("\n").length, 2);
  fs.mkdirSync(hostileDir);
  hostileWorkspace(hostileDir);
  const hostile = lith(hostileDir, ["build", "--quiet"]);
  assert.equal(hostile.status, 2, hostile.stderr);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  if (browser) await browser.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function open(file, options = {}) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("dialog", async (d) => { problems.push(`dialog: ${d.message()}`); await d.dismiss(); });
  page.on("request", (r) => { if (!r.url().startsWith("file://")) problems.push(`network: ${r.url()}`); });
  await page.goto(pathToFileURL(file).href);
  return { page, context, problems };
}

async function axe(page) {
  // Evaluated rather than added as a script element: the pages' Content-Security-
  // Policy refuses inline scripts, and axe is the test's, not the page's.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join("; ")})`);
}

test("every demo page loads cleanly and passes axe in light and dark themes", async () => {
  const pages = htmlFiles(demoSite);
  assert.ok(pages.length >= 8, `only ${pages.length} pages`);
  for (const scheme of ["light", "dark"]) {
    for (const file of pages) {
      const { page, context, problems } = await open(file, { colorScheme: scheme });
      // Checked before axe runs: axe itself fetches stylesheets, which file:// refuses.
      assert.deepEqual(problems, [], `${file} (${scheme})`);
      const violations = await axe(page);
      assert.deepEqual(violations, [], `${file} (${scheme})`);
      await context.close();
    }
  }
});

test("pages fit a phone screen without sideways scrolling", async () => {
  for (const file of htmlFiles(demoSite)) {
    const { page, context } = await open(file, { viewport: { width: 390, height: 844 } });
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 392, `${path.relative(demoSite, file)} is ${width}px wide on a 390px screen`);
    // Wide tables stack rather than scroll sideways inside their frame.
    const sideways = await page.evaluate(() => Array.from(document.querySelectorAll("table.stack, table.artifacts"))
      .map((t) => t.closest(".table-wrap") || t)
      .filter((w) => w.scrollWidth > w.clientWidth + 1)
      .map((w) => `${w.querySelector("table").id || w.querySelector("table").className}: ${w.scrollWidth}px in ${w.clientWidth}px`));
    assert.deepEqual(sideways, [], path.relative(demoSite, file));
    await context.close();
  }
});

test("the single-file report opens from file:// with nothing fetched, and its search works", async () => {
  for (const scheme of ["light", "dark"]) {
    const { page, context, problems } = await open(singleFile, { colorScheme: scheme });
    const requests = [];
    page.on("request", (r) => requests.push(r.url()));
    const visible = () => page.locator("#runs-table tbody tr:visible").count();
    assert.equal(await visible(), 6);
    await page.getByLabel("Filter", { exact: true }).fill("9c2e");
    assert.equal(await visible(), 1);
    assert.equal(await page.locator("#runs-table-count").textContent(), "1 shown");
    // A failing run links to its details in the file.
    await page.locator("#runs-table tbody tr:visible a").click();
    const target = await page.evaluate(() => location.hash);
    assert.match(target, /^#run-[0-9a-f]{12}$/);
    assert.ok(await page.locator(`${target} h3`).textContent().then((t) => t.includes("2026-11-19T0200-9c2e")));
    assert.deepEqual(requests, [], "the single file fetched something");
    assert.deepEqual(problems, [], scheme);
    assert.deepEqual(await axe(page), [], scheme);
    await context.close();
  }
});

// A workspace of 10,000 one-artifact runs; every 2,500th (from run-00007) is
// tampered, so four fail. Built once, used by the tests below.
const manyRuns = 10000;
const manyFailing = ["run-07507", "run-05007", "run-02507", "run-00007"];
function manyWorkspace() {
  const ws = path.join(tmp, "many");
  if (fs.existsSync(path.join(ws, "site/index.html"))) return ws;
  for (let i = 0; i < manyRuns; i++) {
    const id = `run-${String(i).padStart(5, "0")}`;
    const dir = path.join(ws, "out", id);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "run_status.json"), JSON.stringify({ run_id: id, state: "complete" }));
    const body = `artifact of ${id}`;
    fs.writeFileSync(path.join(dir, "a.txt"), i % 2500 === 7 ? "tampered" : body);
    fs.writeFileSync(path.join(dir, "artifact_index.json"), JSON.stringify({ run_id: id, status: "ok", missing: [], artifacts: [{ path: "a.txt", file_size: body.length, sha256: sha256(body) }] }));
  }
  fs.writeFileSync(path.join(ws, "manifest.lith"), '(manifest (v "promethean.manifest/v1") (bundles (roots ["out"])))');
  const r = lith(ws, ["build", "--quiet"]);
  assert.equal(r.status, 2, r.stderr);
  return ws;
}

test("on 10,000 runs, a run on the last page is found by typing its id on the first, and every failing run is reached from the overview", async () => {
  const ws = manyWorkspace();
  const { page, context, problems } = await open(path.join(ws, "site/runs/index.html"));
  // Failing runs first, then the newest: page 1 starts with the four failing runs,
  // and run-00001 sits on the last page, 20 of 20.
  assert.equal(await page.locator("#runs-table tbody tr").count(), 500);
  assert.deepEqual(await page.locator("#runs-table tbody tr td:first-child code").evaluateAll((els) => els.slice(0, 5).map((e) => e.textContent)), [...manyFailing, "run-09999"]);
  const last = fs.readFileSync(path.join(ws, "site/runs/page-20.html"), "utf8");
  assert.ok(last.includes(">run-00001<") && !last.includes(">run-09999<"));
  const started = Date.now();
  await page.getByLabel(`Search all ${manyRuns} runs`).fill("run-00001");
  assert.equal(await page.locator("#run-search-count").textContent(), "1 run matches");
  // Printed, not asserted: tests check correctness, never wall-clock time.
  console.log(`# found run-00001 among ${manyRuns} runs in ${Date.now() - started} ms from file://`);
  await page.locator("#run-search-results a").click();
  await page.waitForURL(/run-00001\/index\.html$/);
  assert.match(await page.locator("h1").textContent(), /run-00001/);
  // Sorting applies to all runs, not one page.
  await page.goBack();
  await page.getByLabel(`Search all ${manyRuns} runs`).fill("");
  await page.getByLabel("Order (all runs)").selectOption("id-asc");
  assert.equal(await page.locator("#run-search-count").textContent(), `${manyRuns} runs match; the first 100 are listed`);
  assert.deepEqual((await page.locator("#run-search-results code").allTextContents()).slice(0, 2), ["run-00000", "run-00001"]);
  await page.getByLabel("Order (all runs)").selectOption("");
  // The overview's banner names the failing runs and links to them, filtered; every
  // one of them opens on its page.
  await page.goto(pathToFileURL(path.join(ws, "site/index.html")).href);
  const line = page.locator("ul.banner li").first();
  assert.equal(await line.textContent(), `4 run(s) failed verification: ${manyFailing.slice(0, 3).join(", ")} and 1 more`);
  await line.locator("a").click();
  await page.waitForURL(/runs\/index\.html\?status=failed$/);
  assert.equal(await page.locator("#run-search-count").textContent(), "4 runs match");
  assert.deepEqual(await page.locator("#run-search-results code").allTextContents(), manyFailing);
  assert.equal(await page.locator("#runs-table tbody tr:visible").count(), 4, "all four lead page 1");
  for (const id of manyFailing) {
    await page.locator("#run-search-results a", { hasText: id }).click();
    await page.waitForURL(new RegExp(`${id}/index\\.html$`));
    assert.match(await page.locator("table.artifacts tbody tr").first().textContent(), /digest_mismatch|size_mismatch/);
    await page.goBack();
    await page.waitForURL(/status=failed$/);
  }
  await page.getByLabel(`Search all ${manyRuns} runs`).fill("no-such-run");
  assert.equal(await page.locator("#run-search-count").textContent(), "no run matches");
  assert.deepEqual(problems, []);
  assert.deepEqual(await axe(page), []);
  await context.close();
});

test("keyboard only: from the overview's banner to a failing run, and from a search to its page", async () => {
  const ws = manyWorkspace();
  const { page, context, problems } = await open(path.join(ws, "site/index.html"));
  const focused = () => page.evaluate(() => {
    const el = document.activeElement;
    return { tag: el.tagName, text: (el.textContent || "").trim(), id: el.id, href: el.getAttribute("href") || "" };
  });
  // Tab to a link: at most `limit` presses, never a mouse.
  async function tabTo(match, limit = 60) {
    for (let i = 0; i < limit; i++) {
      await page.keyboard.press("Tab");
      const f = await focused();
      if (match(f)) return f;
    }
    throw new Error(`not reached with ${limit} Tab presses`);
  }
  assert.equal((await tabTo(() => true, 1)).text, "Skip to content");
  await tabTo((f) => f.href === "runs/index.html?status=failed" && f.text.startsWith("4 run(s) failed"));
  await page.keyboard.press("Enter");
  await page.waitForURL(/runs\/index\.html\?status=failed$/);
  await tabTo((f) => f.tag === "A" && f.href === "run-07507/index.html" && f.text === "run-07507");
  await page.keyboard.press("Enter");
  await page.waitForURL(/run-07507\/index\.html$/);
  // The run page's first artifact is the failing one, and its # is reachable.
  const anchor = await tabTo((f) => f.tag === "A" && f.href.startsWith("#a-"));
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => location.hash), anchor.href);
  await page.goto(pathToFileURL(path.join(ws, "site/runs/index.html")).href);
  await tabTo((f) => f.id === "run-search");
  await page.keyboard.type("run-04242");
  await tabTo((f) => f.tag === "A" && f.text === "run-04242", 6);
  await page.keyboard.press("Enter");
  await page.waitForURL(/run-04242\/index\.html$/);
  // Focus is always visible: the focused element draws an outline.
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.equal(outline, "solid");
  assert.deepEqual(problems, []);
  await context.close();
});

test("the overview shows what is worst and what changed without scrolling, on a laptop and a phone", async () => {
  for (const viewport of [{ width: 1280, height: 720 }, { width: 390, height: 844 }]) {
    const { page, context, problems } = await open(path.join(demoSite, "index.html"), { viewport });
    const top = (sel) => page.locator(sel).first().evaluate((el) => el.getBoundingClientRect().top);
    // The verdict, the worst failure of the first section and the changes card all
    // begin inside the first screen.
    assert.match(await page.locator("ul.banner li").first().textContent(), /failed verification/);
    for (const sel of ["p.verdict", "ul.banner li", "#h-changes"]) {
      const y = await top(sel);
      assert.ok(y >= 0 && y < viewport.height, `${sel} starts at ${y}px on a ${viewport.width}×${viewport.height} screen`);
    }
    assert.equal(await page.evaluate(() => window.scrollY), 0);
    assert.deepEqual(problems, []);
    await context.close();
  }
});

test("the runs table filters and sorts, by mouse and keyboard", async () => {
  const { page, context, problems } = await open(path.join(demoSite, "runs/index.html"));
  const visible = () => page.locator("#runs-table tbody tr:visible").count();
  assert.equal(await visible(), 6);
  await page.getByLabel("Filter", { exact: true }).fill("smoke");
  assert.equal(await visible(), 1);
  assert.equal(await page.locator("#runs-table-count").textContent(), "1 shown");
  await page.getByLabel("Filter", { exact: true }).fill("");
  await page.getByLabel("Verification").selectOption("verified");
  assert.equal(await visible(), 2);
  await page.getByLabel("Verification").selectOption("");
  // Sort by run id, descending on the second press; reachable with the keyboard.
  const button = page.getByRole("button", { name: "Run" });
  await button.focus();
  await page.keyboard.press("Enter");
  await page.keyboard.press("Enter");
  const th = page.locator("#runs-table th").nth(0);
  assert.equal(await th.getAttribute("aria-sort"), "descending");
  const first = await page.locator("#runs-table tbody tr").first().locator("td").nth(0).textContent();
  assert.match(first, /smoke-0142/);
  // The skip link is the first stop of the tab order.
  await page.reload();
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.className), "skip");
  assert.deepEqual(problems, []);
  await context.close();
});

test("the receipts page filters by kind, owner and findings", async () => {
  const { page, context, problems } = await open(path.join(demoSite, "receipts/index.html"));
  const visible = () => page.locator("#receipts-table tbody tr:visible").count();
  assert.equal(await visible(), 8);
  await page.getByLabel("Kind").selectOption(":observation");
  assert.equal(await visible(), 4);
  await page.getByLabel("Owner").selectOption("maria");
  assert.equal(await visible(), 1);
  await page.getByLabel("Kind").selectOption("");
  await page.getByLabel("Owner").selectOption("");
  await page.getByLabel("Findings").selectOption("yes");
  assert.equal(await visible(), 1);
  assert.match(await page.locator("#receipts-table tbody tr:visible").textContent(), /malformed_field/);
  assert.deepEqual(problems, []);
  await context.close();
});

test("an artifact permalink lands on its highlighted row", async () => {
  const report = JSON.parse(fs.readFileSync(path.join(demoSite, "report.json"), "utf8"));
  const run = report.bundles.roots.flatMap((r) => r.runs).find((r) => r.run_id === "2026-11-19T0200-9c2e");
  const bad = run.artifacts.find((a) => a.status === "digest_mismatch");
  // report.json leaves the anchor out: it is a- and 12 hex digits of sha256(path).
  const anchor = "a-" + createHash("sha256").update(bad.path).digest("hex").slice(0, 12);
  const { page, context } = await open(path.join(demoSite, run.page, "index.html"));
  await page.goto(page.url() + "#" + anchor);
  const row = page.locator(`#${anchor}`);
  assert.match(await row.textContent(), /digest_mismatch/);
  assert.equal(await row.evaluate((el) => el.matches(":target")), true);
  // Failing rows come first, and the differing characters of the digest are marked.
  assert.equal(await page.locator("table.artifacts tbody tr").first().getAttribute("id"), anchor);
  const marked = (await row.locator("mark").allTextContents()).join("");
  assert.ok(marked.length > 0 && marked.length <= 64, marked);
  await context.close();
});

test("the # beside an artifact copies its permalink, and the copied link opens on its row", async () => {
  const report = JSON.parse(fs.readFileSync(path.join(demoSite, "report.json"), "utf8"));
  const run = report.bundles.roots.flatMap((r) => r.runs).find((r) => r.run_id === "2026-11-19T0200-9c2e");
  const { page, context, problems } = await open(path.join(demoSite, run.page, "index.html"));
  await context.grantPermissions(["clipboard-read", "clipboard-write"]).catch(() => {});
  const link = page.locator("table.artifacts tbody tr").nth(1).locator("a.anchor");
  const id = await page.locator("table.artifacts tbody tr").nth(1).getAttribute("id");
  await link.click();
  await page.waitForFunction(() => document.querySelector("[aria-live=polite].visually-hidden")?.textContent.startsWith("Link copied: "));
  const said = await page.locator("[aria-live=polite].visually-hidden").textContent();
  const url = said.slice("Link copied: ".length);
  assert.ok(url.startsWith("file://") && url.endsWith(`#${id}`), url);
  assert.equal(await link.getAttribute("data-copied"), "");
  const fresh = await context.newPage();
  await fresh.goto(url);
  assert.equal(await fresh.evaluate(() => document.querySelector(":target")?.id), id);
  assert.deepEqual(problems, []);
  await context.close();
});

test("a link to a run's promotion packet opens it, and it is the packet lith promote writes", async () => {
  const { page, context } = await open(path.join(demoSite, "runs", "2026-11-20T0200-a41f", "index.html"));
  await page.goto(page.url() + "#promotion-packet");
  const details = page.locator("#promotion-packet");
  assert.equal(await details.evaluate((el) => el.open), true);
  const packet = JSON.parse(await page.locator("#promotion-packet pre.packet").textContent());
  assert.equal(packet.schema_version, "runtime-tools.promotion_packet.v0.2");
  assert.equal(packet.promotability.promotable_decision_stage, true);
  await context.close();
});

test("hostile names and documents never execute", async () => {
  const site = path.join(hostileDir, "site");
  const pages = htmlFiles(site);
  assert.ok(pages.length >= 3);
  for (const file of pages) {
    const { page, context, problems } = await open(file);
    // Give handlers a chance: hover everything, wait a moment.
    for (const el of await page.locator("main *").all()) {
      await el.hover({ trial: false, timeout: 200 }).catch(() => {});
    }
    await page.waitForTimeout(100);
    assert.equal(await page.evaluate(() => window.__pwned), undefined, file);
    assert.deepEqual(problems, [], file);
    await context.close();
  }
});

test("a script slipped into any page does not run: every page carries a Content-Security-Policy", async () => {
  const pages = [...htmlFiles(demoSite), ...htmlFiles(path.join(hostileDir, "site")), singleFile];
  for (const file of pages) {
    const { page, context, problems } = await open(file);
    // The page's own script, style and search index load under its policy.
    assert.deepEqual(problems, [], file);
    const policy = await page.evaluate(() => document.querySelector('meta[http-equiv="Content-Security-Policy"]')?.content);
    assert.match(policy ?? "", /default-src 'none'/, file);
    const ran = await page.evaluate(async () => {
      const refused = new Promise((done) => document.addEventListener("securitypolicyviolation", (e) => done(e.violatedDirective), { once: true }));
      const s = document.createElement("script");
      s.textContent = "window.__slipped = 1";
      document.body.append(s);
      return { ran: window.__slipped, refused: await refused };
    });
    assert.equal(ran.ran, undefined, `${file}: an inline script ran`);
    assert.match(ran.refused, /^script-src/, file);
    await context.close();
  }
});

test("bidirectional controls in input values are isolated where they are shown", async () => {
  const site = path.join(hostileDir, "site");
  let seen = 0;
  for (const file of htmlFiles(site)) {
    const { page, context } = await open(file);
    const { found, bad } = await page.evaluate(() => {
      const controls = /[\u202A-\u202E\u2066-\u2069]/;
      const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      let found = 0;
      const bad = [];
      while (walker.nextNode()) {
        const node = walker.currentNode;
        if (!controls.test(node.data)) continue;
        found += 1;
        // The value must be the whole content of an element that isolates it.
        const el = node.parentElement;
        const isolated = ["isolate", "isolate-override", "plaintext"].includes(getComputedStyle(el).unicodeBidi);
        if (!isolated || el.textContent !== node.data) bad.push(el.outerHTML.slice(0, 160));
      }
      return { found, bad };
    });
    seen += found;
    assert.deepEqual(bad, [], file);
    await context.close();
  }
  // The run id, its state, two artifact paths and the index's missing entry at least.
  assert.ok(seen >= 5, `only ${seen} values with bidirectional controls were shown`);
});

// A run of 600 artifacts (ten missing, ten tampered, and one missing entry with a
// hostile 1,000-character path): its artifact table runs over three pages.
function pagedWorkspace() {
  const ws = path.join(tmp, "paged");
  if (fs.existsSync(path.join(ws, "site/runs/r1/artifacts-3.html"))) return ws;
  const run = path.join(ws, "out", "r1");
  fs.mkdirSync(run, { recursive: true });
  const artifacts = [];
  for (let i = 0; i < 600; i++) {
    const name = `f${String(i).padStart(3, "0")}.txt`;
    const body = `body ${i}`;
    artifacts.push({ path: name, file_size: body.length, sha256: sha256(body) });
    if (i >= 100 && i < 110) continue;
    fs.writeFileSync(path.join(run, name), i >= 500 && i < 510 ? body.toUpperCase() : body);
  }
  artifacts.push({ path: "<script>window.__pwned=1</script>" + "x".repeat(1000), file_size: 1, sha256: "0".repeat(64) });
  fs.writeFileSync(path.join(run, "run_status.json"), JSON.stringify({ run_id: "r1", state: "complete" }));
  fs.writeFileSync(path.join(run, "artifact_index.json"), JSON.stringify({ run_id: "r1", status: "ok", missing: [], artifacts }));
  fs.writeFileSync(path.join(ws, "manifest.lith"), '(manifest (v "promethean.manifest/v1") (site (base-url "https://ci.example/e/")) (bundles (roots ["out"])))');
  const r = lith(ws, ["build", "--quiet"]);
  assert.equal(r.status, 2, r.stderr);
  return ws;
}

test("a run of 600 artifacts pages its table, and a row's link from report.json lands on its row", async () => {
  const ws = pagedWorkspace();
  const site = path.join(ws, "site");
  const files = ["index.html", "artifacts-2.html", "artifacts-3.html"].map((f) => path.join(site, "runs/r1", f));
  for (const scheme of ["light", "dark"]) {
    for (const file of files) {
      const { page, context, problems } = await open(file, { colorScheme: scheme });
      assert.deepEqual(problems, [], `${file} (${scheme})`);
      assert.deepEqual(await axe(page), [], `${file} (${scheme})`);
      assert.equal(await page.evaluate(() => window.__pwned), undefined);
      await context.close();
    }
  }
  const { page, context, problems } = await open(files[0], { viewport: { width: 390, height: 844 } });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth) <= 392, "the pager fits a phone");
  const rows = page.locator("table.artifacts tbody tr");
  assert.equal(await rows.count(), 250);
  // Failing rows first: the 21 that fail, then ok ones.
  const statuses = await page.locator("table.artifacts tbody tr td:first-child").allTextContents();
  assert.equal(statuses.filter((t) => t !== "ok").length, 21);
  assert.ok(statuses.slice(0, 21).every((t) => t !== "ok"), statuses.slice(0, 22).join(","));
  await page.getByRole("navigation", { name: "Pages of artifacts" }).getByRole("link", { name: "3", exact: true }).click();
  await page.waitForURL(/artifacts-3\.html$/);
  assert.equal(await rows.count(), 101);
  assert.equal(await page.locator("h1").textContent(), "Run r1: artifacts 501–601");
  // report.json's link to a row on page 2, opened from file://, shows that row.
  const report = JSON.parse(fs.readFileSync(path.join(site, "report.json"), "utf8"));
  const links = report.bundles.roots[0].runs[0].artifacts.map((a) => a.url);
  const second = links.filter((u) => u.includes("/artifacts-2.html#"));
  assert.equal(second.length, 250);
  const [file, id] = second[17].replace("https://ci.example/e/", "").split("#");
  await page.goto(`${pathToFileURL(path.join(site, file)).href}#${id}`);
  assert.equal(await page.evaluate(() => document.querySelector(":target")?.id), id);
  assert.ok(await page.locator(`tr#${id}`).isVisible());
  assert.deepEqual(problems, []);
  await context.close();
});

test("the Nu HTML Checker reports no errors on either site", () => {
  const jar = require.resolve("vnu-jar/build/dist/vnu.jar");
  // The paged runs list and the overview of the 10,000-run site.
  const ws = manyWorkspace();
  const many = [path.join(ws, "site/runs/index.html"), path.join(ws, "site/index.html"), path.join(ws, "site/runs/run-00007/index.html")];
  const paged = ["index.html", "artifacts-2.html"].map((f) => path.join(pagedWorkspace(), "site/runs/r1", f));
  const files = [...htmlFiles(demoSite), ...htmlFiles(path.join(hostileDir, "site")), singleFile, ...many, ...paged];
  const r = spawnSync("java", ["-jar", jar, "--errors-only", ...files], { encoding: "utf8" });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, r.stderr + r.stdout);
});

// Every page type in light, dark and phone, saved for a person to look at
// (LITH_SCREENSHOTS, default target/screenshots; .ci/run keeps them as output).
test("screenshots of every page type, light, dark and phone", async () => {
  const out = path.resolve(repo, process.env.LITH_SCREENSHOTS || "target/screenshots");
  fs.mkdirSync(out, { recursive: true });
  const phase = htmlFiles(path.join(demoSite, "phases")).find((f) => !f.endsWith(path.join("phases", "index.html")));
  const pages = {
    overview: path.join(demoSite, "index.html"),
    changes: path.join(demoSite, "changes/index.html"),
    runs: path.join(demoSite, "runs/index.html"),
    "run-failing": path.join(demoSite, "runs/2026-11-19T0200-9c2e/index.html"),
    "run-promotable": path.join(demoSite, "runs/2026-11-20T0200-a41f/index.html"),
    receipts: path.join(demoSite, "receipts/index.html"),
    queue: path.join(demoSite, "queue/index.html"),
    gates: path.join(demoSite, "gates/index.html"),
    phases: path.join(demoSite, "phases/index.html"),
    phase,
    drift: path.join(demoSite, "drift/index.html"),
    single: singleFile,
    "runs-10000": path.join(manyWorkspace(), "site/runs/index.html"),
    "run-artifacts-page": path.join(pagedWorkspace(), "site/runs/r1/artifacts-2.html"),
  };
  const looks = {
    light: { options: { colorScheme: "light" }, background: "rgb(255, 255, 255)" },
    dark: { options: { colorScheme: "dark" }, background: "rgb(13, 17, 23)" },
    phone: { options: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 }, background: "rgb(255, 255, 255)" },
  };
  let saved = 0;
  for (const [name, file] of Object.entries(pages)) {
    assert.ok(file && fs.existsSync(file), `${name}: ${file} is missing`);
    for (const [look, { options, background }] of Object.entries(looks)) {
      const { page, context, problems } = await open(file, options);
      assert.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), background, `${name} ${look}`);
      const png = path.join(out, `${name}-${look}.png`);
      await page.screenshot({ path: png, fullPage: true });
      const head = fs.readFileSync(png).subarray(0, 8);
      assert.deepEqual([...head], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], png);
      assert.deepEqual(problems, [], `${name} ${look}`);
      saved += 1;
      await context.close();
    }
  }
  console.log(`# ${saved} screenshots in ${out}`);
});
