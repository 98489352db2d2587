//! Verification of one run folder (SPEC §3.5): every indexed artifact gets exactly one
//! status, files nobody indexed are listed, and the run gets one verdict.
//!
//! Artifacts are hashed in parallel (rayon), each file streamed through a fixed
//! buffer, so memory does not grow with file sizes. Nothing outside the run folder is
//! ever opened: unsafe paths and escaping symlinks are reported, not read.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::index::{ArtifactIndex, IndexEntry, RunStatus, STATES, truncate};
use super::paths;
use super::promotion::{self, Promotability};
use super::witness::{self, Witnesses};
use crate::beneath::{Dir, EntryKind, MAX_TREE_DEPTH, Met, Refusal, TreeEntry, Unwalked};
use crate::finding::{Code, Finding, Severity};
use crate::fsutil::{self, JsonReadError};

/// Files that belong to the bundle machinery and are never "unindexed".
pub const BOOKKEEPING_FILES: [&str; 3] =
    ["artifact_index.json", "repair_log.json", "run_status.json"];
/// The most unindexed files listed per run.
pub const MAX_UNINDEXED_LISTED: usize = 10_000;
/// The largest `summary.md` shown on a run page.
pub const MAX_SUMMARY_BYTES: u64 = 256 * 1024;

/// `--fast` (sizes only) or full (sizes and digests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Fast,
    Full,
}

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub mode: Mode,
    /// Canonical `--repo-root`, when given.
    pub repo_root: Option<PathBuf>,
    /// Ticked once per verified run.
    pub progress: Option<indicatif::ProgressBar>,
    /// When set, each run's decision-stage promotability is assessed too, with these
    /// decision-stage artifacts.
    pub decision_stage: Option<Vec<String>>,
    /// Keep every safe index entry's path and digest in `RunReport::subjects`, for
    /// an attestation of the very index that was verified.
    pub keep_subjects: bool,
    /// Artifact paths seen so far in this build: runs of one workspace list the same
    /// names, and each row keeps a shared copy.
    pub paths: PathInterner,
    /// Stamps of run folders: a run whose folder is as the previous build saw it is
    /// taken from that build's report; any other run is stamped as it is read.
    pub reuse: Option<Arc<super::reuse::Reuse>>,
}

impl VerifyOptions {
    /// Options to verify in `mode`, with `repo_root`: no progress bar, no
    /// promotability, no subjects kept, no stamps.
    pub fn new(mode: Mode, repo_root: Option<PathBuf>) -> VerifyOptions {
        VerifyOptions {
            mode,
            repo_root,
            progress: None,
            decision_stage: None,
            keep_subjects: false,
            paths: PathInterner::default(),
            reuse: None,
        }
    }
}

/// One shared copy of each artifact path a build meets (runs of one workspace name
/// the same files), kept for as long as the build's options are.
#[derive(Debug, Clone, Default)]
pub struct PathInterner(Arc<std::sync::Mutex<std::collections::HashSet<Arc<str>>>>);

thread_local! {
    /// The interner rows read on this thread share their paths through, if any.
    static READING: RefCell<Option<PathInterner>> = const { RefCell::new(None) };
}

impl PathInterner {
    /// Runs `f` (which reads a report) with the rows it reads on this thread sharing
    /// their paths through this interner, as rows verified by the build do.
    pub fn reading<T>(&self, f: impl FnOnce() -> T) -> T {
        struct Reset(Option<PathInterner>);
        impl Drop for Reset {
            fn drop(&mut self) {
                READING.with(|r| *r.borrow_mut() = self.0.take());
            }
        }
        let _reset = Reset(READING.with(|r| r.borrow_mut().replace(self.clone())));
        f()
    }

    pub fn get(&self, path: &str) -> Arc<str> {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = set.get(path) {
            return p.clone();
        }
        let p: Arc<str> = path.into();
        set.insert(p.clone());
        p
    }
}

/// The one status of an indexed artifact.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactStatus {
    Ok,
    Missing,
    SizeMismatch,
    DigestMismatch,
    UnsafePath,
    Unreadable,
    NotAFile,
}

impl ArtifactStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactStatus::Ok => "ok",
            ArtifactStatus::Missing => "missing",
            ArtifactStatus::SizeMismatch => "size_mismatch",
            ArtifactStatus::DigestMismatch => "digest_mismatch",
            ArtifactStatus::UnsafePath => "unsafe_path",
            ArtifactStatus::Unreadable => "unreadable",
            ArtifactStatus::NotAFile => "not_a_file",
        }
    }
}

/// The verdict on a run as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// Every artifact ok, `missing[]` empty, index status ok.
    Verified,
    /// Committed, but something fell short.
    Failed,
    /// `run_status.state` is `in_progress`: not for strict readers yet.
    InProgress,
    /// No `artifact_index.json`: the run never passed its commit barrier.
    Uncommitted,
    /// `run_status.json` or `artifact_index.json` cannot be parsed.
    Error,
}

impl Verification {
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Verified => "verified",
            Verification::Failed => "failed",
            Verification::InProgress => "in_progress",
            Verification::Uncommitted => "uncommitted",
            Verification::Error => "error",
        }
    }
}

/// A sha256 digest: 32 bytes in memory, 64 lower-case hex digits in every output.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// 64 hex digits (either case); anything else is `None`.
    pub fn parse(s: &str) -> Option<Sha256Digest> {
        unhex(s).map(Sha256Digest)
    }

    pub fn hex(&self) -> String {
        self.to_string()
    }

    /// The 64 lower-case hex digits, without allocating.
    fn digits(&self) -> [u8; 64] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 64];
        for (i, b) in self.0.iter().enumerate() {
            buf[2 * i] = HEX[(b >> 4) as usize];
            buf[2 * i + 1] = HEX[(b & 15) as usize];
        }
        buf
    }
}

impl std::fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(std::str::from_utf8(&self.digits()).expect("hex is ASCII"))
    }
}

impl std::fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(std::str::from_utf8(&self.digits()).expect("hex is ASCII"))
    }
}

impl<'de> serde::Deserialize<'de> for Sha256Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Sha256Digest, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Sha256Digest;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sha256 digest in 64 hex digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Sha256Digest, E> {
                Sha256Digest::parse(v)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_str(V)
    }
}

/// One indexed artifact and what was found on disk.
///
/// Most rows of a large build are `ok` as indexed: such a row keeps its path, size
/// and digest and nothing else (72 bytes and the path), and what it leaves out is
/// derived when asked ([`ArtifactCheck::rel`], [`ArtifactCheck::actual_sha256`], …).
/// A row that says more keeps the rest in one boxed [`ArtifactMore`]. The JSON form
/// ([`ArtifactWire`]) leaves out the same things.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactCheck {
    /// The path as written in the index (shared between rows that name the same).
    pub path: Arc<str>,
    pub status: ArtifactStatus,
    pub expected_size: u64,
    pub expected_sha256: Sha256Digest,
    /// `None` exactly when the row is plain (see [`ArtifactCheck::is_plain`]): every
    /// setter keeps it so, which makes `==` compare what the rows say.
    more: Option<Box<ArtifactMore>>,
}

/// What a plain row leaves out.
#[derive(Debug, Clone, PartialEq)]
struct ArtifactMore {
    /// The bundle-relative path it resolved to (absent when unsafe).
    rel: Option<Box<str>>,
    actual_size: Option<u64>,
    actual_sha256: Option<Sha256Digest>,
    schema_version: Option<Box<str>>,
    /// Why, for statuses that need a word more (unsafe, unreadable).
    detail: Option<Box<str>>,
    /// Absolute link to the row, when the site has a base URL.
    url: Option<Box<str>>,
}

