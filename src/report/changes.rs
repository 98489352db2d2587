//! What changed between two builds (`--previous`, `lith diff`): per run, per phase
//! and per gate, only what differs, plus the runs that fail in both builds.
//!
//! A run is known by its bundle root and run id, an artifact by its path in the
//! run, a phase by its id, a gate by its id. A run, phase or gate *fails* when it is
//! not verified, not PROVEN, or blocked. Comparing two builds of the same run, lith
//! also sees what a test reporter cannot: the artifacts whose digest on disk
//! changed between them, even when both builds call the run verified.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Report, VerdictLabel};
use crate::bundle::verify::{
    ArtifactCheck, ArtifactStatus, MAX_LISTED_ARTIFACTS, RunReport, Sha256Digest, Verification,
};
use crate::json_walk::{self, Place};

str_enum! {
    /// How an item's pass/fail standing moved between the two builds.
    pub enum ChangeKind {
        /// Passed before, fails now.
        NewlyFailing = "newly_failing",
        /// Failed before, passes now.
        Fixed = "fixed",
        /// Fails in both builds (its verdict may still have moved, e.g. failed → error).
        StillFailing = "still_failing",
        /// Not in the previous build.
        New = "new",
        /// In the previous build, not in this one.
        Vanished = "vanished",
        /// Passes in both, but a digest or its promotability changed.
        Changed = "changed",
    }
}

/// The previous build, as its report says.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PreviousBuild {
    pub generated_at: String,
    pub generator: String,
    pub verdict: VerdictLabel,
    /// The previous site's base URL, when it had one: entries link to its pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

/// How many entries of each kind (and how many artifact digests changed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ChangeCounts {
    pub newly_failing: usize,
    pub fixed: usize,
    pub still_failing: usize,
    pub new: usize,
    pub vanished: usize,
    pub changed: usize,
    /// Artifacts whose digest differs between the two builds of their run.
    pub digests_changed: usize,
    /// Runs whose promotability flipped.
    pub promotability_changed: usize,
}

impl ChangeCounts {
    /// "1 newly failing, 0 fixed, …; 2 digest(s) changed, 0 promotability
    /// change(s)", with the separators given.
    pub fn sentence(&self, sep: &str, before_digests: &str) -> String {
        format!(
            "{} newly failing{sep}{} fixed{sep}{} still failing{sep}{} new{sep}{} vanished{sep}{} changed{before_digests}{} digest(s) changed{sep}{} promotability change(s)",
            self.newly_failing,
            self.fixed,
            self.still_failing,
            self.new,
            self.vanished,
            self.changed,
            self.digests_changed,
            self.promotability_changed
        )
    }

    /// True when nothing but still-failing items is listed.
    pub fn nothing_changed(&self) -> bool {
        ChangeCounts {
            still_failing: 0,
            ..self.clone()
        } == ChangeCounts::default()
    }

    fn add(&mut self, kind: ChangeKind) {
        match kind {
            ChangeKind::NewlyFailing => self.newly_failing += 1,
            ChangeKind::Fixed => self.fixed += 1,
            ChangeKind::StillFailing => self.still_failing += 1,
            ChangeKind::New => self.new += 1,
            ChangeKind::Vanished => self.vanished += 1,
            ChangeKind::Changed => self.changed += 1,
        }
    }
}

/// An artifact whose digest differs (`None`: absent from that build, or not hashed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DigestChange {
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A boolean that flipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Flip {
    pub before: bool,
    pub after: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RunChange {
    pub root: String,
    pub run_id: String,
    pub kind: ChangeKind,
    /// Verification in the previous build (absent for a new run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Verification>,
    /// Verification in this build (absent for a vanished run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Verification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotable: Option<Flip>,
    /// The artifacts whose digest changed, by path, as far as the report lists
    /// them: at most [`MAX_LISTED_DIGEST_CHANGES`] over all runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub digests: Vec<DigestChange>,
    /// Artifacts whose digest changed beyond those listed in `digests`.
    #[serde(default, skip_serializing_if = "crate::wire::zero")]
    pub digests_unlisted: usize,
    /// The run's page in this build's site (site-relative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// The run's page in the previous build's site (site-relative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_page: Option<String>,
}

/// A phase or gate whose standing or verdict changed (or that fails in both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ItemChange {
    pub id: String,
    pub kind: ChangeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// How a build that did not have an item shows its state.
pub const ABSENT: &str = "absent";

impl RunChange {
    /// The run's verification in the previous build, or [`ABSENT`].
    pub fn before_label(&self) -> &'static str {
        self.before.map_or(ABSENT, Verification::as_str)
    }

    /// The run's verification in this build, or [`ABSENT`].
    pub fn after_label(&self) -> &'static str {
        self.after.map_or(ABSENT, Verification::as_str)
    }

    /// `verified → failed`.
    pub fn transition(&self) -> String {
        format!("{} → {}", self.before_label(), self.after_label())
    }

    /// How many of the run's artifacts changed digest, listed or not.
    pub fn digests_changed(&self) -> usize {
        self.digests.len() + self.digests_unlisted
    }
}

