//! `history.jsonl`: one line per build, carried from build to build (`--history
//! PREV`), newest last, at most `--history-limit` lines. It feeds the overview's
//! trend charts and the **flaky** markers.
//!
//! Each line records the build's counts and which runs, phases and gates failed. To
//! stay small at 100,000 runs, a line names passing items only when they matter:
//! those that failed in a kept line. An item is **flaky** when, over the kept
//! lines, its recorded state changes at least twice (fail → pass → fail, or pass →
//! fail → pass once a failure is on record): a flip is never hidden by the latest
//! state, and CI can count flaky items as failures (`--flaky-is-failure`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use serde::Serialize;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::changes::{gate_standing, phase_standing, run_fails};
use super::{Report, VerdictLabel};

pub const HISTORY_VERSION: &str = "lith.history/v1";
/// `--history-limit` unless given.
pub const DEFAULT_LIMIT: usize = 50;
/// Longest history.jsonl read back.
pub const MAX_HISTORY_BYTES: u64 = 256 * 1024 * 1024;
/// What the kept lines of a history may hold in memory, as [`Kept`] counts it: 16
/// bytes for each item a line names, each distinct name once (its length plus 32),
/// and the table that finds the names (20 bytes a slot). Fifty lines naming the
/// same 100,000 failing runs hold about 90 MB. Older lines past it are left out
/// (`history.cut`).
pub const MAX_HELD_BYTES: usize = 96 * 1024 * 1024;
/// Longest line read (its text is held while it is read).
pub const MAX_LINE_BYTES: usize = crate::jsonl::MAX_LINE_BYTES;

/// The counts a trend chart plots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Counts {
    pub runs: usize,
    pub verified: usize,
    /// Runs failed, in progress, uncommitted or unreadable.
    pub not_verified: usize,
    pub artifacts: usize,
    pub artifacts_ok: usize,
    pub promotable: usize,
    pub phases_proven: usize,
    pub phases_short: usize,
}

/// One build, as one line of history.jsonl.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Entry {
    pub v: String,
    pub generated_at: String,
    pub verdict: VerdictLabel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    pub counts: Counts,
    /// Items that failed in this build: `run:<root>/<run_id>`, `phase:<id>`,
    /// `gate:<id>`.
    pub failing: Items,
    /// Items that passed in this build and failed in a line kept when it was written.
    #[serde(default, skip_serializing_if = "Items::is_empty")]
    pub passing: Items,
}

/// A sorted set of item names. Lines read together share each name's one copy, so
/// a history costs its distinct names once and 16 bytes for each mention.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Items(Vec<Arc<str>>);

impl Items {
    /// The set of `names`, sorted, each once.
    fn of(mut names: Vec<Arc<str>>) -> Items {
        names.sort_unstable();
        names.dedup();
        names.shrink_to_fit();
        Items(names)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.binary_search_by(|n| (**n).cmp(name)).is_ok()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|n| &**n)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> FromIterator<&'a str> for Items {
    fn from_iter<I: IntoIterator<Item = &'a str>>(names: I) -> Items {
        Items::of(names.into_iter().map(Arc::from).collect())
    }
}

impl Serialize for Items {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// Items read back from a report share their names through the report's interner
/// ([`crate::bundle::verify::PathInterner::reading`]), as `--history` shares them
/// through [`Kept`].
impl<'de> serde::Deserialize<'de> for Items {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Items, D::Error> {
        struct Names;
        impl<'de> Visitor<'de> for Names {
            type Value = Items;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of item names")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element_seed(SharedName)? {
                    names.push(name);
                }
                Ok(Items::of(names))
            }
        }
        d.deserialize_seq(Names)
    }
}

/// An item name, shared through the report's interner if one is set.
struct SharedName;

impl<'de> DeserializeSeed<'de> for SharedName {
    type Value = Arc<str>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Arc<str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for SharedName {
    type Value = Arc<str>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an item name")
    }
    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Arc<str>, E> {
        Ok(crate::bundle::verify::read_shared(name))
    }
}