/// How an [`ArtifactCheck`] is spelled in JSON. Left out, and derived on reading:
/// `anchor` (from `path`); `rel` when it equals `path` (an explicit `null` when the
/// path was unsafe); `actual_size` and `actual_sha256` of an `ok` row when they equal
/// the expected values; `schema_version`, `detail` and `url` when absent. In the
/// compact form of `report.json` ([`crate::wire::compact`]) a row with nothing but
/// those is the array `[path, expected_size, expected_sha256]`.
#[derive(Serialize, serde::Deserialize)]
struct ArtifactWire<S> {
    path: S,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    rel: Option<Option<S>>,
    status: ArtifactStatus,
    expected_size: u64,
    expected_sha256: Sha256Digest,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    actual_size: Option<Option<u64>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    actual_sha256: Option<Option<Sha256Digest>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schema_version: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<S>,
}

/// A field that is present reads as `Some`, even when it is `null` (`Some(None)`);
/// an absent one is `None` through `#[serde(default)]`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

impl ArtifactCheck {
    /// An `ok` row found as indexed, at its own path.
    pub fn plain(path: impl Into<Arc<str>>, size: u64, sha256: Sha256Digest) -> ArtifactCheck {
        ArtifactCheck {
            path: path.into(),
            status: ArtifactStatus::Ok,
            expected_size: size,
            expected_sha256: sha256,
            more: None,
        }
    }

    /// `a-` + 12 hex digits of sha256(path): the row's stable anchor (derived when
    /// asked, not kept per row).
    pub fn anchor(&self) -> String {
        artifact_anchor(&self.path)
    }

    /// The bundle-relative path the entry resolved to; `None` when it was unsafe.
    pub fn rel(&self) -> Option<&str> {
        match &self.more {
            None => Some(&self.path),
            Some(m) => m.rel.as_deref(),
        }
    }

    /// The size found on disk; `None` when nothing could be read.
    pub fn actual_size(&self) -> Option<u64> {
        match &self.more {
            None => Some(self.expected_size),
            Some(m) => m.actual_size,
        }
    }

    /// The digest found on disk; `None` when nothing was hashed (or `--fast`).
    pub fn actual_sha256(&self) -> Option<Sha256Digest> {
        match &self.more {
            None => Some(self.expected_sha256),
            Some(m) => m.actual_sha256,
        }
    }

    pub fn schema_version(&self) -> Option<&str> {
        self.more.as_ref().and_then(|m| m.schema_version.as_deref())
    }

    pub fn detail(&self) -> Option<&str> {
        self.more.as_ref().and_then(|m| m.detail.as_deref())
    }

    pub fn url(&self) -> Option<&str> {
        self.more.as_ref().and_then(|m| m.url.as_deref())
    }

    pub fn set_status(&mut self, status: ArtifactStatus) {
        self.status = status;
        self.settle();
    }

    pub fn set_rel(&mut self, rel: Option<&str>) {
        let plain = rel == Some(&*self.path);
        self.set(plain, |m| m.rel = rel.map(Into::into));
    }

    pub fn set_actual(&mut self, size: Option<u64>, sha256: Option<Sha256Digest>) {
        let plain = size == Some(self.expected_size) && sha256 == Some(self.expected_sha256);
        self.set(plain, |m| {
            m.actual_size = size;
            m.actual_sha256 = sha256;
        });
    }

    pub fn set_schema_version(&mut self, v: Option<&str>) {
        self.set(v.is_none(), |m| m.schema_version = v.map(Into::into));
    }

    pub fn set_detail(&mut self, v: Option<&str>) {
        self.set(v.is_none(), |m| m.detail = v.map(Into::into));
    }

    pub fn set_url(&mut self, v: Option<&str>) {
        self.set(v.is_none(), |m| m.url = v.map(Into::into));
    }

    /// Sets a field of what a plain row leaves out. `plain` says the value is the
    /// one a plain row implies: a plain row then stays as it is, with nothing boxed
    /// (most rows of a build, set field by field as they are verified).
    fn set(&mut self, plain: bool, f: impl FnOnce(&mut ArtifactMore)) {
        if plain && self.more.is_none() {
            return;
        }
        let m = self.more.get_or_insert_with(|| {
            Box::new(ArtifactMore {
                rel: Some((*self.path).into()),
                actual_size: Some(self.expected_size),
                actual_sha256: Some(self.expected_sha256),
                schema_version: None,
                detail: None,
                url: None,
            })
        });
        f(m);
        self.settle();
    }

    /// Drops what a plain row leaves out, so that equal rows are equal values.
    fn settle(&mut self) {
        let plain = |m: &ArtifactMore| {
            m.rel.as_deref() == Some(&*self.path)
                && m.actual_size == Some(self.expected_size)
                && m.actual_sha256 == Some(self.expected_sha256)
                && m.schema_version.is_none()
                && m.detail.is_none()
                && m.url.is_none()
        };
        if self.status == ArtifactStatus::Ok && self.more.as_deref().is_some_and(plain) {
            self.more = None;
        }
    }

    fn ok_as_indexed(&self) -> bool {
        self.status == ArtifactStatus::Ok
            && self.actual_size() == Some(self.expected_size)
            && self.actual_sha256() == Some(self.expected_sha256)
    }

    /// An `ok` row that says nothing but its path, size and digest.
    pub fn is_plain(&self) -> bool {
        self.status == ArtifactStatus::Ok && self.more.is_none()
    }
}

impl Serialize for ArtifactCheck {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if crate::wire::is_compact() && self.is_plain() {
            return (&*self.path, self.expected_size, &self.expected_sha256).serialize(s);
        }
        let ok = self.ok_as_indexed();
        ArtifactWire::<&str> {
            path: &self.path,
            rel: (self.rel() != Some(&*self.path)).then_some(self.rel()),
            status: self.status,
            expected_size: self.expected_size,
            expected_sha256: self.expected_sha256,
            actual_size: (!ok).then_some(self.actual_size()),
            actual_sha256: (!ok).then_some(self.actual_sha256()),
            schema_version: self.schema_version(),
            detail: self.detail(),
            url: self.url(),
        }
        .serialize(s)
    }
}

/// A path or name read back (an artifact row's path, a history's item), shared
/// through the interner of [`PathInterner::reading`] if one is set on this thread:
/// a report of 50 builds naming the same 100,000 failing runs holds each name once.
pub fn read_shared(name: &str) -> Arc<str> {
    READING
        .with(|r| r.borrow().as_ref().map(|i| i.get(name)))
        .unwrap_or_else(|| name.into())
}

impl<'de> serde::Deserialize<'de> for ArtifactCheck {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ArtifactCheck, D::Error> {
        struct Row;
        impl<'de> serde::de::Visitor<'de> for Row {
            type Value = ArtifactCheck;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an artifact row: an object, or [path, size, sha256] for an ok row")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                use serde::de::Error;
                let path: String = a
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let size: u64 = a
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                let sha: Sha256Digest = a
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(2, &self))?;
                if a.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(A::Error::invalid_length(4, &self));
                }
                Ok(ArtifactCheck::plain(read_shared(&path), size, sha))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                a: A,
            ) -> Result<Self::Value, A::Error> {
                let w: ArtifactWire<String> = serde::Deserialize::deserialize(
                    serde::de::value::MapAccessDeserializer::new(a),
                )?;
                Ok(ArtifactCheck::from(w))
            }
        }
        d.deserialize_any(Row)
    }
}

impl From<ArtifactWire<String>> for ArtifactCheck {
    fn from(w: ArtifactWire<String>) -> ArtifactCheck {
        let mut c = ArtifactCheck::plain(read_shared(&w.path), w.expected_size, w.expected_sha256);
        if let Some(rel) = w.rel {
            c.set_rel(rel.as_deref());
        }
        c.set_actual(
            w.actual_size.unwrap_or(Some(w.expected_size)),
            w.actual_sha256.unwrap_or(Some(w.expected_sha256)),
        );
        c.set_schema_version(w.schema_version.as_deref());
        c.set_detail(w.detail.as_deref());
        c.set_url(w.url.as_deref());
        c.set_status(w.status);
        c
    }
}