impl ItemChange {
    /// The label in the previous build, or [`ABSENT`].
    pub fn before_label(&self) -> &str {
        self.before.as_deref().unwrap_or(ABSENT)
    }

    /// The label in this build, or [`ABSENT`].
    pub fn after_label(&self) -> &str {
        self.after.as_deref().unwrap_or(ABSENT)
    }

    /// `PARTIAL → PROVEN`.
    pub fn transition(&self) -> String {
        format!("{} → {}", self.before_label(), self.after_label())
    }
}

/// What changed since a previous build.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Changes {
    pub previous: PreviousBuild,
    pub counts: ChangeCounts,
    /// Newly failing first, then fixed, new, vanished, changed, still failing; by
    /// root and run id within each.
    pub runs: Vec<RunChange>,
    pub phases: Vec<ItemChange>,
    pub gates: Vec<ItemChange>,
}

fn kind_of(before: Option<bool>, after: Option<bool>, other_change: bool) -> Option<ChangeKind> {
    // `true` = fails.
    Some(match (before, after) {
        (None, None) => return None,
        (None, Some(_)) => ChangeKind::New,
        (Some(_), None) => ChangeKind::Vanished,
        (Some(false), Some(true)) => ChangeKind::NewlyFailing,
        (Some(true), Some(false)) => ChangeKind::Fixed,
        (Some(true), Some(true)) => ChangeKind::StillFailing,
        (Some(false), Some(false)) if other_change => ChangeKind::Changed,
        (Some(false), Some(false)) => return None,
    })
}

fn rank(kind: ChangeKind) -> u8 {
    match kind {
        ChangeKind::NewlyFailing => 0,
        ChangeKind::Fixed => 1,
        ChangeKind::New => 2,
        ChangeKind::Vanished => 3,
        ChangeKind::Changed => 4,
        ChangeKind::StillFailing => 5,
    }
}

/// The digest of each listed artifact as found on disk (the expected one when it
/// was not hashed, as in `--fast`).
fn digests(rows: &[ArtifactCheck]) -> BTreeMap<&str, Option<Sha256Digest>> {
    rows.iter()
        .map(|a| {
            let found = match a.status {
                ArtifactStatus::Missing => None,
                _ => a.actual_sha256().or(Some(a.expected_sha256)),
            };
            (&*a.path, found)
        })
        .collect()
}

/// The artifacts whose digest differs between two builds of a run, by path: the
/// first `limit` of them, and how many more there are (counted, never written out).
fn digest_changes(
    old: &[ArtifactCheck],
    new: &[ArtifactCheck],
    limit: usize,
) -> (Vec<DigestChange>, usize) {
    let (a, b) = (digests(old), digests(new));
    let mut changed: Vec<(&str, Option<Sha256Digest>, Option<Sha256Digest>)> = Vec::new();
    for (path, before) in &a {
        let after = b.get(path).copied().flatten();
        if *before != after {
            changed.push((path, *before, after));
        }
    }
    for (path, after) in &b {
        if !a.contains_key(path) && after.is_some() {
            changed.push((path, None, *after));
        }
    }
    changed.sort_by(|x, y| x.0.cmp(y.0));
    let more = changed.len().saturating_sub(limit);
    let listed = changed
        .into_iter()
        .take(limit)
        .map(|(path, before, after)| DigestChange {
            path: path.to_string(),
            before: before.map(|d| d.hex()),
            after: after.map(|d| d.hex()),
        })
        .collect();
    (listed, more)
}

