//! CI integration: a report that round-trips (`lith render`), partitions that merge
//! into exactly the unpartitioned build (`--partition`, `lith merge`), JUnit valid
//! against the common schema, workflow-command annotations, and the README's
//! workflow run step by step.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::support::{Workspace, files_below};

const EPOCH: (&str, &str) = ("SOURCE_DATE_EPOCH", "1790000000");

/// Every file of a tree with its bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files_below(dir)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(dir.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

/// Asserts two sites are the same files with the same bytes, naming the first that
/// differs.
pub(crate) fn assert_same_site(a: &Path, b: &Path) {
    let (ta, tb) = (tree(a), tree(b));
    let names = |t: &BTreeMap<String, Vec<u8>>| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&ta), names(&tb), "the two sites hold different files");
    for (name, bytes) in &ta {
        assert!(
            tb[name] == *bytes,
            "{name} differs:\n--- {}\n{}\n--- {}\n{}",
            a.display(),
            String::from_utf8_lossy(bytes)
                .chars()
                .take(2000)
                .collect::<String>(),
            b.display(),
            String::from_utf8_lossy(&tb[name])
                .chars()
                .take(2000)
                .collect::<String>()
        );
    }
    assert!(ta.len() > 10, "a site of {} files is not a site", ta.len());
}

/// A workspace of two bundle roots, 40 runs with every verification outcome, run ids
/// that repeat across roots (their pages depend on every run at once) and hostile
/// ids, plus the demo's queue, receipts, DoD and drift sections.
fn sharded_workspace() -> Workspace {
    let ws = Workspace::demo();
    let manifest = ws
        .read("manifest.lith")
        .replace("(roots [", "(roots [\"many/a/out\" \"many/b/out\" ");
    assert!(
        manifest.contains("many/a/out"),
        "the demo manifest changed shape"
    );
    ws.write("manifest.lith", manifest);
    for root in ["many/a/out", "many/b/out"] {
        for i in 0..20 {
            let id = match i {
                0 => "shared-id".to_string(),
                1 => "<img src=x onerror=alert(1)>".to_string(),
                2 => "index.html".to_string(),
                _ => format!("run-{i:02}"),
            };
            let dir = format!("{root}/{id}");
            let body = format!("{root} {i}");
            ws.committed_run(&dir, "complete", &[("a.txt", &body), ("b.txt", "b")]);
            match i % 5 {
                1 => ws.write(&format!("{dir}/a.txt"), "tampered"),
                2 => {
                    std::fs::remove_file(ws.join(&format!("{dir}/artifact_index.json"))).unwrap();
                    &ws
                }
                3 => ws.write(
                    &format!("{dir}/run_status.json"),
                    json!({"run_id": id, "state": "in_progress"}).to_string(),
                ),
                _ => &ws,
            };
        }
        ws.write(&format!("{root}/LATEST"), "run-04");
    }
    ws
}