/// What the index said, for display.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct IndexSummary {
    #[serde(default, skip_serializing_if = "crate::wire::none")]
    pub schema_version: Option<String>,
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "crate::wire::none")]
    pub world_id: Option<String>,
    pub status: crate::bundle::index::IndexStatus,
    #[serde(default, skip_serializing_if = "crate::wire::empty")]
    pub missing: Vec<String>,
    pub entries: usize,
}

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct Counts {
    pub total: usize,
    pub ok: usize,
    /// Count per non-ok status, by name.
    #[serde(default, skip_serializing_if = "crate::wire::empty_map")]
    pub by_status: BTreeMap<String, usize>,
}

/// Everything known about one run folder.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The run folder's name.
    pub run_id: String,
    /// The run folder, relative to the workspace (or as given to `lith verify`).
    pub dir: String,
    /// True when the bundle root's LATEST names this run.
    #[serde(default, skip_serializing_if = "crate::wire::no")]
    pub latest: bool,
    /// Site-relative folder of the run page (`runs/<slug>/`), set by the build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// Absolute URL of the run page, when the site has a base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub mode: Mode,
    pub verification: Verification,
    pub committed: bool,
    /// Boxed, as are the index summary and promotability: a run's record is held
    /// twice while a rebuild moves it from the previous report into the new one.
    pub run_status: Option<Box<RunStatus>>,
    pub index: Option<Box<IndexSummary>>,
    pub counts: Counts,
    /// Up to [`MAX_LISTED_ARTIFACTS`] rows, failing ones first to be kept.
    pub artifacts: Vec<ArtifactCheck>,
    #[serde(default, skip_serializing_if = "crate::wire::empty")]
    pub findings: Vec<Finding>,
    /// Decision-stage promotability, when assessed (`lith build`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotability: Option<Box<Promotability>>,
    /// What few runs have, in one box (see [`RunReport::extra`]); written as fields
    /// of the run itself. A run's record is held twice while a rebuild moves it
    /// from the previous report into the new one: these 120 bytes inline would be
    /// 24 MB at 100,000 runs.
    #[serde(flatten, serialize_with = "extra_or_empty")]
    extra: Option<Box<RunExtra>>,
}

/// How a [`RunReport`] is read: its fields and [`RunExtra`]'s side by side, each
/// read straight into place. Read as a flattened field, the extra fields were
/// buffered as serde's own tree of values first, so a run listing millions of
/// unindexed files held each name twice.
#[derive(serde::Deserialize)]
struct RunWire {
    run_id: String,
    dir: String,
    #[serde(default)]
    latest: bool,
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    url: Option<String>,
    mode: Mode,
    verification: Verification,
    committed: bool,
    run_status: Option<Box<RunStatus>>,
    index: Option<Box<IndexSummary>>,
    counts: Counts,
    artifacts: Vec<ArtifactCheck>,
    #[serde(default)]
    findings: Vec<Finding>,
    #[serde(default)]
    promotability: Option<Box<Promotability>>,
    #[serde(default)]
    artifacts_unlisted: usize,
    #[serde(default)]
    unindexed: Vec<String>,
    #[serde(default)]
    witnesses: Option<Box<Witnesses>>,
    #[serde(default)]
    promotion_optional: Vec<String>,
    #[serde(default)]
    summary_md: Option<String>,
    #[serde(default)]
    attestation: Option<Box<crate::attest::AttestationRef>>,
}

impl<'de> serde::Deserialize<'de> for RunReport {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RunReport, D::Error> {
        let w = RunWire::deserialize(d)?;
        let extra = RunExtra {
            artifacts_unlisted: w.artifacts_unlisted,
            unindexed: w.unindexed,
            witnesses: w.witnesses,
            promotion_optional: w.promotion_optional,
            summary_md: w.summary_md,
            attestation: w.attestation,
            subjects: Vec::new(),
        };
        Ok(RunReport {
            run_id: w.run_id,
            dir: w.dir,
            latest: w.latest,
            page: w.page,
            url: w.url,
            mode: w.mode,
            verification: w.verification,
            committed: w.committed,
            run_status: w.run_status,
            index: w.index,
            counts: w.counts,
            artifacts: w.artifacts,
            findings: w.findings,
            promotability: w.promotability,
            extra: (!extra.is_empty()).then(|| Box::new(extra)),
        })
    }
}

/// The fields of a [`RunReport`] that most runs leave empty.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunExtra {
    /// Entries counted in `counts` but not listed in `artifacts`.
    #[serde(default, skip_serializing_if = "crate::wire::zero")]
    pub artifacts_unlisted: usize,
    #[serde(default, skip_serializing_if = "crate::wire::empty")]
    pub unindexed: Vec<String>,
    #[serde(default, skip_serializing_if = "crate::wire::none")]
    pub witnesses: Option<Box<Witnesses>>,
    /// The optional promotion inputs present in the run folder; with
    /// `promotability` they make the promotion packet beside the run page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promotion_optional: Vec<String>,
    /// `summary.md` of the run, shown on its page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_md: Option<String>,
    /// The attestation written for this run (`lith build --attest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Box<crate::attest::AttestationRef>>,
    /// With `VerifyOptions::keep_subjects`: every indexed artifact whose path is
    /// safe, as (path relative to the run folder, expected sha256), sorted by path.
    /// Never serialized: the report lists at most a bounded number of rows.
    #[serde(skip)]
    pub subjects: Vec<(Box<str>, [u8; 32])>,
}

impl RunExtra {
    const EMPTY: RunExtra = RunExtra {
        artifacts_unlisted: 0,
        unindexed: Vec::new(),
        witnesses: None,
        promotion_optional: Vec::new(),
        summary_md: None,
        attestation: None,
        subjects: Vec::new(),
    };

    fn is_empty(&self) -> bool {
        self.artifacts_unlisted == 0
            && self.unindexed.is_empty()
            && self.witnesses.is_none()
            && self.promotion_optional.is_empty()
            && self.summary_md.is_none()
            && self.attestation.is_none()
            && self.subjects.is_empty()
    }
}

static NO_EXTRA: RunExtra = RunExtra::EMPTY;

/// A run's [`RunExtra`], empty when it has none: its fields decide for themselves
/// whether they are written (a compact report leaves empty ones out).
fn extra_or_empty<S: serde::Serializer>(
    extra: &Option<Box<RunExtra>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    extra.as_deref().unwrap_or(&NO_EXTRA).serialize(s)
}

impl RunReport {
    /// A run's record before anything is known of it but its name and folder.
    pub fn new(run_id: String, dir: String, mode: Mode) -> RunReport {
        RunReport {
            run_id,
            dir,
            latest: false,
            page: None,
            url: None,
            mode,
            verification: Verification::Error,
            committed: false,
            run_status: None,
            index: None,
            counts: Counts::default(),
            artifacts: Vec::new(),
            findings: Vec::new(),
            promotability: None,
            extra: None,
        }
    }

    /// What few runs have: rows left out, unindexed files, witnesses, optional
    /// promotion inputs, `summary.md`, the attestation and its subjects.
    pub fn extra(&self) -> &RunExtra {
        self.extra.as_deref().unwrap_or(&NO_EXTRA)
    }

    /// [`RunReport::extra`] to change; call [`RunReport::tidy`] when done.
    pub fn extra_mut(&mut self) -> &mut RunExtra {
        self.extra.get_or_insert_default()
    }

    /// Returns the box of [`RunReport::extra`] when a change left it empty.
    pub fn tidy(&mut self) {
        if self.extra.as_ref().is_some_and(|e| e.is_empty()) {
            self.extra = None;
        }
    }

