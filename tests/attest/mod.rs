//! `lith attest`, `lith attest verify` and `lith build --attest` (SPEC §12). The
//! independent implementation's side (Python in-toto and securesystemslib) is
//! `tests/interop/attest_interop.py`, run by `.ci/run`.

use base64ct::{Base64, Encoding};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::pkcs8::spki::EncodePublicKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::{Signature, SigningKey, Verifier};
use serde_json::{Value, json};

use crate::support::{Workspace, sha256_hex};

/// A key pair in the workspace: `key.pem` (PKCS#8) and `key.pub.pem` (SPKI).
fn keys(ws: &Workspace, seed: u8) -> SigningKey {
    let key = SigningKey::from_bytes(&[seed; 32]);
    ws.write(
        "key.pem",
        key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    );
    ws.write(
        "key.pub.pem",
        key.verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    );
    key
}

fn envelope(ws: &Workspace, rel: &str) -> (Value, Value) {
    let env: Value = serde_json::from_str(&ws.read(rel)).unwrap();
    let payload = Base64::decode_vec(env["payload"].as_str().unwrap()).unwrap();
    (env, serde_json::from_slice(&payload).unwrap())
}

fn run_ws() -> Workspace {
    let ws = Workspace::new();
    ws.committed_run(
        "out/r1",
        "complete",
        &[("a.txt", "alpha"), ("logs/b.log", "beta")],
    );
    ws
}