/// A run, phase or gate whose state flipped within the kept history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Flaky {
    pub item: String,
    /// How many times its recorded state changed.
    pub flips: usize,
    /// Its state in each kept build, oldest first: `fail`, `pass` or `-` (not on
    /// record).
    pub states: String,
}

/// The kept history (this build last) and what it says is flaky.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct History {
    pub limit: usize,
    pub entries: Vec<Entry>,
    pub flaky: Vec<Flaky>,
    /// Older lines left out to keep the history within [`MAX_HELD_BYTES`] (a
    /// `history.cut` finding says so).
    #[serde(skip)]
    pub cut: usize,
}

/// The key of a run in the history.
pub fn run_key(root: &str, run_id: &str) -> String {
    format!("run:{root}/{run_id}")
}

/// Every item of `r` with whether it fails, judged as the changes judge it.
fn items(r: &Report) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    for root in &r.bundles.roots {
        for run in &root.runs {
            out.insert(run_key(&root.path, &run.run_id), run_fails(run));
        }
    }
    for (id, p) in &r.dod.phases {
        out.insert(format!("phase:{id}"), phase_standing(p).1);
    }
    if let Some(g) = &r.gates.push_truth {
        out.insert(format!("gate:{}", g.id), gate_standing(g).1);
    }
    out
}

/// This build's line, given the lines kept before it.
pub fn entry(r: &Report, kept: &[Entry]) -> Entry {
    let items = items(r);
    let t = &r.bundles.totals;
    let (proven, partial, designed) = r.dod.counts();
    Entry {
        v: HISTORY_VERSION.to_string(),
        generated_at: r.generated_at.clone(),
        verdict: r.verdict.label,
        duration_ms: r.duration_ms,
        counts: Counts {
            runs: t.runs,
            verified: t.verified,
            not_verified: t.runs - t.verified,
            artifacts: t.artifacts,
            artifacts_ok: t.artifacts_ok,
            promotable: r
                .bundles
                .roots
                .iter()
                .flat_map(|root| &root.runs)
                .filter(|run| {
                    run.promotability
                        .as_ref()
                        .is_some_and(|p| p.promotable_decision_stage)
                })
                .count(),
            phases_proven: proven,
            phases_short: partial + designed,
        },
        failing: items
            .iter()
            .filter(|(_, fails)| **fails)
            .map(|(k, _)| k.as_str())
            .collect(),
        passing: items
            .iter()
            .filter(|(k, fails)| !**fails && kept.iter().any(|e| e.failing.contains(k)))
            .map(|(k, _)| k.as_str())
            .collect(),
    }
}