    /// `run_status.json`'s `state`, when it has one.
    pub fn state(&self) -> Option<&str> {
        self.run_status.as_ref().and_then(|s| s.state.as_deref())
    }

    pub fn exit_code(&self) -> i32 {
        crate::finding::worst_exit(&self.findings)
    }
}

/// The stable anchor of an artifact row.
pub fn artifact_anchor(path: &str) -> String {
    thread_local! {
        // Runs of one workspace name the same files: each thread keeps the anchors
        // it made (a bounded number), so a site of 100,000 runs hashes each name
        // once per thread rather than once per row.
        static SEEN: RefCell<std::collections::HashMap<Box<str>, String>> = RefCell::default();
    }
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if let Some(a) = seen.get(path) {
            return a.clone();
        }
        let d = Sha256::digest(path.as_bytes());
        let a = format!("a-{}", hex(&d[..6]));
        if seen.len() >= 4096 {
            seen.clear();
        }
        seen.insert(path.into(), a.clone());
        a
    })
}

/// `N` bytes from exactly `2 × N` hex digits (either case), else `None`.
pub fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; N];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

thread_local! {
    static BUF: RefCell<fsutil::ReadBuf> = RefCell::new(fsutil::ReadBuf::new(256 * 1024));
}

/// Streams a file through sha256. Returns the number of bytes read and the digest.
pub fn hash_reader(r: impl Read) -> std::io::Result<(u64, String)> {
    hash_reader_sized(r, None).map(|(n, d)| (n, hex(&d)))
}

/// Like [`hash_reader`]; with the size `fstat` reported, the read that would only
/// confirm the end of the file is skipped (one system call less per file). The
/// result is the file as it was when it was opened.
fn hash_reader_sized(mut r: impl Read, size: Option<u64>) -> std::io::Result<(u64, [u8; 32])> {
    BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        let buf = buf.get_mut();
        let mut h = Sha256::new();
        let mut n = 0u64;
        loop {
            let k = match r.read(buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            h.update(&buf[..k]);
            n += k as u64;
            if size == Some(n) {
                break;
            }
        }
        Ok((n, h.finalize().into()))
    })
}

/// Hashes a regular file without following a final symlink.
pub fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let f = fsutil::open_nofollow(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    hash_open(f, &meta)
}

/// Hashes a regular file already opened, with what `fstat` said of it. The result
/// is the file as it was when it was opened.
pub fn hash_open(f: std::fs::File, meta: &std::fs::Metadata) -> std::io::Result<(u64, String)> {
    hash_open_raw(f, meta).map(|(n, d)| (n, hex(&d)))
}

/// [`hash_open`], the digest as bytes.
fn hash_open_raw(f: std::fs::File, meta: &std::fs::Metadata) -> std::io::Result<(u64, [u8; 32])> {
    // An empty file still gets one read: it may have grown since fstat.
    let size = (meta.len() > 0).then_some(meta.len());
    hash_reader_sized(f, size)
}

/// Size, sha256 (lower-case hex) and schema version of a file.
pub type FileFacts = (u64, String, Option<String>);

