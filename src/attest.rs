//! Attestations (SPEC §12): lith's verdict on a run as an in-toto Statement v1 with
//! a SLSA Verification Summary Attestation predicate, in a DSSE envelope signed with
//! Ed25519, plus a `SHA256SUMS` list for tools that take checksums.
//!
//! The statement's subjects are the entries of the very index that was verified
//! (`RunReport::subjects`), never a second read of it. Everything written is a
//! function of the report and the one clock, so `SOURCE_DATE_EPOCH` makes it
//! byte-identical; an Ed25519 signature is deterministic too.

use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding};
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::bundle::verify::{Mode, RunReport, Verification, hex};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const VSA_PREDICATE_TYPE: &str = "https://slsa.dev/verification_summary/v1";
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The schema of lith's own results inside the predicate (`predicate.lith`),
/// documented by `schemas/attestation.schema.json`.
pub const LITH_SCHEMA: &str = "lith.attestation.v1";
/// The level a passed run reaches: every indexed artifact's size and sha256 match,
/// the index is complete and committed.
pub const LEVEL_INTEGRITY: &str = "LITH_INTEGRITY_VERIFIED";
/// The level of a verified run that is also promotable at the decision stage.
pub const LEVEL_PROMOTABLE: &str = "LITH_PROMOTABLE";
/// The largest envelope or key file lith reads.
pub const MAX_ENVELOPE_BYTES: u64 = crate::fsutil::MAX_JSON_BYTES;
const MAX_KEY_BYTES: u64 = 64 * 1024;
/// Findings named in a statement, at most.
const MAX_FINDINGS: usize = 50;

/// The file names of one run's attestation.
pub const STATEMENT_FILE: &str = "statement.json";
pub const ENVELOPE_FILE: &str = "envelope.dsse.json";
pub const SUMS_FILE: &str = "SHA256SUMS";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the key {}: {message}", path.display())]
    KeyRead { path: PathBuf, message: String },
    #[error(
        "{} is not an Ed25519 {what} in PEM: {message}\n  (make one with `openssl genpkey -algorithm ed25519 -out key.pem` and `openssl pkey -in key.pem -pubout -out key.pub.pem`)",
        path.display()
    )]
    KeyFormat {
        path: PathBuf,
        what: &'static str,
        message: String,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the report records of a run's attestation, and the run page shows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AttestationRef {
    /// The folder of the run's attestation files, as given to `--attest`.
    pub dir: String,
    /// `PASSED` or `FAILED`, as the statement says.
    pub result: String,
    pub subjects: usize,
    /// The key that signed the envelope (securesystemslib's default key id), or
    /// none when it is unsigned.
    pub keyid: Option<String>,
    pub statement_sha256: String,
    pub envelope_sha256: String,
}

/// An Ed25519 private key and its key id.
pub struct Signer {
    key: SigningKey,
    pub keyid: String,
}

impl Signer {
    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    pub fn load(path: &Path) -> Result<Signer, Error> {
        let pem = read_key(path)?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| Error::KeyFormat {
            path: path.to_path_buf(),
            what: "private key (PKCS#8)",
            message: e.to_string(),
        })?;
        let keyid = keyid(&key.verifying_key());
        Ok(Signer { key, keyid })
    }

    pub fn sign(&self, payload_type: &str, payload: &[u8]) -> Signature {
        self.key.sign(&pae(payload_type, payload))
    }
}

/// Reads a public key in PEM (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo).
pub fn load_public(path: &Path) -> Result<VerifyingKey, Error> {
    let pem = read_key(path)?;
    VerifyingKey::from_public_key_pem(&pem).map_err(|e| Error::KeyFormat {
        path: path.to_path_buf(),
        what: "public key (SubjectPublicKeyInfo)",
        message: e.to_string(),
    })
}

