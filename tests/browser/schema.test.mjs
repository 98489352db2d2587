// report.json of the demo and of a hostile workspace must match the shipped JSON
// Schema (schemas/report.schema.json). Run with the browser suite from .ci/run.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const bin = path.resolve(repo, process.env.LITH_BIN || "target/release/lith");

// Every shipped schema is loaded, so that one may refer to another by its $id.
function validator(name) {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormats(ajv);
  for (const file of fs.readdirSync(path.join(repo, "schemas"))) {
    ajv.addSchema(JSON.parse(fs.readFileSync(path.join(repo, "schemas", file), "utf8")));
  }
  return ajv.getSchema(`https://lith.invalid/schemas/${name}`);
}

test("changes since a previous build match report.schema.json and changes.schema.json", () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), "lith-schema-"));
  const write = (rel, text) => {
    fs.mkdirSync(path.dirname(path.join(ws, rel)), { recursive: true });
    fs.writeFileSync(path.join(ws, rel), text);
  };
  const lith = (...args) => spawnSync(bin, args, { cwd: ws, encoding: "utf8" });
  try {
    write("manifest.lith", '(manifest (v "promethean.manifest/v1") (site (base-url "https://ci.example/n/")) (bundles (roots ["out"])))');
    for (const run of ["r1", "r2", "r3"]) {
      write(`out/${run}/run_status.json`, `{"run_id":"${run}","state":"complete"}`);
      write(`out/${run}/a.txt`, run);
      assert.equal(lith("commit", `out/${run}`).status, 0);
    }
    assert.equal(lith("build", "--quiet", "--out", "site").status, 0);
    fs.cpSync(path.join(ws, "site"), path.join(ws, "last-night"), { recursive: true });
    write("out/r1/a.txt", "tampered");
    fs.rmSync(path.join(ws, "out/r3"), { recursive: true });
    write("out/r4/run_status.json", '{"run_id":"r4","state":"complete"}');
    write("out/r4/a.txt", "r4");
    assert.equal(lith("commit", "out/r4").status, 0);
    const r = lith("build", "--quiet", "--out", "site", "--previous", "site");
    assert.equal(r.status, 2, r.stderr);
    const report = JSON.parse(fs.readFileSync(path.join(ws, "site/report.json"), "utf8"));
    const validate = validator("report.schema.json");
    assert.ok(validate(report), JSON.stringify(validate.errors, null, 2));
    assert.deepEqual(report.changes.runs.map((c) => [c.run_id, c.kind]), [["r1", "newly_failing"], ["r4", "new"], ["r3", "vanished"]]);
    const diff = lith("--json", "diff", "last-night", "site");
    assert.equal(diff.status, 2, diff.stderr);
    const changes = validator("changes.schema.json");
    const doc = JSON.parse(diff.stdout);
    assert.ok(changes(doc), JSON.stringify(changes.errors, null, 2));
    assert.deepEqual(doc, report.changes);
    // Every line of history.jsonl is a history entry of the report's schema.
    const line = validator("report.schema.json#/$defs/history_entry");
    const lines = fs.readFileSync(path.join(ws, "site/history.jsonl"), "utf8").trim().split("\n");
    assert.equal(lines.length, 1, "no --history: the history starts with this build");
    for (const l of lines) assert.ok(line(JSON.parse(l)), JSON.stringify(line.errors, null, 2));
    assert.deepEqual(lines.map((l) => JSON.parse(l)), report.history.entries);
  } finally {
    fs.rmSync(ws, { recursive: true, force: true });
  }
});