/// Size, sha256 and schema version of an opened file, as a writer records them in an
/// index: the schema version is the top-level `"schema_version"` string of a `.json`
/// file, or of the first record of a `.jsonl` file; otherwise `None`. JSON files up
/// to [`fsutil::MAX_JSON_BYTES`] are read once for both; anything else is streamed.
/// `name` is the file's name, which decides whether it is read as JSON.
pub fn describe_open(
    f: std::fs::File,
    meta: &std::fs::Metadata,
    name: &str,
) -> std::io::Result<FileFacts> {
    let json = name.ends_with(".json");
    let jsonl = name.ends_with(".jsonl");
    if !(json || jsonl) || meta.len() > fsutil::MAX_JSON_BYTES {
        let (n, d) = hash_reader(f)?;
        return Ok((n, d, None));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(fsutil::MAX_JSON_BYTES + 1).read_to_end(&mut bytes)?;
    let digest = hex(&Sha256::digest(&bytes));
    let doc = if json {
        &bytes[..]
    } else {
        bytes
            .split(|&b| b == b'\n')
            .find(|l| l.iter().any(|b| !b.is_ascii_whitespace()))
            .unwrap_or(&[])
    };
    let schema = crate::json_budget::top_level_string(doc, "schema_version");
    Ok((bytes.len() as u64, digest, schema))
}

/// Verifies one run folder. `dir_label` is how the folder is named in outputs.
pub fn verify_run(run_dir: &Path, dir_label: &str, opts: &VerifyOptions) -> RunReport {
    verify_run_at(run_dir, None, None, dir_label, opts)
}

/// [`verify_run`] of a run whose folder, with every link on the way resolved, is
/// already known (`base`: the canonical bundle root joined with the run's name), as
/// when a root's runs are verified together; `run_dir` should then be absolute.
/// With `root`, the handle of the folder that holds the run, the run folder is
/// opened beneath it by its name.
pub fn verify_run_at(
    run_dir: &Path,
    base: Option<PathBuf>,
    root: Option<&Dir>,
    dir_label: &str,
    opts: &VerifyOptions,
) -> RunReport {
    let run_id = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir_label.to_string());
    let mut r = RunReport::new(run_id.clone(), dir_label.to_string(), opts.mode);
    if run_dir.file_name().is_some_and(|n| n.to_str().is_none()) {
        // Reports, pages and links name a run by its folder: a name that is not
        // UTF-8 cannot be named faithfully, so the run is not verified.
        r.findings.push(
            Finding::new(
                Code::RunNameNotUtf8,
                Severity::Partial,
                format!(
                    "the run folder's name is not valid UTF-8 (shown here as {run_id:?}); rename it so that reports and links can name it"
                ),
            )
            .at(dir_label),
        );
        return r;
    }
    let base = match base.map_or_else(|| std::fs::canonicalize(run_dir), Ok) {
        Ok(b) => b,
        Err(e) => {
            r.findings.push(
                Finding::new(
                    Code::RunUnreadable,
                    Severity::Error,
                    format!("cannot open the run folder: {e}"),
                )
                .at(dir_label),
            );
            return r;
        }
    };
    let label = |name: &str| format!("{dir_label}/{name}");
    let mut broken = false;
    // Everything below is read beneath this handle of the run folder.
    let mut dir = match (root, run_dir.file_name()) {
        (Some(root), Some(name)) => root.folder(std::os::unix::ffi::OsStrExt::as_bytes(name)),
        _ => Dir::open(&base),
    };
    // The folder is listed (and stamped) before anything in it is read. A run the
    // previous build may have verified is stamped whole first, to be taken from that
    // build if nothing changed; any other run's files are stamped by the handles its
    // reading opens (no second look at each), and the stamp is finished when it is
    // read.
    let mut listing = None;
    let mut stamping = None;
    if let (Ok(d), Some(reuse)) = (&mut dir, &opts.reuse) {
        if reuse.has_previous(dir_label) {
            let mut whole = super::reuse::Stamping::begin(d);
            listing = Some(list_run(d, Some(&mut whole)));
            if let Some(stamp) = reuse.finish(whole, d) {
                reuse.keep(dir_label, stamp);
                if let Some(run) = reuse.take(dir_label, stamp) {
                    if let Some(pb) = &opts.progress {
                        pb.inc(1);
                    }
                    return run;
                }
            }
        } else {
            let mut waiting = super::reuse::Stamping::waiting(d);
            listing = Some(list_run(d, Some(&mut waiting)));
            if let Some(watch) = waiting.watch() {
                d.watch(watch);
            }
            stamping = Some(waiting);
        }
    } else if let Ok(d) = &dir {
        listing = Some(list_run(d, None));
    }
    // From here on the run is read as listed: what the listing did not find is
    // missing without another look (optional inputs are usually absent).
    if let (Ok(d), Some(top)) = (&mut dir, listing.as_mut().and_then(|l| l.top.take())) {
        d.keep_listing(top);
    }
    // run_status.json, kept as its text (a status of a million fields is 18 MB of
    // text, not a map of a million values).
    let status = match &dir {
        Ok(d) => d.read_json_text(&["run_status.json"]),
        Err(e) => Err(JsonReadError::Io(e.to_string())),
    };
    match status {
        Ok(t) => match RunStatus::from_text(t) {
            Ok(st) => {
                match st.state.as_deref() {
                    Some(s) if STATES.contains(&s) => {}
                    Some(s) => r.findings.push(
                        Finding::new(
                            Code::StateInvalid,
                            Severity::Partial,
                            format!(
                                "state is {:?}; expected in_progress, complete or failed",
                                truncate(s, 80)
                            ),
                        )
                        .at(label("run_status.json")),
                    ),
                    None => r.findings.push(
                        Finding::new(
                            Code::StateMissing,
                            Severity::Partial,
                            "run_status.json has no `state`",
                        )
                        .at(label("run_status.json")),
                    ),
                }
                if let Some(id) = &st.run_id
                    && *id != run_id
                {
                    r.findings.push(
                        Finding::new(
                            Code::RunIdMismatch,
                            Severity::Partial,
                            format!(
                                "run_status.json says run_id {:?} but the folder is {run_id:?}",
                                truncate(id, 80)
                            ),
                        )
                        .at(label("run_status.json")),
                    );
                }
                r.run_status = Some(Box::new(st));
            }
            Err(m) => {
                broken = true;
                r.findings.push(
                    Finding::new(
                        Code::RunStatusCorrupt,
                        Severity::Error,
                        format!("run_status.json: {m}"),
                    )
                    .at(label("run_status.json")),
                );
            }
        },
        Err(JsonReadError::NotFound) => r.findings.push(
            Finding::new(
                Code::RunStatusMissing,
                Severity::Warning,
                "no run_status.json; the run's state is unknown",
            )
            .at(label("run_status.json")),
        ),
        Err(e) => {
            broken = true;
            r.findings.push(
                Finding::new(
                    Code::RunStatusCorrupt,
                    Severity::Error,
                    format!("run_status.json: {e}"),
                )
                .at(label("run_status.json"))
                .at_position(e.position()),
            );
        }
    }

    // artifact_index.json, the commit barrier.
    // Big indexes wait for room in the budget, so parallel runs never hold several
    // at once; the permit lasts until the index is verified and dropped.
    let mut permit = None;
    let index = match read_index(&dir, &mut permit) {
        Err(JsonReadError::NotFound) => None,
        read => match read {
            Ok(idx) => Some(idx),
            Err(e) => {
                broken = true;
                r.committed = true;
                r.findings.push(
                    Finding::new(
                        Code::IndexCorrupt,
                        Severity::Error,
                        format!("artifact_index.json: {e}; re-run the job that wrote it, or restore it from a copy (`lith reindex --repair` needs a readable index to repair from)"),
                    )
                    .at(label("artifact_index.json"))
                    .at_position(e.position()),
                );
                None
            }
        },
    };

    let in_progress = r.state() == Some("in_progress");
    if in_progress {
        r.findings.push(
            Finding::new(
                Code::BundleInProgress,
                Severity::Partial,
                "the run is still being written (state in_progress); strict readers refuse it",
            )
            .at(label("run_status.json")),
        );
    }

    let mut indexed = Indexed::default();
    if let Some(idx) = &index {
        r.committed = true;
        indexed = verify_index(&mut r, idx, run_dir, &base, &dir, dir_label, opts);
    } else if !broken && !in_progress {
        r.findings.push(
            Finding::new(
                Code::IndexMissing,
                Severity::Partial,
                "no artifact_index.json: the run has not passed its commit barrier",
            )
            .at(label("artifact_index.json")),
        );
    }

    let has_index = index.is_some();
    drop(index);
    if opts.keep_subjects {
        let mut subjects: Vec<(Box<str>, [u8; 32])> = indexed
            .iter()
            .map(|(rel, (_, sha))| (rel.clone(), *sha))
            .collect();
        subjects.sort_unstable();
        if !subjects.is_empty() {
            r.extra_mut().subjects = subjects;
        }
    }
    let unindexed = list_unindexed(
        listing,
        dir.as_ref().ok(),
        &indexed,
        &mut r.findings,
        dir_label,
    );
    if !unindexed.is_empty() {
        r.extra_mut().unindexed = unindexed;
    }
    drop(indexed);
    if permit.as_ref().is_some_and(|p| p.0 > 8 << 20) {
        // Give the memory of a big index back before another run takes its place:
        // the allocator keeps freed blocks in this thread's arena otherwise.
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only releases free memory; it has no preconditions.
        unsafe {
            libc::malloc_trim(0);
        }
    }
    drop(permit);
    let (w, wf) = witness::load_in(dir.as_ref().ok(), dir_label);
    if let Some(w) = w {
        r.extra_mut().witnesses = Some(Box::new(w));
    }
    r.findings.extend(wf);
    if let Some(summary) = dir
        .as_ref()
        .ok()
        .and_then(|d| d.read(&["summary.md"], MAX_SUMMARY_BYTES).ok())
    {
        r.extra_mut().summary_md = Some(String::from_utf8_lossy(&summary).into_owned());
    }

    r.verification = if broken {
        Verification::Error
    } else if in_progress {
        Verification::InProgress
    } else if !has_index {
        Verification::Uncommitted
    } else if r.findings.iter().any(|f| f.severity >= Severity::Partial) {
        Verification::Failed
    } else {
        Verification::Verified
    };
    r.findings.sort();
    // Without a handle on the run folder its status could not be read either: that
    // is already an error finding, and promotability stays undecided.
    if let (Some(ds), Ok(d)) = (&opts.decision_stage, &dir) {
        match promotion::assess(d, &r, ds) {
            Ok(p) => {
                let optional = promotion::optional_inputs(d);
                if !optional.is_empty() {
                    r.extra_mut().promotion_optional = optional;
                }
                r.promotability = Some(Box::new(p));
            }
            Err(e) => {
                r.findings.push(
                    Finding::new(
                        Code::PromotionInputCorrupt,
                        Severity::Error,
                        format!(
                            "{}: {}; promotability cannot be decided until it is fixed",
                            e.file, e.message
                        ),
                    )
                    .at(label(e.file)),
                );
                r.findings.sort();
            }
        }
    }
    if let (Some(reuse), Some(stamping), Ok(d)) = (&opts.reuse, stamping, &dir)
        && let Some(stamp) = reuse.finish(stamping, d)
    {
        reuse.keep(dir_label, stamp);
    }
    if let Some(pb) = &opts.progress {
        pb.inc(1);
    }
    r
}

/// The most artifact rows one run's report lists. Counts always cover every
/// entry; beyond this, failing rows are listed first and the rest are counted in
/// [`RunReport::artifacts_unlisted`], so a run of a million artifacts costs a
/// bounded report and page (SPEC §11).
pub const MAX_LISTED_ARTIFACTS: usize = 10_000;
/// Entries opened and hashed together (in parallel) before the next ones are read.
const CHUNK: usize = 4096;
/// The most `duplicate_entry` findings listed one by one for a run, of each kind:
/// entries that repeat an earlier one, and entries that differ from it in size or
/// digest. The rest are counted in one more finding. An index of 300,000 entries
/// naming one path with differing sizes made 300,000 findings: a build of 366 MiB,
/// an 83 MB run page and a 103 MB `report.json`.
const MAX_DUPLICATE_FINDINGS: usize = 100;