fn read_key(path: &Path) -> Result<String, Error> {
    let bytes = crate::fsutil::read_regular(path, MAX_KEY_BYTES).map_err(|e| Error::KeyRead {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|_| Error::KeyFormat {
        path: path.to_path_buf(),
        what: "key",
        message: "the file is not text".into(),
    })
}

/// The key id securesystemslib gives an Ed25519 key by default: the sha256 of the
/// canonical JSON of `{"keytype","keyval":{"public": hex},"scheme"}`, so its
/// `Envelope.verify` finds the key for lith's signature with no mapping.
pub fn keyid(key: &VerifyingKey) -> String {
    // Canonical JSON: sorted keys, no whitespace; every value here is plain ASCII.
    let canonical = format!(
        "{{\"keytype\":\"ed25519\",\"keyval\":{{\"public\":\"{}\"}},\"scheme\":\"ed25519\"}}",
        hex(key.as_bytes())
    );
    hex(&Sha256::digest(canonical.as_bytes()))
}

/// The DSSE pre-authentication encoding: `DSSEv1 SP LEN(type) SP type SP
/// LEN(body) SP body`, lengths in ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope of `payload`, signed when a key is given (else with no
/// signature), as JSON with a final newline.
pub fn envelope(payload: &[u8], signer: Option<&Signer>) -> Vec<u8> {
    let signatures: Vec<Value> = signer
        .map(|s| {
            json!({
                "keyid": s.keyid,
                "sig": Base64::encode_string(&s.sign(PAYLOAD_TYPE, payload).to_bytes()),
            })
        })
        .into_iter()
        .collect();
    let mut bytes = serde_json::to_vec(&json!({
        "payload": Base64::encode_string(payload),
        "payloadType": PAYLOAD_TYPE,
        "signatures": signatures,
    }))
    .expect("strings serialize");
    bytes.push(b'\n');
    bytes
}

/// What every statement of one build or one `lith attest` shares.
pub struct Context {
    /// `timeVerified`: the one clock, RFC 3339.
    pub time: String,
    /// The policy's resource descriptor: the manifest and its sha256.
    pub policy: Value,
}

impl Context {
    /// The manifest (its name and the sha256 of the bytes lith parsed) is the
    /// policy; without one, lith's strict verification rules are.
    pub fn new(time: String, manifest: Option<(String, [u8; 32])>) -> Context {
        let policy = match manifest {
            Some((label, sha256)) => json!({"uri": label, "digest": {"sha256": hex(&sha256)}}),
            None => json!({"uri": format!("{}#strict-verification", verifier_id())}),
        };
        Context { time, policy }
    }
}

/// The verifier's id: lith and its version, as a package URL.
pub fn verifier_id() -> String {
    format!("pkg:cargo/lith@{}", env!("CARGO_PKG_VERSION"))
}

fn verifier() -> Value {
    json!({"id": verifier_id(), "version": {"lith": env!("CARGO_PKG_VERSION")}})
}

/// The name of a subject: the run folder as the report names it (relative to the
/// workspace in a build), then the artifact's path in the run.
pub fn subject_name(run: &RunReport, rel: &str) -> String {
    format!("{}/{rel}", run.dir.trim_end_matches('/'))
}

/// A run's statement says PASSED only when it verified with digests.
pub fn passed(run: &RunReport) -> bool {
    run.verification == Verification::Verified && run.mode == Mode::Full
}

/// The statement of one run, compact JSON; `None` when the run has no indexed
/// artifact with a safe path (an in-toto statement needs a subject).
pub fn run_statement(run: &RunReport, cx: &Context) -> Option<Vec<u8>> {
    if run.extra().subjects.is_empty() {
        return None;
    }
    let passed = passed(run);
    let promotable = run
        .promotability
        .as_ref()
        .map(|p| p.promotable_decision_stage);
    let mut levels = Vec::new();
    if passed {
        levels.push(LEVEL_INTEGRITY);
        if promotable == Some(true) {
            levels.push(LEVEL_PROMOTABLE);
        }
    }
    let subject: Vec<Value> = run
        .extra()
        .subjects
        .iter()
        .map(|(rel, sha)| json!({"name": subject_name(run, rel), "digest": {"sha256": hex(sha)}}))
        .collect();
    let findings: Vec<Value> = run
        .findings
        .iter()
        .take(MAX_FINDINGS)
        .map(|f| json!({"code": f.code.as_str(), "severity": f.severity.as_str()}))
        .collect();
    let lith = json!({
        "schema": LITH_SCHEMA,
        "run_id": run.run_id,
        "dir": run.dir,
        "state": run.state(),
        "verification": run.verification.as_str(),
        "index_status": run.index.as_ref().map(|i| i.status.to_string()),
        "mode": match run.mode { Mode::Full => "full", Mode::Fast => "fast" },
        "artifacts": {"total": run.counts.total, "ok": run.counts.ok, "by_status": run.counts.by_status},
        "subjects_left_out": run.counts.total.saturating_sub(run.extra().subjects.len()),
        "promotable": promotable,
        "promotability_reasons": run.promotability.as_ref().map(|p| p.reasons).unwrap_or_default(),
        "findings": findings,
        "findings_left_out": run.findings.len().saturating_sub(MAX_FINDINGS),
    });
    Some(vsa_statement(
        subject,
        run.url.as_deref().unwrap_or(&run.dir),
        passed,
        levels,
        lith,
        cx,
    ))
}

/// The run's artifacts in GNU coreutils `sha256sum` format, names relative to the
/// run folder (`cd RUN && sha256sum -c SHA256SUMS`). A name holding a backslash
/// or a line break is escaped as coreutils does: the line starts with `\`.
pub fn sha256sums(run: &RunReport) -> String {
    let mut out = String::new();
    for (rel, sha) in &run.extra().subjects {
        if rel.contains(['\\', '\n', '\r']) {
            let name = rel
                .replace('\\', "\\\\")
                .replace('\n', "\\n")
                .replace('\r', "\\r");
            out.push_str(&format!("\\{}  {name}\n", hex(sha)));
        } else {
            out.push_str(&format!("{}  {rel}\n", hex(sha)));
        }
    }
    out
}

/// The statement of a whole build: its subjects are the runs' statements (each
/// named by its path in the attestation folder), its result PASSED only when every
/// run was attested and passed.
pub fn build_statement(
    statements: &[(String, String)],
    summary: Value,
    passed: bool,
    resource: &str,
    cx: &Context,
) -> Vec<u8> {
    let subject: Vec<Value> = statements
        .iter()
        .map(|(name, sha)| json!({"name": name, "digest": {"sha256": sha}}))
        .collect();
    let levels = if passed {
        vec![LEVEL_INTEGRITY]
    } else {
        Vec::new()
    };
    vsa_statement(subject, resource, passed, levels, summary, cx)
}

/// An in-toto Statement v1 with a SLSA verification summary predicate, lith's own
/// results under `predicate.lith`; compact JSON and a final newline.
fn vsa_statement(
    subject: Vec<Value>,
    resource: &str,
    passed: bool,
    levels: Vec<&str>,
    lith: Value,
    cx: &Context,
) -> Vec<u8> {
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": VSA_PREDICATE_TYPE,
        "predicate": {
            "verifier": verifier(),
            "timeVerified": cx.time,
            "resourceUri": resource,
            "policy": cx.policy,
            "verificationResult": if passed { "PASSED" } else { "FAILED" },
            "verifiedLevels": levels,
            "slsaVersion": "1.0",
            "lith": lith,
        },
    });
    let mut bytes = serde_json::to_vec(&statement).expect("JSON values serialize");
    bytes.push(b'\n');
    bytes
}

