//! Definition of Done (SPEC §7): verdicts per phase from the DoD documents
//! (Markdown, read with pulldown-cmark), the phase registry (YAML or JSON), git
//! commit reachability, evidence paths and hash claims, gate requirements, registry
//! integrity, the activity chain, and the anti-synthetic rule.

pub mod registry;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

use pulldown_cmark::{Event as Md, Parser, Tag, TagEnd};
use serde::Serialize;

use crate::activity::{self, Feed, chain};
use crate::beneath::{Dir, Refusal};
use crate::bundle::paths;
use crate::bundle::verify::hash_open;
use crate::clock::Clock;
use crate::lith::Manifest;
use registry::Registry;

pub const SCHEMA: &str = "dod_report_v2";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub enum Verdict {
    #[serde(rename = "PROVEN")]
    Proven,
    #[serde(rename = "PARTIAL")]
    Partial,
    #[serde(rename = "DESIGNED")]
    Designed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Proven => "PROVEN",
            Verdict::Partial => "PARTIAL",
            Verdict::Designed => "DESIGNED",
        }
    }
}

/// What a DoD document says about itself.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct Meta {
    pub phase_id: Option<String>,
    pub commit_sha: Option<String>,
    pub gate: Option<String>,
    pub sot_section: Option<String>,
    /// `path:` / `file:` pointers in the document.
    pub evidence_paths: Vec<String>,
    /// (path, sha256) claims: a `sha256:<hex>` next to a path pointer.
    pub hash_claims: Vec<(String, String)>,
}

/// Reads a DoD document's metadata list items and evidence pointers.
pub fn read_meta(markdown: &str) -> Meta {
    let mut m = Meta::default();
    // Each block (list item or paragraph) as plain text, code spans included.
    let mut blocks: Vec<String> = Vec::new();
    let mut cur = String::new();
    for ev in Parser::new(markdown) {
        match ev {
            Md::Text(t) | Md::Code(t) => cur.push_str(&t),
            Md::SoftBreak | Md::HardBreak => cur.push(' '),
            Md::Start(Tag::Item)
            | Md::Start(Tag::Paragraph)
            | Md::End(TagEnd::Item)
            | Md::End(TagEnd::Paragraph) => {
                if !cur.trim().is_empty() {
                    blocks.push(std::mem::take(&mut cur));
                }
                cur.clear();
            }
            _ => {}
        }
    }
    if !cur.trim().is_empty() {
        blocks.push(cur);
    }
    let value = |b: &str, label: &str| -> Option<String> {
        let rest = b
            .trim()
            .strip_prefix(label)?
            .trim_start()
            .strip_prefix(':')?;
        let v = rest.trim().trim_matches('`').trim();
        (!v.is_empty()).then(|| v.to_string())
    };
    for b in &blocks {
        m.phase_id = m.phase_id.take().or_else(|| value(b, "Phase / Task ID"));
        m.commit_sha = m.commit_sha.take().or_else(|| value(b, "Commit SHA"));
        m.gate = m.gate.take().or_else(|| value(b, "Gate"));
        m.sot_section = m
            .sot_section
            .take()
            .or_else(|| value(b, "Related SOT Section"));
        // Evidence pointers and hash claims.
        let tokens: Vec<&str> = b.split_whitespace().collect();
        let clean = |t: &str| {
            t.trim_matches(|c: char| {
                matches!(c, '`' | '"' | '\'' | ',' | ';' | '(' | ')' | '[' | ']')
            })
            .to_string()
        };
        let mut paths_here = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            for prefix in ["path:", "file:"] {
                if let Some(rest) = t
                    .strip_prefix(prefix)
                    .or_else(|| t.strip_prefix(&format!("`{prefix}")))
                {
                    let p = if rest.trim_matches('`').is_empty() {
                        tokens.get(i + 1).map(|n| clean(n))
                    } else {
                        Some(clean(rest))
                    };
                    if let Some(p) = p.filter(|p| !p.is_empty()) {
                        paths_here.push(p);
                    }
                }
            }
        }
        for t in &tokens {
            let t = clean(t);
            if let Some(h) = t.strip_prefix("sha256:")
                && h.len() == 64
                && h.bytes().all(|c| c.is_ascii_hexdigit())
                && let Some(p) = paths_here.first()
            {
                m.hash_claims.push((p.clone(), h.to_ascii_lowercase()));
            }
        }
        m.evidence_paths.extend(paths_here);
    }
    m.evidence_paths.sort();
    m.evidence_paths.dedup();
    m
}