/// Every bundle-relative path the index names, with its first size and digest.
type Indexed = foldhash::HashMap<Box<str>, (u64, [u8; 32])>;

/// How many index bytes may be held in memory by runs verified at the same time.
const INDEX_BUDGET_BYTES: u64 = 96 << 20;

struct Budget {
    used: std::sync::Mutex<u64>,
    freed: std::sync::Condvar,
}

static INDEX_BUDGET: Budget = Budget {
    used: std::sync::Mutex::new(0),
    freed: std::sync::Condvar::new(),
};

/// A share of [`INDEX_BUDGET`], given back when dropped.
struct Permit(u64);

impl Budget {
    /// Waits until `bytes` (at most the whole budget) fit beside what others hold.
    fn acquire(&'static self, bytes: u64) -> Permit {
        let want = bytes.min(INDEX_BUDGET_BYTES);
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        while *used > 0 && *used + want > INDEX_BUDGET_BYTES {
            used = self.freed.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        *used += want;
        Permit(want)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut used = INDEX_BUDGET.used.lock().unwrap_or_else(|p| p.into_inner());
        *used -= self.0;
        INDEX_BUDGET.freed.notify_all();
    }
}

/// Reads `artifact_index.json` beneath the run folder's handle, entry by entry.
fn read_index(
    dir: &std::io::Result<Dir>,
    permit: &mut Option<Permit>,
) -> Result<ArtifactIndex, JsonReadError> {
    let d = dir.as_ref().map_err(|e| JsonReadError::Io(e.to_string()))?;
    let (file, meta) = d.open_file(&["artifact_index.json"])?;
    *permit = Some(INDEX_BUDGET.acquire(meta.len()));
    ArtifactIndex::read(file, meta.len())
}

fn verify_index(
    r: &mut RunReport,
    idx: &ArtifactIndex,
    run_dir: &Path,
    base: &Path,
    dir: &std::io::Result<Dir>,
    dir_label: &str,
    opts: &VerifyOptions,
) -> Indexed {
    let label = format!("{dir_label}/artifact_index.json");
    r.index = Some(Box::new(IndexSummary {
        schema_version: idx.schema_version.clone(),
        run_id: idx.run_id.clone(),
        world_id: idx.world_id.clone(),
        status: idx.status,
        missing: idx.missing.clone(),
        entries: idx.artifacts.len(),
    }));
    if let Some(id) = &idx.run_id
        && *id != r.run_id
    {
        r.findings.push(
            Finding::new(
                Code::IndexRunIdMismatch,
                Severity::Partial,
                format!(
                    "artifact_index.json says run_id {:?} but the folder is {:?}",
                    truncate(id, 80),
                    r.run_id
                ),
            )
            .at(label.clone()),
        );
    }
    if idx.status != crate::bundle::index::IndexStatus::Ok {
        r.findings.push(
            Finding::new(
                Code::IndexStatusNotOk,
                Severity::Partial,
                format!("the index records status \"{}\"", idx.status),
            )
            .at(label.clone()),
        );
    }
    if !idx.missing.is_empty() {
        r.findings.push(
            Finding::new(
                Code::IndexListsMissing,
                Severity::Partial,
                format!(
                    "the index lists {} expected artifact(s) as missing",
                    idx.missing.len()
                ),
            )
            .at(label.clone()),
        );
    }

    let repo_prefix: Option<Vec<String>> = opts.repo_root.as_ref().and_then(|root| {
        base.strip_prefix(root).ok().map(|p| {
            p.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect()
        })
    });
    let abs_run_dir = std::path::absolute(run_dir).unwrap_or_else(|_| base.to_path_buf());

    // Chunk by chunk: check each entry's spelling (cheap), then open and hash the
    // chunk's distinct paths in parallel, each beneath the run folder's handle (what
    // is hashed is the file that was opened, whatever happens to the names
    // meanwhile), then judge the entries and keep only what the report lists.
    struct Plan {
        rel: Option<String>,
        unsafe_why: Option<&'static str>,
    }
    let plan = |e: &IndexEntry| match paths::lexical_components(&e.path) {
        Err(why) => Plan {
            rel: None,
            unsafe_why: Some(why.describe()),
        },
        Ok(parts) => Plan {
            rel: Some(
                paths::bundle_relative(&parts, &abs_run_dir, repo_prefix.as_deref()).join("/"),
            ),
            unsafe_why: None,
        },
    };
    let mode = opts.mode;
    type Observed = Result<(u64, Option<Sha256Digest>), (ArtifactStatus, String)>;
    let mut seen = Indexed::default();
    let mut counts = Counts::default();
    let mut duplicates = 0usize;
    let mut differing = 0usize;
    // Rows kept for the report, with their position in the index.
    let mut failing: Vec<(usize, ArtifactCheck)> = Vec::new();
    let mut passing: Vec<(usize, ArtifactCheck)> = Vec::new();
    for (chunk_no, chunk) in idx.artifacts.chunks(CHUNK).enumerate() {
        let plans: Vec<Plan> = chunk.iter().map(plan).collect();
        let distinct: BTreeSet<&str> = plans.iter().filter_map(|p| p.rel.as_deref()).collect();
        let observed: BTreeMap<&str, Observed> = match dir {
            Ok(d) => distinct
                .into_par_iter()
                .map(|rel| (rel, observe(d, rel, mode)))
                .collect(),
            Err(e) => distinct
                .into_iter()
                .map(|rel| {
                    (
                        rel,
                        Err((
                            ArtifactStatus::Unreadable,
                            format!("cannot open the run folder: {e}"),
                        )),
                    )
                })
                .collect(),
        };
        for (j, (e, plan)) in chunk.iter().zip(&plans).enumerate() {
            let mut check =
                ArtifactCheck::plain(opts.paths.get(&e.path), e.file_size, Sha256Digest(e.sha256));
            check.set_rel(plan.rel.as_deref());
            check.set_schema_version(e.schema_version.as_deref());
            match (&plan.rel, plan.unsafe_why) {
                (Some(rel), None) => match &observed[rel.as_str()] {
                    Err((status, detail)) => {
                        check.set_actual(None, None);
                        check.set_detail((!detail.is_empty()).then_some(detail.as_str()));
                        check.set_status(*status);
                    }
                    Ok((size, digest)) => {
                        check.set_actual(Some(*size), *digest);
                        check.set_status(if *size != e.file_size {
                            ArtifactStatus::SizeMismatch
                        } else if digest.is_some_and(|d| d.0 != e.sha256) {
                            ArtifactStatus::DigestMismatch
                        } else {
                            ArtifactStatus::Ok
                        });
                    }
                },
                (_, why) => {
                    check.set_actual(None, None);
                    check.set_detail(Some(why.unwrap_or("unsafe path")));
                    check.set_status(ArtifactStatus::UnsafePath);
                }
            }
            if let Some(rel) = &plan.rel {
                match seen.get(rel.as_str()) {
                    Some((size, sha)) => {
                        duplicates += 1;
                        let differ = *size != e.file_size || *sha != e.sha256;
                        differing += usize::from(differ);
                        let of_kind = if differ {
                            differing
                        } else {
                            duplicates - differing
                        };
                        if of_kind <= MAX_DUPLICATE_FINDINGS {
                            r.findings.push(duplicate_finding(rel, differ, dir_label));
                        }
                    }
                    None => {
                        seen.insert(rel.as_str().into(), (e.file_size, e.sha256));
                    }
                }
            }
            counts.total += 1;
            let pos = chunk_no * CHUNK + j;
            if check.status == ArtifactStatus::Ok {
                counts.ok += 1;
                if passing.len() < MAX_LISTED_ARTIFACTS {
                    passing.push((pos, check));
                }
            } else {
                *counts
                    .by_status
                    .entry(check.status.as_str().to_string())
                    .or_default() += 1;
                if failing.len() < MAX_LISTED_ARTIFACTS {
                    failing.push((pos, check));
                }
            }
        }
    }
    if duplicates - differing > MAX_DUPLICATE_FINDINGS || differing > MAX_DUPLICATE_FINDINGS {
        r.findings.push(
            Finding::new(
                Code::DuplicateEntry,
                if differing > 0 {
                    Severity::Partial
                } else {
                    Severity::Warning
                },
                format!(
                    "{duplicates} entries repeat a path indexed before, {differing} of them with a different size or digest; the first {MAX_DUPLICATE_FINDINGS} of each kind are listed"
                ),
            )
            .at(label.clone()),
        );
    }
    // Failing rows claim the room first; the rest goes to passing rows, in index
    // order.
    passing.truncate(MAX_LISTED_ARTIFACTS - failing.len());
    let mut rows = failing;
    rows.append(&mut passing);
    rows.sort_by_key(|(pos, _)| *pos);
    r.artifacts = rows.into_iter().map(|(_, c)| c).collect();
    let unlisted = counts.total - r.artifacts.len();
    if unlisted > 0 {
        r.extra_mut().artifacts_unlisted = unlisted;
    }

    if counts.ok < counts.total {
        let parts: Vec<String> = counts
            .by_status
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        r.findings.push(
            Finding::new(
                Code::ArtifactsNotOk,
                Severity::Partial,
                format!(
                    "{} of {} artifacts failed verification: {}",
                    counts.total - counts.ok,
                    counts.total,
                    parts.join(", ")
                ),
            )
            .at(label),
        );
    }
    r.counts = counts;
    seen
}

fn duplicate_finding(rel: &str, differ: bool, dir_label: &str) -> Finding {
    Finding::new(
        Code::DuplicateEntry,
        if differ {
            Severity::Partial
        } else {
            Severity::Warning
        },
        if differ {
            format!("{rel} is indexed more than once with different sizes or digests")
        } else {
            format!("{rel} is indexed more than once")
        },
    )
    .at(format!("{dir_label}/{rel}"))
}

/// Opens `rel` beneath the run folder's handle and reads its size (and, in full
/// mode, its digest) from the handle. Anything but a regular file is never read.
fn observe(
    dir: &Dir,
    rel: &str,
    mode: Mode,
) -> Result<(u64, Option<Sha256Digest>), (ArtifactStatus, String)> {
    let parts: Vec<&str> = rel.split('/').collect();
    let (f, meta) = dir.open_file(&parts).map_err(|r| match r {
        Refusal::Missing => (ArtifactStatus::Missing, String::new()),
        Refusal::Outside => (
            ArtifactStatus::UnsafePath,
            "a symbolic link leads outside the run folder".to_string(),
        ),
        Refusal::NotAFile(kind) => (ArtifactStatus::NotAFile, format!("is a {kind}")),
        Refusal::Io(e) => (ArtifactStatus::Unreadable, e.to_string()),
    })?;
    match mode {
        Mode::Fast => Ok((meta.len(), None)),
        Mode::Full => hash_open_raw(f, &meta)
            .map(|(n, d)| (n, Some(Sha256Digest(d))))
            .map_err(|e| (ArtifactStatus::Unreadable, e.to_string())),
    }
}

/// The most entries a run's first listing keeps; a run with more is listed again
/// when its unindexed files are wanted, keeping only those.
const MAX_KEPT_LISTING: usize = 20_000;

/// What listing a run folder found: every entry that is not a folder, with its
/// depth (`None` past [`MAX_KEPT_LISTING`]), and what could not be listed.
pub struct RunListing {
    entries: Option<Vec<(String, usize)>>,
    /// The folder's own entries (folders too) with their kinds, when it could be
    /// listed and they were few enough to keep: what [`Dir::keep_listing`] takes.
    top: Option<Vec<crate::beneath::Listed>>,
    errors: Vec<String>,
}

/// Lists a run folder beneath its handle (a folder is opened from its parent's
/// handle, never through a link, so a folder swapped for a symlink mid-listing is
/// refused rather than listed), stamping each entry when `stamping` is given.
pub fn list_run(dir: &Dir, mut stamping: Option<&mut super::reuse::Stamping>) -> RunListing {
    let mut entries = Some(Vec::new());
    let mut top = Some(Vec::new());
    let mut unlisted = false;
    let mut errors = Vec::new();
    list_folder(
        dir,
        &mut errors,
        &mut |e| {
            if e.depth == 1
                && let Some(v) = &mut top
            {
                if v.len() < MAX_KEPT_LISTING {
                    v.push((Box::from(e.name), e.kind));
                } else {
                    top = None;
                }
            }
            if e.kind == EntryKind::Folder {
                return;
            }
            if let Some(v) = &mut entries {
                if v.len() < MAX_KEPT_LISTING {
                    v.push((e.rel.to_string(), e.depth));
                } else {
                    entries = None;
                }
            }
        },
        &mut stamping,
        &mut || unlisted = true,
    );
    if unlisted {
        top = None;
    }
    if let Some(s) = stamping
        && !errors.is_empty()
    {
        s.broken();
    }
    RunListing {
        entries,
        top,
        errors,
    }
}

/// The run's files that its index does not name, from its listing (or a second
/// listing, keeping only those, when the first was too long to keep).
fn list_unindexed(
    listing: Option<RunListing>,
    dir: Option<&Dir>,
    indexed: &Indexed,
    findings: &mut Vec<Finding>,
    dir_label: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut more = 0usize;
    let mut keep = |rel: &str, depth: usize| {
        if depth == 1 && BOOKKEEPING_FILES.contains(&rel) {
            return;
        }
        if indexed.contains_key(rel) {
            return;
        }
        crate::wire::push_capped(&mut out, &mut more, MAX_UNINDEXED_LISTED, || {
            rel.to_string()
        });
    };
    let errors = match (listing, dir) {
        (
            Some(RunListing {
                entries: Some(entries),
                errors,
                ..
            }),
            _,
        ) => {
            for (rel, depth) in entries {
                keep(&rel, depth);
            }
            errors
        }
        (_, Some(dir)) => {
            let mut errors = Vec::new();
            list_folder(
                dir,
                &mut errors,
                &mut |e| {
                    if e.kind != EntryKind::Folder {
                        keep(e.rel, e.depth)
                    }
                },
                &mut None,
                &mut || {},
            );
            errors
        }
        (_, None) => Vec::new(),
    };
    for e in errors {
        findings.push(
            Finding::new(
                Code::WalkError,
                Severity::Warning,
                format!("could not list part of the run folder: {e}"),
            )
            .at(dir_label),
        );
    }
    if more > 0 {
        findings.push(
            Finding::new(
                Code::UnindexedTruncated,
                Severity::Info,
                format!("{more} more unindexed files are not listed"),
            )
            .at(dir_label),
        );
    }
    out
}

/// Visits every entry below `dir` (links included, never followed), depth first in
/// name order, stamping each when `stamping` is given; `unlisted` is called when
/// `dir` itself could not be listed.
fn list_folder(
    dir: &Dir,
    errors: &mut Vec<String>,
    visit: &mut dyn FnMut(&TreeEntry<'_>),
    stamping: &mut Option<&mut super::reuse::Stamping>,
    unlisted: &mut dyn FnMut(),
) {
    let _ = dir.walk_tree::<std::convert::Infallible>(&mut |met| {
        if let Met::Unwalked("", _) = met {
            unlisted();
        }
        match met {
            Met::Entry(e) => {
                if let Some(s) = stamping {
                    s.entry(e);
                }
                visit(e);
            }
            Met::Unwalked(rel, Unwalked::TooDeep) => errors.push(format!(
                "{rel}: folders nested deeper than {MAX_TREE_DEPTH} levels are not listed"
            )),
            Met::Unwalked(rel, Unwalked::Open(e) | Unwalked::List(e)) => {
                errors.push(format!("{}: {e}", if rel.is_empty() { "." } else { rel }))
            }
        }
        ControlFlow::Continue(true)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run with more entries than its first listing keeps is listed a second
    /// time for its unindexed files: the same files, the same truncation.
    #[test]
    fn a_long_listing_is_listed_again_for_unindexed_files() {
        let t = tempfile::tempdir().unwrap();
        let n = MAX_KEPT_LISTING + 5;
        std::fs::create_dir(t.path().join("sub")).unwrap();
        for i in 0..n {
            std::fs::write(t.path().join(format!("sub/f{i:06}")), "").unwrap();
        }
        let dir = Dir::open(t.path()).unwrap();
        let listing = list_run(&dir, None);
        assert!(listing.entries.is_none(), "too long to keep");
        let mut indexed = Indexed::default();
        indexed.insert("sub/f000000".into(), (0, [0; 32]));
        let mut findings = Vec::new();
        let out = list_unindexed(Some(listing), Some(&dir), &indexed, &mut findings, "r");
        assert_eq!(out.len(), MAX_UNINDEXED_LISTED);
        assert_eq!(out[0], "sub/f000001");
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(
            findings[0].message,
            format!(
                "{} more unindexed files are not listed",
                n - 1 - MAX_UNINDEXED_LISTED
            )
        );
    }

    fn ok_row(path: &str) -> ArtifactCheck {
        ArtifactCheck::plain(path, 7, Sha256Digest([0xab; 32]))
    }

    #[test]
    fn a_plain_ok_row_is_an_array_only_in_the_compact_form_and_reads_back_either_way() {
        let row = ok_row("a/b.json");
        let full = serde_json::to_value(&row).unwrap();
        assert_eq!(
            full,
            serde_json::json!({"path": "a/b.json", "status": "ok", "expected_size": 7, "expected_sha256": "ab".repeat(32)})
        );
        let compact = crate::wire::compact(|| serde_json::to_value(&row).unwrap());
        assert_eq!(compact, serde_json::json!(["a/b.json", 7, "ab".repeat(32)]));
        for v in [full, compact] {
            assert_eq!(serde_json::from_value::<ArtifactCheck>(v).unwrap(), row);
        }
    }

    #[test]
    fn a_row_that_says_more_stays_an_object_in_the_compact_form() {
        let mut versioned = ok_row("x");
        versioned.set_schema_version(Some("v2"));
        let mut moved = ok_row("book/r1/x");
        moved.set_rel(Some("x"));
        let mut bad = ok_row("y");
        bad.set_actual(Some(7), Some(Sha256Digest([0xcd; 32])));
        bad.set_status(ArtifactStatus::DigestMismatch);
        let mut gone = ok_row("z");
        gone.set_actual(None, None);
        gone.set_status(ArtifactStatus::Missing);
        for row in [versioned, moved, bad, gone] {
            let v = crate::wire::compact(|| serde_json::to_value(&row).unwrap());
            assert!(v.is_object(), "{v}");
            assert_eq!(serde_json::from_value::<ArtifactCheck>(v).unwrap(), row);
        }
    }

    #[test]
    fn a_digest_is_64_hex_digits_in_and_lower_case_hex_out() {
        let lower = "0123456789abcdef".repeat(4);
        let d = Sha256Digest::parse(&lower.to_uppercase()).unwrap();
        assert_eq!(d.to_string(), lower);
        assert_eq!(serde_json::to_value(d).unwrap(), serde_json::json!(lower));
        assert_eq!(
            serde_json::from_value::<Sha256Digest>(serde_json::json!(lower)).unwrap(),
            d
        );
        for bad in [
            &lower[..62],
            &format!("{lower}00"),
            &lower.replace('a', "g"),
            "",
        ] {
            assert!(Sha256Digest::parse(bad).is_none(), "{bad}");
            assert!(serde_json::from_value::<Sha256Digest>(serde_json::json!(bad)).is_err());
        }
    }

    #[test]
    fn a_row_keeps_what_it_says_beyond_a_plain_row_and_nothing_more() {
        // A row whose setters bring it back to what a plain row says is equal to the
        // plain row and keeps nothing boxed.
        let mut row = ok_row("a/b.json");
        row.set_actual(None, None);
        row.set_status(ArtifactStatus::Missing);
        assert!(!row.is_plain());
        assert_eq!(row.actual_size(), None);
        row.set_actual(Some(7), Some(Sha256Digest([0xab; 32])));
        row.set_status(ArtifactStatus::Ok);
        assert!(row.is_plain());
        assert_eq!(row, ok_row("a/b.json"));
        // What it says beyond that is kept and read back.
        let mut unsafe_row = ok_row("../x");
        unsafe_row.set_rel(None);
        unsafe_row.set_detail(Some("leaves the bundle"));
        unsafe_row.set_status(ArtifactStatus::UnsafePath);
        assert_eq!(unsafe_row.rel(), None);
        assert_eq!(unsafe_row.detail(), Some("leaves the bundle"));
        assert_eq!(unsafe_row.actual_sha256(), Some(Sha256Digest([0xab; 32])));
        let fast = {
            let mut r = ok_row("f");
            r.set_actual(Some(7), None);
            r
        };
        assert_eq!(fast.status, ArtifactStatus::Ok);
        assert!(
            !fast.is_plain(),
            "an ok row that was not hashed is not plain"
        );
        for r in [unsafe_row, fast] {
            let v = crate::wire::compact(|| serde_json::to_value(&r).unwrap());
            assert_eq!(serde_json::from_value::<ArtifactCheck>(v).unwrap(), r);
        }
        // A plain row is its shared path, size, digest and one empty pointer.
        assert!(std::mem::size_of::<ArtifactCheck>() <= 72);
    }

    #[test]
    fn a_compact_row_of_the_wrong_length_or_types_is_refused() {
        let sha = "ab".repeat(32);
        for bad in [
            serde_json::json!(["a", 1]),
            serde_json::json!(["a", 1, sha, "extra"]),
            serde_json::json!(["a", "1", sha]),
            serde_json::json!([1, 1, sha]),
        ] {
            assert!(
                serde_json::from_value::<ArtifactCheck>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    /// What few runs have sits in one box, written as the run's own fields: a run
    /// without any reads back without the box, one with any reads it back whole.
    #[test]
    fn a_run_holds_its_rare_fields_in_a_box_only_when_it_has_one() {
        let mut run = RunReport::new("r".into(), "out/r".into(), Mode::Full);
        let compact =
            |run: &RunReport| crate::wire::compact(|| serde_json::to_string(run).unwrap());
        let bare = compact(&run);
        assert!(!bare.contains("unindexed"), "{bare}");
        let back: RunReport = serde_json::from_str(&bare).unwrap();
        assert!(back.extra.is_none(), "nothing to box");
        // The full form writes every field, empty ones too, and reads back the same.
        let full = serde_json::to_value(&run).unwrap();
        assert_eq!(full["unindexed"], serde_json::json!([]));
        assert!(
            serde_json::from_value::<RunReport>(full)
                .unwrap()
                .extra
                .is_none()
        );

        run.extra_mut().unindexed = vec!["stray.txt".into()];
        run.extra_mut().summary_md = Some("# ok".into());
        let text = compact(&run);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["unindexed"], serde_json::json!(["stray.txt"]), "{text}");
        assert_eq!(v["summary_md"], "# ok");
        let back: RunReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back.extra().unindexed, ["stray.txt"]);
        assert_eq!(back.extra().summary_md.as_deref(), Some("# ok"));

        run.extra_mut().unindexed.clear();
        run.extra_mut().summary_md = None;
        run.tidy();
        assert!(run.extra.is_none(), "an emptied box is given back");
    }
}