/// The files of one run's attestation, ready to write.
pub struct RunFiles {
    pub statement: Vec<u8>,
    pub envelope: Vec<u8>,
    pub sums: String,
    pub reference: AttestationRef,
}

/// The attestation of one run, or `None` when it has no subject.
pub fn run_files(
    run: &RunReport,
    cx: &Context,
    signer: Option<&Signer>,
    dir: &str,
) -> Option<RunFiles> {
    let statement = run_statement(run, cx)?;
    let envelope = envelope(&statement, signer);
    let passed = passed(run);
    Some(RunFiles {
        reference: AttestationRef {
            dir: dir.to_string(),
            result: if passed { "PASSED" } else { "FAILED" }.into(),
            subjects: run.extra().subjects.len(),
            keyid: signer.map(|s| s.keyid.clone()),
            statement_sha256: hex(&Sha256::digest(&statement)),
            envelope_sha256: hex(&Sha256::digest(&envelope)),
        },
        sums: sha256sums(run),
        statement,
        envelope,
    })
}

/// Where attestations are written: a folder created as needed, its files put
/// through the site's [`crate::site::Sink`]. Each file is written to a temporary
/// name and renamed in (a reader sees the old file or the new one), a file whose
/// bytes are unchanged is left alone, and a symlink where a folder belongs is
/// refused, never written through.
pub struct Out {
    dir: PathBuf,
    sink: crate::site::Sink,
}

