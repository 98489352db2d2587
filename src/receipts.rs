//! The receipts log (`receipts.v2`, SPEC §4.3): one receipt per line, ` | `-separated
//! `key=value` fields, checked against a contract read from a `.lisp` file with the
//! S-expression reader (or the built-in defaults).
//!
//! The log is untrusted and was often written by hand: every line is read to the end,
//! invalid UTF-8 is decoded lossily and flagged, and each problem is a per-line
//! finding, never an error. The writer side refuses values that would change how a
//! line parses.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::lith::sexpr::{self, Node};

pub const DELIMITER: &str = " | ";
pub const DEFAULT_REQUIRED: [&str; 9] = [
    "ts", "kind", "origin", "owner", "dod", "pi", "host", "manifest", "refs",
];
pub const DEFAULT_OPTIONAL: [&str; 4] = ["note", "tests", "decisions", "drift"];
pub const DEFAULT_KINDS: [&str; 12] = [
    ":push-truth",
    ":artifact-hash",
    ":test-run",
    ":build",
    ":decision",
    ":drift",
    ":catalog",
    ":observation",
    ":field-impact",
    ":truth",
    ":refutation",
    ":adjudication",
];

/// What a receipt line must look like.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Contract {
    /// Where it came from: a file, or `built-in defaults`.
    pub source: String,
    pub delimiter: String,
    pub required: Vec<String>,
    pub optional: Vec<String>,
    /// Allowed kinds, with their leading colon.
    pub kinds: Vec<String>,
}

impl Default for Contract {
    fn default() -> Contract {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
        Contract {
            source: "built-in defaults".into(),
            delimiter: DELIMITER.into(),
            required: v(&DEFAULT_REQUIRED),
            optional: v(&DEFAULT_OPTIONAL),
            kinds: v(&DEFAULT_KINDS),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("{0}")]
    Read(#[from] sexpr::ReadError),
    #[error("{file}:{line}:{col}: {reason}")]
    Meaning {
        file: String,
        line: u32,
        col: u32,
        reason: String,
    },
}

impl Contract {
    /// Reads `(contract "…" (line-format (delimiter " | ") (required-keys […])
    /// (optional-keys […])) (kinds […]))`. Absent parts keep their defaults.
    pub fn load(path: &Path) -> Result<Contract, ContractError> {
        let root = sexpr::read_file(path)?;
        Contract::from_node(&root, &path.display().to_string())
    }

    /// Reads a contract from its parsed form; `file` names it in errors.
    pub fn from_node(root: &Node, file: &str) -> Result<Contract, ContractError> {
        let file = file.to_string();
        let err = |n: &Node, reason: &str| ContractError::Meaning {
            file: file.clone(),
            line: n.pos.line,
            col: n.pos.col,
            reason: reason.to_string(),
        };
        if root.head() != Some("contract") {
            return Err(err(root, "expected a (contract …) form"));
        }
        let mut c = Contract {
            source: file.clone(),
            ..Contract::default()
        };
        let list = |n: &Node| -> Result<Vec<String>, ContractError> {
            let items = match n.args() {
                [v] if v.items().is_some() => v.items().unwrap_or(&[]),
                args => args,
            };
            items
                .iter()
                .map(|i| match &i.value {
                    sexpr::Value::Keyword(k) => Ok(format!(":{k}")),
                    _ => i
                        .as_text()
                        .ok_or_else(|| err(i, "expected a symbol, keyword or string")),
                })
                .collect()
        };
        for section in root.args() {
            match section.head() {
                Some("line-format") => {
                    for f in section.args() {
                        match f.head() {
                            Some("delimiter") => {
                                let d =
                                    f.args().first().and_then(Node::as_text).unwrap_or_default();
                                if d.trim().is_empty() {
                                    return Err(err(f, "(delimiter …) must be a non-blank string"));
                                }
                                c.delimiter = d;
                            }
                            Some("required-keys") => c.required = list(f)?,
                            Some("optional-keys") => c.optional = list(f)?,
                            _ => {}
                        }
                    }
                }
                Some("kinds") => c.kinds = list(section)?,
                _ => {}
            }
        }
        Ok(c)
    }
}

/// One parsed receipt line: the text it was read from, up to its last field kept,
/// and where each field's key and value lie in it. Two allocations a receipt,
/// whatever its fields. A report writes it (and reads it back) as its line, its
/// fields as `[key, value]` pairs, and whether it was decoded lossily.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// 1-based line number in the file.
    pub line: usize,
    text: String,
    fields: Vec<Field>,
    /// True when the line was not valid UTF-8 and was decoded lossily.
    pub lossy: bool,
}

/// Where a field's key and value lie in a receipt's text: a malformed field has an
/// empty key, and its value is the field's whole text.
#[derive(Debug, Clone, Copy)]
struct Field {
    key: (u32, u32),
    value: (u32, u32),
}

impl Field {
    /// Its key and value in `text`, the text it was read from.
    fn of<'t>(&self, text: &'t str) -> (&'t str, &'t str) {
        let at = |(a, b): (u32, u32)| &text[a as usize..b as usize];
        (at(self.key), at(self.value))
    }
}