test("the demo report.json matches report.schema.json", () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "lith-schema-"));
  try {
    for (const extra of [[], ["--fast"]]) {
      const site = path.join(out, `site${extra.length}`);
      const r = spawnSync(bin, ["build", "--quiet", "--out", site, ...extra], { cwd: repo, encoding: "utf8" });
      assert.equal(r.status, 3, r.stderr);
      const validate = validator("report.schema.json");
      const report = JSON.parse(fs.readFileSync(path.join(site, "report.json"), "utf8"));
      assert.ok(validate(report), JSON.stringify(validate.errors, null, 2));
      const catalog = validator("catalog.schema.json");
      const doc = JSON.parse(fs.readFileSync(path.join(site, "api/catalog.json"), "utf8"));
      assert.ok(catalog(doc), JSON.stringify(catalog.errors, null, 2));
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test("a report with base-url links and an unreadable index matches too", () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), "lith-schema-"));
  try {
    fs.writeFileSync(path.join(ws, "manifest.lith"), '(manifest (v "promethean.manifest/v1") (site (base-url "https://ci.example/e/")) (bundles (roots ["out" "nothing/*"])))');
    fs.mkdirSync(path.join(ws, "out/r1"), { recursive: true });
    fs.writeFileSync(path.join(ws, "out/r1/run_status.json"), '{"run_id":"r1","state":"complete"}');
    fs.writeFileSync(path.join(ws, "out/r1/artifact_index.json"), '{"run_id":"r1","status":"ok","artifacts":[{"path":"a","file_size":1,"sha256":"' + "0".repeat(64) + '"}]}');
    fs.mkdirSync(path.join(ws, "out/r2"), { recursive: true });
    fs.writeFileSync(path.join(ws, "out/r2/artifact_index.json"), "{");
    fs.writeFileSync(path.join(ws, "out/LATEST"), "r1");
    const r = spawnSync(bin, ["build", "--quiet"], { cwd: ws, encoding: "utf8" });
    assert.equal(r.status, 4, r.stderr);
    const validate = validator("report.schema.json");
    const report = JSON.parse(fs.readFileSync(path.join(ws, "site/report.json"), "utf8"));
    assert.ok(validate(report), JSON.stringify(validate.errors, null, 2));
    assert.ok(report.duration_ms >= 0);
  } finally {
    fs.rmSync(ws, { recursive: true, force: true });
  }
});

test("promotion packets and repair logs match their schemas", () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), "lith-schema-"));
  try {
    const run = path.join(ws, "out/r1");
    fs.mkdirSync(run, { recursive: true });
    fs.writeFileSync(path.join(run, "run_status.json"), '{"run_id":"r1","state":"complete","channel":"launchd_clean"}');
    fs.writeFileSync(path.join(run, "runtime_results.json"), "{}");
    fs.writeFileSync(path.join(run, "path_witnesses.json"), "[]");
    const commit = spawnSync(bin, ["commit", "out/r1"], { cwd: ws, encoding: "utf8" });
    assert.equal(commit.status, 0, commit.stderr);
    fs.writeFileSync(path.join(run, "runtime_results.json"), '{"changed":true}');
    const repair = spawnSync(bin, ["reindex", "out", "--repair"], { cwd: ws, encoding: "utf8" });
    assert.equal(repair.status, 0, repair.stderr);
    const promote = spawnSync(bin, ["promote", "out"], { cwd: ws, encoding: "utf8" });
    assert.equal(promote.status, 0, promote.stderr);
    for (const [schema, file] of [["promotion_packet.schema.json", "out/promotion_packet.json"], ["repair_log.schema.json", "out/r1/repair_log.json"]]) {
      const validate = validator(schema);
      const doc = JSON.parse(fs.readFileSync(path.join(ws, file), "utf8"));
      assert.ok(validate(doc), `${file}: ${JSON.stringify(validate.errors, null, 2)}`);
    }
    // Also the per-run packets of the demo build, shown on each run page.
    const site = path.join(ws, "demo-site");
    const build = spawnSync(bin, ["build", "--quiet", "--out", site], { cwd: repo, encoding: "utf8" });
    assert.equal(build.status, 3, build.stderr);
    const validate = validator("promotion_packet.schema.json");
    let packets = 0;
    for (const dir of fs.readdirSync(path.join(site, "runs"))) {
      const p = path.join(site, "runs", dir, "index.html");
      if (!fs.existsSync(p)) continue;
      const m = fs.readFileSync(p, "utf8").match(/<pre class="packet"><code>([\s\S]*?)<\/code><\/pre>/);
      if (!m) continue;
      const text = m[1].replace(/&quot;|&#34;/g, '"').replace(/&#x27;|&#39;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
      assert.ok(validate(JSON.parse(text)), `${p}: ${JSON.stringify(validate.errors)}`);
      packets += 1;
    }
    assert.equal(packets, 6, "every run of the demo shows its packet");
  } finally {
    fs.rmSync(ws, { recursive: true, force: true });
  }
});

