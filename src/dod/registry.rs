//! The phase registry (`phase_status.yaml`, or JSON): `phases: {ID: {verdict,
//! requires, last_verified_ts?, commit_sha?, evidence_path?}}`. `--update-status`
//! rewrites it atomically, keeping every field it does not own.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    pub verdict: Option<String>,
    pub requires: Vec<String>,
    pub last_verified_ts: Option<String>,
    pub commit_sha: Option<String>,
    pub evidence_path: Option<String>,
    /// `kind: fixture` or a truthy `is_fixture`: reported as usual, left out of the
    /// exit code of `--all` and of `lith build`.
    pub fixture: bool,
}

/// Why a registry could not be read: the reason, and where in the file when the
/// parser knows (1-based line and column in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub reason: String,
    pub position: Option<(u64, u64)>,
}

impl ReadError {
    fn whole(reason: impl Into<String>) -> ReadError {
        ReadError {
            reason: reason.into(),
            position: None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub phases: BTreeMap<String, Entry>,
    /// The whole document, for rewriting.
    pub doc: Value,
    pub is_json: bool,
}

fn yaml_to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Real(s) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::String(s.clone()), Value::Number),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(yaml_to_json).collect()),
        Yaml::Hash(h) => {
            let mut m = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) | Yaml::Real(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    _ => continue,
                };
                m.insert(key, yaml_to_json(v));
            }
            Value::Object(m)
        }
        _ => Value::Null,
    }
}

fn json_to_yaml(v: &Value) -> Yaml {
    match v {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => n
            .as_i64()
            .map_or_else(|| Yaml::Real(n.to_string()), Yaml::Integer),
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(a) => Yaml::Array(a.iter().map(json_to_yaml).collect()),
        Value::Object(m) => {
            let mut h = yaml_rust2::yaml::Hash::new();
            for (k, v) in m {
                h.insert(Yaml::String(k.clone()), json_to_yaml(v));
            }
            Yaml::Hash(h)
        }
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The reference's test for a fixture phase: `kind` is `fixture` (trimmed, any
/// case), or `is_fixture` is true, a non-zero number, or one of `1 true yes y on`.
fn is_fixture(e: &Value) -> bool {
    let kind = match e.get("kind") {
        Some(Value::String(s)) => s.trim().eq_ignore_ascii_case("fixture"),
        _ => false,
    };
    kind || match e.get("is_fixture") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "y" | "on"
        ),
        _ => false,
    }
}

/// Refuses a YAML document that expands past the budget of values JSON inputs have
/// ([`crate::json_budget::MAX_VALUES`]), aliases counted as the nodes they repeat:
/// the YAML loader copies an anchored node at each alias, so nine levels of ten
/// aliases (a registry of 629 bytes) expand to a billion values. A document that
/// does not parse passes, for the loader to name its error.
fn yaml_within_budget(text: &str) -> Result<(), ReadError> {
    use yaml_rust2::parser::{Event, Parser};
    let budget = crate::json_budget::MAX_VALUES as u64;
    let mut parser = Parser::new_from_str(text);
    // The nodes of each anchor, and of each collection still open (with its anchor).
    let mut anchored: std::collections::HashMap<usize, u64> = std::collections::HashMap::new();
    let mut open: Vec<(usize, u64)> = Vec::new();
    let mut total: u64 = 0;
    while let Ok((event, mark)) = parser.next_token() {
        let done = match event {
            Event::StreamEnd => break,
            Event::Scalar(_, _, anchor, _) => Some((anchor, 1)),
            Event::Alias(id) => Some((0, anchored.get(&id).copied().unwrap_or(1))),
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                open.push((anchor, 1));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => open.pop(),
            _ => None,
        };
        let Some((anchor, nodes)) = done else {
            continue;
        };
        if anchor > 0 {
            anchored.insert(anchor, nodes);
        }
        let count = match open.last_mut() {
            Some((_, n)) => n,
            None => &mut total,
        };
        *count = count.saturating_add(nodes);
        if *count > budget {
            return Err(ReadError {
                reason: format!(
                    "the YAML expands to more than {budget} values (an alias repeats every value of its anchor); write the registry without aliases"
                ),
                position: Some((mark.line() as u64, mark.col() as u64 + 1)),
            });
        }
    }
    Ok(())
}