#[test]
fn render_rebuilds_the_site_byte_for_byte_from_report_json_alone() {
    // The demo's rows carry schema versions and repository-relative paths (objects);
    // the added runs' plain ok rows are written as [path, size, sha256].
    let ws = sharded_workspace();
    for env in [&[EPOCH][..], &[][..]] {
        let _ = std::fs::remove_dir_all(ws.join("built"));
        let _ = std::fs::remove_dir_all(ws.join("rendered"));
        let b = ws.lith_env(&["build", "-q", "--out", "built"], env);
        assert_eq!(b.code, 3, "{b:?}");
        // The report is read from a folder that holds nothing else: the inputs are
        // gone, so nothing but report.json can feed the render.
        std::fs::create_dir(ws.join("alone")).ok();
        std::fs::copy(ws.join("built/report.json"), ws.join("alone/report.json")).unwrap();
        std::fs::rename(ws.join("tests"), ws.join("tests-away")).unwrap();
        let r = ws.lith_env(
            &["render", "alone/report.json", "--out", "rendered", "-q"],
            env,
        );
        std::fs::rename(ws.join("tests-away"), ws.join("tests")).unwrap();
        assert_eq!(r.code, 3, "render exits with the report's verdict: {r:?}");
        assert_same_site(&ws.join("built"), &ws.join("rendered"));
    }
    // The model reads back to the same value: parse, write, same bytes.
    let text = ws.read("built/report.json");
    let v: Value = serde_json::from_str(&text).unwrap();
    let rows: Vec<&Value> = v["bundles"]["roots"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["runs"].as_array().unwrap())
        .flat_map(|r| r["artifacts"].as_array().unwrap())
        .collect();
    assert!(
        rows.iter().any(|a| a.is_array()) && rows.iter().any(|a| a.is_object()),
        "both row forms are read back by the render"
    );
    assert!(
        v["bundles"]["roots"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["runs"].as_array().unwrap())
            .any(|r| r["summary_md"].is_string()),
        "the run summaries the pages show are in report.json"
    );
    assert!(v["promptdb"]["packets"].is_array(), "{}", v["promptdb"]);
    assert!(
        v["receipts"]["rows"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );
}

#[test]
fn render_refuses_what_is_not_a_report_with_a_usage_error() {
    let ws = Workspace::new();
    ws.write("x.json", r#"{"schema_version": "something else"}"#);
    ws.write("broken.json", "{\n  \"schema_version\": \n");
    // A named pipe never hangs the read, and a link is not followed.
    let fifo =
        std::ffi::CString::new(ws.join("pipe.json").into_os_string().into_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    std::os::unix::fs::symlink(ws.join("x.json"), ws.join("link.json")).unwrap();
    for (file, want) in [
        ("x.json", "not a report.json that lith wrote"),
        ("broken.json", "broken.json:3:"),
        ("absent.json", "cannot read"),
        ("pipe.json", "not a regular file"),
        ("link.json", "symbolic link"),
    ] {
        let r = ws
            .lith_within(&["render", file, "--out", "site"], 20)
            .unwrap_or_else(|| panic!("render of {file} hung"));
        assert_eq!(r.code, 64, "{file}: {r:?}");
        assert!(r.stderr.contains(want), "{file}: {r:?}");
        assert!(!ws.join("site").exists(), "{file}: nothing is written");
    }
}

#[test]
fn partitions_merge_into_exactly_the_unpartitioned_build() {
    let ws = sharded_workspace();
    let whole = ws.lith_env(&["build", "-q", "--out", "whole"], &[EPOCH]);
    assert_eq!(whole.code, 3, "{whole:?}");
    let report: Value = serde_json::from_str(&ws.read("whole/report.json")).unwrap();
    assert_eq!(
        report["bundles"]["totals"]["runs"], 46,
        "{}",
        report["bundles"]["totals"]
    );
    for n in [1u32, 2, 3, 7] {
        let mut parts = Vec::new();
        let mut verified = 0;
        for k in 1..=n {
            let file = format!("parts{n}/p{k}.json");
            std::fs::create_dir_all(ws.join(&format!("parts{n}"))).unwrap();
            let p = ws.lith_env(
                &[
                    "build",
                    "--json",
                    "--partition",
                    &format!("{k}/{n}"),
                    "--out",
                    &file,
                ],
                &[EPOCH],
            );
            assert_eq!(p.code, 0, "a written partition exits 0: {p:?}");
            verified += p.json()["runs"].as_u64().unwrap();
            parts.push(file);
        }
        assert_eq!(verified, 46, "{n} partitions verify every run exactly once");
        // Given in any order.
        parts.reverse();
        let out = format!("merged{n}");
        let mut args = vec!["merge", "-q", "--out", out.as_str()];
        args.extend(parts.iter().map(String::as_str));
        let m = ws.lith_env(&args, &[EPOCH]);
        assert_eq!(m.code, 3, "merge exits with the merged verdict: {m:?}");
        assert_same_site(&ws.join("whole"), &ws.join(&out));
    }
}

#[test]
fn missing_repeated_and_foreign_partitions_are_refused_naming_them() {
    let ws = sharded_workspace();
    for k in 1..=3 {
        let r = ws.lith(&[
            "build",
            "-q",
            "--partition",
            &format!("{k}/3"),
            "--out",
            &format!("p{k}.json"),
        ]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    let r = ws.lith(&["build", "-q", "--partition", "1/2", "--out", "two.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let cases: [(&[&str], &str); 3] = [
        (&["p1.json", "p3.json"], "partition(s) 2 of 3 missing"),
        (
            &["p1.json", "p2.json", "p2.json", "p3.json"],
            "partition 2/3 is given twice: p2.json and p2.json",
        ),
        (&["p1.json", "p2.json", "two.json"], "different builds"),
    ];
    for (parts, want) in cases {
        let mut args = vec!["merge", "--out", "site"];
        args.extend_from_slice(parts);
        let r = ws.lith(&args);
        assert_eq!(r.code, 64, "{parts:?}: {r:?}");
        assert!(r.stderr.contains(want), "{parts:?} wants {want:?}: {r:?}");
        assert!(!ws.join("site").exists(), "{parts:?}: nothing is published");
    }
    // A partition of another manifest is another build.
    ws.write(
        "other.lith",
        ws.read("manifest.lith").replace("lith demo", "other demo"),
    );
    let r = ws.lith(&[
        "build",
        "--manifest",
        "other.lith",
        "-q",
        "--partition",
        "2/3",
        "--out",
        "o2.json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = ws.lith(&["merge", "--out", "site", "p1.json", "o2.json", "p3.json"]);
    assert_eq!(r.code, 64, "{r:?}");
    assert!(r.stderr.contains("manifest sha256"), "{r:?}");
    // Usage mistakes in the flag itself.
    for bad in ["0/3", "4/3", "3", "x/y"] {
        let r = ws.lith(&["build", "--partition", bad]);
        assert_eq!(r.code, 64, "{bad}: {r:?}");
    }
}

/// Validates with xmllint against the common JUnit schema. Under CI the validator
/// must be there; elsewhere a missing xmllint skips only this check, saying so.
pub(crate) fn validate_junit(xml: &Path) {
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit/junit-10.xsd");
    match std::process::Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(&xsd)
        .arg(xml)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "{} is not valid JUnit:\n{}",
            xml.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("xmllint not found ({e}); JUnit schema validation skipped outside CI")
        }
        Err(e) => panic!("xmllint is required under CI (Debian libxml2-utils): {e}"),
    }
}

/// The testcases of a JUnit file: (suite, name) → "pass", "failure TYPE",
/// "error TYPE" or "skipped".
fn junit_cases(xml: &str) -> BTreeMap<(String, String), String> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let mut out = BTreeMap::new();
    for suite in doc.descendants().filter(|n| n.has_tag_name("testsuite")) {
        for case in suite.children().filter(|n| n.has_tag_name("testcase")) {
            let status = case
                .children()
                .find(|c| {
                    c.is_element() && !matches!(c.tag_name().name(), "system-out" | "system-err")
                })
                .map(|c| match c.tag_name().name() {
                    "skipped" => "skipped".to_string(),
                    kind => format!("{kind} {}", c.attribute("type").unwrap_or("")),
                })
                .unwrap_or_else(|| "pass".to_string());
            out.insert(
                (
                    suite.attribute("name").unwrap().to_string(),
                    case.attribute("name").unwrap().to_string(),
                ),
                status,
            );
        }
    }
    out
}

#[test]
fn junit_has_a_testcase_per_run_phase_and_gate_and_is_valid() {
    let ws = Workspace::demo();
    let r = ws.lith_env(
        &["build", "-q", "--out", "site", "--junit", "junit.xml"],
        &[EPOCH],
    );
    assert_eq!(r.code, 3, "{r:?}");
    validate_junit(&ws.join("junit.xml"));
    let cases = junit_cases(&ws.read("junit.xml"));
    let get = |suite: &str, name: &str| {
        cases
            .get(&(suite.to_string(), name.to_string()))
            .unwrap_or_else(|| panic!("no testcase {suite}/{name} in {cases:#?}"))
            .as_str()
    };
    assert_eq!(get("bundles", "2026-11-20T0200-a41f"), "pass");
    assert_eq!(
        get("bundles", "2026-11-19T0200-9c2e"),
        "failure artifacts_not_ok"
    );
    assert_eq!(
        get("bundles", "2026-11-17T0200-77aa"),
        "failure index_missing"
    );
    assert_eq!(
        get("bundles", "2026-11-21T0200-e3d9"),
        "failure bundle_in_progress"
    );
    assert_eq!(
        get("bundles", "root tests/fixtures/demo/smoke/out"),
        "failure latest_invalid"
    );
    assert_eq!(get("queue", "replay"), "failure queue.receipt_missing");
    // Every run and phase of the report is a testcase with the report's outcome.
    let report: Value = serde_json::from_str(&ws.read("site/report.json")).unwrap();
    for root in report["bundles"]["roots"].as_array().unwrap() {
        for run in root["runs"].as_array().unwrap() {
            let got = get("bundles", run["run_id"].as_str().unwrap());
            assert_eq!(got == "pass", run["verification"] == "verified", "{run}");
        }
    }
    let phases = report["dod"]["phases"].as_object().unwrap();
    assert!(!phases.is_empty());
    for (id, p) in phases {
        let want = match (
            p["verdict"].as_str().unwrap(),
            p["fixture"].as_bool().unwrap(),
        ) {
            ("PROVEN", _) => "pass".to_string(),
            (_, true) => "skipped".to_string(),
            (v, false) => format!("failure {v}"),
        };
        assert_eq!(get("dod", id), want, "{id}");
    }
    assert!(
        get("gates", "push-truth").starts_with("failure gate."),
        "{cases:?}"
    );

    // An unreadable input is an <error>, and that is valid JUnit too.
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        r#"(manifest (v "promethean.manifest/v1") (bundles (roots ["out"])))"#,
    );
    ws.committed_run("out/ok", "complete", &[("a", "a")]);
    ws.write("out/bad/artifact_index.json", "{");
    ws.write(
        "out/bad/run_status.json",
        r#"{"run_id":"bad","state":"complete"}"#,
    );
    let r = ws.lith(&["build", "-q", "--junit", "j.xml"]);
    assert_eq!(r.code, 4, "{r:?}");
    validate_junit(&ws.join("j.xml"));
    let cases = junit_cases(&ws.read("j.xml"));
    assert_eq!(
        cases[&("bundles".into(), "bad".into())],
        "error index_corrupt",
        "{cases:?}"
    );
    assert_eq!(cases[&("bundles".into(), "ok".into())], "pass", "{cases:?}");
}

#[test]
fn junit_names_keep_runs_apart_whose_ids_differ_only_in_characters_xml_drops() {
    // Run ids are folder names: a line break, a control character or a bidirectional
    // control is allowed there, and an XML attribute drops or folds them. Each pair
    // below would share one testcase name if they were written as they are.
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        r#"(manifest (v "promethean.manifest/v1") (bundles (roots ["r/*"])))"#,
    );
    let ids = [
        ("two\nlines", "two\\nlines"),
        ("twolines", "twolines"),
        ("bad\u{1}ctl", "bad\\u{1}ctl"),
        ("badctl", "badctl"),
        ("tab\there", "tab\\there"),
        ("tab\\there", "tab\\\\there"),
        ("\u{202e}lmth.exe", "\\u{202e}lmth.exe"),
        ("lmth.exe", "lmth.exe"),
        ("caf\u{e9}", "caf\u{e9}"),
    ];
    for (id, _) in ids {
        ws.committed_run(&format!("r/main/{id}"), "complete", &[("a", "a")]);
    }
    // A bundle root's path is the testcase's classname, escaped the same way.
    ws.committed_run("r/del\u{7f}/plain", "complete", &[("a", "a")]);
    let r = ws.lith(&["build", "-q", "--junit", "j.xml"]);
    assert_eq!(r.code, 0, "{r:?}");
    validate_junit(&ws.join("j.xml"));
    let xml = ws.read("j.xml");
    let cases = junit_cases(&xml);
    for (id, shown) in ids {
        assert_eq!(
            cases
                .get(&("bundles".to_string(), shown.to_string()))
                .map(String::as_str),
            Some("pass"),
            "{id:?} should be listed as {shown:?}: {cases:#?}"
        );
    }
    // Every run, and the workspace's own testcase.
    assert_eq!(cases.len(), ids.len() + 2, "{cases:#?}");
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let plain = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("plain"))
        .unwrap();
    assert_eq!(plain.attribute("classname"), Some("r/del\\u{7f}"));
}

#[test]
fn annotations_point_at_files_are_capped_and_cannot_forge_commands() {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        r#"(manifest (v "promethean.manifest/v1") (bundles (roots ["out"])))"#,
    );
    for i in 0..60 {
        let dir = format!("out/r{i:02}");
        ws.committed_run(&dir, "complete", &[("a", "a")]);
        ws.write(&format!("{dir}/a"), "tampered");
    }
    // A run folder whose name tries to end its command and start another.
    let hostile = "out/a\n::error file=forged::forged %0A";
    ws.committed_run(hostile, "complete", &[("a", "a")]);
    ws.write(&format!("{hostile}/a"), "tampered");
    let r = ws.lith(&["build", "-q", "--annotations"]);
    assert_eq!(r.code, 2, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    let commands: Vec<&&str> = lines.iter().filter(|l| l.starts_with("::error ")).collect();
    assert_eq!(commands.len(), 50, "{}", r.stdout);
    assert!(
        r.stdout.contains("out/a%0A%3A%3Aerror file=forged"),
        "the hostile name is shown, escaped:\n{}",
        r.stdout
    );
    assert!(
        lines.last().unwrap().starts_with("::notice ")
            && lines.last().unwrap().contains("more finding(s) not shown"),
        "{}",
        r.stdout
    );
    assert!(
        commands.iter().all(|l| l.contains(" file=out/")),
        "{}",
        r.stdout
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("::error file=forged")),
        "an input forged a workflow command:\n{}",
        r.stdout
    );
    assert_eq!(lines.len(), 51, "{}", r.stdout);
}

/// A finding that knows its line says it everywhere a CI user looks: the annotation
/// carries `line=` (and `col=`), the report its `line` and `column`, the site, the
/// step summary and JUnit `path:line:column`; and the place is not named twice.
#[test]
fn findings_point_at_the_line_of_their_file() {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        r#"(manifest (v "promethean.manifest/v1") (bundles (roots ["out"]))
             (queue (log "q.jsonl")) (promptdb (root "db")))"#,
    );
    ws.committed_run("out/ok", "complete", &[("a", "a")]);
    ws.write(
        "out/bad/artifact_index.json",
        "{\n  \"run_id\": \"bad\",\n  oops\n",
    );
    ws.write(
        "out/bad/run_status.json",
        r#"{"run_id":"bad","state":"complete"}"#,
    );
    let enqueue = r#"{"op":"enqueue","task":{"created_at":"2026-11-20T01:00:00Z","dedupe_key":"k","id":"t1","kind":"k","owner":"ci","payload":{},"status":"pending"},"ts":"2026-11-20T01:00:00Z","v":"eta-mu.task-queue/v1"}"#;
    ws.write("q.jsonl", format!("{enqueue}\n{enqueue}\nnot json\n"));
    ws.write("db/bad.packet.lisp", "(packet\n  (title \"never closed\n");
    let argv = "build -q --annotations --summary summary.md --junit j.xml";
    let r = ws.lith(&argv.split(' ').collect::<Vec<_>>());
    assert_eq!(r.code, 4, "{r:?}");
    let annotation = |file: &str| {
        r.stdout
            .lines()
            .find(|l| l.contains(&format!(" file={file},")))
            .unwrap_or_else(|| panic!("no annotation for {file}:\n{}", r.stdout))
            .to_string()
    };
    assert!(
        annotation("out/bad/artifact_index.json").contains(",line=3,col=3,title=index_corrupt::"),
        "{}",
        r.stdout
    );
    // Findings that count lines point at the first.
    assert!(
        annotation("q.jsonl").contains(",line=2,title=queue.duplicate_enqueue::"),
        "{}",
        r.stdout
    );
    let packet = annotation("db/bad.packet.lisp");
    assert!(
        packet.contains(",line=2,col=10,title=catalog.packet_unreadable::")
            && !packet.contains("::db/bad.packet.lisp"),
        "the message does not name the place again: {packet}"
    );
    let report: serde_json::Value = serde_json::from_str(&ws.read("site/report.json")).unwrap();
    let found = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "catalog.packet_unreadable")
        .expect("the packet's finding");
    assert_eq!((&found["line"], &found["column"]), (&json!(2), &json!(10)));
    let overview = ws.read("site/index.html");
    assert!(
        overview.contains(r#"<bdi class="place">db/bad.packet.lisp:2:10</bdi>"#),
        "{overview}"
    );
    assert!(
        ws.read("summary.md")
            .contains("out/bad/artifact_index.json:3:3"),
        "{}",
        ws.read("summary.md")
    );
    assert!(
        ws.read("j.xml")
            .contains("index_corrupt: out/bad/artifact_index.json:3:3: "),
        "{}",
        ws.read("j.xml")
    );
    // The report round-trips with the positions.
    let again = ws.lith(&["render", "site/report.json", "--out", "again"]);
    assert_eq!(again.code, 4, "{again:?}");
    assert_eq!(ws.read("again/index.html"), overview);

    // A phase registry that is not JSON, and a feed missing: each at its file.
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        r#"(manifest (v "promethean.manifest/v1")
             (dod (docs "docs") (phase-status "reg.json"))
             (activity (feed "feed.jsonl") (heartbeat-file "hb.json")))"#,
    );
    ws.write("docs/PHASE_A.md", "# DoD\n- **Phase / Task ID**: PHASE_A\n");
    ws.write("reg.json", "{\n  \"phases\": oops\n}\n");
    let r = ws.lith(&["build", "-q", "--annotations"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stdout.contains(
            "::error file=reg.json,line=2,col=13,title=dod.unreadable::the phase registry cannot be read: invalid JSON"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "::error file=feed.jsonl,title=drift.feed_unreadable::error.log_missing_or_unreadable"
        ),
        "{}",
        r.stdout
    );

    // A YAML registry is at its place too, and `lith dod` names it the same way.
    ws.write(
        "manifest.lith",
        r#"(manifest (v "promethean.manifest/v1")
             (dod (docs "docs") (phase-status "reg.yaml")))"#,
    );
    ws.write("reg.yaml", "phases:\n  PHASE_A: {requires: [B}\n");
    let r = ws.lith(&["build", "-q", "--annotations"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stdout.contains(
            "::error file=reg.yaml,line=2,col=25,title=dod.unreadable::the phase registry cannot be read: invalid YAML: "
        ),
        "{}",
        r.stdout
    );
    let r = ws.lith(&["dod", "--all"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr
            .contains("reg.yaml:2:25: the phase registry cannot be read: invalid YAML: "),
        "{}",
        r.stderr
    );
}

/// The README's workflow block: the `run:` steps of each job.
fn readme_steps() -> (Vec<u32>, Vec<String>, Vec<String>) {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("<!-- lith-ci-workflow -->")
        .expect("the README shows the CI workflow");
    let end = readme.find("<!-- /lith-ci-workflow -->").unwrap();
    let block = &readme[start..end];
    let matrix: Vec<u32> = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("partition: ["))
        .expect("a partition matrix")
        .trim_end_matches(']')
        .split(',')
        .map(|n| n.trim().parse().unwrap())
        .collect();
    let (verify, merge) = block.split_at(block.find("\n  merge:").expect("a merge job"));
    let runs = |s: &str| -> Vec<String> {
        s.lines()
            .filter_map(|l| l.trim().strip_prefix("- run: "))
            .map(str::to_string)
            .collect()
    };
    (matrix, runs(verify), runs(merge))
}

