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

function validator(name) {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormats(ajv);
  return ajv.compile(JSON.parse(fs.readFileSync(path.join(repo, "schemas", name), "utf8")));
}

test("the demo report.json matches report.schema.json", () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "lith-schema-"));
  try {
    for (const extra of [[], ["--fast"]]) {
      const site = path.join(out, `site${extra.length}`);
      const r = spawnSync(bin, ["build", "--quiet", "--out", site, ...extra], { cwd: repo, encoding: "utf8" });
      assert.equal(r.status, 2, r.stderr);
      const validate = validator("report.schema.json");
      const report = JSON.parse(fs.readFileSync(path.join(site, "report.json"), "utf8"));
      assert.ok(validate(report), JSON.stringify(validate.errors, null, 2));
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test("a report with base-url links and an unreadable index matches too", () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), "lith-schema-"));
  try {
    fs.writeFileSync(path.join(ws, "manifest.lith"), '(manifest (v "t") (site (base-url "https://ci.example/e/")) (bundles (roots ["out" "nothing/*"])))');
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