/// The largest phase registry lith reads (2 MiB): a file people write, and a YAML
/// document's parsed form costs up to fifty times its text.
pub const MAX_REGISTRY_BYTES: u64 = 2 * 1024 * 1024;

impl Registry {
    /// Reads a registry; `None` when the file does not exist.
    pub fn load(path: &Path) -> Result<Option<Registry>, ReadError> {
        let bytes = match crate::fsutil::read_regular(path, MAX_REGISTRY_BYTES) {
            Ok(b) => b,
            Err(crate::fsutil::JsonReadError::NotFound) => return Ok(None),
            Err(e) => return Err(ReadError::whole(e.to_string())),
        };
        let text_in = String::from_utf8(bytes).map_err(|_| ReadError::whole("not UTF-8 text"))?;
        Registry::parse(&text_in, path.extension().is_some_and(|e| e == "json")).map(Some)
    }

    /// Parses a registry's text: JSON when `json` is set or the text starts with `{`,
    /// else YAML.
    pub fn parse(text_in: &str, json: bool) -> Result<Registry, ReadError> {
        let is_json = json || text_in.trim_start().starts_with('{');
        let doc = if is_json {
            crate::json_budget::from_slice(text_in.as_bytes()).map_err(|e| ReadError {
                reason: format!(
                    "invalid JSON: {}",
                    crate::fsutil::strip_position(&e.to_string())
                ),
                position: (e.line() > 0).then(|| (e.line() as u64, e.column() as u64)),
            })?
        } else {
            yaml_within_budget(text_in)?;
            let docs = YamlLoader::load_from_str(text_in).map_err(|e| ReadError {
                reason: format!("invalid YAML: {}", e.info()),
                // yaml-rust2 counts lines from 1 and columns from 0.
                position: Some((e.marker().line() as u64, e.marker().col() as u64 + 1)),
            })?;
            docs.first().map(yaml_to_json).unwrap_or(Value::Null)
        };
        let mut reg = Registry {
            phases: BTreeMap::new(),
            doc,
            is_json,
        };
        let phases = match reg.doc.get("phases") {
            Some(Value::Object(p)) => p.clone(),
            Some(Value::Null) | None => Map::new(),
            Some(_) => return Err(ReadError::whole("`phases` must be a mapping of phase ids")),
        };
        for (id, e) in phases {
            let requires = match e.get("requires") {
                Some(Value::Array(a)) => a.iter().filter_map(|x| text(Some(x))).collect(),
                Some(Value::String(s)) => vec![s.clone()],
                _ => Vec::new(),
            };
            reg.phases.insert(
                id,
                Entry {
                    verdict: text(e.get("verdict")),
                    requires,
                    last_verified_ts: text(e.get("last_verified_ts")),
                    commit_sha: text(e.get("commit_sha")),
                    evidence_path: text(e.get("evidence_path")),
                    fixture: is_fixture(&e),
                },
            );
        }
        Ok(reg)
    }

