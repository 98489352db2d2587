//! `lith attest BUNDLE` and `lith attest verify ENVELOPE` (SPEC §12).

use std::path::Path;

use anyhow::Context as _;
use base64ct::{Base64, Encoding};
use ed25519_dalek::Signature;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::attest::{self, Context, Signer};
use crate::bundle::layout::{self, BundleTarget};
use crate::bundle::verify::{Mode, VerifyOptions, hex, verify_run};
use crate::cli::{AttestArgs, AttestCmd, AttestCommand, AttestVerifyArgs, GlobalArgs};
use crate::clock::Clock;
use crate::exit;
use crate::fsutil::slash_path;
use crate::term::one_line;

pub fn execute(g: &GlobalArgs, a: &AttestCmd) -> anyhow::Result<i32> {
    match &a.verify {
        Some(AttestCommand::Verify(v)) => verify(g, v),
        None => attest_run(g, &a.attest),
    }
}

fn attest_run(g: &GlobalArgs, a: &AttestArgs) -> anyhow::Result<i32> {
    let given = a.bundle.as_deref().expect("clap requires BUNDLE");
    super::bundle_folder(given)?;
    let clock = Clock::from_env().map_err(anyhow::Error::msg)?;
    // The key is read before anything is verified: a wrong key fails at once.
    let signer = a.key.as_deref().map(Signer::load).transpose()?;
    // The manifest, when there is one, is the policy and names the decision-stage
    // artifacts; without one lith's strict rules and defaults apply.
    let manifest_path = &a.manifest.manifest;
    let (decision_stage, policy) = if manifest_path.exists() {
        let m = crate::lith::Manifest::load(manifest_path)?;
        let ds = m
            .bundles
            .as_ref()
            .map(|b| b.decision_stage_artifacts.clone())
            .unwrap_or_else(crate::bundle::manifest_defaults);
        (ds, m.sha256.map(|d| (slash_path(manifest_path), d)))
    } else {
        (crate::bundle::manifest_defaults(), None)
    };
    let cx = Context::new(clock.now_rfc3339(), policy);
    let (run_dir, latest) = match layout::resolve_bundle(given) {
        BundleTarget::Run { run_dir, latest } => (run_dir, latest),
        BundleTarget::Refused {
            reason, message, ..
        } => {
            crate::term::eprint(&format!(
                "{}: refused ({reason}): {message}; nothing attested",
                slash_path(given)
            ));
            return Ok(exit::PARTIAL);
        }
    };
    let label = if latest.is_some() {
        slash_path(&given.join(run_dir.file_name().unwrap_or_default()))
    } else {
        slash_path(given)
    };
    let opts = VerifyOptions {
        decision_stage: Some(decision_stage),
        keep_subjects: true,
        ..VerifyOptions::new(Mode::Full, None)
    };
    let run = verify_run(&run_dir, &label, &opts);
    let (code, _) = super::verify::strict_outcome(run.verification);
    let out = slash_path(&a.out);
    let Some(files) = attest::run_files(&run, &cx, signer.as_ref(), &out) else {
        crate::term::eprint(&format!(
            "{label}: no indexed artifact with a safe path ({}); an in-toto statement needs at least one subject, so nothing was attested",
            run.verification.as_str()
        ));
        return Ok(if code == exit::OK {
            exit::PARTIAL
        } else {
            code
        });
    };
    attest::Out::open(&a.out)?.put_run("", &files)?;
    let r = &files.reference;
    if g.json {
        crate::cmd::print_json(&serde_json::json!({
            "bundle": label,
            "out": out,
            "statement": format!("{out}/{}", attest::STATEMENT_FILE),
            "envelope": format!("{out}/{}", attest::ENVELOPE_FILE),
            "sha256sums": format!("{out}/{}", attest::SUMS_FILE),
            "verification_result": r.result,
            "subjects": r.subjects,
            "keyid": r.keyid,
            "exit_code": code,
        }))?;
    } else if !g.quiet {
        crate::cmd::print_stdout(&format!(
            "{label}: {} ({} subject(s)), {}\n  wrote {out}/{}, {out}/{} and {out}/{}\n",
            r.result,
            r.subjects,
            match &r.keyid {
                Some(k) => format!("signed with Ed25519 key {k}"),
                None => "unsigned (no --key)".to_string(),
            },
            attest::STATEMENT_FILE,
            attest::ENVELOPE_FILE,
            attest::SUMS_FILE,
        ))?;
    }
    Ok(code)
}

