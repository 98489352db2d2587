//! The `manifest.lith` model (SPEC §2.2).
//!
//! The manifest is trusted configuration: a malformed one is a runtime error (exit 4)
//! with `file:line:col`. Every section but `v` is optional; an absent section means
//! "not configured" for that part of the report. Unknown sections are kept as warnings.
//! Relative paths stay relative here; they are resolved against [`Manifest::workspace`]
//! by the code that reads them.

use std::path::{Path, PathBuf};

use super::sexpr::{self, Node, Pos, ReadError, Value};

/// Default bundle decision-stage artifacts (SPEC §3.9).
pub const DEFAULT_DECISION_STAGE_ARTIFACTS: [&str; 3] = [
    "runtime_results.json",
    "runtime_events.normalized.json",
    "expected_matrix.json",
];

/// The most items a list of the manifest may hold (refs, hashes, roots, artifacts,
/// phases): a manifest of a million proof refs (10 MB) took `lith build` to 267 MiB
/// and `lith gate --json` to 395 MiB.
pub const MAX_LIST_ITEMS: usize = 65_536;

#[derive(Debug, Clone, Default)]
pub struct Manifest {
    /// The manifest file as given on the command line.
    pub path: PathBuf,
    /// The folder holding the manifest; every relative path resolves against it.
    pub workspace: PathBuf,
    pub v: String,
    pub truth_unit: Option<String>,
    pub proof_schema: Option<ProofSchema>,
    /// `(hash-sources (name "glob") …)` in source order.
    pub hash_sources: Vec<(String, String)>,
    pub site: SiteConfig,
    pub bundles: Option<BundlesConfig>,
    pub queue: Option<QueueConfig>,
    pub receipts: Option<ReceiptsConfig>,
    pub activity: Option<ActivityConfig>,
    pub dod: Option<DodConfig>,
    pub gates: Vec<GateConfig>,
    pub promptdb: Option<PromptDbConfig>,
    pub warnings: Vec<ManifestWarning>,
    /// The sha256 of the manifest file's bytes as [`Manifest::load`] read and
    /// parsed them (`None` for a manifest made from a form in memory).
    pub sha256: Option<[u8; 32]>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProofSchema {
    pub required_refs: Vec<String>,
    pub required_hashes: Vec<String>,
    pub host_handle: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SiteConfig {
    pub title: Option<String>,
    pub out: Option<String>,
    pub base_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BundlesConfig {
    pub roots: Vec<String>,
    pub decision_stage_artifacts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    pub log: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReceiptsConfig {
    pub log: String,
    pub contract: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ActivityConfig {
    pub feed: Option<String>,
    pub heartbeat_file: Option<String>,
    pub idle_threshold_sec: Option<i64>,
    pub drift_threshold_sec: Option<i64>,
    /// `None` means `:all`.
    pub operational_targets: Option<Vec<String>>,
    pub reports: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DodConfig {
    pub docs: Option<String>,
    pub phase_status: Option<String>,
    pub reports: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct GateConfig {
    pub id: String,
    pub open_questions: Option<String>,
    pub intent_ref: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PromptDbConfig {
    pub root: String,
    pub debounce_ms: Option<i64>,
}

/// Something in the manifest that lith does not understand but can go on without.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestWarning {
    pub pos: Pos,
    pub message: String,
}

/// The most warnings a manifest keeps; one more says how many were left out after
/// them. A manifest of 300,000 unknown sections (5 MB) made an overview of 28 MB.
pub const MAX_WARNINGS: usize = 100;

/// The warnings of a manifest being read: the first [`MAX_WARNINGS`], and how many
/// more there were from where the first left out stands.
#[derive(Default)]
struct Warnings {
    kept: Vec<ManifestWarning>,
    more: usize,
    first_left_out: Pos,
}

impl Warnings {
    /// A warning at `pos`, its message made only if it is kept.
    fn push(&mut self, pos: Pos, message: impl FnOnce() -> String) {
        if self.kept.len() < MAX_WARNINGS {
            self.kept.push(ManifestWarning {
                pos,
                message: message(),
            });
        } else {
            if self.more == 0 {
                self.first_left_out = pos;
            }
            self.more += 1;
        }
    }

    fn done(mut self) -> Vec<ManifestWarning> {
        if self.more > 0 {
            self.kept.push(ManifestWarning {
                pos: self.first_left_out,
                message: format!(
                    "{} more warning(s) from here on are not listed (lith lists {MAX_WARNINGS})",
                    self.more
                ),
            });
        }
        self.kept
    }
}

/// A manifest that cannot be used. Displays as `file:line:col: reason`.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "{}: no such file (looked in {}); run lith in the workspace folder, or pass --manifest PATH",
        file.display(),
        dir.display()
    )]
    Missing { file: PathBuf, dir: PathBuf },
    #[error(transparent)]
    Syntax(#[from] ReadError),
    #[error("{file}:{}:{}: {reason}", pos.line, pos.col)]
    Meaning {
        file: PathBuf,
        pos: Pos,
        reason: String,
    },
}

/// The manifest versions this lith understands.
pub const KNOWN_VERSIONS: [&str; 1] = ["promethean.manifest/v1"];

/// Every section lith reads.
pub const SECTIONS: [&str; 12] = [
    "v",
    "truth-unit",
    "proof-schema",
    "hash-sources",
    "site",
    "bundles",
    "queue",
    "receipts",
    "activity",
    "dod",
    "gates",
    "promptdb",
];

/// A name the manifest gives, as a warning shows it: its first 100 characters (a
/// section named by a 1 MB symbol made a warning, and an overview, of 1 MB).
fn shown(name: &str) -> String {
    crate::bundle::index::truncate(name, 100)
}

/// `; did you mean (x …)?` when a known name is within two edits of `got`.
fn did_you_mean(got: &str, known: &[&str]) -> String {
    known
        .iter()
        // Two edits apart is two characters apart in length at most (the known
        // names are ASCII).
        .filter(|k| got.chars().take(k.len() + 3).count().abs_diff(k.len()) <= 2)
        .map(|k| (edit_distance(got, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!("; did you mean ({k} …)?"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

impl Manifest {
    /// Reads and interprets a manifest file.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = crate::fsutil::parent_dir(path);
                let dir = std::path::absolute(&dir).unwrap_or(dir);
                return Err(ManifestError::Missing {
                    file: path.to_path_buf(),
                    dir,
                });
            }
            _ => {}
        }
        let (root, sha256) = sexpr::read_trusted_file(path)?;
        let mut m = Manifest::from_node(&root, path)?;
        m.sha256 = Some(sha256);
        m.path = path.to_path_buf();
        m.workspace = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(m)
    }

    /// Interprets an already-read form. `file` names it in errors.
    pub fn from_node(root: &Node, file: &Path) -> Result<Manifest, ManifestError> {
        let cx = Cx { file };
        if root.head() != Some("manifest") {
            return Err(cx.err(
                root.pos,
                format!(
                    "expected the file to be one (manifest …) form, found {}",
                    describe_head(root)
                ),
            ));
        }
        let mut m = Manifest::default();
        let mut warnings = Warnings::default();
        let mut seen_v = false;
        for section in root.args() {
            let Some(name) = section.head() else {
                return Err(cx.err(
                    section.pos,
                    format!(
                        "expected a section such as (v \"…\"), found {}",
                        section.kind_name()
                    ),
                ));
            };
            match name {
                "v" => {
                    m.v = cx.one_text(section)?;
                    if !KNOWN_VERSIONS.contains(&m.v.as_str()) {
                        return Err(cx.err(
                            section.pos,
                            format!(
                                "unknown manifest version {:?}; this lith reads {}",
                                crate::bundle::index::truncate(&m.v, 80),
                                KNOWN_VERSIONS.join(", ")
                            ),
                        ));
                    }
                    seen_v = true;
                }
                "truth-unit" => m.truth_unit = Some(cx.one_text(section)?),
                "proof-schema" => m.proof_schema = Some(cx.proof_schema(section, &mut warnings)?),
                "hash-sources" => {
                    for binding in cx.capped("hash-sources", section.args())? {
                        let Some(key) = binding.head() else {
                            return Err(
                                cx.err(binding.pos, "expected (NAME \"glob\") in hash-sources")
                            );
                        };
                        m.hash_sources
                            .push((key.to_string(), cx.one_text(binding)?));
                    }
                }
                "site" => {
                    for f in cx.fields(section, &["title", "out", "base-url"], &mut warnings)? {
                        match f.head() {
                            Some("title") => m.site.title = Some(cx.one_text(f)?),
                            Some("out") => m.site.out = Some(cx.one_text(f)?),
                            Some("base-url") => {
                                let url = cx.one_text(f)?;
                                let lower = url.to_ascii_lowercase();
                                if !(lower.starts_with("https://") || lower.starts_with("http://"))
                                {
                                    return Err(cx.err(
                                        f.pos,
                                        format!(
                                            "(base-url …) must be an http:// or https:// URL, found {:?}; \
                                             it becomes a link on every page",
                                            crate::bundle::index::truncate(&url, 80)
                                        ),
                                    ));
                                }
                                m.site.base_url = Some(url);
                            }
                            other => unreachable!("fields() passed an unlisted field {other:?}"),
                        }
                    }
                }
                "bundles" => {
                    let mut b = BundlesConfig {
                        roots: Vec::new(),
                        decision_stage_artifacts: DEFAULT_DECISION_STAGE_ARTIFACTS
                            .iter()
                            .map(|s| s.to_string())
                            .collect(),
                    };
                    for f in cx.fields(
                        section,
                        &["roots", "decision-stage-artifacts"],
                        &mut warnings,
                    )? {
                        match f.head() {
                            Some("roots") => b.roots = cx.text_list(f)?,
                            Some("decision-stage-artifacts") => {
                                b.decision_stage_artifacts = cx.text_list(f)?
                            }
                            other => unreachable!("fields() passed an unlisted field {other:?}"),
                        }
                    }
                    m.bundles = Some(b);
                }
                "queue" => {
                    let mut log = None;
                    for f in cx.fields(section, &["log"], &mut warnings)? {
                        log = Some(cx.one_text(f)?);
                    }
                    let log =
                        log.ok_or_else(|| cx.err(section.pos, "(queue …) needs (log \"path\")"))?;
                    m.queue = Some(QueueConfig { log });
                }
                "receipts" => {
                    let (mut log, mut contract) = (None, None);
                    for f in cx.fields(section, &["log", "contract"], &mut warnings)? {
                        match f.head() {
                            Some("log") => log = Some(cx.one_text(f)?),
                            Some("contract") => contract = Some(cx.one_text(f)?),
                            other => unreachable!("fields() passed an unlisted field {other:?}"),
                        }
                    }
                    let log = log
                        .ok_or_else(|| cx.err(section.pos, "(receipts …) needs (log \"path\")"))?;
                    m.receipts = Some(ReceiptsConfig { log, contract });
                }
                "activity" => {
                    let mut a = ActivityConfig::default();
                    let known = [
                        "feed",
                        "heartbeat-file",
                        "idle-threshold-sec",
                        "drift-threshold-sec",
                        "operational-targets",
                        "reports",
                    ];
                    for f in cx.fields(section, &known, &mut warnings)? {
                        match f.head() {
                            Some("feed") => a.feed = Some(cx.one_text(f)?),
                            Some("heartbeat-file") => a.heartbeat_file = Some(cx.one_text(f)?),
                            Some("idle-threshold-sec") => {
                                a.idle_threshold_sec = Some(cx.one_int(f)?)
                            }
                            Some("drift-threshold-sec") => {
                                a.drift_threshold_sec = Some(cx.one_int(f)?)
                            }
                            Some("reports") => a.reports = Some(cx.one_text(f)?),
                            Some("operational-targets") => {
                                let all = matches!(f.args(), [n] if matches!(&n.value, Value::Keyword(k) if k == "all"));
                                a.operational_targets =
                                    if all { None } else { Some(cx.text_list(f)?) };
                            }
                            other => unreachable!("fields() passed an unlisted field {other:?}"),
                        }
                    }
                    m.activity = Some(a);
                }
                "dod" => {
                    let mut d = DodConfig::default();
                    for f in
                        cx.fields(section, &["docs", "phase-status", "reports"], &mut warnings)?
                    {
                        match f.head() {
                            Some("docs") => d.docs = Some(cx.one_text(f)?),
                            Some("phase-status") => d.phase_status = Some(cx.one_text(f)?),
                            Some("reports") => d.reports = Some(cx.one_text(f)?),
                            other => unreachable!("fields() passed an unlisted field {other:?}"),
                        }
                    }
                    m.dod = Some(d);
                }
                "gates" => {
                    for gate in cx.fields(section, &["gate"], &mut warnings)? {
                        let mut g = GateConfig::default();
                        for f in
                            cx.fields(gate, &["id", "open-questions", "intent-ref"], &mut warnings)?
                        {
                            match f.head() {
                                Some("id") => g.id = cx.one_text(f)?,
                                Some("open-questions") => g.open_questions = Some(cx.one_text(f)?),
                                Some("intent-ref") => g.intent_ref = Some(cx.one_text(f)?),
                                other => {
                                    unreachable!("fields() passed an unlisted field {other:?}")
                                }
                            }
                        }
                        if g.id.is_empty() {
                            return Err(cx.err(gate.pos, "(gate …) needs (id NAME)"));
                        }
                        m.gates.push(g);
                    }
                }
                "promptdb" => {
                    let mut p = PromptDbConfig::default();
                    for f in cx.fields(section, &["root", "debounce-ms"], &mut warnings)? {
                        match f.head() {
                            Some("root") => p.root = cx.one_text(f)?,
                            Some("debounce-ms") => p.debounce_ms = Some(cx.one_int(f)?),
                            other => unreachable!("fields() passed an unlisted field {other:?}"),
                        }
                    }
                    if p.root.is_empty() {
                        return Err(cx.err(section.pos, "(promptdb …) needs (root \"path\")"));
                    }
                    m.promptdb = Some(p);
                }
                other => warnings.push(section.pos, || {
                    format!(
                        "unknown section ({} …) is ignored{}",
                        shown(other),
                        did_you_mean(other, &SECTIONS)
                    )
                }),
            }
        }
        if !seen_v {
            return Err(cx.err(
                root.pos,
                "the manifest has no (v \"…\") section; add (v \"promethean.manifest/v1\")",
            ));
        }
        m.warnings = warnings.done();
        Ok(m)
    }

    /// Resolves a manifest-relative path against the workspace.
    pub fn resolve(&self, rel: &str) -> PathBuf {
        self.workspace.join(rel)
    }
}

fn describe_head(n: &Node) -> String {
    match n.head() {
        Some(h) => format!("({h} …)"),
        None => n.kind_name().to_string(),
    }
}

struct Cx<'a> {
    file: &'a Path,
}

impl Cx<'_> {
    fn err(&self, pos: Pos, reason: impl Into<String>) -> ManifestError {
        ManifestError::Meaning {
            file: self.file.to_path_buf(),
            pos,
            reason: reason.into(),
        }
    }

    /// The sub-forms of a section, each `(key …)`. Unknown keys become warnings.
    fn fields<'n>(
        &self,
        section: &'n Node,
        known: &[&str],
        warnings: &mut Warnings,
    ) -> Result<Vec<&'n Node>, ManifestError> {
        let name = section.head().unwrap_or("?");
        let mut out = Vec::new();
        for f in section.args() {
            match f.head() {
                Some(k) if known.contains(&k) => out.push(f),
                Some(k) => warnings.push(f.pos, || {
                    format!(
                        "unknown field ({} …) in ({name} …) is ignored{}",
                        shown(k),
                        did_you_mean(k, known)
                    )
                }),
                None => {
                    return Err(self.err(
                        f.pos,
                        format!(
                            "expected a field such as ({} …) inside ({name} …), found {}",
                            known.first().unwrap_or(&"key"),
                            f.kind_name()
                        ),
                    ));
                }
            }
        }
        Ok(out)
    }

    fn one_text(&self, f: &Node) -> Result<String, ManifestError> {
        let name = f.head().unwrap_or("?");
        match f.args() {
            [v] => v.as_text().ok_or_else(|| {
                self.err(
                    v.pos,
                    format!(
                        "({name} …) takes a string or symbol, found {}",
                        v.kind_name()
                    ),
                )
            }),
            _ => Err(self.err(f.pos, format!("({name} …) takes exactly one value"))),
        }
    }

    fn one_int(&self, f: &Node) -> Result<i64, ManifestError> {
        let name = f.head().unwrap_or("?");
        match f.args() {
            [
                Node {
                    value: Value::Int(i),
                    ..
                },
            ] if *i >= 0 => Ok(*i),
            [v] => Err(self.err(
                v.pos,
                format!(
                    "({name} …) takes a non-negative integer, found {}",
                    v.kind_name()
                ),
            )),
            _ => Err(self.err(f.pos, format!("({name} …) takes exactly one value"))),
        }
    }

    /// `(key ["a" "b"])` or `(key "a" "b")`.
    /// The items of the list `(name …)`, refused at the item past
    /// [`MAX_LIST_ITEMS`].
    fn capped<'n>(&self, name: &str, items: &'n [Node]) -> Result<&'n [Node], ManifestError> {
        match items.get(MAX_LIST_ITEMS) {
            Some(past) => Err(self.err(
                past.pos,
                format!(
                    "({name} …) lists more than {MAX_LIST_ITEMS} items, more than lith reads of one list; \
                     split the workspace or list fewer"
                ),
            )),
            None => Ok(items),
        }
    }

    fn text_list(&self, f: &Node) -> Result<Vec<String>, ManifestError> {
        let name = f.head().unwrap_or("?");
        let items: &[Node] = match f.args() {
            [v] if matches!(v.value, Value::Vector(_) | Value::List(_)) => v.items().unwrap_or(&[]),
            args => args,
        };
        self.capped(name, items)?
            .iter()
            .map(|v| {
                v.as_text().ok_or_else(|| {
                    self.err(
                        v.pos,
                        format!(
                            "({name} …) lists strings or symbols, found {}",
                            v.kind_name()
                        ),
                    )
                })
            })
            .collect()
    }

    fn proof_schema(
        &self,
        section: &Node,
        warnings: &mut Warnings,
    ) -> Result<ProofSchema, ManifestError> {
        let mut p = ProofSchema::default();
        for f in self.fields(
            section,
            &["required-refs", "required-hashes", "host-handle"],
            warnings,
        )? {
            match f.head() {
                Some("required-refs") => p.required_refs = self.text_list(f)?,
                Some("required-hashes") => p.required_hashes = self.text_list(f)?,
                Some("host-handle") => p.host_handle = Some(self.one_text(f)?),
                other => unreachable!("fields() passed an unlisted field {other:?}"),
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Manifest, ManifestError> {
        let node = sexpr::read_str(src, Path::new("m.lith"))?;
        Manifest::from_node(&node, Path::new("m.lith"))
    }

    #[test]
    fn the_full_example_of_the_spec_loads() {
        let m = parse(
            r#"(manifest
  (v "promethean.manifest/v1")
  (truth-unit :pi-package+host)
  (proof-schema
    (required-refs [".opencode/promptdb/00_wire_world.intent.lisp" "receipts.log"])
    (required-hashes ["sha256:pi_zip" "sha256:manifest"])
    (host-handle "github:err"))
  (hash-sources (pi_zip "artifacts/truth/Π*.zip"))
  (site (title "Nightly evidence") (out "site") (base-url "https://example.org/evidence/"))
  (bundles (roots ["book/experiments/*/out"])
           (decision-stage-artifacts ["runtime_results.json" "expected_matrix.json"]))
  (queue (log "state/task_queue.jsonl"))
  (receipts (log "receipts.log") (contract ".opencode/promptdb/contracts/receipts.v2.contract.lisp"))
  (activity (feed "observability/logs/activity_feed.jsonl")
            (heartbeat-file "state/heartbeat.json")
            (idle-threshold-sec 900) (drift-threshold-sec 120)
            (operational-targets [PHASE_15_5_3]))
  (dod (docs "docs/dod") (phase-status "core/governance/phase_status.yaml")
       (reports "observability/reports/dod_checker"))
  (gates (gate (id push-truth)
               (open-questions ".opencode/promptdb/diagrams/part64_runtime_system.packet.lisp")
               (intent-ref "00_wire_world.intent.lisp")))
  (promptdb (root ".opencode/promptdb") (debounce-ms 1500)))"#,
        )
        .unwrap();
        assert_eq!(m.v, "promethean.manifest/v1");
        assert_eq!(m.truth_unit.as_deref(), Some(":pi-package+host"));
        let ps = m.proof_schema.unwrap();
        assert_eq!(ps.required_hashes, ["sha256:pi_zip", "sha256:manifest"]);
        assert_eq!(ps.host_handle.as_deref(), Some("github:err"));
        assert_eq!(
            m.hash_sources,
            [("pi_zip".to_string(), "artifacts/truth/Π*.zip".to_string())]
        );
        assert_eq!(
            m.site.base_url.as_deref(),
            Some("https://example.org/evidence/")
        );
        let b = m.bundles.unwrap();
        assert_eq!(b.roots, ["book/experiments/*/out"]);
        assert_eq!(
            b.decision_stage_artifacts,
            ["runtime_results.json", "expected_matrix.json"]
        );
        assert_eq!(m.queue.unwrap().log, "state/task_queue.jsonl");
        let a = m.activity.unwrap();
        assert_eq!(
            (a.idle_threshold_sec, a.drift_threshold_sec),
            (Some(900), Some(120))
        );
        assert_eq!(
            a.operational_targets,
            Some(vec!["PHASE_15_5_3".to_string()])
        );
        assert_eq!(m.gates[0].id, "push-truth");
        assert_eq!(
            m.gates[0].intent_ref.as_deref(),
            Some("00_wire_world.intent.lisp")
        );
        assert_eq!(m.promptdb.unwrap().debounce_ms, Some(1500));
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    }

    #[test]
    fn absent_sections_mean_not_configured_and_defaults_apply() {
        let m = parse(
            r#"(manifest (v "promethean.manifest/v1") (bundles (roots ["out"])) (activity (operational-targets :all)))"#,
        )
        .unwrap();
        assert!(m.proof_schema.is_none() && m.queue.is_none() && m.gates.is_empty());
        assert_eq!(
            m.bundles.unwrap().decision_stage_artifacts,
            DEFAULT_DECISION_STAGE_ARTIFACTS
        );
        assert_eq!(m.activity.unwrap().operational_targets, None);
    }

    #[test]
    fn unknown_sections_and_fields_warn_with_positions() {
        let m = parse("(manifest (v \"promethean.manifest/v1\")\n  (telemetry on)\n  (site (colour blue))\n  (bundel (roots [\"out\"])) (site (titel \"x\")))").unwrap();
        let w: Vec<String> = m
            .warnings
            .iter()
            .map(|w| format!("{}:{} {}", w.pos.line, w.pos.col, w.message))
            .collect();
        assert_eq!(
            w,
            [
                "2:3 unknown section (telemetry …) is ignored",
                "3:9 unknown field (colour …) in (site …) is ignored",
                "4:3 unknown section (bundel …) is ignored; did you mean (bundles …)?",
                "4:34 unknown field (titel …) in (site …) is ignored; did you mean (title …)?",
            ]
        );
    }

    #[test]
    fn meaning_errors_name_file_line_and_column() {
        let cases = [
            (
                "(packet (v \"x\"))",
                "m.lith:1:1: expected the file to be one (manifest …) form, found (packet …)",
            ),
            (
                "(manifest (site (out \"a\")))",
                "m.lith:1:1: the manifest has no (v \"…\") section",
            ),
            (
                "(manifest (v \"promethean.manifest/v1\")\n (bundles (roots [1])))",
                "m.lith:2:19: (roots …) lists strings or symbols, found an integer",
            ),
            (
                "(manifest (v \"promethean.manifest/v1\") (activity (idle-threshold-sec \"soon\")))",
                "m.lith:1:70: (idle-threshold-sec …) takes a non-negative integer, found a string",
            ),
            (
                "(manifest (v \"promethean.manifest/v1\") (v))",
                "m.lith:1:40: (v …) takes exactly one value",
            ),
            (
                "(manifest (v \"promethean.manifest/v1\") \"loose\")",
                "m.lith:1:40: expected a section such as (v \"…\"), found a string",
            ),
            (
                "(manifest (v \"promethean.manifest/v1\")\n (site (base-url \"javascript:alert(1)\")))",
                "m.lith:2:8: (base-url …) must be an http:// or https:// URL",
            ),
            (
                "(manifest\n  (v \"promethean.manifest/v2\"))",
                "m.lith:2:3: unknown manifest version \"promethean.manifest/v2\"; this lith reads promethean.manifest/v1",
            ),
        ];
        for (src, want) in cases {
            let e = parse(src).unwrap_err().to_string();
            assert!(e.starts_with(want), "{src}\n got: {e}\nwant: {want}");
        }
    }

    #[test]
    fn lists_past_the_cap_are_refused_where_they_pass_it_and_warnings_are_counted() {
        let refs: Vec<String> = (0..=MAX_LIST_ITEMS).map(|i| format!("r{i}")).collect();
        let src = format!(
            "(manifest (v \"promethean.manifest/v1\")\n(proof-schema (required-refs [{}])))",
            refs.join(" ")
        );
        let e = parse(&src).unwrap_err().to_string();
        // The item past the cap, on line 2.
        let col = "(proof-schema (required-refs [".len()
            + refs[..MAX_LIST_ITEMS]
                .iter()
                .map(|r| r.len() + 1)
                .sum::<usize>()
            + 1;
        assert!(
            e.starts_with(&format!(
                "m.lith:2:{col}: (required-refs …) lists more than {MAX_LIST_ITEMS} items"
            )),
            "{e}"
        );
        let at_the_cap = format!(
            "(manifest (v \"promethean.manifest/v1\")\n(proof-schema (required-refs [{}])))",
            refs[..MAX_LIST_ITEMS].join(" ")
        );
        assert_eq!(
            parse(&at_the_cap)
                .unwrap()
                .proof_schema
                .unwrap()
                .required_refs
                .len(),
            MAX_LIST_ITEMS
        );
        // 250 unknown sections: the first hundred named, the rest counted from the
        // first left out.
        let unknown: String = (0..250).map(|i| format!("\n(unknown{i})")).collect();
        let m = parse(&format!(
            "(manifest (v \"promethean.manifest/v1\"){unknown})"
        ))
        .unwrap();
        assert_eq!(m.warnings.len(), MAX_WARNINGS + 1);
        assert!(
            m.warnings[99]
                .message
                .starts_with("unknown section (unknown99 …)")
        );
        let last = &m.warnings[MAX_WARNINGS];
        assert_eq!((last.pos.line, last.pos.col), (102, 1));
        assert_eq!(
            last.message,
            "150 more warning(s) from here on are not listed (lith lists 100)"
        );
        // A name of a megabyte is shown by its start.
        let long = "x".repeat(1 << 20);
        let m = parse(&format!(
            "(manifest (v \"promethean.manifest/v1\") ({long}) (site ({long})))"
        ))
        .unwrap();
        let cut = format!("{}…", "x".repeat(100));
        assert_eq!(
            m.warnings[0].message,
            format!("unknown section ({cut} …) is ignored")
        );
        assert_eq!(
            m.warnings[1].message,
            format!("unknown field ({cut} …) in (site …) is ignored")
        );
        // A near miss is still named.
        let m = parse("(manifest (v \"promethean.manifest/v1\") (sites))").unwrap();
        assert_eq!(
            m.warnings[0].message,
            "unknown section (sites …) is ignored; did you mean (site …)?"
        );
    }
}