    /// Sets a phase's verdict (and when it was verified, and the report that proves
    /// it), keeping `requires` and every other field.
    pub fn set(&mut self, phase: &str, verdict: &str, ts: &str, evidence_path: Option<&str>) {
        if !self.doc.is_object() {
            self.doc = Value::Object(Map::new());
        }
        let root = self.doc.as_object_mut().expect("object");
        let phases = root
            .entry("phases")
            .or_insert_with(|| Value::Object(Map::new()));
        if !phases.is_object() {
            *phases = Value::Object(Map::new());
        }
        let entry = phases
            .as_object_mut()
            .expect("object")
            .entry(phase.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let e = entry.as_object_mut().expect("object");
        e.insert("verdict".into(), Value::String(verdict.into()));
        e.insert("last_verified_ts".into(), Value::String(ts.into()));
        if let Some(p) = evidence_path {
            e.insert("evidence_path".into(), Value::String(p.into()));
        }
        e.entry("requires").or_insert(Value::Null);
    }

    pub fn render(&self) -> Result<String, String> {
        if self.is_json {
            return serde_json::to_string_pretty(&self.doc)
                .map(|s| s + "\n")
                .map_err(|e| e.to_string());
        }
        let mut out = String::new();
        YamlEmitter::new(&mut out)
            .dump(&json_to_yaml(&self.doc))
            .map_err(|e| e.to_string())?;
        let body = out.strip_prefix("---\n").unwrap_or(&out);
        Ok(format!("{body}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_phases_as_the_reference_spells_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("phase_status.yaml");
        std::fs::write(
            &p,
            "phases:\n  A: {kind: ' Fixture '}\n  B: {is_fixture: true}\n  C: {is_fixture: 'Yes'}\n  \
             D: {is_fixture: 1}\n  E: {is_fixture: 'no'}\n  F: {is_fixture: 0}\n  G: {kind: phase}\n  H: {}\n",
        )
        .unwrap();
        let r = Registry::load(&p).unwrap().unwrap();
        let fixtures: Vec<&str> = r
            .phases
            .iter()
            .filter(|(_, e)| e.fixture)
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(fixtures, ["A", "B", "C", "D"]);
    }

    #[test]
    fn yaml_round_trip_keeps_requires() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("phase_status.yaml");
        std::fs::write(&p, "phases:\n  A:\n    verdict: PROVEN\n    requires:\n      - B\n    evidence_path: x.json\n  B:\n    verdict: DESIGNED\n    requires:\n").unwrap();
        let mut r = Registry::load(&p).unwrap().unwrap();
        assert_eq!(r.phases["A"].requires, ["B"]);
        assert_eq!(r.phases["B"].requires, Vec::<String>::new());
        r.set(
            "B",
            "PROVEN",
            "2026-01-01T00:00:00Z",
            Some("reports/dod/dod_report.latest.json"),
        );
        std::fs::write(&p, r.render().unwrap()).unwrap();
        let again = Registry::load(&p).unwrap().unwrap();
        assert_eq!(again.phases["A"].requires, ["B"]);
        assert_eq!(again.phases["B"].verdict.as_deref(), Some("PROVEN"));
        assert!(
            Registry::load(&dir.path().join("nope.yaml"))
                .unwrap()
                .is_none()
        );
        std::fs::write(&p, "phases: [1, 2").unwrap();
        assert!(Registry::load(&p).is_err());
    }

    #[test]
    fn an_unreadable_registry_says_where_the_parser_stopped() {
        // YAML: the unclosed flow sequence ends at the end of line 3.
        let e = Registry::parse("phases:\n  A:\n    requires: [B, C\n", false).unwrap_err();
        assert_eq!(e.position, Some((4, 1)), "{e:?}");
        assert!(e.reason.starts_with("invalid YAML: "), "{e:?}");
        assert!(
            !e.reason.contains(" line "),
            "the position is not repeated: {e:?}"
        );
        // A closing bracket of the wrong kind, in the middle of line 2.
        let e = Registry::parse("phases:\n  A: {requires: [B}\n", false).unwrap_err();
        assert_eq!(e.position, Some((2, 19)), "{e:?}");
        // JSON: columns count from 1, as serde_json gives them.
        let e = Registry::parse("{\n  \"phases\": oops\n}\n", true).unwrap_err();
        assert_eq!(e.position, Some((2, 13)), "{e:?}");
        assert_eq!(e.reason, "invalid JSON: expected value");
        // About the document as a whole: no position.
        let e = Registry::parse("phases: 3\n", false).unwrap_err();
        assert_eq!(e.position, None);
        assert_eq!(e.reason, "`phases` must be a mapping of phase ids");
    }

    #[test]
    fn aliases_count_what_they_repeat_and_a_billion_laughs_is_refused() {
        // Nine levels of ten aliases: 629 bytes that a YAML loader expands to a
        // billion values (`lith dod` ran for minutes).
        let mut doc = String::from(
            "phases:\n  A:\n    requires: []\n    x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
        );
        for i in 1..9 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            doc.push_str(&format!("    x{i}: &a{i} [{refs}]\n"));
        }
        let e = Registry::parse(&doc, false).unwrap_err();
        assert!(
            e.reason
                .starts_with("the YAML expands to more than 1048576 values"),
            "{e:?}"
        );
        // Where it passed the budget: `x5` on line 9, whose ten aliases of `x4`
        // (111,111 values each) make 1,111,111.
        assert_eq!(e.position.map(|p| p.0), Some(9), "{e:?}");
        // A few aliases read as written.
        let r = Registry::parse(
            "phases:\n  A:\n    requires: &both [B, C]\n  D:\n    requires: *both\n",
            false,
        )
        .unwrap();
        assert_eq!(r.phases["D"].requires, ["B", "C"]);
    }
}