#[test]
fn the_readme_workflow_runs_as_written_and_publishes_the_whole_build() {
    let (matrix, verify, merge) = readme_steps();
    assert!(matrix.len() >= 2 && !verify.is_empty() && !merge.is_empty());
    let ws = sharded_workspace();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_lith"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let summary = ws.join("step-summary.md");
    let sh = |cmd: &str, cwd: &Path| {
        let out = std::process::Command::new("sh")
            .args(["-c", cmd])
            .current_dir(cwd)
            .env("PATH", &path)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("SOURCE_DATE_EPOCH", EPOCH.1)
            .env("CI", "true")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The matrix jobs, each on its own copy of the checkout; their uploads land in
    // one folder, as download-artifact with merge-multiple leaves them.
    let merged = tempfile::tempdir().unwrap();
    for k in &matrix {
        let job = tempfile::tempdir().unwrap();
        crate::support::copy_tree(ws.path(), job.path());
        for step in &verify {
            let cmd = step.replace("${{ matrix.partition }}", &k.to_string());
            let (code, out, err) = sh(&cmd, job.path());
            assert_eq!(code, 0, "{cmd}\n{out}\n{err}");
        }
        for f in std::fs::read_dir(job.path()).unwrap() {
            let f = f.unwrap();
            if f.file_name().to_string_lossy().starts_with("partial-") {
                std::fs::copy(f.path(), merged.path().join(f.file_name())).unwrap();
            }
        }
    }
    assert_eq!(
        std::fs::read_dir(merged.path()).unwrap().count(),
        matrix.len()
    );
    for step in &merge {
        let (code, out, err) = sh(step, merged.path());
        assert_eq!(
            code, 3,
            "the merge job fails as the build does: {step}\n{out}\n{err}"
        );
        assert!(
            out.contains("::error file="),
            "annotations are printed: {out}"
        );
    }
    let whole = ws.lith_env(&["build", "-q", "--out", "whole"], &[EPOCH]);
    assert_eq!(whole.code, 3, "{whole:?}");
    assert_same_site(&ws.join("whole"), &merged.path().join("site"));
    validate_junit(&merged.path().join("junit.xml"));
    let s = std::fs::read_to_string(&summary).unwrap();
    assert!(s.contains("designed") && s.contains("many/a/out"), "{s}");
}

#[test]
fn quiet_silences_every_command_and_usage_mistakes_exit_64_with_a_tip() {
    let ws = Workspace::demo();
    let nightly = "tests/fixtures/demo/nightly/out";
    let commands: [&[&str]; 10] = [
        &["build"],
        &["dod", "--all"],
        &["drift"],
        &["gate", "push-truth"],
        &["verify", nightly],
        &[
            "queue",
            "replay",
            "--log",
            "tests/fixtures/demo/state/task_queue.jsonl",
        ],
        &["receipts", "check", "tests/fixtures/demo/receipts.log"],
        &["promote", nightly, "-o", "packet.json"],
        &["reindex", nightly, "--strict"],
        &["render", "site/report.json", "--out", "rendered"],
    ];
    let mut failing = 0;
    for args in commands {
        let mut quiet = args.to_vec();
        quiet.push("--quiet");
        let r = ws.lith(&quiet);
        assert!([0, 2, 3].contains(&r.code), "{args:?}: {r:?}");
        failing += usize::from(r.code != 0);
        assert_eq!(r.stdout, "", "{args:?} printed under --quiet: {r:?}");
        let loud = ws.lith(args);
        assert_eq!(loud.code, r.code, "{args:?}");
        assert!(
            !loud.stdout.is_empty(),
            "{args:?} says nothing without --quiet"
        );
    }
    assert!(failing >= 4, "the quiet commands include failing ones");

    ws.write("file.json", "{}");
    for args in [
        &["verify", "file.json"][..],
        &["promote", "file.json"],
        &["reindex", "file.json", "--strict"],
        &["commit", "file.json"],
    ] {
        let r = ws.lith(args);
        assert_eq!(r.code, 64, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains("is not a folder; pass a run folder"),
            "{r:?}"
        );
    }
    let r = ws.lith(&[
        "queue",
        "enqueue",
        "--log",
        "q",
        "--receipts",
        "r",
        "--kind",
        "k",
        "--payload",
        "{x",
    ]);
    assert_eq!(r.code, 64, "{r:?}");
    assert!(r.stderr.contains("tip: quote it"), "{r:?}");
    // Flags that do not apply to a command are refused, not ignored.
    for args in [
        &["drift", "--jobs", "2"][..],
        &["verify", nightly, "--manifest", "m.lith"],
    ] {
        let r = ws.lith(args);
        assert_eq!(r.code, 64, "{args:?}: {r:?}");
        assert!(r.stderr.contains("unexpected argument"), "{r:?}");
    }
}

#[test]
fn no_color_is_honoured_and_completions_and_man_pages_come_from_the_cli() {
    let ws = Workspace::new();
    let forced = ws.lith_env(&["build", "--nope"], &[("CLICOLOR_FORCE", "1")]);
    assert_eq!(forced.code, 64);
    assert!(
        forced.stderr.contains('\u{1b}'),
        "colour can be forced: {forced:?}"
    );
    let plain = ws.lith_env(
        &["build", "--nope"],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
    );
    assert_eq!(plain.code, 64);
    assert!(!plain.stderr.contains('\u{1b}'), "NO_COLOR wins: {plain:?}");

    for shell in ["bash", "zsh", "fish"] {
        let r = ws.lith(&["completions", shell]);
        assert_eq!(r.code, 0, "{r:?}");
        for word in ["merge", "render", "partition", "junit", "annotations"] {
            assert!(r.stdout.contains(word), "{shell} completion lacks {word}");
        }
    }
    let r = ws.lith(&["man", "--out", "man"]);
    assert_eq!(r.code, 0, "{r:?}");
    for page in ["lith.1", "lith-build.1", "lith-merge.1", "lith-render.1"] {
        let text = ws.read(&format!("man/{page}"));
        assert!(text.contains(".TH"), "{page}");
    }
    assert!(ws.read("man/lith-build.1").contains("partition"));
}

/// Plants the report `file` as the site `whole`'s, with the stamps beside it naming
/// its digest, so that a rebuild into `whole` reads it back.
fn plant_beside_stamps(ws: &Workspace, file: &str) {
    use sha2::{Digest, Sha256};
    let report = std::fs::read(ws.join(file)).unwrap();
    let stamps = ws.read(".whole.lith-verified");
    let (header, rest) = stamps.split_once('\n').unwrap();
    let mut header: Vec<&str> = header.split(' ').collect();
    let digest = format!("{:x}", Sha256::digest(&report));
    header[2] = &digest;
    ws.write(
        ".whole.lith-verified",
        format!("{}\n{rest}", header.join(" ")),
    );
    std::fs::write(ws.join("whole/report.json"), &report).unwrap();
}

/// The demo built into `whole`, and its report with `n` short names in a run's
/// `unindexed` written to `file`.
fn demo_with_names(file: &str, n: usize) -> Workspace {
    let ws = Workspace::demo();
    let r = ws.lith_env(&["build", "-q", "--out", "whole"], &[EPOCH]);
    assert_eq!(r.code, 3, "{r:?}");
    ws.write(file, with_unindexed_names(&ws.read("whole/report.json"), n));
    ws
}

/// `report` with `n` short names put first in the first run's `unindexed`.
fn with_unindexed_names(report: &str, n: usize) -> String {
    let list = "\"unindexed\":[";
    let at = report.find(list).expect("a run with unindexed files") + list.len();
    let mut with = String::with_capacity(report.len() + 11 * n);
    with.push_str(&report[..at]);
    for i in 0..n {
        with.push_str(&format!("\"f{i:07}\","));
    }
    with.push_str(&report[at..]);
    with
}

/// A report read back (`render`, `diff`, `merge`, `--previous`, a rebuild's stamps)
/// has its values counted before it is read: one of some 17 million values (34 MB of
/// `0,` in a run's promotion inputs, which the model holds as JSON values) is
/// refused, naming where lith stopped, in a few MiB. The previous lith read it: 2.1
/// GB for 30 million.
#[test]
fn a_report_of_millions_of_values_is_refused_or_read_without_holding_them() {
    let max_report_values = lith::report::ReadLimits::DEFAULT.values;
    let ws = sharded_workspace();
    let r = ws.lith_env(&["build", "-q", "--out", "whole"], &[EPOCH]);
    assert_eq!(r.code, 3, "{r:?}");
    let report = ws.read("whole/report.json");
    let at = report
        .find("\"sandbox_check_self\":null")
        .expect("a run with promotion inputs");
    let values = max_report_values + 1;
    let mut hostile = String::with_capacity(report.len() + 2 * values);
    hostile.push_str(&report[..at]);
    hostile.push_str("\"sandbox_check_self\":[");
    hostile.push_str(&"0,".repeat(values));
    hostile.push_str("0]");
    hostile.push_str(&report[at + "\"sandbox_check_self\":null".len()..]);
    ws.write("hostile.json", &hostile);
    drop(hostile);
    let (r, peak) = ws.lith_peak_mib(&["render", "hostile.json", "--out", "site"]);
    assert_eq!(r.code, 64, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("more than {} JSON values", max_report_values)),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("hostile.json:1:"), "{}", r.stderr);
    assert!(peak < 64, "render held {peak} MiB");
    // Compared with, the report is read run by run and what the changes do not read
    // is skipped unheld: the same memory, and nothing changed.
    for args in [
        &["--json", "diff", "hostile.json", "whole/report.json"][..],
        &["build", "-q", "--out", "next", "--previous", "hostile.json"],
    ] {
        let (r, peak) = ws.lith_peak_mib(args);
        assert!(r.code == 0 || r.code == 3, "{args:?}: {r:?}");
        assert!(peak < 64, "{args:?} held {peak} MiB");
    }
    let next: serde_json::Value = serde_json::from_str(&ws.read("next/report.json")).unwrap();
    let counts = &next["changes"]["counts"];
    for kind in ["newly_failing", "fixed", "new", "vanished", "changed"] {
        assert_eq!(counts[kind], 0, "{kind}: {counts}");
    }
    assert!(counts["still_failing"].as_u64().unwrap() > 0, "{counts}");
    // A rebuild into the site reads its report back when the stamps beside it name
    // that report's digest: planted with a matching digest, it is counted first too,
    // and the build goes on without reusing anything.
    plant_beside_stamps(&ws, "hostile.json");
    let (r, peak) = ws.lith_peak_mib(&["build", "--out", "whole"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("more than {max_report_values} JSON values")),
        "{}",
        r.stderr
    );
    assert!(peak < 128, "the rebuild held {peak} MiB");
}