/// The items whose recorded state changed at least twice over `entries`.
pub fn flaky(entries: &[Entry]) -> Vec<Flaky> {
    let mut all: BTreeSet<&str> = BTreeSet::new();
    for e in entries {
        all.extend(e.failing.iter());
        all.extend(e.passing.iter());
    }
    let mut out = Vec::new();
    for item in all {
        let states: Vec<Option<bool>> = entries
            .iter()
            .map(|e| {
                if e.failing.contains(item) {
                    Some(true)
                } else if e.passing.contains(item) {
                    Some(false)
                } else {
                    None
                }
            })
            .collect();
        let recorded: Vec<bool> = states.iter().flatten().copied().collect();
        let flips = recorded.windows(2).filter(|w| w[0] != w[1]).count();
        if flips >= 2 {
            out.push(Flaky {
                item: item.to_string(),
                flips,
                states: states
                    .iter()
                    .map(|s| match s {
                        Some(true) => "fail",
                        Some(false) => "pass",
                        None => "-",
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
    }
    out
}

/// Why a previous history cannot be read. Each names the file and line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: cannot read the history: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}:{line}:{column}: not a line of history.jsonl ({reason}); remove the line or start a new history without --history"
    )]
    Line {
        path: String,
        line: usize,
        column: usize,
        reason: String,
    },
}

/// A history read back: its newest lines, and how many older ones were left out to
/// stay within [`MAX_HELD_BYTES`].
#[derive(Debug, Default)]
pub struct Read {
    pub entries: Vec<Entry>,
    pub cut: usize,
}

/// Reads a history.jsonl (every line must be one lith wrote), keeping its newest
/// `keep` lines: a long history costs the lines kept, not the lines read. The kept
/// lines hold at most [`MAX_HELD_BYTES`]: when the next line does not fit, the
/// oldest kept ones are left out, and a line that does not fit alone (or is longer
/// than [`MAX_LINE_BYTES`]) is left out with every line before it. What is left
/// out is counted, never judged: an item's flips are counted over the lines kept.
pub fn read(path: &std::path::Path, keep: usize) -> Result<Read, Error> {
    read_within(path, keep, MAX_HELD_BYTES)
}

fn read_within(path: &std::path::Path, keep: usize, budget: usize) -> Result<Read, Error> {
    let label = crate::fsutil::slash_path(path);
    let io = |source| Error::Io {
        path: label.clone(),
        source,
    };
    let (file, meta) =
        crate::fsutil::open_regular(path).map_err(|e| io(std::io::Error::other(e.to_string())))?;
    if meta.len() > MAX_HISTORY_BYTES {
        return Err(io(std::io::Error::other(format!(
            "{} bytes is more than the {MAX_HISTORY_BYTES} bytes lith reads back",
            meta.len()
        ))));
    }
    let mut kept = Kept::new(budget);
    let mut lines = crate::jsonl::Lines::with_cap(
        std::io::Read::take(file, MAX_HISTORY_BYTES),
        0,
        MAX_LINE_BYTES,
    );
    while let Some((line, bytes)) = lines.next_line().map_err(io)? {
        if line.too_long.is_some() {
            kept.leave_out_all();
            continue;
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let not = |e: serde_json::Error| Error::Line {
            path: label.clone(),
            line: line.number,
            column: e.column(),
            reason: crate::fsutil::strip_position(&e.to_string()),
        };
        if keep > 0 && kept.lines.len() == keep {
            kept.pop_oldest();
        }
        let hold = keep > 0;
        let parsed = parse_line(bytes, hold.then_some(&mut kept));
        let (entry, fits) = match parsed {
            Err(_) if kept.over => {
                // The line does not fit alone (every older line is out already): it
                // is only checked.
                kept.over = false;
                kept.leave_out_all();
                (parse_line(bytes, None).map_err(not)?, false)
            }
            other => (other.map_err(not)?, hold),
        };
        if entry.v != HISTORY_VERSION {
            return Err(Error::Line {
                path: label.clone(),
                line: line.number,
                column: 1,
                reason: format!("version {:?}, this lith reads {HISTORY_VERSION:?}", entry.v),
            });
        }
        if fits {
            kept.push(entry);
        }
    }
    Ok(Read {
        entries: kept.lines.into(),
        cut: kept.cut,
    })
}

fn parse_line(bytes: &[u8], kept: Option<&mut Kept>) -> Result<Entry, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let entry = LineSeed { kept }.deserialize(&mut de)?;
    de.end()?;
    Ok(entry)
}

/// Bytes [`Kept`] counts for each mention of an item, each distinct name beyond its
/// length, each slot of the names' table, and each line.
const MENTION_BYTES: usize = std::mem::size_of::<Arc<str>>();
const NAME_BYTES: usize = 32;
const SLOT_BYTES: usize = 20;
const LINE_BYTES: usize = 256;

/// The newest lines of a history, their names shared, and what they hold.
struct Kept {
    lines: VecDeque<Entry>,
    names: std::collections::HashSet<Arc<str>>,
    /// What the lines and the names hold, but the names' table.
    held: usize,
    budget: usize,
    /// Lines left out to stay within the budget.
    cut: usize,
    /// Set when the line being read does not fit even with no other line kept.
    over: bool,
}

impl Kept {
    fn new(budget: usize) -> Kept {
        Kept {
            lines: VecDeque::new(),
            names: std::collections::HashSet::new(),
            held: 0,
            budget,
            cut: 0,
            over: false,
        }
    }

    /// The shared copy of `name`, counted as one more mention.
    fn share(&mut self, name: &str) -> Arc<str> {
        self.held += MENTION_BYTES;
        if let Some(n) = self.names.get(name) {
            return n.clone();
        }
        self.held += name.len() + NAME_BYTES;
        let n: Arc<str> = Arc::from(name);
        self.names.insert(n.clone());
        n
    }

    /// [`Kept::share`] for the line being read, leaving out the oldest lines while
    /// the budget is passed; `None` (and `over`) when it is passed with none left.
    fn mention(&mut self, name: &str) -> Option<Arc<str>> {
        let n = self.share(name);
        if !self.fit(0) {
            self.over = true;
            return None;
        }
        Some(n)
    }

    /// Leaves out the oldest lines while the budget is passed, keeping at least
    /// `lines` of them: whether what is held now fits.
    fn fit(&mut self, lines: usize) -> bool {
        while self.holds() > self.budget {
            if self.lines.len() <= lines {
                return false;
            }
            self.pop_oldest();
            self.cut += 1;
        }
        true
    }

    /// What the kept lines hold, their names' table included.
    fn holds(&self) -> usize {
        self.held + self.names.capacity() * SLOT_BYTES
    }

    /// Keeps a line read through [`Kept::mention`].
    fn push(&mut self, e: Entry) {
        self.held += LINE_BYTES;
        self.lines.push_back(e);
    }

    /// Keeps a line made elsewhere, sharing its names with the kept ones.
    fn adopt(&mut self, e: Entry) {
        let mut share = |items: &Items| Items(items.0.iter().map(|n| self.share(n)).collect());
        let e = Entry {
            failing: share(&e.failing),
            passing: share(&e.passing),
            ..e
        };
        self.push(e);
    }

    fn pop_oldest(&mut self) {
        let Some(e) = self.lines.pop_front() else {
            return;
        };
        self.held -= LINE_BYTES;
        for n in e.failing.0.into_iter().chain(e.passing.0) {
            self.held -= MENTION_BYTES;
            // Only the set of names and this mention hold it.
            if Arc::strong_count(&n) == 2 {
                self.names.remove(&*n);
                self.held -= n.len() + NAME_BYTES;
            }
        }
        if self.names.len() < self.names.capacity() / 4 {
            self.names.shrink_to(self.names.len() * 2);
        }
    }

    /// Leaves out every kept line and the line being read.
    fn leave_out_all(&mut self) {
        self.cut += self.lines.len() + 1;
        self.lines.clear();
        self.names = std::collections::HashSet::new();
        self.held = 0;
    }
}

/// A line of history.jsonl, its items shared through `kept` (or only checked).
struct LineSeed<'k> {
    kept: Option<&'k mut Kept>,
}

#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    V,
    GeneratedAt,
    Verdict,
    DurationMs,
    Counts,
    Failing,
    Passing,
    #[serde(other)]
    Other,
}