impl Out {
    pub fn open(dir: &Path) -> Result<Out, Error> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Out {
            dir: dir.to_path_buf(),
            sink: crate::site::Sink::update(dir),
        })
    }

    /// Puts `bytes` at `rel` (slash-separated) in the folder.
    pub fn put(&self, rel: &str, bytes: &[u8]) -> Result<(), Error> {
        self.sink.put(rel, bytes).map_err(|e| match e {
            crate::site::Error::Write { rel, source } => Error::Write {
                path: self.dir.join(rel),
                source,
            },
            other => Error::Write {
                path: self.dir.join(rel),
                source: std::io::Error::other(other.to_string()),
            },
        })
    }

    /// Puts a run's three files in the folder `rel` (empty for the top).
    pub fn put_run(&self, rel: &str, files: &RunFiles) -> Result<(), Error> {
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{}/", rel.trim_end_matches('/'))
        };
        for (name, bytes) in [
            (STATEMENT_FILE, &files.statement[..]),
            (ENVELOPE_FILE, &files.envelope[..]),
            (SUMS_FILE, files.sums.as_bytes()),
        ] {
            self.put(&format!("{prefix}{name}"), bytes)?;
        }
        Ok(())
    }
}

/// What `lith attest verify` reads of a statement.
#[derive(Debug, Default)]
pub struct ReadStatement {
    /// `_type`, when a string.
    pub kind: Option<String>,
    /// Each subject's `name` and `digest.sha256` (lowercase), `""` when not a
    /// string.
    pub subjects: Vec<(String, String)>,
    pub predicate: Option<serde_json::Value>,
}