/// A report's text does not bound what it holds: six million short names in one
/// run's `unindexed` are a 66 MB report within the values lith counts, which the
/// lith before held as `String`s, over 400 MiB. Read back whole, a report is
/// refused once it holds more than `ReadLimits::DEFAULT.held`, as lith's allocator counts
/// it, by `render` and by `merge`, whose parts share the count, and a rebuild that
/// meets it beside its stamps reuses nothing and goes on.
#[test]
fn a_report_that_holds_more_than_its_text_says_is_refused_in_bounded_memory() {
    let ws = demo_with_names("hostile.json", 6_000_000);
    let (r, peak) = ws.lith_peak_mib(&["render", "hostile.json", "--out", "site"]);
    assert_eq!(r.code, 64, "{r:?}");
    let why = format!(
        "it holds more than the {} MiB lith holds of one file it reads back",
        lith::report::ReadLimits::DEFAULT.held >> 20
    );
    assert!(r.stderr.contains(&why), "{}", r.stderr);
    assert!(r.stderr.contains("hostile.json:1:"), "{}", r.stderr);
    assert!(peak < 256, "render held {peak} MiB");
    assert!(!ws.join("site").exists());
    // Half as many names in each of two partial reports: `lith merge` holds its
    // parts together, so they share one count.
    for k in 1..=2 {
        let part = format!("part{k}.json");
        let partition = format!("{k}/2");
        let r = ws.lith_env(
            &["build", "-q", "--partition", &partition, "--out", &part],
            &[EPOCH],
        );
        assert_eq!(r.code, 0, "{r:?}");
        ws.write(&part, with_unindexed_names(&ws.read(&part), 3_000_000));
    }
    let (r, peak) = ws.lith_peak_mib(&["merge", "part1.json", "part2.json", "--out", "merged"]);
    assert_eq!(r.code, 64, "{r:?}");
    assert!(r.stderr.contains(&why), "{}", r.stderr);
    assert!(r.stderr.contains("part2.json:1:"), "{}", r.stderr);
    assert!(peak < 256, "merge held {peak} MiB");
    // Planted beside stamps that name its digest, the rebuild reuses nothing.
    plant_beside_stamps(&ws, "hostile.json");
    let (r, peak) = ws.lith_peak_mib(&["build", "--out", "whole"]);
    assert_eq!(r.code, 3, "{r:?}");
    // Its text, which the rebuild holds beside it, counts with it.
    assert!(r.stderr.contains(&why), "{}", r.stderr);
    assert!(
        r.stderr.contains("every run is read and hashed again"),
        "{}",
        r.stderr
    );
    assert!(peak < 256, "the rebuild held {peak} MiB");
}