fn once<T, E: serde::de::Error>(slot: &mut Option<T>, field: &'static str, v: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(field));
    }
    *slot = Some(v);
    Ok(())
}

impl<'de> DeserializeSeed<'de> for LineSeed<'_> {
    type Value = Entry;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Entry, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LineSeed<'_> {
    type Value = Entry;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a line of history.jsonl")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Entry, A::Error> {
        use serde::de::Error as _;
        let (mut v, mut generated_at, mut verdict, mut duration_ms) = (None, None, None, None);
        let (mut counts, mut failing, mut passing) = (None, None, None);
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::V => once(&mut v, "v", map.next_value::<String>()?)?,
                Field::GeneratedAt => once(
                    &mut generated_at,
                    "generated_at",
                    map.next_value::<String>()?,
                )?,
                Field::Verdict => once(&mut verdict, "verdict", map.next_value()?)?,
                Field::DurationMs => once(
                    &mut duration_ms,
                    "duration_ms",
                    map.next_value::<Option<u64>>()?,
                )?,
                Field::Counts => once(&mut counts, "counts", map.next_value::<Counts>()?)?,
                Field::Failing => {
                    let items = map.next_value_seed(ItemsSeed {
                        kept: self.kept.as_deref_mut(),
                    })?;
                    once(&mut failing, "failing", items)?
                }
                Field::Passing => {
                    let items = map.next_value_seed(ItemsSeed {
                        kept: self.kept.as_deref_mut(),
                    })?;
                    once(&mut passing, "passing", items)?
                }
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Entry {
            v: v.ok_or_else(|| A::Error::missing_field("v"))?,
            generated_at: generated_at.ok_or_else(|| A::Error::missing_field("generated_at"))?,
            verdict: verdict.ok_or_else(|| A::Error::missing_field("verdict"))?,
            duration_ms: duration_ms.flatten(),
            counts: counts.ok_or_else(|| A::Error::missing_field("counts"))?,
            failing: failing.ok_or_else(|| A::Error::missing_field("failing"))?,
            passing: passing.unwrap_or_default(),
        })
    }
}