/// Whether a run fails: it is not verified. With [`phase_standing`] and
/// [`gate_standing`], the one judgement the changes and the history both use.
pub fn run_fails(run: &RunReport) -> bool {
    fails(run.verification)
}

fn fails(v: Verification) -> bool {
    v != Verification::Verified
}

/// A phase's verdict label, and whether it fails (not PROVEN).
pub fn phase_standing(p: &crate::dod::PhaseResult) -> (&'static str, bool) {
    verdict_standing(p.verdict)
}

fn verdict_standing(v: crate::dod::Verdict) -> (&'static str, bool) {
    (v.as_str(), v != crate::dod::Verdict::Proven)
}

/// A gate's state label, and whether it fails (blocked).
pub fn gate_standing(g: &crate::gate::GateReport) -> (&'static str, bool) {
    blocked_standing(g.blocked)
}

fn blocked_standing(blocked: bool) -> (&'static str, bool) {
    if blocked {
        ("blocked", true)
    } else {
        ("clear", false)
    }
}

/// Reads a previous `report.json` through as [`compare`] will, without comparing:
/// its `schema_version` when it has one as a string (a report of another version
/// may fail to read), and whether the changes can be read from it. Each run is
/// dropped as it is read.
pub fn check(old: impl std::io::Read) -> (Option<String>, Result<(), json_walk::Error>) {
    let mut version = None;
    let read = read_previous(old, &mut Comparison::checking(), &mut version);
    (version, read.map(drop))
}

/// What changed from the previous build, whose `report.json` is read from `old` as
/// a stream, to `new`. Each run of the previous build is compared as it is read and
/// then dropped, so the previous report is never held: a nightly build of 100,000
/// runs compares with the last one in the memory of the changes alone. What is not
/// a report lith wrote is an error at its line and column.
pub fn compare(old: impl std::io::Read, new: &Report) -> Result<Changes, json_walk::Error> {
    let mut runs = Comparison::new(new);
    let past = read_previous(old, &mut runs, &mut None)?;
    let mut counts = ChangeCounts::default();
    let runs = runs.finish(&mut counts);
    let phases = items(
        past.phases
            .iter()
            .map(|(id, p)| {
                let (label, fails) = verdict_standing(p.verdict);
                (id.as_str(), label, fails)
            })
            .collect::<Vec<_>>(),
        new.dod.phases.iter().map(|(id, p)| {
            let (label, fails) = phase_standing(p);
            (id.as_str(), label, fails)
        }),
        &mut counts,
    );
    let gates = items(
        past.gate.as_ref().map(|g| {
            let (label, fails) = blocked_standing(g.blocked);
            (g.id.as_str(), label, fails)
        }),
        new.gates.push_truth.iter().map(|g| {
            let (label, fails) = gate_standing(g);
            (g.id.as_str(), label, fails)
        }),
        &mut counts,
    );
    Ok(Changes {
        previous: past.build,
        counts,
        runs,
        phases,
        gates,
    })
}