test("dod reports, drift reports and partial reports match their schemas", () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), "lith-schema-"));
  try {
    fs.cpSync(path.join(repo, "tests/fixtures/demo"), path.join(ws, "tests/fixtures/demo"), { recursive: true });
    fs.copyFileSync(path.join(repo, "manifest.lith"), path.join(ws, "manifest.lith"));
    const run = (args, want) => {
      const r = spawnSync(bin, [...args, "--quiet"], { cwd: ws, encoding: "utf8" });
      assert.equal(r.status, want, `${args.join(" ")}: ${r.stderr}`);
    };
    run(["dod", "--all"], 3);
    run(["drift"], 2);
    run(["build", "--out", "site"], 3);
    for (const k of [1, 2]) run(["build", "--partition", `${k}/2`, "--out", `part-${k}.json`], 0);
    const checks = [
      ["dod_report.schema.json", "tests/fixtures/demo/reports/dod/dod_report.latest.json"],
      ["dod_report.schema.json", "site/dod_report.latest.json"],
      ["idle_drift.schema.json", "tests/fixtures/demo/reports/drift/idle_drift.latest.json"],
      ["partial_report.schema.json", "part-1.json"],
      ["partial_report.schema.json", "part-2.json"],
    ];
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    addFormats(ajv);
    for (const name of ["report.schema.json", "changes.schema.json", "dod_report.schema.json", "idle_drift.schema.json", "partial_report.schema.json"]) {
      ajv.addSchema(JSON.parse(fs.readFileSync(path.join(repo, "schemas", name), "utf8")));
    }
    for (const [schema, file] of checks) {
      const p = path.join(ws, file);
      assert.ok(fs.existsSync(p), `${file} was not written`);
      const validate = ajv.getSchema(`https://lith.invalid/schemas/${schema}`);
      const doc = JSON.parse(fs.readFileSync(p, "utf8"));
      assert.ok(validate(doc), `${file}: ${JSON.stringify(validate.errors, null, 2)}`);
    }
    // The two partitions split the runs between them.
    const runs = [1, 2].map((k) => JSON.parse(fs.readFileSync(path.join(ws, `part-${k}.json`), "utf8")))
      .flatMap((p) => p.roots.flatMap((r) => r.positions.map((i) => `${r.path}#${i}`)));
    assert.equal(new Set(runs).size, runs.length);
    assert.equal(runs.length, 6);
  } finally {
    fs.rmSync(ws, { recursive: true, force: true });
  }
});

test("attestation statements and a report with attestations match their schemas", async () => {
  const { generateKeyPairSync } = await import("node:crypto");
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "lith-schema-"));
  try {
    const { privateKey } = generateKeyPairSync("ed25519", { privateKeyEncoding: { type: "pkcs8", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } });
    fs.writeFileSync(path.join(out, "key.pem"), privateKey);
    for (const signed of [false, true]) {
      const att = path.join(out, `att${signed}`);
      const site = path.join(out, `site${signed}`);
      const args = ["build", "--quiet", "--out", site, "--attest", att, ...(signed ? ["--key", path.join(out, "key.pem")] : [])];
      const r = spawnSync(bin, args, { cwd: repo, encoding: "utf8" });
      assert.equal(r.status, 3, r.stderr);
      const report = validator("report.schema.json");
      const doc = JSON.parse(fs.readFileSync(path.join(site, "report.json"), "utf8"));
      assert.ok(report(doc), JSON.stringify(report.errors, null, 2));
      const attested = doc.bundles.roots.flatMap((x) => x.runs).filter((x) => x.attestation);
      assert.equal(attested.length, 4);
      assert.equal(attested.every((x) => (x.attestation.keyid !== null) === signed), true);
      const statement = validator("attestation.schema.json");
      const envelopes = [path.join(att, "build.dsse.json"), ...attested.map((x) => path.join(att, x.page, "envelope.dsse.json"))];
      for (const file of envelopes) {
        const env = JSON.parse(fs.readFileSync(file, "utf8"));
        assert.equal(env.signatures.length, signed ? 1 : 0, file);
        const payload = JSON.parse(Buffer.from(env.payload, "base64").toString("utf8"));
        assert.ok(statement(payload), `${file}: ${JSON.stringify(statement.errors, null, 2)}`);
      }
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