#[derive(Debug, Serialize)]
struct Mismatch {
    name: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct VerifyOutput {
    envelope: String,
    /// `verified`, `invalid` (no signature matches the key) or `unsigned`.
    signature: &'static str,
    keyid: String,
    subjects: usize,
    bundle: Option<String>,
    rehashed: usize,
    mismatches: Vec<Mismatch>,
    verification_result: Option<String>,
    promotable: Option<bool>,
    exit_code: i32,
}

/// A problem with the envelope or what it holds: exit 4 with the reason.
fn unreadable(path: &Path, why: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{}: {why}", slash_path(path))
}

fn verify(g: &GlobalArgs, a: &AttestVerifyArgs) -> anyhow::Result<i32> {
    let key = attest::load_public(&a.pubkey)?;
    let keyid = attest::keyid(&key);
    let bytes = crate::fsutil::read_regular(&a.envelope, attest::MAX_ENVELOPE_BYTES)
        .map_err(|e| unreadable(&a.envelope, format!("cannot read the envelope: {e}")))?;
    let envelope = crate::fsutil::parse_json(&bytes).map_err(|e| match e {
        crate::fsutil::JsonReadError::Syntax {
            line,
            column,
            message,
        } => anyhow::anyhow!(
            "{}:{line}:{column}: not a DSSE envelope: {message}",
            slash_path(&a.envelope)
        ),
        e => unreadable(&a.envelope, format!("not a DSSE envelope: {e}")),
    })?;
    let field = |name: &str| -> anyhow::Result<&str> {
        envelope.get(name).and_then(Value::as_str).ok_or_else(|| {
            unreadable(
                &a.envelope,
                format!("not a DSSE envelope: no string `{name}`"),
            )
        })
    };
    let payload_type = field("payloadType")?;
    let payload = Base64::decode_vec(field("payload")?)
        .map_err(|e| unreadable(&a.envelope, format!("`payload` is not base64: {e}")))?;
    let signatures = envelope
        .get("signatures")
        .and_then(Value::as_array)
        .ok_or_else(|| unreadable(&a.envelope, "not a DSSE envelope: no `signatures` array"))?;
    if payload_type != attest::PAYLOAD_TYPE {
        anyhow::bail!(unreadable(
            &a.envelope,
            format!(
                "payloadType is {payload_type:?}, not {:?}: not an in-toto statement",
                attest::PAYLOAD_TYPE
            )
        ));
    }
    // A signature counts when it verifies over the pre-authentication encoding
    // with the given key (its keyid is only a hint, so it is not trusted).
    let pae = attest::pae(payload_type, &payload);
    let signed = signatures.iter().any(|s| {
        s.get("sig")
            .and_then(Value::as_str)
            .and_then(|b| Base64::decode_vec(b).ok())
            .and_then(|b| Signature::from_slice(&b).ok())
            .is_some_and(|sig| key.verify_strict(&pae, &sig).is_ok())
    });
    let signature = if signed {
        "verified"
    } else if signatures.is_empty() {
        "unsigned"
    } else {
        "invalid"
    };
    let statement = attest::read_statement(&payload).map_err(|e| {
        unreadable(
            &a.envelope,
            format!(
                "the payload is not an in-toto statement lith reads: {}:{}: {}",
                e.line(),
                e.column(),
                crate::fsutil::strip_position(&e.to_string())
            ),
        )
    })?;
    if statement.kind.as_deref() != Some(attest::STATEMENT_TYPE) {
        anyhow::bail!(unreadable(
            &a.envelope,
            format!(
                "the payload is not an in-toto Statement v1 (`_type` is not {:?})",
                attest::STATEMENT_TYPE
            )
        ));
    }
    let subjects = statement.subjects;
    let predicate = statement.predicate.as_ref();
    let result = predicate
        .and_then(|p| p.get("verificationResult"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let promotable = predicate
        .and_then(|p| p.pointer("/lith/promotable"))
        .and_then(Value::as_bool);
    let mut mismatches = Vec::new();
    let mut rehashed = 0;
    if let Some(bundle) = &a.bundle {
        // Subjects are named by the run folder as the statement recorded it, then
        // the artifact's path in the run.
        let prefix = predicate
            .and_then(|p| p.pointer("/lith/dir"))
            .and_then(Value::as_str)
            .map(|d| format!("{}/", d.trim_end_matches('/')));
        let base = std::fs::canonicalize(bundle).with_context(|| {
            format!(
                "--bundle {}: cannot open the run folder",
                slash_path(bundle)
            )
        })?;
        let dir = crate::beneath::Dir::open(&base).with_context(|| {
            format!(
                "--bundle {}: cannot open the run folder",
                slash_path(bundle)
            )
        })?;
        for (name, want) in &subjects {
            let rel = match &prefix {
                Some(p) => name.strip_prefix(p.as_str()),
                None => Some(name.as_str()),
            };
            let reason = match rel.map(crate::bundle::paths::lexical_components) {
                None => {
                    Some("names a file outside the run folder the statement records".to_string())
                }
                Some(Err(why)) => Some(format!("unsafe path: {}", why.describe())),
                Some(Ok(parts)) => match dir.open_file(&parts) {
                    Err(e) => Some(format!("cannot open it beneath the run folder: {e}")),
                    Ok((f, meta)) => match crate::bundle::verify::hash_open(f, &meta) {
                        Err(e) => Some(format!("cannot read it: {e}")),
                        Ok((_, got)) => {
                            rehashed += 1;
                            (got != *want)
                                .then(|| format!("sha256 is {got}, the statement says {want}"))
                        }
                    },
                },
            };
            if let Some(reason) = reason {
                mismatches.push(Mismatch {
                    name: name.clone(),
                    reason,
                });
            }
        }
    }
    let passed = result.as_deref() == Some("PASSED");
    let code = if !signed || !mismatches.is_empty() || (a.require_passed && !passed) {
        exit::PARTIAL
    } else {
        exit::OK
    };
    let out = VerifyOutput {
        envelope: slash_path(&a.envelope),
        signature,
        keyid,
        subjects: subjects.len(),
        bundle: a.bundle.as_deref().map(slash_path),
        rehashed,
        mismatches,
        verification_result: result,
        promotable,
        exit_code: code,
    };
    if g.json {
        crate::cmd::print_json(&out)?;
    } else if !g.quiet {
        crate::cmd::print_stdout(&verify_text(&out, hex(&Sha256::digest(&payload))))?;
    }
    Ok(code)
}

fn verify_text(o: &VerifyOutput, payload_sha256: String) -> String {
    let mut s = format!(
        "{}: signature {} (key {}); statement sha256 {payload_sha256}\n  {} subject(s); verificationResult {}; promotable {}\n",
        one_line(&o.envelope),
        match o.signature {
            "verified" => "verified",
            "unsigned" => "missing: the envelope is unsigned",
            _ => "INVALID: no signature matches this key",
        },
        o.keyid,
        o.subjects,
        one_line(o.verification_result.as_deref().unwrap_or("absent")),
        o.promotable.map_or("n/a", |p| if p { "yes" } else { "no" }),
    );
    if let Some(b) = &o.bundle {
        s.push_str(&format!(
            "  re-hashed {} of {} subject(s) in {b}: {}\n",
            o.rehashed,
            o.subjects,
            if o.mismatches.is_empty() {
                "all match".to_string()
            } else {
                format!("{} do not match", o.mismatches.len())
            }
        ));
        for m in o.mismatches.iter().take(20) {
            s.push_str(&format!(
                "    {}: {}\n",
                one_line(&m.name),
                one_line(&m.reason)
            ));
        }
        if o.mismatches.len() > 20 {
            s.push_str(&format!(
                "    … {} more (--json lists all)\n",
                o.mismatches.len() - 20
            ));
        }
    }
    s
}