/// Reads a previous report as it is walked ([`json_walk`]), each run handed to
/// `runs` as it is read, and what the changes need of the rest; the rest is only
/// checked.
fn read_previous(
    old: impl std::io::Read,
    runs: &mut Comparison<'_>,
    version: &mut Option<String>,
) -> Result<Past, json_walk::Error> {
    use json_walk::parse;
    use serde::de::Error;
    let (mut generator, mut generated_at, mut verdict, mut site) = (None, None, None, None);
    let (mut bundles, mut dod, mut gates) = (false, None, None);
    let mut past = None;
    // The root being read: its path, once read.
    let mut root: Option<String> = None;
    let wrong = |what: &str| Err(serde_json::Error::custom(what));
    json_walk::walk(old, |place, value| {
        match place {
            Place::Top("schema_version") => *version = Some(parse(value)?),
            Place::Top("generator") => generator = Some(parse::<String>(value)?),
            Place::Top("generated_at") => generated_at = Some(parse::<String>(value)?),
            Place::Top("verdict") => verdict = Some(parse::<PastVerdict>(value)?),
            Place::Top("site") => site = Some(parse::<PastSite>(value)?),
            Place::Top("dod") => dod = Some(parse::<PastDod>(value)?),
            Place::Top("gates") => gates = Some(parse::<PastGates>(value)?),
            Place::Top("bundles") => return wrong("the bundles section is not an object"),
            Place::BundlesEnd => bundles = true,
            Place::Bundles("roots") => return wrong("the bundle roots are not a list"),
            Place::RootValue => return wrong("a bundle root is not an object"),
            Place::Root("path") => root = Some(parse(value)?),
            Place::Root("runs") => return wrong("a bundle root's runs are not a list"),
            Place::Run => {
                // lith writes a root's path before its runs, so that they can be
                // compared as they are read.
                let Some(root) = root.as_deref() else {
                    return wrong(
                        "a bundle root's runs come before its path; a report lith wrote names the root first",
                    );
                };
                runs.previous(root, parse::<PastRun>(value)?)
                    .map_err(serde_json::Error::custom)?;
            }
            Place::RootEnd => {
                if root.take().is_none() {
                    return Err(serde_json::Error::missing_field("path"));
                }
            }
            Place::End => {
                let (
                    Some(generator),
                    Some(generated_at),
                    Some(verdict),
                    Some(site),
                    true,
                    Some(dod),
                    Some(gates),
                ) = (
                    generator.take(),
                    generated_at.take(),
                    verdict.take(),
                    site.take(),
                    bundles,
                    dod.take(),
                    gates.take(),
                )
                else {
                    return wrong(
                        "it lacks one of generator, generated_at, verdict, site, bundles, dod and gates",
                    );
                };
                past = Some(Past {
                    build: PreviousBuild {
                        generated_at,
                        generator,
                        verdict: verdict.label,
                        base_url: site.base_url,
                    },
                    phases: dod.phases,
                    gate: gates.push_truth,
                });
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    // The walk ends at `Place::End` when it reads a report through.
    Ok(past.expect("a walk that read the report through ended at its end"))
}

/// A run of the previous build, as much of it as the changes read (the rest of its
/// record is skipped unread).
#[derive(serde::Deserialize)]
struct PastRun {
    run_id: String,
    verification: Verification,
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    promotability: Option<PastPromotability>,
    #[serde(default, deserialize_with = "listed_rows")]
    artifacts: Vec<ArtifactCheck>,
}

/// A run's artifact rows, of which lith lists at most [`MAX_LISTED_ARTIFACTS`]: a
/// run that lists more is not from a report lith wrote, and is not held to find out.
fn listed_rows<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ArtifactCheck>, D::Error> {
    struct Rows;
    impl<'de> serde::de::Visitor<'de> for Rows {
        type Value = Vec<ArtifactCheck>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of artifact rows")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            let mut rows = Vec::new();
            while let Some(row) = a.next_element()? {
                if rows.len() == MAX_LISTED_ARTIFACTS {
                    return Err(<A::Error as serde::de::Error>::custom(format!(
                        "a run lists more than the {MAX_LISTED_ARTIFACTS} artifact rows lith writes"
                    )));
                }
                rows.push(row);
            }
            Ok(rows)
        }
    }
    d.deserialize_seq(Rows)
}

#[derive(serde::Deserialize)]
struct PastPromotability {
    promotable_decision_stage: bool,
}

/// The runs of this build, each compared with its previous build as that is read.
struct Comparison<'n> {
    /// This build's runs by (root, run id), each with whether the previous build
    /// had it.
    index: BTreeMap<(&'n str, &'n str), usize>,
    new: Vec<(&'n str, &'n RunReport, bool)>,
    /// The runs of the previous build that this one lacks, to refuse one listed twice.
    vanished: std::collections::BTreeSet<(String, String)>,
    changes: Vec<RunChange>,
    /// Reading through without comparing ([`check`]).
    checking: bool,
    /// The runs of the previous build read so far.
    read: usize,
    /// How many more digest changes the changes may list.
    digests_left: usize,
}

/// The most digest changes `changes` lists over all runs, in the order the runs
/// are compared (by root and run id); the rest are counted in each run's
/// `digests_unlisted`. A nightly that rebuilt every artifact of 100,000 runs would
/// otherwise list 1.3 million, some 250 MB of report (and of memory), that the
/// two reports already hold.
pub const MAX_LISTED_DIGEST_CHANGES: usize = 10_000;

/// The most runs read from a previous report: five times the largest one lith
/// reads back whole ([`crate::report::ReadLimits::DEFAULT`] has values for some
/// 200,000), so that what the changes keep of a report that is not lith's stays
/// bounded (each run it has and this build lacks is one change).
pub const MAX_PREVIOUS_RUNS: usize = 1 << 20;

/// The most phases read from a previous report.
pub const MAX_PREVIOUS_PHASES: usize = 1 << 16;

impl<'n> Comparison<'n> {
    fn checking() -> Comparison<'n> {
        Comparison {
            index: BTreeMap::new(),
            new: Vec::new(),
            vanished: Default::default(),
            changes: Vec::new(),
            checking: true,
            read: 0,
            digests_left: MAX_LISTED_DIGEST_CHANGES,
        }
    }

    fn new(new: &'n Report) -> Comparison<'n> {
        let new: Vec<_> = new
            .bundles
            .roots
            .iter()
            .flat_map(|root| root.runs.iter().map(|run| (root.path.as_str(), run, false)))
            .collect();
        Comparison {
            index: (new.iter().enumerate())
                .map(|(i, (root, run, _))| ((*root, run.run_id.as_str()), i))
                .collect(),
            new,
            checking: false,
            ..Comparison::checking()
        }
    }

    /// Compares a run of the previous build (in the root `root`) with this build's.
    fn previous(&mut self, root: &str, old: PastRun) -> Result<(), String> {
        self.read += 1;
        if self.read > MAX_PREVIOUS_RUNS {
            return Err(format!(
                "the report lists more than the {MAX_PREVIOUS_RUNS} runs lith compares with"
            ));
        }
        if self.checking {
            return Ok(());
        }
        let twice = || {
            format!(
                "the run {:?} of the bundle root {root:?} is listed twice; a report lith wrote lists each run once",
                old.run_id
            )
        };
        let index: &BTreeMap<(&str, &str), usize> = &self.index;
        let after = match index
            .get(&(root, old.run_id.as_str()))
            .map(|&i| &mut self.new[i])
        {
            Some((_, _, true)) => return Err(twice()),
            Some((_, run, seen)) => {
                *seen = true;
                Some(*run)
            }
            None if !self.vanished.insert((root.to_string(), old.run_id.clone())) => {
                return Err(twice());
            }
            None => None,
        };
        self.change(root, &old.run_id, Some(&old), after);
        Ok(())
    }

    fn change(
        &mut self,
        root: &str,
        run_id: &str,
        before: Option<&PastRun>,
        after: Option<&RunReport>,
    ) {
        let ((digests, digests_unlisted), flip) = match (before, after) {
            (Some(x), Some(y)) => (
                digest_changes(&x.artifacts, &y.artifacts, self.digests_left),
                match (
                    x.promotability
                        .as_ref()
                        .map(|p| p.promotable_decision_stage),
                    y.promotability
                        .as_ref()
                        .map(|p| p.promotable_decision_stage),
                ) {
                    (Some(p), Some(q)) if p != q => Some(Flip {
                        before: p,
                        after: q,
                    }),
                    _ => None,
                },
            ),
            _ => ((Vec::new(), 0), None),
        };
        let (was, is) = (
            before.map(|r| r.verification),
            after.map(|r| r.verification),
        );
        let moved = was.zip(is).is_some_and(|(x, y)| x != y);
        let Some(kind) = kind_of(
            was.map(fails),
            is.map(fails),
            digests_unlisted > 0 || !digests.is_empty() || flip.is_some() || moved,
        ) else {
            return;
        };
        self.digests_left -= digests.len();
        self.changes.push(RunChange {
            root: root.to_string(),
            run_id: run_id.to_string(),
            kind,
            before: was,
            after: is,
            promotable: flip,
            digests,
            digests_unlisted,
            page: after.and_then(|r| r.page.clone()),
            previous_page: before.and_then(|r| r.page.clone()),
        });
    }

    /// The runs that changed, the new ones among them, counted and in order.
    fn finish(mut self, counts: &mut ChangeCounts) -> Vec<RunChange> {
        for (i, (root, run, seen)) in std::mem::take(&mut self.new).into_iter().enumerate() {
            // A run listed twice in the new report is one run, its last record.
            if !seen && self.index.get(&(root, run.run_id.as_str())) == Some(&i) {
                self.change(root, &run.run_id, None, Some(run));
            }
        }
        let mut runs = self.changes;
        for r in &runs {
            counts.add(r.kind);
            counts.digests_changed += r.digests_changed();
            counts.promotability_changed += usize::from(r.promotable.is_some());
        }
        runs.sort_by(|x, y| {
            (rank(x.kind), &x.root, &x.run_id).cmp(&(rank(y.kind), &y.root, &y.run_id))
        });
        runs
    }
}

/// What the changes read of a previous report besides its runs.
struct Past {
    build: PreviousBuild,
    phases: BTreeMap<String, PastPhase>,
    gate: Option<PastGate>,
}

#[derive(serde::Deserialize)]
struct PastPhase {
    verdict: crate::dod::Verdict,
}

#[derive(serde::Deserialize)]
struct PastGate {
    id: String,
    blocked: bool,
}

#[derive(serde::Deserialize)]
struct PastVerdict {
    label: VerdictLabel,
}

#[derive(serde::Deserialize)]
struct PastSite {
    base_url: Option<String>,
}

#[derive(serde::Deserialize)]
struct PastDod {
    #[serde(deserialize_with = "capped_phases")]
    phases: BTreeMap<String, PastPhase>,
}

/// The phases of a previous report, at most [`MAX_PREVIOUS_PHASES`].
fn capped_phases<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, PastPhase>, D::Error> {
    struct Phases;
    impl<'de> serde::de::Visitor<'de> for Phases {
        type Value = BTreeMap<String, PastPhase>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("the phases by id")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            let mut phases = BTreeMap::new();
            while let Some((id, phase)) = a.next_entry()? {
                phases.insert(id, phase);
                if phases.len() > MAX_PREVIOUS_PHASES {
                    return Err(<A::Error as serde::de::Error>::custom(format!(
                        "the report has more than the {MAX_PREVIOUS_PHASES} phases lith compares with"
                    )));
                }
            }
            Ok(phases)
        }
    }
    d.deserialize_map(Phases)
}

#[derive(serde::Deserialize)]
struct PastGates {
    push_truth: Option<PastGate>,
}

/// Items known by id, each with its label and whether it fails.
fn items<'a>(
    old: impl IntoIterator<Item = (&'a str, &'a str, bool)>,
    new: impl IntoIterator<Item = (&'a str, &'a str, bool)>,
    counts: &mut ChangeCounts,
) -> Vec<ItemChange> {
    let pairs = |list: Vec<(&'a str, &'a str, bool)>| -> BTreeMap<&'a str, (&'a str, bool)> {
        list.into_iter().map(|(id, l, f)| (id, (l, f))).collect()
    };
    let a = pairs(old.into_iter().collect());
    let b = pairs(new.into_iter().collect());
    let mut ids: Vec<&str> = a.keys().chain(b.keys()).copied().collect();
    ids.sort();
    ids.dedup();
    let mut out = Vec::new();
    for id in ids {
        let (before, after) = (a.get(id).copied(), b.get(id).copied());
        let moved = before.zip(after).is_some_and(|(x, y)| x.0 != y.0);
        let Some(kind) = kind_of(before.map(|x| x.1), after.map(|x| x.1), moved) else {
            continue;
        };
        counts.add(kind);
        out.push(ItemChange {
            id: id.to_string(),
            kind,
            before: before.map(|x| x.0.to_string()),
            after: after.map(|x| x.0.to_string()),
        });
    }
    out.sort_by(|x, y| (rank(x.kind), &x.id).cmp(&(rank(y.kind), &y.id)));
    out
}