/// A list of item names, shared through `kept` (or only checked).
struct ItemsSeed<'k> {
    kept: Option<&'k mut Kept>,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = Items;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Items, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = Items;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of item names")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Items, A::Error> {
        let mut names = Vec::new();
        while let Some(name) = seq.next_element_seed(NameSeed {
            kept: self.kept.as_deref_mut(),
        })? {
            names.extend(name);
        }
        let mentioned = names.len();
        let items = Items::of(names);
        if let Some(k) = self.kept {
            // A name listed twice is kept once.
            k.held -= (mentioned - items.len()) * MENTION_BYTES;
        }
        Ok(items)
    }
}

struct NameSeed<'k> {
    kept: Option<&'k mut Kept>,
}

impl<'de> DeserializeSeed<'de> for NameSeed<'_> {
    type Value = Option<Arc<str>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NameSeed<'_> {
    type Value = Option<Arc<str>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an item name")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Self::Value, E> {
        match self.kept {
            None => Ok(None),
            Some(k) => match k.mention(name) {
                Some(n) => Ok(Some(n)),
                None => Err(E::custom(format_args!(
                    "its items hold more than the {} MiB lith keeps of a history",
                    MAX_HELD_BYTES >> 20
                ))),
            },
        }
    }
}

/// The history after this build: the previous lines, this build's, the newest
/// `limit` kept, within [`MAX_HELD_BYTES`] (what lith writes, it reads back).
pub fn extend(r: &Report, previous: Vec<Entry>, limit: usize) -> History {
    let limit = limit.max(1);
    let mut entries = previous;
    // The new line is written against the lines that will be kept with it.
    let keep_before = limit - 1;
    if entries.len() > keep_before {
        entries.drain(..entries.len() - keep_before);
    }
    let line = entry(r, &entries);
    entries.push(line);
    let mut kept = Kept::new(MAX_HELD_BYTES);
    for e in entries {
        kept.adopt(e);
    }
    // This build's line is kept, whatever it holds.
    kept.fit(1);
    let entries: Vec<Entry> = kept.lines.into();
    let flaky = flaky(&entries);
    History {
        limit,
        entries,
        flaky,
        cut: kept.cut,
    }
}