/// What lith holds of a report it reads back follows `--report-memory` (or
/// `LITH_REPORT_MEMORY`): a report of 1.3 million names, which the default reads,
/// is refused within 32 MiB where it passes them, and within 16 MiB before it is
/// read, for its values; each refusal says what raises the limit, and a rebuild
/// given the lower limit reuses nothing and goes on.
#[test]
fn the_memory_a_report_read_back_may_hold_is_the_users_to_set() {
    let ws = demo_with_names("big.json", 1_300_000);
    let r = ws.lith(&["render", "-q", "big.json", "--out", "site"]);
    assert_eq!(r.code, 3, "the default reads it: {r:?}");
    let held = "it holds more than the 32 MiB lith holds of one file it reads back \
                (--report-memory raises it)";
    let values = format!(
        "more than {} JSON values",
        lith::report::ReadLimits::holding(16 << 20).values
    );
    for (limit, why) in [("32M", held), ("16MiB", values.as_str())] {
        for args in [
            &[
                "render",
                "big.json",
                "--out",
                "low",
                "--report-memory",
                limit,
            ][..],
            &[
                "diff",
                "whole/report.json",
                "big.json",
                "--report-memory",
                limit,
            ],
        ] {
            let r = ws.lith(args);
            assert_eq!(r.code, 64, "{args:?}: {r:?}");
            assert!(r.stderr.contains(why), "{args:?}: {}", r.stderr);
            assert!(r.stderr.contains("raises it"), "{args:?}: {}", r.stderr);
            assert!(r.stderr.contains("big.json:1:"), "{args:?}: {}", r.stderr);
        }
        let r = ws.lith_env(
            &["render", "big.json", "--out", "low"],
            &[("LITH_REPORT_MEMORY", limit)],
        );
        assert_eq!(r.code, 64, "{r:?}");
        assert!(r.stderr.contains(why), "{}", r.stderr);
        assert!(!ws.join("low").exists());
    }
    // A rebuild that meets the report beside its stamps reads it within the limit
    // it was given.
    plant_beside_stamps(&ws, "big.json");
    let r = ws.lith(&["build", "--out", "whole", "--report-memory", "32M"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains(held), "{}", r.stderr);
    assert!(
        r.stderr.contains("every run is read and hashed again"),
        "{}",
        r.stderr
    );
    // A size lith cannot read is a usage error that says how to write one.
    for bad in ["lots", "512T", "0", "1K"] {
        let r = ws.lith(&["render", "big.json", "--out", "low", "--report-memory", bad]);
        assert_eq!(r.code, 64, "{bad}: {r:?}");
        assert!(
            r.stderr.contains("512M or 2G") || r.stderr.contains("from 1M to 1024G"),
            "{bad}: {}",
            r.stderr
        );
    }
}

/// A report of as many values as lith reads back, all of them in values the model
/// only shows (a run's gating inputs, a field of its `run_status.json`), is read
/// back and rendered in far less than SPEC §11's 256 MB for one input file: those
/// values are held as their text. The lith before held them as JSON values: 1 GB
/// and 540 MB for 16 million.
#[test]
fn a_report_whose_shown_values_are_millions_renders_in_bounded_memory() {
    let max_report_values = lith::report::ReadLimits::DEFAULT.values;
    fn count(v: &serde_json::Value) -> usize {
        1 + match v {
            serde_json::Value::Array(a) => a.iter().map(count).sum(),
            serde_json::Value::Object(o) => o.values().map(count).sum(),
            _ => 0,
        }
    }
    let ws = Workspace::demo();
    let r = ws.lith_env(&["build", "-q", "--out", "whole"], &[EPOCH]);
    assert_eq!(r.code, 3, "{r:?}");
    let report = ws.read("whole/report.json");
    // As many as the cap allows beside the report's own values.
    let own = count(&serde_json::from_str(&report).unwrap());
    let values = max_report_values - own - 2;
    let many = format!("[{}0]", "0,".repeat(values - 1));
    let gating = "\"sandbox_check_self\":{\"sandboxed\":false}";
    let status = "\"run_status\":{\"channel\"";
    for (place, with) in [
        (gating, format!("\"sandbox_check_self\":{many}")),
        (
            status,
            format!("\"run_status\":{{\"big\":{many},\"channel\""),
        ),
    ] {
        let at = report.find(place).expect("a run with that value");
        let hostile = format!("{}{with}{}", &report[..at], &report[at + place.len()..]);
        ws.write("hostile.json", &hostile);
        drop(hostile);
        let (r, peak) = ws.lith_peak_mib(&["render", "-q", "hostile.json", "--out", "site"]);
        assert_eq!(r.code, 3, "{place}: {r:?}");
        assert!(peak < 160, "{place}: render held {peak} MiB");
        // The page shows the start of the value; report.json has it whole.
        let again: serde_json::Value = serde_json::from_str(&ws.read("site/report.json")).unwrap();
        assert_eq!(
            count(&again),
            own + values - 1 + 2 * usize::from(place == status),
            "{place}"
        );
        let page = std::fs::read_dir(ws.join("site/runs"))
            .unwrap()
            .map(|e| e.unwrap().path().join("index.html"))
            .filter(|p| p.exists())
            .map(|p| std::fs::metadata(p).unwrap().len())
            .max()
            .unwrap();
        assert!(page < 64 * 1024, "{place}: a run page of {page} bytes");
        std::fs::remove_dir_all(ws.join("site")).unwrap();
    }
}