/// The changes as plain text, for `lith diff` and the build's summary.
/// The changes as text lines; values from the reports are escaped to stay within
/// their line ([`crate::term::one_line`]).
pub fn text(c: &Changes, limit: usize) -> String {
    use crate::term::one_line;
    let n = &c.counts;
    let mut s = format!(
        "changes since the build of {} ({}): {}\n",
        one_line(&c.previous.generated_at),
        c.previous.verdict,
        n.sentence(", ", "; ")
    );
    let mut lines: Vec<String> = Vec::new();
    for r in &c.runs {
        let mut line = format!(
            "  {:<14} run {}/{}: {}",
            r.kind.as_str(),
            one_line(&r.root),
            one_line(&r.run_id),
            r.transition()
        );
        if let Some(f) = r.promotable {
            line.push_str(&format!(
                "; promotable {} → {}",
                yes_no(f.before),
                yes_no(f.after)
            ));
        }
        if let Some(first) = r.digests.first() {
            line.push_str(&format!(
                "; {} digest(s) changed, e.g. {} {} → {}",
                r.digests_changed(),
                one_line(&first.path),
                short(first.before.as_deref()),
                short(first.after.as_deref())
            ));
        } else if r.digests_unlisted > 0 {
            line.push_str(&format!("; {} digest(s) changed", r.digests_unlisted));
        }
        lines.push(line);
    }
    for (what, list) in [("phase", &c.phases), ("gate", &c.gates)] {
        for i in list {
            lines.push(format!(
                "  {:<14} {what} {}: {}",
                i.kind.as_str(),
                one_line(&i.id),
                i.transition()
            ));
        }
    }
    let more = lines.len().saturating_sub(limit);
    for l in lines.into_iter().take(limit) {
        s.push_str(&l);
        s.push('\n');
    }
    if more > 0 {
        s.push_str(&format!(
            "  … {more} more not shown (see report.json → changes)\n"
        ));
    }
    s
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The first 12 hex digits of a digest, or [`ABSENT`].
pub fn short(d: Option<&str>) -> &str {
    d.map_or(ABSENT, |d| &d[..d.len().min(12)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_and_gates_are_compared_by_id_and_only_changes_are_kept() {
        let mut counts = ChangeCounts::default();
        let old = [
            ("A", "PROVEN"),
            ("B", "PARTIAL"),
            ("C", "PARTIAL"),
            ("D", "PROVEN"),
            ("E", "DESIGNED"),
        ];
        let new = [
            ("A", "PROVEN"),
            ("B", "PROVEN"),
            ("C", "DESIGNED"),
            ("E", "PARTIAL"),
            ("F", "PROVEN"),
        ];
        // Labels with whether each fails, as phase_standing gives them.
        let phases = |l: [(&'static str, &'static str); 5]| l.map(|(id, v)| (id, v, v != "PROVEN"));
        let got: Vec<(String, ChangeKind, Option<String>, Option<String>)> =
            items(phases(old), phases(new), &mut counts)
                .into_iter()
                .map(|i| (i.id, i.kind, i.before, i.after))
                .collect();
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            got,
            [
                ("B".into(), ChangeKind::Fixed, s("PARTIAL"), s("PROVEN")),
                ("F".into(), ChangeKind::New, None, s("PROVEN")),
                ("D".into(), ChangeKind::Vanished, s("PROVEN"), None),
                (
                    "C".into(),
                    ChangeKind::StillFailing,
                    s("PARTIAL"),
                    s("DESIGNED")
                ),
                (
                    "E".into(),
                    ChangeKind::StillFailing,
                    s("DESIGNED"),
                    s("PARTIAL")
                ),
            ],
            "A passed in both and is not listed"
        );
        assert_eq!(
            (
                counts.fixed,
                counts.new,
                counts.vanished,
                counts.still_failing
            ),
            (1, 1, 1, 2)
        );
        assert!(!counts.nothing_changed());
        let mut none = ChangeCounts::default();
        assert!(
            items(
                [("G", "blocked", true)],
                [("G", "blocked", true)],
                &mut none
            )
            .len()
                == 1
        );
        assert!(none.nothing_changed(), "still failing alone is no change");
        let mut regress = ChangeCounts::default();
        let g = items(
            [("G", "clear", false)],
            [("G", "blocked", true)],
            &mut regress,
        );
        assert_eq!(g[0].kind, ChangeKind::NewlyFailing);
    }

    #[test]
    fn a_still_passing_item_is_listed_only_when_something_else_moved() {
        assert_eq!(kind_of(Some(false), Some(false), false), None);
        assert_eq!(
            kind_of(Some(false), Some(false), true),
            Some(ChangeKind::Changed)
        );
        assert_eq!(kind_of(None, None, true), None);
    }
}
