//! The push-truth gate (SPEC §8): the manifest's proof schema checked item by item,
//! the receipts it depends on, the open questions of the gate's packet, and the
//! Keeper of Contracts signal that speaks when unresolved questions block the gate.
//!
//! Everything here reads untrusted files through the same rules as the rest of
//! lith: paths are resolved inside the workspace only, packets are read with the
//! S-expression reader (never with regular expressions), and nothing is executed.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use crate::beneath::{Dir, Refusal};
use crate::bundle::layout;
use crate::bundle::paths;
use crate::bundle::verify::{hash_file, hash_open};
use crate::finding::{Code, Finding, Severity};
use crate::lith::sexpr::{self, Node, Value};
use crate::lith::{Manifest, manifest::GateConfig};
use crate::receipts::{self, Contract, FindingKind};

pub const GATE_ID: &str = "push-truth";
/// The default binding of `sha256:pi_zip`.
pub const DEFAULT_PI_ZIP: &str = "artifacts/truth/Π*.zip";

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct RefCheck {
    #[serde(rename = "ref")]
    pub reference: String,
    pub satisfied: bool,
    pub how: RefHow,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct HashedFile {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct HashCheck {
    pub spec: String,
    pub name: String,
    /// The glob (or `manifest`) the name is bound to.
    pub source: String,
    pub available: bool,
    pub files: Vec<HashedFile>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ReceiptsCheck {
    pub configured: bool,
    pub log: Option<String>,
    pub receipts: usize,
    /// Lines missing a required key (these block the gate).
    pub lines_missing_keys: usize,
    pub first_lines_missing_keys: Vec<usize>,
    pub parse_ok: bool,
    pub intent_ref: Option<String>,
    /// The first receipt line whose refs hold the intent ref.
    pub intent_ref_line: Option<usize>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Question {
    pub id: String,
    pub text: String,
    pub resolved: bool,
    /// Receipt lines whose refs name the question, the first [`MAX_RESOLVED_BY`].
    pub resolved_by: Vec<usize>,
    /// Receipt lines that name the question past the listed ones.
    #[serde(default, skip_serializing_if = "crate::wire::zero")]
    pub resolved_by_omitted: usize,
}

/// The receipt lines a question lists as resolving it; the rest are counted.
pub const MAX_RESOLVED_BY: usize = 100;

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct OpenQuestions {
    pub packet: String,
    pub questions: Vec<Question>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct SayIntent {
    pub text: String,
    pub asks: Vec<String>,
    pub facts: Vec<String>,
    pub repairs: Vec<String>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct KeeperSignal {
    pub presence_id: String,
    pub say_intent: SayIntent,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct GateReport {
    pub id: String,
    pub blocked: bool,
    /// Sorted, unique.
    pub reasons: Vec<GateReason>,
    /// What to do, one line per unmet requirement.
    pub needs: Vec<String>,
    pub truth_unit: Option<String>,
    pub required_refs: Vec<RefCheck>,
    pub required_hashes: Vec<HashCheck>,
    pub host_handle: Option<String>,
    pub receipts: ReceiptsCheck,
    pub open_questions: Option<OpenQuestions>,
    pub advisories: Vec<String>,
    /// Inputs the gate needs that could not be read or parsed, each `path: why`.
    /// Any of them blocks the gate with `gate-input-unreadable` (exit 4): a gate
    /// never reports clear for what it could not read.
    pub unreadable_inputs: Vec<String>,
    pub keeper_of_contracts: Option<KeeperSignal>,
}

impl GateReport {
    pub fn findings(&self) -> Vec<Finding> {
        let mut out: Vec<Finding> = self
            .reasons
            .iter()
            .filter(|r| **r != GateReason::GateInputUnreadable)
            .map(|r| {
                Finding::new(
                    r.code(),
                    Severity::Partial,
                    format!("gate {} is blocked: {r}", self.id),
                )
            })
            .collect();
        for e in &self.unreadable_inputs {
            out.push(Finding::new(
                Code::GateGateInputUnreadable,
                Severity::Error,
                format!("gate {} cannot read an input it needs: {e}", self.id),
            ));
        }
        out
    }
}

/// Opens a workspace-relative file beneath the workspace's handle (SPEC §3.4): no
/// symlink leads outside, and what is judged is what was opened.
fn open_inside(ws: Option<&Dir>, rel: &str) -> Result<(std::fs::File, std::fs::Metadata), Refusal> {
    let parts = paths::lexical_components(rel).map_err(|_| Refusal::Outside)?;
    let ws = ws.ok_or(Refusal::Missing)?;
    ws.open_file(&parts)
}

str_enum! {
    /// How a proof reference was judged.
    pub enum RefHow {
        Uri = "uri",
        Runtime = "runtime",
        Artifact = "artifact",
        Path = "path",
        Missing = "missing",
        Unsafe = "unsafe",
    }
}

fn check_ref(ws: Option<&Dir>, r: &str) -> RefCheck {
    let (satisfied, how) = if r.starts_with("runtime:") {
        (true, RefHow::Runtime)
    } else if r.starts_with("artifact:") {
        (true, RefHow::Artifact)
    } else if r.contains("://") {
        (true, RefHow::Uri)
    } else if paths::lexical_components(r).is_err() {
        (false, RefHow::Unsafe)
    } else {
        match open_inside(ws, r) {
            // A folder is a reference that exists too.
            Ok(_) | Err(Refusal::NotAFile(_)) => (true, RefHow::Path),
            Err(Refusal::Outside) => (false, RefHow::Unsafe),
            Err(Refusal::Missing | Refusal::Io(_)) => (false, RefHow::Missing),
        }
    };
    RefCheck {
        reference: r.to_string(),
        satisfied,
        how,
    }
}

/// Finds `(open-questions (q (id …) (text "…")) …)` anywhere in a packet.
fn find_questions(n: &Node, out: &mut Vec<(String, String)>) {
    if n.head() == Some("open-questions") {
        for q in n.args() {
            if q.head() != Some("q") {
                continue;
            }
            let field = |name: &str| {
                q.args()
                    .iter()
                    .find(|f| f.head() == Some(name))
                    .and_then(|f| f.args().first())
                    .and_then(Node::as_text)
            };
            if let Some(id) = field("id") {
                out.push((id, field("text").unwrap_or_default()));
            }
        }
        return;
    }
    match &n.value {
        Value::List(items) | Value::Vector(items) => {
            items.iter().for_each(|i| find_questions(i, out))
        }
        Value::Map(pairs) => pairs.iter().for_each(|(_, v)| find_questions(v, out)),
        _ => {}
    }
}

fn ref_matches(reference: &str, wanted: &str) -> bool {
    reference == wanted || reference.ends_with(&format!("/{wanted}"))
}

str_enum! {
    /// Why a gate is blocked (the reference's reason tokens).
    pub enum GateReason {
        MissingProofRefs = "missing-proof-refs",
        MissingProofHashes = "missing-proof-hashes",
        MissingHostHandle = "missing-host-handle",
        ReceiptsParseFailed = "receipts-parse-failed",
        MissingIntentRef = "missing-intent-ref",
        OpenQuestionsUnresolved = "open-questions-unresolved",
        GateInputUnreadable = "gate-input-unreadable",
    }
}

impl GateReason {
    /// The finding code of a blocked gate's reason.
    pub fn code(self) -> Code {
        match self {
            GateReason::MissingProofRefs => Code::GateMissingProofRefs,
            GateReason::MissingProofHashes => Code::GateMissingProofHashes,
            GateReason::MissingHostHandle => Code::GateMissingHostHandle,
            GateReason::ReceiptsParseFailed => Code::GateReceiptsParseFailed,
            GateReason::MissingIntentRef => Code::GateMissingIntentRef,
            GateReason::OpenQuestionsUnresolved => Code::GateOpenQuestionsUnresolved,
            GateReason::GateInputUnreadable => Code::GateGateInputUnreadable,
        }
    }
}

/// The reasons of a gate, as one comma-separated line.
pub fn join_reasons(reasons: &[GateReason]) -> String {
    reasons
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Evaluates the push-truth gate for a workspace.
pub fn evaluate(manifest: &Manifest, gate: Option<&GateConfig>) -> GateReport {
    let ws_canon =
        std::fs::canonicalize(&manifest.workspace).unwrap_or_else(|_| manifest.workspace.clone());
    let ws_dir = Dir::open(&ws_canon).ok();
    let ws = ws_dir.as_ref();
    let schema = manifest.proof_schema.clone().unwrap_or_default();
    let mut reasons: BTreeSet<GateReason> = BTreeSet::new();
    let mut needs = Vec::new();
    let mut advisories = Vec::new();
    let mut unreadable: Vec<String> = Vec::new();

    let required_refs: Vec<RefCheck> = schema
        .required_refs
        .iter()
        .map(|r| check_ref(ws, r))
        .collect();
    for r in required_refs.iter().filter(|r| !r.satisfied) {
        reasons.insert(GateReason::MissingProofRefs);
        needs.push(format!("provide proof ref {:?} ({})", r.reference, r.how));
    }

    let mut required_hashes = Vec::new();
    for spec in &schema.required_hashes {
        let (alg, name) = spec.split_once(':').unwrap_or(("", spec.as_str()));
        let mut check = HashCheck {
            spec: spec.clone(),
            name: name.to_string(),
            source: String::new(),
            available: false,
            files: Vec::new(),
            note: None,
        };
        if alg != "sha256" {
            check.note = Some(format!("unsupported algorithm {alg:?}; lith checks sha256"));
        } else if name == "manifest" {
            check.source = "manifest".into();
            if let Ok((_, sha)) = hash_file(&manifest.path) {
                check.files.push(HashedFile {
                    path: crate::fsutil::slash_path(Path::new(
                        manifest.path.file_name().unwrap_or_default(),
                    )),
                    sha256: sha,
                });
            }
        } else {
            let glob = manifest
                .hash_sources
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, g)| g.clone())
                .or_else(|| (name == "pi_zip").then(|| DEFAULT_PI_ZIP.to_string()));
            match glob {
                None => {
                    check.note = Some(format!(
                        "no (hash-sources ({name} \"glob\")) binds this name"
                    ))
                }
                Some(g) => {
                    check.source = g.clone();
                    match layout::expand_glob_files(&ws_canon, &g) {
                        Err(e) => {
                            unreadable.push(format!("(hash-sources {name}) {g:?}: {e}"));
                            check.note = Some(e);
                        }
                        Ok(found) => {
                            for rel in found {
                                let hashed = match open_inside(ws, &rel) {
                                    Ok((file, meta)) => hash_open(file, &meta),
                                    Err(Refusal::Outside) => {
                                        unreadable
                                            .push(format!("{rel}: resolves outside the workspace"));
                                        continue;
                                    }
                                    Err(r) => Err(std::io::Error::other(r.to_string())),
                                };
                                if let Err(e) = &hashed {
                                    unreadable.push(format!("{rel}: cannot hash: {e}"));
                                }
                                if let Ok((_, sha)) = hashed {
                                    if name == "pi_zip" {
                                        let file = rel.rsplit('/').next().unwrap_or(&rel);
                                        if !file.contains(&sha[..12]) {
                                            advisories.push(format!(
                                                "{rel}: a Π zip's name should carry the first 12 hex digits of its sha256 (Π.{}.zip)",
                                                &sha[..12]
                                            ));
                                        }
                                    }
                                    check.files.push(HashedFile {
                                        path: rel,
                                        sha256: sha,
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
        check.available = !check.files.is_empty();
        if !check.available {
            reasons.insert(GateReason::MissingProofHashes);
            needs.push(match check.source.as_str() {
                "" => format!("bind {spec:?} to files with (hash-sources …)"),
                src => format!("produce a file matching {src:?} for {spec:?}"),
            });
        }
        required_hashes.push(check);
    }

    let host_handle = schema.host_handle.clone().filter(|h| !h.trim().is_empty());
    if host_handle.is_none() {
        reasons.insert(GateReason::MissingHostHandle);
        needs.push("set (proof-schema (host-handle \"…\")) in the manifest".into());
    }

    let intent_ref = gate.and_then(|g| g.intent_ref.clone());
    let mut rc = ReceiptsCheck {
        configured: manifest.receipts.is_some(),
        log: manifest.receipts.as_ref().map(|r| r.log.clone()),
        receipts: 0,
        lines_missing_keys: 0,
        first_lines_missing_keys: Vec::new(),
        parse_ok: false,
        intent_ref: intent_ref.clone(),
        intent_ref_line: None,
    };
    // The open questions are read first, so that one pass over the receipts finds
    // the receipts that resolve them (the log is read line by line, not held).
    let packet_questions = gate.and_then(|g| g.open_questions.as_ref()).map(|packet| {
        let node = match (paths::lexical_components(packet), ws) {
            (Ok(parts), Some(dir)) => sexpr::read_beneath(dir, &parts, Path::new(packet))
                .map_err(|e| match e.position() {
                    // File-level: say where it was looked for.
                    None => format!(
                        "{packet}: the open-questions packet is missing, unreadable or outside the workspace: {}",
                        e.reason
                    ),
                    Some(_) => e.to_string(),
                }),
            _ => Err(format!(
                "{packet}: the open-questions packet is missing or outside the workspace"
            )),
        };
        (
            packet,
            node.map(|node| {
                let mut found = Vec::new();
                find_questions(&node, &mut found);
                found
            }),
        )
    });
    let question_ids: Vec<&str> = match &packet_questions {
        Some((_, Ok(found))) => found.iter().map(|(id, _)| id.as_str()).collect(),
        _ => Vec::new(),
    };
    // The questions found by their id: one lookup per ref, however many questions
    // the packet holds.
    let mut index: std::collections::HashMap<&str, Vec<usize>> = std::collections::HashMap::new();
    for (i, id) in question_ids.iter().enumerate() {
        index.entry(id).or_default().push(i);
    }
    let mut resolved_by: Vec<(Vec<usize>, usize)> = vec![(Vec::new(), 0); question_ids.len()];
    if let Some(cfg) = &manifest.receipts {
        let contract = match &cfg.contract {
            None => Contract::default(),
            Some(c) => Contract::load(&manifest.resolve(c)).unwrap_or_else(|e| {
                unreadable.push(format!("{c}: {e}"));
                Contract::default()
            }),
        };
        let read = crate::fsutil::open_regular(&manifest.resolve(&cfg.log))
            .map_err(|e| e.to_string())
            .and_then(|(file, _)| {
                receipts::check_reader(file, &contract, |r| {
                    let refs = r.refs();
                    if rc.intent_ref_line.is_none()
                        && let Some(want) = &intent_ref
                        && refs.iter().any(|x| ref_matches(x, want))
                    {
                        rc.intent_ref_line = Some(r.line);
                    }
                    let mut named: Vec<usize> = refs
                        .iter()
                        .filter_map(|x| index.get(x))
                        .flatten()
                        .copied()
                        .collect();
                    named.sort_unstable();
                    named.dedup();
                    for i in named {
                        let (lines, omitted) = &mut resolved_by[i];
                        crate::wire::push_capped(lines, omitted, MAX_RESOLVED_BY, || r.line);
                    }
                })
                .map_err(|e| format!("cannot read: {e}"))
            });
        match read {
            Ok(check) => {
                let lines: BTreeSet<usize> = check
                    .findings
                    .iter()
                    .filter(|f| f.kind == FindingKind::MissingKey)
                    .map(|f| f.line)
                    .collect();
                let missing_key_lines = check
                    .lines_by_finding
                    .get(FindingKind::MissingKey.as_str())
                    .copied()
                    .unwrap_or_default();
                rc.receipts = check.receipts;
                rc.lines_missing_keys = missing_key_lines;
                rc.first_lines_missing_keys = lines.iter().take(10).copied().collect();
                rc.parse_ok = missing_key_lines == 0;
            }
            Err(e) => {
                unreadable.push(format!("{}: {e}", cfg.log));
                needs.push(format!(
                    "make the receipts log {:?} readable ({e})",
                    cfg.log
                ))
            }
        }
        if !rc.parse_ok {
            reasons.insert(GateReason::ReceiptsParseFailed);
            if rc.lines_missing_keys > 0 {
                needs.push(format!(
                    "fix {} receipt line(s) missing required keys (first: {:?})",
                    rc.lines_missing_keys, rc.first_lines_missing_keys
                ));
            }
        }
        if let Some(want) = &intent_ref
            && rc.intent_ref_line.is_none()
        {
            reasons.insert(GateReason::MissingIntentRef);
            needs.push(format!("append a receipt whose refs include {want:?}"));
        }
    }

    let open_questions = packet_questions.map(|(packet, found)| {
        let mut oq = OpenQuestions {
            packet: packet.clone(),
            questions: Vec::new(),
            error: None,
        };
        match found {
            Err(e) => {
                unreadable.push(e.clone());
                oq.error = Some(e);
            }
            Ok(found) => {
                oq.questions = found
                    .into_iter()
                    .zip(resolved_by)
                    .map(|((id, text), (by, omitted))| Question {
                        resolved: !by.is_empty(),
                        resolved_by: by,
                        resolved_by_omitted: omitted,
                        id,
                        text,
                    })
                    .collect();
            }
        }
        oq
    });
    let unresolved: Vec<&Question> = open_questions
        .iter()
        .flat_map(|o| o.questions.iter())
        .filter(|q| !q.resolved)
        .collect();
    if !unresolved.is_empty() {
        reasons.insert(GateReason::OpenQuestionsUnresolved);
        // The first ones by name: a packet may hold a hundred thousand.
        const NAMED: usize = 100;
        let mut ids = unresolved
            .iter()
            .take(NAMED)
            .map(|q| q.id.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if unresolved.len() > NAMED {
            ids.push_str(&format!(" and {} more", unresolved.len() - NAMED));
        }
        needs.push(format!(
            "resolve {} open question(s): {ids}",
            unresolved.len()
        ));
    }
    if !unreadable.is_empty() {
        reasons.insert(GateReason::GateInputUnreadable);
        needs.push(format!(
            "make the gate's inputs readable: {}",
            unreadable.join("; ")
        ));
    }
    let blocked = !reasons.is_empty();
    let keeper_of_contracts = (blocked && !unresolved.is_empty()).then(|| KeeperSignal {
        presence_id: "keeper_of_contracts".into(),
        say_intent: SayIntent {
            text: format!(
                "gate unresolved {}: {}",
                unresolved[0].id, unresolved[0].text
            ),
            asks: unresolved
                .iter()
                .take(3)
                .map(|q| format!("Resolve {}", q.id))
                .collect(),
            facts: vec![
                "blocked_gates=1".into(),
                format!("unresolved_questions={}", unresolved.len()),
            ],
            repairs: vec![
                "Append receipt refs for resolved question ids (q.*) and gate decisions.".into(),
            ],
        },
    });
    GateReport {
        id: gate.map_or(GATE_ID.to_string(), |g| g.id.clone()),
        blocked,
        reasons: reasons.into_iter().collect(),
        needs,
        truth_unit: manifest.truth_unit.clone(),
        required_refs,
        required_hashes,
        host_handle,
        receipts: rc,
        open_questions,
        advisories,
        unreadable_inputs: unreadable,
        keeper_of_contracts,
    }
}

/// The push-truth gate of a manifest, when it configures one (a proof schema or a
/// `(gate (id push-truth) …)`).
pub fn push_truth(manifest: &Manifest) -> Option<GateReport> {
    let gate = manifest.gates.iter().find(|g| g.id == GATE_ID);
    (manifest.proof_schema.is_some() || gate.is_some()).then(|| evaluate(manifest, gate))
}