impl Receipt {
    /// A receipt of these fields (a report's, read back).
    pub fn new<K: AsRef<str>, V: AsRef<str>>(
        line: usize,
        fields: impl IntoIterator<Item = (K, V)>,
        lossy: bool,
    ) -> Receipt {
        let mut text = String::new();
        let mut spans = Vec::new();
        let mut push = |s: &str| {
            let at = text.len() as u32;
            text.push_str(s);
            (at, text.len() as u32)
        };
        for (k, v) in fields {
            let key = push(k.as_ref());
            let value = push(v.as_ref());
            spans.push(Field { key, value });
        }
        Receipt {
            line,
            text,
            fields: spans,
            lossy,
        }
    }

    /// Its fields in line order, each a key and a value; a malformed field has an
    /// empty key and its text as the value.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.fields.iter().map(|f| f.of(&self.text))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The comma-separated `refs`, trimmed, empty ones dropped.
    pub fn refs(&self) -> Vec<&str> {
        self.each_ref().collect()
    }

    /// [`Receipt::refs`] one at a time, without collecting them.
    pub fn each_ref(&self) -> impl Iterator<Item = &str> {
        self.get("refs")
            .into_iter()
            .flat_map(|r| r.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

impl PartialEq for Receipt {
    fn eq(&self, other: &Receipt) -> bool {
        self.line == other.line && self.lossy == other.lossy && self.fields().eq(other.fields())
    }
}

impl Serialize for Receipt {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Fields<'r>(&'r Receipt);
        impl Serialize for Fields<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.fields())
            }
        }
        let mut st = s.serialize_struct("Receipt", 3)?;
        st.serialize_field("line", &self.line)?;
        st.serialize_field("fields", &Fields(self))?;
        st.serialize_field("lossy", &self.lossy)?;
        st.end()
    }
}

impl<'de> serde::Deserialize<'de> for Receipt {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Receipt, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(rename = "Receipt")]
        struct Wire {
            line: usize,
            fields: Vec<(String, String)>,
            lossy: bool,
        }
        let w = Wire::deserialize(d)?;
        Ok(Receipt::new(w.line, w.fields, w.lossy))
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    MalformedField,
    MissingKey,
    UnknownKind,
    BadTimestamp,
    InvalidUtf8,
    DuplicateKey,
}