#[test]
fn a_verified_run_is_attested_signed_and_verifies_offline() {
    let ws = run_ws();
    let key = keys(&ws, 7);
    let env = [("SOURCE_DATE_EPOCH", "1790000000")];
    let r = ws.lith_env(
        &["attest", "out/r1", "--key", "key.pem", "--out", "att"],
        &env,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("PASSED (2 subject(s)), signed with Ed25519 key"),
        "{r:?}"
    );
    let (e, statement) = envelope(&ws, "att/envelope.dsse.json");
    assert_eq!(
        ws.read("att/statement.json").trim_end(),
        serde_json::to_string(&statement).unwrap()
    );
    assert_eq!(e["payloadType"], "application/vnd.in-toto+json");
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        statement["predicateType"],
        "https://slsa.dev/verification_summary/v1"
    );
    let subjects: Vec<(String, String)> = statement["subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["digest"]["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        subjects,
        [
            ("out/r1/a.txt".to_string(), sha256_hex(b"alpha")),
            ("out/r1/logs/b.log".to_string(), sha256_hex(b"beta")),
        ]
    );
    let p = &statement["predicate"];
    assert_eq!(p["verificationResult"], "PASSED");
    assert_eq!(p["timeVerified"], "2026-09-21T14:13:20Z");
    assert_eq!(
        p["verifier"]["id"],
        format!("pkg:cargo/lith@{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(p["resourceUri"], "out/r1");
    assert_eq!(p["lith"]["verification"], "verified");
    assert_eq!(
        p["lith"]["promotable"],
        json!(false),
        "no decision-stage artifacts"
    );
    assert_eq!(p["verifiedLevels"], json!(["LITH_INTEGRITY_VERIFIED"]));
    // The signature is Ed25519 over the DSSE pre-authentication encoding.
    let payload = Base64::decode_vec(e["payload"].as_str().unwrap()).unwrap();
    let mut pae = format!("DSSEv1 28 application/vnd.in-toto+json {} ", payload.len()).into_bytes();
    pae.extend_from_slice(&payload);
    let sig = Base64::decode_vec(e["signatures"][0]["sig"].as_str().unwrap()).unwrap();
    key.verifying_key()
        .verify(&pae, &Signature::from_slice(&sig).unwrap())
        .expect("a signature over the PAE");
    // SHA256SUMS: what `sha256sum -c` reads, names relative to the run folder.
    assert_eq!(
        ws.read("att/SHA256SUMS"),
        format!(
            "{}  a.txt\n{}  logs/b.log\n",
            sha256_hex(b"alpha"),
            sha256_hex(b"beta"),
        )
    );
    // Deterministic: the same bytes again.
    let first = ws.read("att/envelope.dsse.json");
    ws.lith_env(
        &[
            "attest", "out/r1", "--key", "key.pem", "--out", "att", "--quiet",
        ],
        &env,
    );
    assert_eq!(ws.read("att/envelope.dsse.json"), first);

    let v = ws.lith(&[
        "attest",
        "verify",
        "att/envelope.dsse.json",
        "--pubkey",
        "key.pub.pem",
        "--bundle",
        "out/r1",
        "--json",
    ]);
    assert_eq!(v.code, 0, "{v:?}");
    let o = v.json();
    assert_eq!(
        (o["signature"].as_str(), o["rehashed"].as_u64()),
        (Some("verified"), Some(2))
    );
    assert_eq!(o["verification_result"], "PASSED");
}

#[test]
fn tampering_is_refused_with_exit_2_and_unreadable_input_is_exit_4() {
    let ws = run_ws();
    keys(&ws, 9);
    assert_eq!(
        ws.lith(&["attest", "out/r1", "--key", "key.pem", "--out", "att"])
            .code,
        0
    );
    let verify = |env: &str, extra: &[&str]| {
        let mut args = vec!["attest", "verify", env, "--pubkey", "key.pub.pem", "--json"];
        args.extend_from_slice(extra);
        ws.lith(&args)
    };
    let (good, mut statement) = envelope(&ws, "att/envelope.dsse.json");

    // A subject changed on disk.
    ws.write("out/r1/a.txt", "ALPHA");
    let r = verify("att/envelope.dsse.json", &["--bundle", "out/r1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.json()["mismatches"][0]["name"], "out/r1/a.txt");
    ws.write("out/r1/a.txt", "alpha");
    // A subject replaced by a link that leaves the run folder is not followed.
    std::fs::remove_file(ws.join("out/r1/a.txt")).unwrap();
    ws.write("outside.txt", "alpha");
    std::os::unix::fs::symlink(ws.join("outside.txt"), ws.join("out/r1/a.txt")).unwrap();
    let r = verify("att/envelope.dsse.json", &["--bundle", "out/r1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.json()["mismatches"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("beneath"),
        "{r:?}"
    );

    // A payload changed under its signature.
    statement["predicate"]["verificationResult"] = json!("PASSED ");
    let mut bad = good.clone();
    bad["payload"] = json!(Base64::encode_string(
        &serde_json::to_vec(&statement).unwrap()
    ));
    ws.write("bad.json", serde_json::to_vec(&bad).unwrap());
    let r = verify("bad.json", &[]);
    assert_eq!(
        (r.code, r.json()["signature"].clone()),
        (2, json!("invalid")),
        "{r:?}"
    );
    // A signature with one bit flipped.
    let mut sig = Base64::decode_vec(good["signatures"][0]["sig"].as_str().unwrap()).unwrap();
    sig[10] ^= 1;
    let mut bad = good.clone();
    bad["signatures"][0]["sig"] = json!(Base64::encode_string(&sig));
    ws.write("bad.json", serde_json::to_vec(&bad).unwrap());
    assert_eq!(verify("bad.json", &[]).code, 2);
    // Another key.
    keys(&ws, 10);
    assert_eq!(verify("att/envelope.dsse.json", &[]).code, 2);
    keys(&ws, 9);
    assert_eq!(verify("att/envelope.dsse.json", &[]).code, 0);

    // Unreadable: not JSON, not an envelope, not a key, no such file.
    ws.write("junk.json", "{\"payload\": ");
    let r = verify("junk.json", &[]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr.contains("junk.json:1:12: not a DSSE envelope"),
        "{r:?}"
    );
    ws.write(
        "junk.json",
        "{\"payloadType\": \"text/plain\", \"payload\": \"\", \"signatures\": []}",
    );
    let r = verify("junk.json", &[]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("not an in-toto statement"), "{r:?}");
    ws.write("not-a-key.pem", "hello");
    let r = ws.lith(&[
        "attest",
        "verify",
        "att/envelope.dsse.json",
        "--pubkey",
        "not-a-key.pem",
    ]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr
            .contains("not-a-key.pem is not an Ed25519 public key"),
        "{r:?}"
    );
    let r = ws.lith(&["attest", "out/r1", "--key", "no-such.pem"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("no-such.pem"), "{r:?}");
    assert!(
        !ws.join("attestation").exists(),
        "nothing written with an unreadable key"
    );
}

#[test]
fn a_statements_values_stay_on_their_lines_when_printed() {
    let ws = run_ws();
    keys(&ws, 9);
    let r = ws.lith(&["attest", "out/r1", "--key", "key.pem", "--out", "att"]);
    assert_eq!(r.code, 0, "{r:?}");
    // A statement, whoever signed it, is data: its values could pass for lines of
    // lith's own if a line break in them started one.
    let (good, mut statement) = envelope(&ws, "att/envelope.dsse.json");
    statement["predicate"]["verificationResult"] = json!("PASSED\nFORGED result");
    statement["subject"][0]["name"] = json!("out/r1/a.txt\nFORGED subject");
    let mut bad = good.clone();
    bad["payload"] = json!(Base64::encode_string(
        &serde_json::to_vec(&statement).unwrap()
    ));
    ws.write("bad.json", serde_json::to_vec(&bad).unwrap());
    let r = ws.lith(&[
        "attest",
        "verify",
        "bad.json",
        "--pubkey",
        "key.pub.pem",
        "--bundle",
        "out/r1",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    for said in [
        "verificationResult PASSED\\nFORGED result",
        "out/r1/a.txt\\nFORGED subject: ",
    ] {
        assert!(r.stdout.contains(said), "{said}: {r:?}");
    }
    let forged: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("FORGED"))
        .collect();
    assert!(forged.is_empty(), "{forged:?}");
}

#[test]
fn failing_and_uncommitted_runs() {
    let ws = run_ws();
    ws.write("out/r1/a.txt", "tampered");
    let r = ws.lith(&["attest", "out/r1", "--out", "att"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stdout.contains("FAILED") && r.stdout.contains("unsigned"),
        "{r:?}"
    );
    let (e, statement) = envelope(&ws, "att/envelope.dsse.json");
    assert_eq!(e["signatures"], json!([]));
    assert_eq!(statement["predicate"]["verificationResult"], "FAILED");
    assert_eq!(statement["predicate"]["verifiedLevels"], json!([]));
    assert_eq!(
        statement["predicate"]["lith"]["artifacts"]["by_status"],
        json!({"size_mismatch": 1})
    );
    // The subject keeps the digest the index records: that is the claim judged.
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        sha256_hex(b"alpha")
    );
    // --require-passed turns a valid envelope of a FAILED run into exit 2.
    keys(&ws, 1);
    ws.lith(&["attest", "out/r1", "--key", "key.pem", "--out", "signed"]);
    let ok = ws.lith(&[
        "attest",
        "verify",
        "signed/envelope.dsse.json",
        "--pubkey",
        "key.pub.pem",
    ]);
    assert_eq!(ok.code, 0, "{ok:?}");
    let strict = ws.lith(&[
        "attest",
        "verify",
        "signed/envelope.dsse.json",
        "--pubkey",
        "key.pub.pem",
        "--require-passed",
    ]);
    assert_eq!(strict.code, 2, "{strict:?}");

    ws.write(
        "out/r2/run_status.json",
        "{\"run_id\":\"r2\",\"state\":\"complete\"}",
    );
    let r = ws.lith(&["attest", "out/r2", "--out", "att2"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("nothing was attested"), "{r:?}");
    assert!(!ws.join("att2").exists());
}

#[test]
fn a_build_attests_every_run_and_links_them_from_their_pages() {
    let ws = run_ws();
    ws.committed_run("out/r2", "complete", &[("c.txt", "gamma")]);
    ws.write("out/r2/c.txt", "tampered");
    ws.write(
        "out/r3/run_status.json",
        "{\"run_id\":\"r3\",\"state\":\"in_progress\"}",
    );
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    keys(&ws, 3);
    let env = [("SOURCE_DATE_EPOCH", "1790000000")];
    let r = ws.lith_env(&["build", "--attest", "att", "--key", "key.pem"], &env);
    assert_eq!(r.code, 2, "{r:?}");
    for run in ["r1", "r2"] {
        for f in ["statement.json", "envelope.dsse.json", "SHA256SUMS"] {
            assert!(
                ws.join(&format!("att/runs/{run}/{f}")).is_file(),
                "{run}/{f}"
            );
        }
        // The site carries the statement and envelope beside the run page, the same bytes.
        assert_eq!(
            ws.read(&format!("site/runs/{run}/envelope.dsse.json")),
            ws.read(&format!("att/runs/{run}/envelope.dsse.json"))
        );
        let page = ws.read(&format!("site/runs/{run}/index.html"));
        assert!(
            page.contains("<a href=\"envelope.dsse.json\">envelope.dsse.json</a>"),
            "{page}"
        );
        assert!(
            page.contains("<strong>signed</strong> with the Ed25519 key"),
            "{page}"
        );
    }
    assert!(
        ws.read("site/runs/r1/index.html")
            .contains("badge-ok\">PASSED</span>")
    );
    assert!(
        ws.read("site/runs/r2/index.html")
            .contains("badge-error\">FAILED</span>")
    );
    assert!(
        !ws.join("att/runs/r3").exists(),
        "an in-progress run has no index to attest"
    );
    // The report records each attestation; the build statement's subjects are the
    // runs' statements.
    let report: Value = serde_json::from_str(&ws.read("site/report.json")).unwrap();
    let runs: Vec<&Value> = report["bundles"]["roots"][0]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    let r1 = runs.iter().find(|r| r["run_id"] == "r1").unwrap();
    assert_eq!(r1["attestation"]["result"], "PASSED");
    assert_eq!(
        r1["attestation"]["envelope_sha256"],
        sha256_hex(ws.read("att/runs/r1/envelope.dsse.json").as_bytes())
    );
    let (_, build) = envelope(&ws, "att/build.dsse.json");
    let names: Vec<&str> = build["subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["runs/r1/statement.json", "runs/r2/statement.json"]);
    assert_eq!(
        build["subject"][0]["digest"]["sha256"],
        sha256_hex(ws.read("att/runs/r1/statement.json").as_bytes())
    );
    assert_eq!(build["predicate"]["verificationResult"], "FAILED");
    assert_eq!(
        build["predicate"]["lith"]["runs_not_attested"][0]["run_id"],
        "r3"
    );
    assert_eq!(
        ws.lith(&[
            "attest",
            "verify",
            "att/build.dsse.json",
            "--pubkey",
            "key.pub.pem"
        ])
        .code,
        0
    );
    // `lith render` of that report links them again while the files are unchanged,
    // and stops linking an envelope changed since.
    let again = ws.lith_env(&["render", "site/report.json", "--out", "rendered"], &env);
    assert_eq!(again.code, 2, "{again:?}");
    assert!(
        ws.read("rendered/runs/r1/index.html")
            .contains("href=\"envelope.dsse.json\"")
    );
    ws.write("att/runs/r1/envelope.dsse.json", "{}");
    ws.lith_env(&["render", "site/report.json", "--out", "rendered"], &env);
    assert!(!ws.join("rendered/runs/r1/envelope.dsse.json").exists());
    assert!(
        ws.read("rendered/runs/r1/index.html")
            .contains("not found there unchanged")
    );
}

#[test]
fn attest_dir_and_site_may_not_overlap_and_a_key_needs_attest() {
    let ws = run_ws();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    let r = ws.lith(&["build", "--attest", "site/att"]);
    assert_eq!(r.code, 64, "{r:?}");
    assert!(r.stderr.contains("overlap"), "{r:?}");
    let r = ws.lith(&["build", "--key", "key.pem"]);
    assert_eq!(r.code, 64, "{r:?}");
    let r = ws.lith(&["build", "--attest", "att", "--fast"]);
    assert_eq!(r.code, 64, "{r:?}");
}

/// A symlink planted where a folder of the attestations belongs is refused, never
/// written through.
#[test]
fn a_planted_symlink_in_the_attestation_folder_is_not_followed() {
    let ws = run_ws();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    std::fs::create_dir_all(ws.join("att")).unwrap();
    std::fs::create_dir_all(ws.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(ws.join("elsewhere"), ws.join("att/runs")).unwrap();
    let r = ws.lith(&["build", "--attest", "att"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("att/runs"), "{r:?}");
    assert_eq!(std::fs::read_dir(ws.join("elsewhere")).unwrap().count(), 0);
}