/// Reads a statement's payload. Its subjects (a run may have hundreds of thousands)
/// are read as pairs of strings, not as JSON objects, which take some 650 bytes
/// each; their number is bounded as [`crate::json_budget::MAX_VALUES`] bounds a
/// document's values, and the predicate is read under a budget of its own.
pub fn read_statement(payload: &[u8]) -> serde_json::Result<ReadStatement> {
    use crate::json_budget::{MAX_VALUES, StringOrSkip, ValueSeed};
    use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use std::cell::Cell;

    struct Statement;
    struct Subjects;
    struct Subject;
    struct Digest;

    impl<'de> Visitor<'de> for Statement {
        type Value = ReadStatement;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an in-toto statement (a JSON object)")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ReadStatement, A::Error> {
            let mut out = ReadStatement::default();
            // Later keys win, as in a `Value`.
            while let Some(key) = map.next_key::<String>()? {
                match key.as_str() {
                    "_type" => out.kind = map.next_value_seed(StringOrSkip)?,
                    "subject" => out.subjects = map.next_value_seed(Subjects)?,
                    "predicate" => {
                        let left = Cell::new(MAX_VALUES);
                        out.predicate = Some(map.next_value_seed(ValueSeed::new(&left))?);
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(out)
        }
    }
    impl<'de> DeserializeSeed<'de> for Subjects {
        type Value = Vec<(String, String)>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de> Visitor<'de> for Subjects {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of subjects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element_seed(Subject)? {
                out.push(s);
            }
            out.shrink_to_fit();
            Ok(out)
        }
    }
    impl<'de> DeserializeSeed<'de> for Subject {
        type Value = (String, String);
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Subject {
        type Value = (String, String);
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a subject (an object with a name and a digest)")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let (mut name, mut sha256) = (None, None);
            while let Some(key) = map.next_key::<String>()? {
                match key.as_str() {
                    "name" => name = map.next_value_seed(StringOrSkip)?,
                    "digest" => sha256 = map.next_value_seed(Digest)?,
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok((
                name.unwrap_or_default(),
                sha256.unwrap_or_default().to_ascii_lowercase(),
            ))
        }
    }
    impl<'de> DeserializeSeed<'de> for Digest {
        type Value = Option<String>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Digest {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a digest (an object of algorithm names)")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut sha256 = None;
            while let Some(key) = map.next_key::<String>()? {
                if key == "sha256" {
                    sha256 = map.next_value_seed(StringOrSkip)?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(sha256)
        }
    }

    // A subject is a pair of strings (48 bytes and their text): counting the
    // document's values first bounds how many there are.
    crate::json_budget::count_values(payload, &Cell::new(MAX_VALUES), MAX_VALUES)?;
    let mut de = serde_json::Deserializer::from_slice(payload);
    let out = serde::Deserializer::deserialize_map(&mut de, Statement)?;
    de.end()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A statement of a run of 200,000 artifacts is 400,000 small objects: read as
    /// `Value`s they would take some 260 MB, and the budget of values refuses
    /// them. Its subjects are read as pairs of strings.
    #[test]
    fn a_statement_of_many_subjects_is_read_as_pairs_of_strings() {
        let subject = |i: usize| {
            format!(r#"{{"name":"out/r1/f{i:06}","digest":{{"sha256":"AB{i:062}","md5":"x"}}}}"#)
        };
        let doc = |subjects: &[String]| {
            format!(
                r#"{{"_type":"{STATEMENT_TYPE}","subject":[{}],"predicate":{{"verificationResult":"PASSED"}}}}"#,
                subjects.join(",")
            )
        };
        let many: Vec<String> = (0..200_000).map(subject).collect();
        let payload = doc(&many);
        assert!(crate::fsutil::parse_json(payload.as_bytes()).is_err());
        let read = read_statement(payload.as_bytes()).unwrap();
        assert_eq!(read.kind.as_deref(), Some(STATEMENT_TYPE));
        assert_eq!(read.subjects.len(), 200_000);
        assert_eq!(
            read.subjects[7],
            ("out/r1/f000007".to_string(), format!("ab{:062}", 7))
        );
        assert_eq!(read.predicate.unwrap()["verificationResult"], "PASSED");
        // A name or digest that is not a string reads as "", as the lookups of a
        // `Value` did; a subject that is not an object is refused.
        let odd = doc(&[r#"{"name":1,"digest":{"sha256":null}}"#.to_string()]);
        let read = read_statement(odd.as_bytes()).unwrap();
        assert_eq!(read.subjects, [(String::new(), String::new())]);
        assert!(read_statement(doc(&["3".to_string()]).as_bytes()).is_err());
        // The number of subjects is bounded by the budget of values.
        let empty = vec!["{}".to_string(); crate::json_budget::MAX_VALUES];
        let e = read_statement(doc(&empty).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("JSON values"), "{e}");
    }

    #[test]
    fn pae_is_the_dsse_encoding() {
        // The example of the DSSE specification (protocol.md).
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    }

    #[test]
    fn sums_escape_names_as_coreutils_does() {
        let mut run: RunReport = serde_json::from_value(json!({
            "run_id": "r", "dir": "out/r", "latest": false, "mode": "full",
            "verification": "verified", "state": null, "committed": true,
            "run_status": null, "index": null, "counts": {"total": 2, "ok": 2, "by_status": {}},
            "artifacts": [], "unindexed": [], "witnesses": null, "findings": []
        }))
        .unwrap();
        run.extra_mut().subjects =
            vec![("a b.txt".into(), [0u8; 32]), ("x\\y\nz".into(), [1u8; 32])];
        let sums = sha256sums(&run);
        let lines: Vec<&str> = sums.lines().collect();
        assert_eq!(lines[0], format!("{}  a b.txt", "0".repeat(64)));
        assert_eq!(lines[1], format!("\\{}  x\\\\y\\nz", "01".repeat(32)));
    }

    #[test]
    fn the_key_id_is_securesystemslibs_default() {
        // RFC 8032 test vector 1's public key; the id is what securesystemslib's
        // compute_default_keyid gives it (checked against securesystemslib 1.6).
        let public: [u8; 32] = [
            0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64,
            0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68,
            0xf7, 0x07, 0x51, 0x1a,
        ];
        let key = VerifyingKey::from_bytes(&public).unwrap();
        assert_eq!(keyid(&key), KEYID_OF_RFC8032_VECTOR_1);
    }

    const KEYID_OF_RFC8032_VECTOR_1: &str =
        "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916";
}