impl FindingKind {
    /// The report's finding code for receipts of this kind.
    pub fn code(self) -> crate::finding::Code {
        use crate::finding::Code;
        match self {
            FindingKind::MalformedField => Code::ReceiptsMalformedField,
            FindingKind::MissingKey => Code::ReceiptsMissingKey,
            FindingKind::UnknownKind => Code::ReceiptsUnknownKind,
            FindingKind::BadTimestamp => Code::ReceiptsBadTimestamp,
            FindingKind::InvalidUtf8 => Code::ReceiptsInvalidUtf8,
            FindingKind::DuplicateKey => Code::ReceiptsDuplicateKey,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::MalformedField => "malformed_field",
            FindingKind::MissingKey => "missing_key",
            FindingKind::UnknownKind => "unknown_kind",
            FindingKind::BadTimestamp => "bad_timestamp",
            FindingKind::InvalidUtf8 => "invalid_utf8",
            FindingKind::DuplicateKey => "duplicate_key",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct LineFinding {
    pub line: usize,
    pub kind: FindingKind,
    /// The key concerned, when there is one.
    pub key: Option<String>,
    pub message: String,
}

/// The result of checking a whole log.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Check {
    pub contract: String,
    /// Non-blank lines.
    pub receipts: usize,
    pub lines_with_findings: usize,
    pub findings: Vec<LineFinding>,
    /// Receipts per kind, origin and owner (for filters and summaries).
    pub kinds: BTreeMap<String, usize>,
    pub origins: BTreeMap<String, usize>,
    pub owners: BTreeMap<String, usize>,
    /// Keys outside the contract's lists, with how often they occur (information).
    pub extra_keys: BTreeMap<String, usize>,
    /// Per finding kind, how many lines have it.
    pub lines_by_finding: BTreeMap<String, usize>,
    /// Findings past the first [`MAX_FINDINGS`] that `findings` leaves out (the first
    /// of each kind is always listed); the counts above include them.
    #[serde(default, skip_serializing_if = "crate::wire::zero")]
    pub findings_omitted: usize,
    /// Per finding kind: how many, and the first line (this build's findings).
    #[serde(skip)]
    pub by_kind: BTreeMap<FindingKind, (usize, usize)>,
}

/// Line findings listed in a [`Check`]; the counts stay exact past it.
pub const MAX_FINDINGS: usize = 10_000;

/// Distinct values a tally (kinds, origins, owners, extra keys) counts one by one;
/// receipts with a value past them are counted under [`OTHER`].
pub const MAX_TALLY: usize = 1_000;

/// The tally of values past [`MAX_TALLY`].
pub const OTHER: &str = "(other values)";

fn tally(m: &mut BTreeMap<String, usize>, v: &str) {
    // A value of at most QUOTE bytes is its own quote: looked up as it is, and
    // copied only when it is new.
    let quoted;
    let v = if v.len() <= QUOTE {
        v
    } else {
        quoted = quote(v);
        &quoted
    };
    if let Some(n) = m.get_mut(v) {
        *n += 1;
    } else if m.len() < MAX_TALLY {
        m.insert(v.to_string(), 1);
    } else {
        *m.entry(OTHER.to_string()).or_default() += 1;
    }
}

/// The longest value quoted in a finding message.
const QUOTE: usize = 60;

fn quote(s: &str) -> String {
    crate::bundle::index::truncate(s, QUOTE)
}

/// Splits one line into fields (each at its first `=`). Like the producer's parser,
/// fields, keys and values are trimmed of surrounding whitespace (an indented line,
/// `owner =Err`) and empty fields are skipped.
pub fn split_line(text: &str, delimiter: &str) -> Vec<(String, String)> {
    let delimiter = memchr::memmem::Finder::new(delimiter);
    fields_of(text, &delimiter)
        .map(|f| {
            let (k, v) = f.of(text);
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The fields of a line, one at a time (see [`split_line`]), as places in it. The
/// line is cut at each occurrence of the delimiter, left to right, as
/// [`str::split`] cuts it.
fn fields_of<'a>(
    text: &'a str,
    delimiter: &'a memchr::memmem::Finder<'_>,
) -> impl Iterator<Item = Field> + 'a {
    let d = delimiter.needle().len();
    let ends = delimiter
        .find_iter(text.as_bytes())
        .chain(std::iter::once(text.len()));
    let mut start = 0;
    ends.filter_map(move |end| {
        let from = start;
        start = end + d;
        let (lead, f) = trimmed(&text[from..end]);
        if f.is_empty() {
            return None;
        }
        let span = |from: usize, s: &str| {
            let (lead, s) = trimmed(s);
            let a = from + lead;
            (a as u32, (a + s.len()) as u32)
        };
        let from = from + lead;
        Some(match f.split_once('=') {
            Some((k, v)) => Field {
                key: span(from, k),
                value: span(from + k.len() + 1, v),
            },
            None => Field {
                key: (from as u32, from as u32),
                value: (from as u32, (from + f.len()) as u32),
            },
        })
    })
}

/// `s` trimmed as [`str::trim`] trims it, and how many bytes it lost at the start.
/// ASCII white space is stepped over byte by byte; a character beyond ASCII at
/// either end (which may be white space of its own: NEL, no-break space, U+3000…)
/// leaves the decision to [`str::trim`].
fn trimmed(s: &str) -> (usize, &str) {
    let b = s.as_bytes();
    let space = |c: u8| matches!(c, b'\t'..=b'\r' | b' ');
    let mut i = 0;
    while i < b.len() && space(b[i]) {
        i += 1;
    }
    let mut j = b.len();
    while j > i && space(b[j - 1]) {
        j -= 1;
    }
    if i < j && (b[i] >= 0x80 || b[j - 1] >= 0x80) {
        let t = s.trim_start();
        return (s.len() - t.len(), t.trim_end());
    }
    (i, &s[i..j])
}

/// The fields of one line lith reads; a line with more is a `malformed_field`, read
/// in part (a receipt has a dozen).
pub const MAX_FIELDS: usize = 1024;

/// Parses and checks every line of a receipts log held in memory, keeping every
/// receipt (tests and fuzzing; lith itself reads logs with [`check_reader`]).
pub fn check(bytes: &[u8], contract: &Contract) -> (Vec<Receipt>, Check) {
    let mut receipts = Vec::new();
    let check =
        check_reader(bytes, contract, |r| receipts.push(r)).expect("reading memory does not fail");
    (receipts, check)
}

/// Parses and checks a receipts log line by line, in memory bounded by the longest
/// line, handing each receipt to `each` as it is read.
pub fn check_reader(
    r: impl std::io::Read,
    contract: &Contract,
    mut each: impl FnMut(Receipt),
) -> std::io::Result<Check> {
    let mut out = Check {
        contract: contract.source.clone(),
        ..Check::default()
    };
    let mut keys = Keys::of(contract);
    let mut lines = crate::jsonl::Lines::new(r, 0);
    let mut findings: Vec<LineFinding> = Vec::new();
    while let Some((l, raw)) = lines.next_line()? {
        let line = l.number;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if l.too_long.is_none() && raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        out.receipts += 1;
        let mut found: Vec<LineFinding> = Vec::new();
        let receipt = match l.too_long {
            Some(len) => {
                found.push(LineFinding {
                    line,
                    kind: FindingKind::MalformedField,
                    key: None,
                    message: format!(
                        "the line is {len} bytes, over the {} cap of a line lith reads; skipped",
                        crate::jsonl::cap_text()
                    ),
                });
                None
            }
            None => Some(check_line(line, raw, &mut keys, &mut found, &mut out)),
        };
        if !found.is_empty() {
            out.lines_with_findings += 1;
            let mut kinds: Vec<FindingKind> = found.iter().map(|f| f.kind).collect();
            kinds.sort();
            kinds.dedup();
            for k in kinds {
                *out.lines_by_finding
                    .entry(k.as_str().to_string())
                    .or_default() += 1;
            }
        }
        for f in found {
            let first_of_kind = !out.by_kind.contains_key(&f.kind);
            out.by_kind.entry(f.kind).or_insert((0, f.line)).0 += 1;
            if findings.len() < MAX_FINDINGS || first_of_kind {
                findings.push(f);
            } else {
                out.findings_omitted += 1;
            }
        }
        if let Some(r) = receipt {
            for (key, m) in [
                ("kind", &mut out.kinds),
                ("origin", &mut out.origins),
                ("owner", &mut out.owners),
            ] {
                if let Some(v) = r.get(key) {
                    tally(m, v);
                }
            }
            each(r);
        }
    }
    findings.sort_by_key(|f| f.line);
    out.findings = findings;
    Ok(out)
}

/// A contract's keys and kinds, to look each field up once, and which of its keys
/// the line being checked has had.
struct Keys<'c> {
    contract: &'c Contract,
    delimiter: memchr::memmem::Finder<'c>,
    /// Each key the contract lists (required or optional), and its place in
    /// `marks`.
    listed: HashMap<&'c str, usize, foldhash::fast::RandomState>,
    kinds: HashSet<&'c str, foldhash::fast::RandomState>,
    /// For each listed key, the last line (counted by `pass`) that had it.
    marks: Vec<u64>,
    pass: u64,
}

impl<'c> Keys<'c> {
    fn of(contract: &'c Contract) -> Keys<'c> {
        let mut listed = HashMap::default();
        for k in contract.required.iter().chain(&contract.optional) {
            let next = listed.len();
            listed.entry(k.as_str()).or_insert(next);
        }
        Keys {
            contract,
            delimiter: memchr::memmem::Finder::new(&contract.delimiter),
            marks: vec![0; listed.len()],
            listed,
            kinds: contract.kinds.iter().map(String::as_str).collect(),
            pass: 0,
        }
    }
}

/// The keys outside the contract's lists up to which a repeated one is found by
/// comparing each with those before it; past them, through a set.
const FEW_FIELDS: usize = 16;

/// Parses one line and checks it against the contract.
fn check_line(
    line: usize,
    raw: &[u8],
    keys: &mut Keys,
    findings: &mut Vec<LineFinding>,
    out: &mut Check,
) -> Receipt {
    let contract = keys.contract;
    keys.pass += 1;
    let pass = keys.pass;
    let (text, lossy) = match std::str::from_utf8(raw) {
        Ok(t) => (std::borrow::Cow::Borrowed(t), false),
        Err(_) => (String::from_utf8_lossy(raw), true),
    };
    if lossy {
        findings.push(LineFinding {
            line,
            kind: FindingKind::InvalidUtf8,
            key: None,
            message: "the line is not valid UTF-8; it was decoded with replacement characters"
                .into(),
        });
    }
    let mut spans = Vec::with_capacity(FEW_FIELDS);
    let mut more = 0usize;
    for f in fields_of(&text, &keys.delimiter) {
        crate::wire::push_capped(&mut spans, &mut more, MAX_FIELDS, || f);
    }
    if more > 0 {
        findings.push(LineFinding {
            line,
            kind: FindingKind::MalformedField,
            key: None,
            message: format!(
                "the line has {} fields; lith reads the first {MAX_FIELDS}",
                MAX_FIELDS + more
            ),
        });
    }
    // A listed key repeats when its mark is this line's; another key when it is
    // among the other keys before it (a line may hold MAX_FIELDS of them: past a
    // few, they are looked up in a set, made only then).
    let mut others: Vec<&str> = Vec::new();
    let mut seen: Option<HashSet<&str, foldhash::fast::RandomState>> = None;
    for f in &spans {
        let (k, v) = f.of(&text);
        if k.is_empty() {
            findings.push(LineFinding {
                line,
                kind: FindingKind::MalformedField,
                key: None,
                message: format!(
                    "field {:?} has no `=`; a value that contains {:?} splits the line",
                    quote(v),
                    contract.delimiter
                ),
            });
            continue;
        }
        let repeated = match keys.listed.get(k) {
            Some(&i) => std::mem::replace(&mut keys.marks[i], pass) == pass,
            None => {
                tally(&mut out.extra_keys, k);
                if others.len() < FEW_FIELDS {
                    let again = others.contains(&k);
                    others.push(k);
                    again
                } else {
                    !seen
                        .get_or_insert_with(|| others.iter().copied().collect())
                        .insert(k)
                }
            }
        };
        if repeated {
            findings.push(LineFinding {
                line,
                kind: FindingKind::DuplicateKey,
                key: Some(k.to_string()),
                message: format!("key {k:?} appears more than once"),
            });
        }
        match k {
            "kind" if !keys.kinds.contains(v) => findings.push(LineFinding {
                line,
                kind: FindingKind::UnknownKind,
                key: Some("kind".into()),
                message: format!("kind {:?} is not one the contract allows", quote(v)),
            }),
            "ts" if OffsetDateTime::parse(v.trim(), &Rfc3339).is_err() => {
                findings.push(LineFinding {
                    line,
                    kind: FindingKind::BadTimestamp,
                    key: Some("ts".into()),
                    message: format!("ts {:?} is not an RFC 3339 timestamp", quote(v)),
                })
            }
            _ => {}
        }
    }
    for r in &contract.required {
        if keys.marks[keys.listed[r.as_str()]] != pass {
            findings.push(LineFinding {
                line,
                kind: FindingKind::MissingKey,
                key: Some(r.clone()),
                message: format!("required key {r:?} is missing"),
            });
        }
    }
    // The text up to the last field kept: a line of more than MAX_FIELDS fields
    // keeps no more than it reads.
    let end = spans.last().map_or(0, |f| f.value.1 as usize);
    let text = match text {
        std::borrow::Cow::Borrowed(t) => t[..end].to_string(),
        std::borrow::Cow::Owned(mut t) => {
            t.truncate(end);
            t
        }
    };
    Receipt {
        line,
        text,
        fields: spans,
        lossy,
    }
}

/// Why a receipt cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("refusing to write receipt field {key:?}: {reason}")]
pub struct UnwritableField {
    pub key: String,
    pub reason: &'static str,
}

/// Formats one receipt line (without the newline), refusing any key or value that
/// would make the line parse differently from what was meant.
pub fn format_line(fields: &[(&str, String)]) -> Result<String, UnwritableField> {
    let mut parts = Vec::with_capacity(fields.len());
    for (k, v) in fields {
        let bad = |reason| UnwritableField {
            key: k.to_string(),
            reason,
        };
        if k.is_empty() || k.contains(['=', '\n', '\r', '|']) || k.trim() != *k {
            return Err(bad("a key must be a plain word"));
        }
        if v.contains(['\n', '\r']) {
            return Err(bad(
                "the value contains a line break, which would start a new receipt",
            ));
        }
        if v.contains(DELIMITER) || v.ends_with(" |") || v.starts_with("| ") {
            return Err(bad(
                "the value contains the ` | ` delimiter, which would split the field",
            ));
        }
        if v.trim() != v {
            return Err(bad(
                "the value starts or ends with whitespace, which readers trim away",
            ));
        }
        parts.push(format!("{k}={v}"));
    }
    Ok(parts.join(DELIMITER))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_long_log_keeps_its_counts_exact_and_its_lists_bounded() {
        let good = "ts=2026-01-01T00:00:00Z | kind=:build | origin=ci | owner=o | dod=d | pi=p | host=h | manifest=m | refs=r\n";
        let mut log = String::new();
        let n = MAX_FINDINGS + 500;
        for i in 0..n {
            // Every line lacks `ts` and has an owner of its own.
            log.push_str(
                &good
                    .replace("ts=2026-01-01T00:00:00Z | ", "")
                    .replace("owner=o", &format!("owner=o{i}")),
            );
        }
        log.push_str("kind=:build\n"); // one more missing key, and an extra kind of finding below
        log.push_str(&good.replace("kind=:build", "kind=:nope"));
        let mut seen = 0;
        let check = check_reader(log.as_bytes(), &Contract::default(), |_| seen += 1).unwrap();
        assert_eq!(seen, n + 2);
        assert_eq!(check.receipts, n + 2);
        assert_eq!(check.lines_by_finding["missing_key"], n + 1);
        assert_eq!(check.lines_by_finding["unknown_kind"], 1);
        assert_eq!(check.by_kind[&FindingKind::MissingKey].0, n + 1 + 7);
        // The first 10,000 findings, and the first of a kind met after them.
        assert_eq!(check.findings.len(), MAX_FINDINGS + 1);
        assert_eq!(
            check.findings.last().unwrap().kind,
            FindingKind::UnknownKind
        );
        assert_eq!(check.findings_omitted, n + 1 + 7 - MAX_FINDINGS);
        assert!(check.findings.windows(2).all(|w| w[0].line <= w[1].line));
        // A thousand owners one by one, the rest together.
        assert_eq!(check.owners.len(), MAX_TALLY + 1);
        assert_eq!(check.owners[OTHER], n + 1 - MAX_TALLY);
        // The same log in memory reads the same.
        let (all, same) = super::check(log.as_bytes(), &Contract::default());
        assert_eq!(all.len(), n + 2);
        assert_eq!(same.findings, check.findings);
    }

    use super::*;

    fn one(line: &str) -> (Receipt, Vec<(FindingKind, Option<String>)>) {
        let (r, c) = check(line.as_bytes(), &Contract::default());
        (
            r[0].clone(),
            c.findings.into_iter().map(|f| (f.kind, f.key)).collect(),
        )
    }

    const GOOD: &str = "ts=2026-02-15T19:32:00.703998+00:00 | kind=:catalog | origin=working-tree | owner=Err | dod=ok | pi=p | host=127.0.0.1:8787 | manifest=manifest.lith | refs=a,b, c";

    #[test]
    fn a_good_line_parses_with_refs() {
        let (r, f) = one(GOOD);
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(r.get("host"), Some("127.0.0.1:8787"));
        assert_eq!(r.refs(), ["a", "b", "c"]);
    }

    #[test]
    fn each_finding_kind() {
        type Expected<'a> = &'a [(FindingKind, Option<&'a str>)];
        let cases: &[(&str, Expected)] = &[
            (
                &GOOD.replace(":catalog", ":party"),
                &[(FindingKind::UnknownKind, Some("kind"))],
            ),
            (
                &GOOD.replace("2026-02-15T19", "yesterday"),
                &[(FindingKind::BadTimestamp, Some("ts"))],
            ),
            (
                &GOOD.replace(" | pi=p", ""),
                &[(FindingKind::MissingKey, Some("pi"))],
            ),
            (
                &format!("{GOOD} | owner=again"),
                &[(FindingKind::DuplicateKey, Some("owner"))],
            ),
            (
                &GOOD.replace("dod=ok", "dod=a | b"),
                &[(FindingKind::MalformedField, None)],
            ),
        ];
        for (line, want) in cases {
            let (_, got) = one(line);
            let want: Vec<(FindingKind, Option<String>)> = want
                .iter()
                .map(|(k, s)| (*k, s.map(str::to_string)))
                .collect();
            assert_eq!(got, want, "{line}");
        }
    }

    #[test]
    fn invalid_utf8_is_decoded_lossily_and_flagged() {
        let mut bytes = GOOD.as_bytes().to_vec();
        bytes.extend_from_slice(b" | note=caf\xe9\n\n   \n");
        let (r, c) = check(&bytes, &Contract::default());
        assert_eq!(c.receipts, 1, "blank lines are ignored");
        assert!(r[0].lossy);
        assert_eq!(r[0].get("note"), Some("caf\u{fffd}"));
        assert_eq!(c.findings[0].kind, FindingKind::InvalidUtf8);
    }

    #[test]
    fn fields_keys_and_values_are_trimmed_like_the_producers_parser() {
        // The producer splits on ` | `, strips every part, skips empty parts, and
        // strips the key and the value at the first `=`.
        let (r, f) = one(&format!(
            "   {} |  | ",
            GOOD.replace("owner=Err", "owner =Err ")
                .replace("pi=p", "pi= p")
        ));
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(r.get("owner"), Some("Err"));
        assert_eq!(r.get("pi"), Some("p"));
        assert_eq!(r.get("ts"), Some("2026-02-15T19:32:00.703998+00:00"));
    }

    #[test]
    fn extra_keys_are_information() {
        let (_, c) = check(format!("{GOOD} | model=x").as_bytes(), &Contract::default());
        assert!(c.findings.is_empty());
        assert_eq!(c.extra_keys.get("model"), Some(&1));
    }

    #[test]
    fn the_writer_refuses_values_that_change_the_parse() {
        assert!(format_line(&[("note", "a | b".into())]).is_err());
        assert!(format_line(&[("note", "a\nb".into())]).is_err());
        assert!(format_line(&[("note", "trailing |".into())]).is_err());
        assert!(format_line(&[("a=b", "x".into())]).is_err());
        assert!(format_line(&[("note", " padded".into())]).is_err());
        assert!(format_line(&[("note", "| x".into())]).is_err());
        let line = format_line(&[
            ("ts", "t".into()),
            ("refs", "a,b".into()),
            ("note", "x=y".into()),
        ])
        .unwrap();
        assert_eq!(line, "ts=t | refs=a,b | note=x=y");
        assert_eq!(
            split_line(&line, DELIMITER)[2],
            ("note".to_string(), "x=y".to_string())
        );
    }

    proptest::proptest! {
        #[test]
        fn written_lines_parse_back_to_the_same_fields(
            vals in proptest::collection::vec("[^\\n\\r]{0,40}", 1..6)
        ) {
            let keys = ["ts", "kind", "note", "refs", "dod", "pi"];
            let fields: Vec<(&str, String)> = vals.iter().enumerate().map(|(i, v)| (keys[i], v.clone())).collect();
            if let Ok(line) = format_line(&fields) {
                let back = split_line(&line, DELIMITER);
                let want: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
                proptest::prop_assert_eq!(back, want);
            }
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = check(&bytes, &Contract::default());
        }

        /// Lines of keys, values, delimiters, `=` and white space, ASCII and not,
        /// are cut and trimmed as `str::split` and `str::trim` cut and trim them.
        #[test]
        fn lines_split_as_str_split_and_trim_would(
            parts in proptest::collection::vec(proptest::sample::select(PIECES), 0..40),
            delimiter in proptest::sample::select(&[" | ", "|", "||", " ", "é|"][..]),
        ) {
            let text = parts.concat();
            proptest::prop_assert_eq!(split_line(&text, delimiter), plainly_split(&text, delimiter));
            let t = trimmed(&text);
            proptest::prop_assert_eq!((t.0, t.1), (text.len() - text.trim_start().len(), text.trim()));
        }

        /// Every line is judged as the plain reading of the contract judges it:
        /// each key looked up in its lists, a repeat among every key before it.
        #[test]
        fn lines_are_checked_as_the_plain_reading_checks_them(
            lines in proptest::collection::vec(
                proptest::collection::vec(proptest::sample::select(FIELDS), 0..40), 1..6),
            odd_contract in proptest::bool::ANY,
        ) {
            let mut contract = Contract::default();
            if odd_contract {
                // A key both required and optional, one required twice, few kinds.
                contract.required = vec!["ts".into(), "x".into(), "kind".into(), "ts".into()];
                contract.optional = vec!["x".into(), "note".into()];
                contract.kinds = vec![":a".into()];
            }
            let log: String = lines.iter().map(|l| l.join(" | ") + "\n").collect();
            let (receipts, got) = check(log.as_bytes(), &contract);
            let mut want = Vec::new();
            let mut extra = BTreeMap::new();
            for (i, l) in lines.iter().enumerate() {
                let text = l.join(" | ");
                if text.bytes().all(|b| b.is_ascii_whitespace()) {
                    continue; // a blank line is no receipt
                }
                let fields = plainly_split(&text, " | ");
                want.extend(plainly_checked(i + 1, &fields, &contract, &mut extra));
                let r = receipts.iter().find(|r| r.line == i + 1);
                let read: Vec<(String, String)> = r.map(|r| r.fields().map(|(k, v)| (k.to_string(), v.to_string())).collect()).unwrap_or_default();
                proptest::prop_assert_eq!(read, fields);
            }
            let got: Vec<(usize, FindingKind, Option<String>, String)> =
                got.findings.iter().map(|f| (f.line, f.kind, f.key.clone(), f.message.clone())).collect();
            proptest::prop_assert_eq!(got, want);
            proptest::prop_assert_eq!(check(log.as_bytes(), &contract).1.extra_keys, extra);
        }
    }

    /// What receipt lines are made of in the properties above.
    const PIECES: &[&str] = &[
        "a", "kind", "=", "==", " ", "  ", "\t", "\u{b}", "|", " | ", "é", "\u{a0}", "\u{85}",
        "\u{3000}", "\u{2028}", "x=y", ":build",
    ];

    /// Fields of the properties above: listed, repeated, extra, malformed, padded.
    const FIELDS: &[&str] = &[
        "ts=2026-02-15T19:32:00Z",
        "ts=yesterday",
        "kind=:build",
        "kind=:a",
        "kind=:nope",
        "origin=ci",
        "owner=o",
        "dod=d",
        "pi=p",
        "host=h",
        "manifest=m",
        "refs=a,b",
        "note=n",
        "x=1",
        " x = 2 ",
        "y=1",
        "z=1",
        "w=",
        "=v",
        "loose",
        "",
        " ",
        "e1=1",
        "e2=1",
        "e3=1",
        "e4=1",
        "e5=1",
        "e6=1",
        "e7=1",
        "e8=1",
        "e9=1",
        "e10=1",
        "e11=1",
        "e12=1",
        "e13=1",
        "e14=1",
        "e15=1",
        "e16=1",
        "e17=1",
    ];

    /// The fields of a line as `str::split` and `str::trim` give them.
    fn plainly_split(text: &str, delimiter: &str) -> Vec<(String, String)> {
        text.split(delimiter)
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(|f| match f.split_once('=') {
                Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
                None => (String::new(), f.to_string()),
            })
            .collect()
    }

    /// A line's findings by the contract read plainly: a set of the keys seen, the
    /// lists searched one by one.
    fn plainly_checked(
        line: usize,
        fields: &[(String, String)],
        contract: &Contract,
        extra: &mut BTreeMap<String, usize>,
    ) -> Vec<(usize, FindingKind, Option<String>, String)> {
        let mut out = Vec::new();
        let mut find =
            |kind, key: Option<&String>, m: String| out.push((line, kind, key.cloned(), m));
        let mut seen = std::collections::HashSet::new();
        for (k, v) in fields {
            if k.is_empty() {
                let m = format!(
                    "field {:?} has no `=`; a value that contains {:?} splits the line",
                    quote(v),
                    contract.delimiter
                );
                find(FindingKind::MalformedField, None, m);
                continue;
            }
            if !seen.insert(k.as_str()) {
                find(
                    FindingKind::DuplicateKey,
                    Some(k),
                    format!("key {k:?} appears more than once"),
                );
            }
            if k == "kind" && !contract.kinds.contains(v) {
                find(
                    FindingKind::UnknownKind,
                    Some(k),
                    format!("kind {:?} is not one the contract allows", quote(v)),
                );
            }
            if k == "ts" && OffsetDateTime::parse(v, &Rfc3339).is_err() {
                find(
                    FindingKind::BadTimestamp,
                    Some(k),
                    format!("ts {:?} is not an RFC 3339 timestamp", quote(v)),
                );
            }
            if !contract.required.contains(k) && !contract.optional.contains(k) {
                *extra.entry(k.clone()).or_default() += 1;
            }
        }
        for r in &contract.required {
            if !seen.contains(r.as_str()) {
                find(
                    FindingKind::MissingKey,
                    Some(r),
                    format!("required key {r:?} is missing"),
                );
            }
        }
        out
    }

    /// A report writes a receipt as its line, its fields as pairs and its
    /// lossiness, and reads it back to the same receipt.
    #[test]
    fn a_receipt_is_written_as_pairs_and_read_back() {
        let (r, _) = one(&format!("  {GOOD} | loose | note = a=b "));
        let json = serde_json::to_value(&r).unwrap();
        let pairs: Vec<(String, String)> =
            plainly_split(&format!("{GOOD} | loose | note = a=b"), DELIMITER);
        assert_eq!(
            json,
            serde_json::json!({"line": 1, "fields": pairs, "lossy": false})
        );
        let back: Receipt = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.get("note"), Some("a=b"));
        assert_eq!(back.fields().nth(9), Some(("", "loose")));
    }

    /// A line of more fields than lith reads keeps no more text than the fields it
    /// reads.
    #[test]
    fn a_receipt_of_too_many_fields_keeps_the_text_of_those_read() {
        let line: String = (0..MAX_FIELDS + 10).map(|i| format!("k{i}=v | ")).collect();
        let (r, c) = check(line.as_bytes(), &Contract::default());
        assert_eq!(r[0].fields().len(), MAX_FIELDS);
        assert_eq!(
            r[0].fields().last(),
            Some((&*format!("k{}", MAX_FIELDS - 1), "v"))
        );
        assert_eq!(
            r[0].text.len(),
            line.find(&format!(" | k{MAX_FIELDS}=")).unwrap()
        );
        assert!(
            c.findings
                .iter()
                .any(|f| f.message.contains("lith reads the first 1024"))
        );
    }
}
