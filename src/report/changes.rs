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
use crate::bundle::verify::{RunReport, Verification};

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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub digests: Vec<DigestChange>,
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

fn runs_of(r: &Report) -> BTreeMap<(&str, &str), &RunReport> {
    r.bundles
        .roots
        .iter()
        .flat_map(|root| {
            root.runs
                .iter()
                .map(move |run| ((root.path.as_str(), run.run_id.as_str()), run))
        })
        .collect()
}

/// The digest of each listed artifact as found on disk (the expected one when it
/// was not hashed, as in `--fast`).
fn digests(run: &RunReport) -> BTreeMap<&str, Option<crate::bundle::verify::Sha256Digest>> {
    run.artifacts
        .iter()
        .map(|a| {
            let found = match a.status {
                crate::bundle::verify::ArtifactStatus::Missing => None,
                _ => a.actual_sha256().or(Some(a.expected_sha256)),
            };
            (&*a.path, found)
        })
        .collect()
}

fn digest_changes(old: &RunReport, new: &RunReport) -> Vec<DigestChange> {
    let (a, b) = (digests(old), digests(new));
    let mut out = Vec::new();
    for (path, before) in &a {
        let after = b.get(path).copied().flatten();
        if *before != after {
            out.push(DigestChange {
                path: path.to_string(),
                before: before.map(|d| d.hex()),
                after: after.map(|d| d.hex()),
            });
        }
    }
    for (path, after) in &b {
        if !a.contains_key(path) && after.is_some() {
            out.push(DigestChange {
                path: path.to_string(),
                before: None,
                after: after.map(|d| d.hex()),
            });
        }
    }
    out.sort_by(|x, y| x.path.cmp(&y.path));
    out
}

/// Whether a run fails: it is not verified. With [`phase_standing`] and
/// [`gate_standing`], the one judgement the changes and the history both use.
pub fn run_fails(run: &RunReport) -> bool {
    run.verification != Verification::Verified
}

/// A phase's verdict label, and whether it fails (not PROVEN).
pub fn phase_standing(p: &crate::dod::PhaseResult) -> (&'static str, bool) {
    (p.verdict.as_str(), p.verdict != crate::dod::Verdict::Proven)
}

/// A gate's state label, and whether it fails (blocked).
pub fn gate_standing(g: &crate::gate::GateReport) -> (&'static str, bool) {
    if g.blocked {
        ("blocked", true)
    } else {
        ("clear", false)
    }
}

fn promotable(run: &RunReport) -> Option<bool> {
    run.promotability
        .as_ref()
        .map(|p| p.promotable_decision_stage)
}

/// What changed from `old` to `new`.
pub fn compare(old: &Report, new: &Report) -> Changes {
    let mut counts = ChangeCounts::default();
    let (a, b) = (runs_of(old), runs_of(new));
    let mut keys: Vec<(&str, &str)> = a.keys().chain(b.keys()).copied().collect();
    keys.sort();
    keys.dedup();
    let mut runs = Vec::new();
    for key in keys {
        let (before, after) = (a.get(&key).copied(), b.get(&key).copied());
        let (digests, flip) = match (before, after) {
            (Some(x), Some(y)) => (
                digest_changes(x, y),
                match (promotable(x), promotable(y)) {
                    (Some(p), Some(q)) if p != q => Some(Flip {
                        before: p,
                        after: q,
                    }),
                    _ => None,
                },
            ),
            _ => (Vec::new(), None),
        };
        let moved = before
            .zip(after)
            .is_some_and(|(x, y)| x.verification != y.verification);
        let Some(kind) = kind_of(
            before.map(run_fails),
            after.map(run_fails),
            !digests.is_empty() || flip.is_some() || moved,
        ) else {
            continue;
        };
        counts.add(kind);
        counts.digests_changed += digests.len();
        counts.promotability_changed += usize::from(flip.is_some());
        runs.push(RunChange {
            root: key.0.to_string(),
            run_id: key.1.to_string(),
            kind,
            before: before.map(|r| r.verification),
            after: after.map(|r| r.verification),
            promotable: flip,
            digests,
            page: after.and_then(|r| r.page.clone()),
            previous_page: before.and_then(|r| r.page.clone()),
        });
    }
    runs.sort_by(|x, y| {
        (rank(x.kind), &x.root, &x.run_id).cmp(&(rank(y.kind), &y.root, &y.run_id))
    });

    let phases = items(phase_items(old), phase_items(new), &mut counts);
    let gates = items(gate_items(old), gate_items(new), &mut counts);

    Changes {
        previous: PreviousBuild {
            generated_at: old.generated_at.clone(),
            generator: old.generator.clone(),
            verdict: old.verdict.label,
            base_url: old.site.base_url.clone(),
        },
        counts,
        runs,
        phases,
        gates,
    }
}

/// (id, label, fails) of each phase.
fn phase_items(r: &Report) -> Vec<(&str, &'static str, bool)> {
    r.dod
        .phases
        .iter()
        .map(|(id, p)| {
            let (label, fails) = phase_standing(p);
            (id.as_str(), label, fails)
        })
        .collect()
}

/// (id, label, fails) of each gate.
fn gate_items(r: &Report) -> Vec<(&str, &'static str, bool)> {
    r.gates
        .push_truth
        .iter()
        .map(|g| {
            let (label, fails) = gate_standing(g);
            (g.id.as_str(), label, fails)
        })
        .collect()
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
pub fn text(c: &Changes, limit: usize) -> String {
    let n = &c.counts;
    let mut s = format!(
        "changes since the build of {} ({}): {}\n",
        c.previous.generated_at,
        c.previous.verdict,
        n.sentence(", ", "; ")
    );
    let mut lines: Vec<String> = Vec::new();
    for r in &c.runs {
        let mut line = format!(
            "  {:<14} run {}/{}: {}",
            r.kind.as_str(),
            r.root,
            r.run_id,
            r.transition()
        );
        if let Some(f) = r.promotable {
            line.push_str(&format!(
                "; promotable {} → {}",
                yes_no(f.before),
                yes_no(f.after)
            ));
        }
        if !r.digests.is_empty() {
            let first = &r.digests[0];
            line.push_str(&format!(
                "; {} digest(s) changed, e.g. {} {} → {}",
                r.digests.len(),
                first.path,
                short(first.before.as_deref()),
                short(first.after.as_deref())
            ));
        }
        lines.push(line);
    }
    for (what, list) in [("phase", &c.phases), ("gate", &c.gates)] {
        for i in list {
            lines.push(format!(
                "  {:<14} {what} {}: {}",
                i.kind.as_str(),
                i.id,
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