/// True when `sha` names a commit in the workspace's git repository.
pub fn commit_reachable(workspace: &Path, sha: &str) -> bool {
    if !(7..=64).contains(&sha.len()) || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    Command::new("git")
        .arg("-C")
        .arg(workspace)
        .args(["cat-file", "-e", &format!("{sha}^{{commit}}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The commit the workspace is at, when it is a git repository.
pub fn git_head(workspace: &Path) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(workspace)
        .args(["rev-parse", "HEAD"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Checks {
    pub activity_chain: chain::Chain,
    pub evidence: Vec<String>,
    pub gate: Vec<String>,
    pub synthetic_detected: bool,
    pub registry_integrity_ok: bool,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct PhaseResult {
    pub phase_id: String,
    pub verdict: Verdict,
    /// A fixture phase of the registry: left out of the exit code of `--all`.
    pub fixture: bool,
    pub meta: Meta,
    pub checks: Checks,
    /// Sorted, unique findings.
    pub missing: Vec<String>,
}

pub struct Inputs<'a> {
    pub workspace: &'a Path,
    pub registry: &'a Registry,
    pub feed: &'a Feed,
    /// `Some(targets)` when operational proof is required (`None` inside = all).
    pub require_operational: Option<Option<&'a [String]>>,
}

/// Opens an evidence path beneath the workspace's handle (SPEC §3.4): no symlink
/// leads outside, and the file judged is the file opened. Records why not in
/// `missing`.
fn check_path(
    ws: Option<&Dir>,
    p: &str,
    missing: &mut BTreeSet<String>,
) -> Option<(std::fs::File, std::fs::Metadata)> {
    let Ok(parts) = paths::lexical_components(p) else {
        missing.insert(format!("evidence.path_traversal:{p}"));
        return None;
    };
    let Some(ws) = ws else {
        missing.insert(format!("evidence.path_unreadable:{p}"));
        return None;
    };
    match ws.open_file(&parts) {
        Ok(opened) => Some(opened),
        Err(Refusal::Missing) => {
            missing.insert(format!("evidence.path_missing:{p}"));
            None
        }
        Err(Refusal::Outside) => {
            missing.insert(format!("evidence.path_traversal:{p}"));
            None
        }
        Err(Refusal::NotAFile(_) | Refusal::Io(_)) => {
            missing.insert(format!("evidence.path_unreadable:{p}"));
            None
        }
    }
}

/// Evaluates one phase.
/// The largest DoD document lith reads (1 MiB): a document people write, whose
/// parsed pointers cost many times its text.
pub const MAX_DOCUMENT_BYTES: u64 = 1024 * 1024;

pub fn evaluate(phase: &str, document: Option<&str>, inp: &Inputs) -> PhaseResult {
    let ws = std::fs::canonicalize(inp.workspace).unwrap_or_else(|_| inp.workspace.to_path_buf());
    let ws_dir = Dir::open(&ws).ok();
    let meta = document.map(read_meta).unwrap_or_default();
    let reg = inp.registry.phases.get(phase);
    let mut missing: BTreeSet<String> = BTreeSet::new();

    let metadata_present = meta.phase_id.is_some() && meta.gate.is_some();
    if document.is_none() {
        missing.insert("metadata.document_missing".into());
    } else {
        if meta.phase_id.is_none() {
            missing.insert("metadata.phase_id_missing".into());
        }
        if meta.gate.is_none() {
            missing.insert("metadata.gate_missing".into());
        }
    }
    let sha = meta
        .commit_sha
        .clone()
        .or_else(|| reg.and_then(|r| r.commit_sha.clone()));
    let commit_unreachable = sha.as_ref().is_some_and(|s| !commit_reachable(&ws, s));
    if commit_unreachable {
        missing.insert("metadata.commit_sha_unreachable".into());
    }

    let ch = chain::chain(phase, &inp.feed.events);
    missing.extend(ch.missing.iter().cloned());
    // Past the events a feed keeps, the chain is judged on part of the phase's
    // events: never proven.
    let mut omitted = inp.feed.omitted_phases.contains(phase);
    if omitted {
        missing.insert("activity.events_omitted".into());
    }
    omitted |= ch.missing.iter().any(|m| m == "activity.evidence_omitted");
    // The forbidden heartbeats' lines are in file order: one search per event.
    let forbidden = inp.feed.events.iter().any(|e| {
        e.phase_id.as_deref() == Some(phase)
            && inp.feed.forbidden_heartbeats.binary_search(&e.line).is_ok()
    });
    if forbidden {
        missing.insert("heartbeat.phase_id_forbidden".into());
    }

    // Evidence: document pointers, chain evidence, and hash claims.
    let mut ev_missing: BTreeSet<String> = BTreeSet::new();
    let mut pointed: Vec<String> = meta.evidence_paths.clone();
    pointed.extend(ch.evidence.iter().cloned());
    pointed.sort();
    pointed.dedup();
    for p in &pointed {
        check_path(ws_dir.as_ref(), p, &mut ev_missing);
    }
    let mut claims: Vec<(String, String)> = meta.hash_claims.clone();
    for (p, h) in &ch.hashes {
        let h = h.strip_prefix("sha256:").unwrap_or(h);
        if h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()) {
            claims.push((p.clone(), h.to_ascii_lowercase()));
        }
    }
    claims.sort();
    claims.dedup();
    // Sorted by path: a file that several claims name is looked at and hashed once.
    for same_file in claims.chunk_by(|a, b| a.0 == b.0) {
        let p = &same_file[0].0;
        let mut scratch = BTreeSet::new();
        match check_path(ws_dir.as_ref(), p, &mut scratch) {
            Some((file, fmeta)) => {
                let digest = hash_open(file, &fmeta).ok().map(|(_, d)| d);
                if same_file
                    .iter()
                    .any(|(_, want)| digest.as_ref() != Some(want))
                {
                    ev_missing.insert(format!("evidence.hash_mismatch:{p}"));
                }
            }
            None => {
                if scratch
                    .iter()
                    .any(|s| s.starts_with("evidence.path_traversal"))
                {
                    ev_missing.extend(scratch);
                } else {
                    ev_missing.insert(format!("evidence.hash_path_missing:{p}"));
                }
            }
        }
    }

    // Gate requirements.
    let mut gate: Vec<String> = Vec::new();
    for req in reg.map(|r| r.requires.clone()).unwrap_or_default() {
        if inp
            .registry
            .phases
            .get(&req)
            .and_then(|r| r.verdict.as_deref())
            != Some("PROVEN")
        {
            gate.push(format!("gate.requires_not_proven:{req}"));
        }
    }
    gate.sort();

    let any_activity = ch.events > 0;
    let mut verdict = if commit_unreachable || omitted {
        Verdict::Partial
    } else if metadata_present && ch.valid && ev_missing.is_empty() && gate.is_empty() {
        Verdict::Proven
    } else if any_activity || !ev_missing.is_empty() || !gate.is_empty() {
        if ch.has_started {
            Verdict::Partial
        } else {
            Verdict::Designed
        }
    } else if metadata_present {
        Verdict::Designed
    } else {
        Verdict::Partial
    };

    // Registry integrity.
    let mut registry_ok = true;
    if let Some(r) = reg
        && r.verdict.as_deref() == Some("PROVEN")
    {
        let ok = r.evidence_path.as_ref().is_some_and(|p| {
            let mut s = BTreeSet::new();
            check_path(ws_dir.as_ref(), p, &mut s).is_some()
        });
        if !ok {
            registry_ok = false;
            missing.insert("registry.verdict_without_artifact".into());
            verdict = Verdict::Partial;
        }
    }

    // The anti-synthetic rule.
    let synthetic = ch.proof_mode != chain::ProofMode::Operational;
    if let Some(targets) = inp.require_operational {
        let targeted = targets.is_none_or(|t| t.iter().any(|x| x == phase));
        // Under enforcement the reference also checks every taxonomy key of each
        // event of the triple, and counts an absent event as missing all of them
        // (so an empty feed is incomplete too).
        let incomplete =
            !ch.taxonomy_complete || ch.missing.iter().any(|m| m == "taxonomy.incomplete_event");
        if targeted && incomplete {
            missing.insert("taxonomy.incomplete_event".into());
        }
        if targeted && (synthetic || incomplete) {
            missing.insert("proof.synthetic_not_allowed".into());
            verdict = Verdict::Partial;
        }
    }

    missing.extend(ev_missing.iter().cloned());
    missing.extend(gate.iter().cloned());
    PhaseResult {
        phase_id: phase.to_string(),
        verdict,
        fixture: reg.is_some_and(|r| r.fixture),
        meta,
        checks: Checks {
            activity_chain: ch,
            evidence: ev_missing.into_iter().collect(),
            gate,
            synthetic_detected: synthetic,
            registry_integrity_ok: registry_ok,
        },
        missing: missing.into_iter().collect(),
    }
}

/// The exit code of a set of verdicts: 3 if any DESIGNED, else 2 if any PARTIAL.
/// With `skip_fixtures` (`--all`, `lith build`), fixture phases do not count.
pub fn exit_code<'a>(
    verdicts: impl IntoIterator<Item = &'a PhaseResult>,
    skip_fixtures: bool,
) -> i32 {
    let mut code = crate::exit::OK;
    for p in verdicts {
        if skip_fixtures && p.fixture {
            continue;
        }
        let c = match p.verdict {
            Verdict::Designed => crate::exit::DESIGNED,
            Verdict::Partial => crate::exit::PARTIAL,
            Verdict::Proven => crate::exit::OK,
        };
        code = crate::exit::combine(code, c);
    }
    code
}

pub const DEFAULT_DOCS: &str = "docs/dod";
pub const DEFAULT_REGISTRY: &str = "core/governance/phase_status.yaml";
pub const DEFAULT_REPORTS: &str = "reports/dod";

/// The DoD documents' folder, workspace-relative as the manifest spells it.
pub fn docs_rel(m: &Manifest) -> &str {
    m.dod
        .as_ref()
        .and_then(|d| d.docs.as_deref())
        .unwrap_or(DEFAULT_DOCS)
}

/// `dod_report.latest.json`, the reference checker's report shape: written by
/// `lith dod` and beside the site.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Report {
    pub schema_version: String,
    pub ts: String,
    pub git_head: Option<String>,
    pub generator: String,
    pub operational_proof_required: bool,
    pub phases: BTreeMap<String, PhaseResult>,
}

/// The phases that have a `DOD__<PHASE>.md` document, sorted.
pub fn documented_phases(docs: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(docs)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_prefix("DOD__")
                        .and_then(|s| s.strip_suffix(".md"))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// True when operational proof is required by the environment or a flag.
pub fn operational_required(flag: bool) -> bool {
    flag || std::env::var("LUKA_REQUIRE_OPERATIONAL_PROOF").is_ok_and(|v| v == "1")
}

/// Why [`check_workspace`] could not evaluate at all (a phase it could evaluate but
/// finds short is a verdict, not an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{}: the phase registry cannot be read: {}",
        crate::finding::place(path, error.position.map(|p| p.0), error.position.map(|p| p.1)),
        error.reason
    )]
    Registry {
        path: String,
        error: registry::ReadError,
    },
    /// `--require-operational-proof` and the activity feed is unreadable or corrupt.
    #[error(transparent)]
    Feed(#[from] activity::FeedError),
}

/// What [`check_workspace`] found.
pub struct Evaluation {
    pub report: Report,
    /// Each phase's DoD document (Markdown), for the site.
    pub documents: BTreeMap<String, String>,
    pub registry: Option<Registry>,
}

/// Evaluates DoD for `phases` of a workspace (all documented phases when empty).
pub fn check_workspace(
    m: &Manifest,
    phases: &[String],
    require: bool,
    clock: &Clock,
) -> Result<Evaluation, Error> {
    let cfg = m.dod.clone().unwrap_or_default();
    let docs = m.resolve(docs_rel(m));
    let reg_rel = cfg
        .phase_status
        .clone()
        .unwrap_or_else(|| DEFAULT_REGISTRY.into());
    let registry = Registry::load(&m.resolve(&reg_rel)).map_err(|error| Error::Registry {
        path: reg_rel.clone(),
        error,
    })?;
    let empty = Registry::default();
    let paths = activity::drift::Paths::of(m);
    let feed_path = m.resolve(&paths.feed);
    let list = if phases.is_empty() {
        documented_phases(&docs)
    } else {
        phases.to_vec()
    };
    // The feed keeps the events of these phases only.
    let wanted: BTreeSet<String> = list.iter().cloned().collect();
    let feed = if require {
        activity::read_feed(&feed_path, &paths.feed, true, Some(&wanted))?
    } else {
        // Lenient: a missing feed is no activity at all.
        activity::read_feed(&feed_path, &paths.feed, false, Some(&wanted)).unwrap_or_default()
    };
    let targets: Option<Vec<String>> = m
        .activity
        .as_ref()
        .and_then(|a| a.operational_targets.clone());
    let inputs = Inputs {
        workspace: &m.workspace,
        registry: registry.as_ref().unwrap_or(&empty),
        feed: &feed,
        require_operational: require.then_some(targets.as_deref()),
    };
    let mut out = BTreeMap::new();
    let mut documents = BTreeMap::new();
    for p in list {
        // A document over the cap is not read: the phase has no document, and says
        // why (`metadata.document_too_large`, not `document_missing`).
        let read =
            crate::fsutil::read_regular(&docs.join(format!("DOD__{p}.md")), MAX_DOCUMENT_BYTES);
        let too_large = matches!(read, Err(crate::fsutil::JsonReadError::TooLarge(..)));
        let doc = read.ok().map(|b| String::from_utf8_lossy(&b).into_owned());
        let mut result = evaluate(&p, doc.as_deref(), &inputs);
        if too_large {
            for m in &mut result.missing {
                if m == "metadata.document_missing" {
                    *m = "metadata.document_too_large".into();
                }
            }
            result.missing.sort();
        }
        out.insert(p.clone(), result);
        if let Some(doc) = doc {
            documents.insert(p, doc);
        }
    }
    Ok(Evaluation {
        report: Report {
            schema_version: SCHEMA.to_string(),
            ts: clock.now_rfc3339(),
            git_head: git_head(&m.workspace),
            generator: format!("lith {}", env!("CARGO_PKG_VERSION")),
            operational_proof_required: require,
            phases: out,
        },
        documents,
        registry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_pointers_from_markdown() {
        let doc = "# DoD\n\n## 0. Metadata\n- **Phase / Task ID**: PHASE_X\n- **Gate**: G1\n- **Commit SHA**: `abc1234`\n\
                   - **Related SOT Section**: §Tier1\n\n## Evidence\n- path: `reports/a.json` sha256:"
            .to_string()
            + &"ab".repeat(32)
            + "\n- file: logs/b.log\n- hashes: {\"core/seal.py\": \"sha256:...\"}\n";
        let m = read_meta(&doc);
        assert_eq!(m.phase_id.as_deref(), Some("PHASE_X"));
        assert_eq!(m.gate.as_deref(), Some("G1"));
        assert_eq!(m.commit_sha.as_deref(), Some("abc1234"));
        assert_eq!(m.sot_section.as_deref(), Some("§Tier1"));
        assert_eq!(m.evidence_paths, ["logs/b.log", "reports/a.json"]);
        assert_eq!(
            m.hash_claims,
            [("reports/a.json".to_string(), "ab".repeat(32))]
        );
    }

    #[test]
    fn commit_shas_are_checked_before_git_sees_them() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "HEAD", "--upload-pack=x", "abc", "zzzzzzz"] {
            assert!(!commit_reachable(dir.path(), bad), "{bad}");
        }
    }
}