/// Writes history.jsonl as the site holds it: one line per kept build.
pub fn write_jsonl(h: &History, w: &mut dyn std::io::Write) -> Result<(), serde_json::Error> {
    for e in &h.entries {
        serde_json::to_writer(&mut *w, e)?;
        w.write_all(b"\n").map_err(serde_json::Error::io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_keeps_the_newest_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let text: String = (0..5)
            .map(|i| {
                let mut e = line(&[], &[]);
                e.generated_at = format!("t{i}");
                serde_json::to_string(&e).unwrap() + "\n"
            })
            .collect();
        std::fs::write(&path, text).unwrap();
        let times = |keep| -> Vec<String> {
            read(&path, keep)
                .unwrap()
                .entries
                .into_iter()
                .map(|e| e.generated_at)
                .collect()
        };
        assert_eq!(times(2), ["t3", "t4"]);
        assert_eq!(times(9).len(), 5);
        assert!(times(0).is_empty());
    }

    /// A history of lines at times t0, t1, … naming `names(i)` as failing.
    fn written(lines: &[Vec<String>]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let text: String = lines
            .iter()
            .enumerate()
            .map(|(i, names)| {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let mut e = line(&names, &[]);
                e.generated_at = format!("t{i}");
                serde_json::to_string(&e).unwrap() + "\n"
            })
            .collect();
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("run:{prefix}/{i:0>96}")).collect()
    }

    fn times(r: &Read) -> Vec<&str> {
        r.entries.iter().map(|e| e.generated_at.as_str()).collect()
    }

    /// Lines of 100 names of 100 bytes each hold about 15 KB: a budget of 40,000
    /// bytes holds two of them, or every line when they name the same runs.
    #[test]
    fn lines_past_what_a_history_holds_are_left_out_oldest_first() {
        let distinct: Vec<Vec<String>> = (0..6).map(|i| names(&format!("l{i}"), 100)).collect();
        let (_d, path) = written(&distinct);
        let r = read_within(&path, 50, 40_000).unwrap();
        assert_eq!(times(&r), ["t4", "t5"]);
        assert_eq!(r.cut, 4);
        assert_eq!(r.entries[1].failing.len(), 100);

        // Names shared between lines are held once.
        let same: Vec<Vec<String>> = (0..6).map(|_| names("same", 100)).collect();
        let (_d, path) = written(&same);
        let r = read_within(&path, 50, 40_000).unwrap();
        assert_eq!(r.entries.len(), 6);
        assert_eq!(r.cut, 0);
        let first = &r.entries[0].failing.0[7];
        assert!(Arc::ptr_eq(first, &r.entries[5].failing.0[7]));

        // A line that does not fit alone is left out with every line before it,
        // and still checked.
        let big = vec![names("a", 10), names("b", 1000), names("c", 10)];
        let (_d, path) = written(&big);
        let r = read_within(&path, 50, 40_000).unwrap();
        assert_eq!(times(&r), ["t2"]);
        assert_eq!(r.cut, 2);
        let mut text = std::fs::read_to_string(&path).unwrap();
        let last = format!("run:b/{:0>96}\"", 999);
        text = text.replacen(&last, &format!("{last}, 3"), 1);
        std::fs::write(&path, text).unwrap();
        let e = read_within(&path, 50, 40_000).unwrap_err().to_string();
        assert!(e.contains("history.jsonl:2:"), "{e}");

        // Lines past `keep` are not counted as left out.
        let r = read_within(&written(&distinct).1, 1, 40_000).unwrap();
        assert_eq!((times(&r), r.cut), (vec!["t5"], 0));
    }

    fn line(failing: &[&str], passing: &[&str]) -> Entry {
        Entry {
            v: HISTORY_VERSION.into(),
            generated_at: "t".into(),
            verdict: VerdictLabel::Ok,
            duration_ms: None,
            counts: Counts::default(),
            failing: failing.iter().copied().collect(),
            passing: passing.iter().copied().collect(),
        }
    }

    #[test]
    fn an_item_that_flips_twice_is_flaky_whatever_its_latest_state() {
        let h = [
            line(&["run:out/a", "run:out/b", "run:out/c"], &[]),
            line(&["run:out/b", "run:out/c"], &["run:out/a"]),
            line(&["run:out/a", "run:out/c"], &["run:out/b"]),
            line(&["run:out/c"], &["run:out/a", "run:out/b"]),
        ];
        let got: Vec<(String, usize, String)> = flaky(&h)
            .into_iter()
            .map(|f| (f.item, f.flips, f.states))
            .collect();
        assert_eq!(
            got,
            [(
                "run:out/a".to_string(),
                3,
                "fail pass fail pass".to_string()
            )],
            "b was fixed once (one flip), c never passed: neither is flaky"
        );
        // Unrecorded builds are skipped, not counted as passes.
        let gaps = [
            line(&["phase:P"], &[]),
            line(&[], &[]),
            line(&[], &["phase:P"]),
            line(&["phase:P"], &[]),
        ];
        assert_eq!(flaky(&gaps)[0].states, "fail - pass fail");
    }
}
