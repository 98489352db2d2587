//! `--previous` and `lith diff`: two builds with known differences give exactly the
//! expected change list, nothing unchanged is listed, and the change list reaches
//! the site, the text summary, the step summary and JUnit.

use serde_json::{Value, json};

use crate::support::{Workspace, sha256_hex};

const EPOCH: (&str, &str) = ("SOURCE_DATE_EPOCH", "1790000000");

/// (run_id, kind, before, after, changed digests) of every listed run.
fn run_changes(changes: &Value) -> Vec<(String, String, String, String, Vec<String>)> {
    let s = |v: &Value| v.as_str().unwrap_or("absent").to_string();
    changes["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                s(&r["run_id"]),
                s(&r["kind"]),
                s(&r["before"]),
                s(&r["after"]),
                r["digests"]
                    .as_array()
                    .map(|d| d.iter().map(|d| s(&d["path"])).collect())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

fn row(
    id: &str,
    kind: &str,
    before: &str,
    after: &str,
    digests: &[&str],
) -> (String, String, String, String, Vec<String>) {
    (
        id.into(),
        kind.into(),
        before.into(),
        after.into(),
        digests.iter().map(|d| d.to_string()).collect(),
    )
}

/// An empty workspace whose manifest reads the bundle root `out`.
fn out_workspace() -> Workspace {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    ws
}

/// Seven runs, each standing for one kind of change between two builds.
fn two_builds() -> Workspace {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (site (base-url \"https://ci.example/nightly/\")) (bundles (roots [\"out\"])))",
    );
    for id in [
        "r-broke",
        "r-fixed",
        "r-same",
        "r-recommit",
        "r-gone",
        "r-still",
    ] {
        ws.committed_run(
            &format!("out/{id}"),
            "complete",
            &[("a.txt", id), ("b.txt", "b")],
        );
    }
    ws.write("out/r-fixed/a.txt", "broken before the first build");
    std::fs::remove_file(ws.join("out/r-still/b.txt")).unwrap();
    let first = ws.lith_env(&["build", "-q", "--out", "site"], &[EPOCH]);
    assert_eq!(first.code, 2, "{first:?}");
    std::fs::rename(ws.join("site"), ws.join("last-night")).unwrap();

    ws.write("out/r-broke/a.txt", "tampered after commit");
    ws.write("out/r-fixed/a.txt", "r-fixed");
    ws.committed_run(
        "out/r-recommit",
        "complete",
        &[("a.txt", "new content"), ("b.txt", "b")],
    );
    std::fs::remove_dir_all(ws.join("out/r-gone")).unwrap();
    ws.committed_run("out/r-new", "complete", &[("a.txt", "r-new")]);
    ws
}

#[test]
fn two_builds_with_known_differences_give_exactly_the_expected_changes() {
    let ws = two_builds();
    let r = ws.lith_env(
        &["build", "-q", "--out", "site", "--previous", "last-night"],
        &[EPOCH],
    );
    assert_eq!(r.code, 2, "{r:?}");
    let report: Value = serde_json::from_str(&ws.read("site/report.json")).unwrap();
    let changes = &report["changes"];
    assert_eq!(
        run_changes(changes),
        [
            row("r-broke", "newly_failing", "verified", "failed", &["a.txt"]),
            row("r-fixed", "fixed", "failed", "verified", &["a.txt"]),
            row("r-new", "new", "absent", "verified", &[]),
            row("r-gone", "vanished", "verified", "absent", &[]),
            row("r-recommit", "changed", "verified", "verified", &["a.txt"]),
            row("r-still", "still_failing", "failed", "failed", &[]),
        ],
        "r-same changed in nothing and must not be listed"
    );
    let c = &changes["counts"];
    let counts: Vec<u64> = [
        "newly_failing",
        "fixed",
        "still_failing",
        "new",
        "vanished",
        "changed",
        "digests_changed",
        "promotability_changed",
    ]
    .iter()
    .map(|k| c[k].as_u64().unwrap())
    .collect();
    assert_eq!(counts, [1, 1, 1, 1, 1, 1, 3, 0]);
    // Digests are the ones on disk in each build.
    let broke = &changes["runs"][0]["digests"][0];
    assert_eq!(broke["before"], crate::support::sha256_hex(b"r-broke"));
    assert_eq!(
        broke["after"],
        crate::support::sha256_hex(b"tampered after commit")
    );
    // Both builds' pages, the previous one through its base URL.
    assert_eq!(
        changes["previous"]["base_url"],
        "https://ci.example/nightly/"
    );
    assert_eq!(changes["runs"][0]["page"], "runs/r-broke/");
    assert_eq!(changes["runs"][0]["previous_page"], "runs/r-broke/");
    assert!(
        changes["runs"][2].get("previous_page").is_none(),
        "a new run has no previous page"
    );

    // `lith diff` says the same of the same two reports, and exits 2 on a regression.
    let d = ws.lith(&["--json", "diff", "last-night/report.json", "site"]);
    assert_eq!(d.code, 2, "{d:?}");
    assert_eq!(d.json(), *changes);
    let same = ws.lith(&["diff", "site", "site"]);
    assert_eq!(same.code, 0, "{same:?}");
    assert!(
        same.stdout
            .contains("0 newly failing, 0 fixed, 2 still failing, 0 new, 0 vanished, 0 changed"),
        "{same:?}"
    );
    let back = ws.lith(&["diff", "site", "last-night"]);
    assert_eq!(back.code, 2, "going back, r-fixed fails again: {back:?}");
    assert!(
        back.stdout
            .contains("newly_failing  run out/r-fixed: verified → failed"),
        "{back:?}"
    );
    assert!(
        back.stdout
            .contains("vanished       run out/r-new: verified → absent"),
        "{back:?}"
    );

    // The site: a Changes page in the nav, linking each run, and the overview's
    // first section.
    let page = ws.read("site/changes/index.html");
    for id in [
        "r-broke",
        "r-fixed",
        "r-new",
        "r-gone",
        "r-recommit",
        "r-still",
    ] {
        assert!(
            page.contains(&format!("<bdi>{id}</bdi>")),
            "{id} is not on the page"
        );
    }
    assert!(!page.contains("r-same"), "an unchanged run is listed");
    assert!(page.contains("href=\"../runs/r-broke/index.html\""));
    assert!(page.contains(
        "href=\"https://ci.example/nightly/runs/r-broke/index.html\">previous build's page"
    ));
    assert!(
        !page.contains("href=\"../runs/r-gone/"),
        "a vanished run has no page in this build"
    );
    let overview = ws.read("site/index.html");
    let (card, sections) = (
        overview.find("h-changes").unwrap(),
        overview.find("h-sections").unwrap(),
    );
    assert!(card < sections, "the changes come first on the overview");
    assert!(overview.contains("<a class=\"count-bad\" href=\"changes/index.html#h-runs\">1</a>"));
    assert!(
        ws.read("site/runs/index.html")
            .contains("changes/index.html\">Changes</a>")
    );
}

/// A rebuild where every artifact changed: the changes count every digest but
/// list at most 10,000 over all runs, in the order the runs are compared, and the
/// Changes page shows at most three a row. The lith before listed all of them: a
/// 4 MB page and 25 MB more report for 10,000 runs of 13 artifacts.
#[test]
fn digest_changes_past_ten_thousand_are_counted_not_listed() {
    use lith::report::changes::MAX_LISTED_DIGEST_CHANGES;
    let ws = out_workspace();
    let sizes = [("r1", 6_000), ("r2", 6_000), ("r3", 5)];
    let write = |suffix: &str| {
        for (run, n) in sizes {
            let contents: Vec<(String, String)> = (0..n)
                .map(|i| (format!("f{i:05}.txt"), format!("{run} {i}{suffix}")))
                .collect();
            let files: Vec<(&str, &str)> = contents
                .iter()
                .map(|(p, c)| (p.as_str(), c.as_str()))
                .collect();
            ws.committed_run(&format!("out/{run}"), "complete", &files);
        }
    };
    write("");
    let r = ws.lith(&["build", "-q", "--out", "before"]);
    assert_eq!(r.code, 0, "{r:?}");
    write(" again");
    let r = ws.lith(&["build", "-q", "--out", "after", "--previous", "before"]);
    assert_eq!(r.code, 0, "{r:?}");
    let report: Value = serde_json::from_str(&ws.read("after/report.json")).unwrap();
    let changes = &report["changes"];
    assert_eq!(changes["counts"]["digests_changed"], 12_005);
    assert_eq!(changes["counts"]["changed"], 3);
    let listed: Vec<(String, usize, u64)> = changes["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["run_id"].as_str().unwrap().to_string(),
                r["digests"].as_array().map_or(0, Vec::len),
                r["digests_unlisted"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(MAX_LISTED_DIGEST_CHANGES, 10_000);
    assert_eq!(
        listed,
        [
            ("r1".to_string(), 6_000, 0),
            ("r2".to_string(), 4_000, 2_000),
            ("r3".to_string(), 0, 5)
        ]
    );
    let first = &changes["runs"][0]["digests"][0];
    assert_eq!(first["path"], "f00000.txt");
    assert_eq!(first["after"], sha256_hex(b"r1 0 again"));
    // The page: three digests a row and how many more; a run with none listed
    // says how many changed.
    let page = ws.read("after/changes/index.html");
    assert!(page.len() < 64 * 1024, "the page is {} bytes", page.len());
    assert_eq!(page.matches("<li><code class=\"wrap\"><bdi>f0").count(), 6);
    assert_eq!(page.matches("</ul>and 5997 more</td>").count(), 2, "{page}");
    assert!(
        page.contains("<td data-label=\"Digests changed\">5</td>"),
        "{page}"
    );
    // The text summary counts them all.
    let r = ws.lith(&["diff", "before/report.json", "after/report.json"]);
    assert!(
        r.stdout.contains("6000 digest(s) changed, e.g. f00000.txt"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("run out/r3: verified → verified; 5 digest(s) changed"),
        "{}",
        r.stdout
    );
}

#[test]
fn changes_reach_the_summaries_and_junit_and_render_keeps_them() {
    let ws = two_builds();
    let r = ws.lith_env(
        &[
            "build",
            "--out",
            "site",
            "--previous",
            "last-night",
            "--summary",
            "summary.md",
            "--junit",
            "junit.xml",
        ],
        &[EPOCH],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stdout.contains("  changes since the build of 2026-09-21T14:13:20Z (partial): 1 newly failing, 1 fixed, 1 still failing, 1 new, 1 vanished, 1 changed; 3 digest(s) changed"),
        "{}", r.stdout
    );
    assert!(
        r.stdout.contains(
            "    newly_failing  run out/r-broke: verified → failed; 1 digest(s) changed, e.g. a.txt"
        ),
        "{}",
        r.stdout
    );
    let md = ws.read("summary.md");
    assert!(
        md.contains("### Changes since the build of 2026-09-21T14:13:20Z"),
        "{md}"
    );
    assert!(
        md.contains("| newly_failing | run `r-broke` in `out` | verified → failed; 1 digest(s) changed | [now](https://ci.example/nightly/runs/r-broke/) [before](https://ci.example/nightly/runs/r-broke/) |"),
        "{md}"
    );
    assert!(!md.contains("r-same"), "{md}");
    assert!(
        !md.contains("| still_failing |"),
        "the step summary lists what changed: {md}"
    );

    let xml = ws.read("junit.xml");
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let case_out = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(name))
            .and_then(|c| c.children().find(|n| n.has_tag_name("system-out")))
            .and_then(|n| n.text())
            .map(str::to_string)
    };
    assert_eq!(
        case_out("r-broke").as_deref(),
        Some(
            "newly_failing since the previous build: verified → failed; 1 artifact digest(s) changed"
        )
    );
    assert_eq!(
        case_out("r-fixed").as_deref(),
        Some("fixed since the previous build: failed → verified; 1 artifact digest(s) changed")
    );
    assert_eq!(case_out("r-same"), None);
    let prop = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name("property") && n.attribute("name") == Some(name))
            .and_then(|n| n.attribute("value"))
            .map(str::to_string)
    };
    assert_eq!(prop("lith.changes.newly_failing").as_deref(), Some("1"));
    assert_eq!(prop("lith.changes.digests_changed").as_deref(), Some("3"));
    crate::ci::validate_junit(&ws.join("junit.xml"));

    // The changes are part of the report: render rebuilds the same site from it.
    let rendered = ws.lith_env(&["render", "site", "--out", "again", "-q"], &[EPOCH]);
    assert_eq!(rendered.code, 2, "{rendered:?}");
    crate::ci::assert_same_site(&ws.join("site"), &ws.join("again"));
}

#[test]
fn a_previous_report_is_read_run_by_run_and_what_lith_never_writes_is_refused() {
    let ws = two_builds();
    let built = ws.lith_env(&["build", "-q", "--out", "site"], &[EPOCH]);
    assert_eq!(built.code, 2, "{built:?}");
    let expected = ws.lith(&["--json", "diff", "last-night", "site"]);
    assert_eq!(expected.code, 2, "{expected:?}");
    let old: Value = serde_json::from_str(&ws.read("last-night/report.json")).unwrap();
    let runs = |v: &mut Value| -> Vec<Value> {
        v["bundles"]["roots"][0]["runs"].as_array().unwrap().clone()
    };
    let diff = |name: &str, v: &Value| {
        ws.write(name, serde_json::to_string_pretty(v).unwrap());
        ws.lith(&["--json", "diff", name, "site"])
    };

    // What the changes do not read is skipped, whatever it holds, and the result is
    // the same.
    let mut extra = old.clone();
    extra["unknown"] = json!({"deep": [[[1, 2, {"x": null}]]]});
    extra["bundles"]["roots"][0]["other"] = json!({"runs": "not these"});
    for run in extra["bundles"]["roots"][0]["runs"].as_array_mut().unwrap() {
        run["note"] = json!(["not", "read"]);
    }
    let same = diff("extra.json", &extra);
    assert_eq!(same.code, 2, "{same:?}");
    assert_eq!(same.json(), expected.json());

    // A root whose runs come before its path: each run is compared as it is read,
    // so the root must be known first, as lith writes it.
    // (serde_json's objects sort their keys, so the text is put together by hand.)
    let mut late = old.clone();
    let root = late["bundles"]["roots"][0].take();
    late["bundles"]["roots"] = json!(["ROOT"]);
    let text = late.to_string().replace(
        "\"ROOT\"",
        &format!("{{\"runs\":{},\"path\":{}}}", root["runs"], root["path"]),
    );
    ws.write("late.json", &text);
    let r = ws.lith(&["diff", "late.json", "site"]);
    assert_eq!(r.code, 64, "{r:?}");
    assert!(r.stderr.contains("late.json:"), "{r:?}");
    assert!(
        r.stderr
            .contains("a bundle root's runs come before its path"),
        "{r:?}"
    );

    // A run listed twice, in a root of this build or of none.
    for (name, id) in [("twice.json", "r-same"), ("twice-gone.json", "r-gone")] {
        let mut twice = old.clone();
        let mut list = runs(&mut twice);
        let run = list.iter().find(|r| r["run_id"] == id).unwrap().clone();
        list.push(run);
        twice["bundles"]["roots"][0]["runs"] = Value::Array(list);
        let r = diff(name, &twice);
        assert_eq!(r.code, 64, "{r:?}");
        assert!(
            r.stderr.contains(&format!(
                "the run \"{id}\" of the bundle root \"out\" is listed twice"
            )),
            "{r:?}"
        );
    }

    // More artifact rows in a run than lith lists is not read to find out.
    let mut many = old.clone();
    let row = json!(["a.txt", 1, "0".repeat(64)]);
    many["bundles"]["roots"][0]["runs"][0]["artifacts"] = Value::Array(vec![row; 10_001]);
    let r = diff("many.json", &many);
    assert_eq!(r.code, 64, "{r:?}");
    assert!(
        r.stderr
            .contains("a run lists more than the 10000 artifact rows lith writes"),
        "{r:?}"
    );
    many["bundles"]["roots"][0]["runs"][0]["artifacts"] =
        Value::Array(vec![json!(["a.txt", 1, "0".repeat(64)]); 10_000]);
    assert_eq!(diff("many.json", &many).code, 2);

    // As --previous, each is refused before anything is built or written.
    let r = ws.lith(&["build", "-q", "--out", "other", "--previous", "late.json"]);
    assert_eq!(r.code, 64, "{r:?}");
    assert!(r.stderr.contains("--previous late.json"), "{r:?}");
    assert!(!ws.join("other").exists());
}

#[test]
fn a_missing_previous_is_a_warning_and_a_foreign_one_an_error() {
    let ws = two_builds();
    let r = ws.lith(&["build", "--out", "site", "--previous", "no-such-site"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("--previous no-such-site: no such file or folder; nothing to compare with"),
        "{r:?}"
    );
    let report: Value = serde_json::from_str(&ws.read("site/report.json")).unwrap();
    assert!(report.get("changes").is_none());
    assert!(!ws.join("site/changes").exists());

    ws.write(
        "not-a-report.json",
        "{\"schema_version\": \"lith.report/v2\"}",
    );
    let r = ws.lith(&[
        "build",
        "-q",
        "--out",
        "other",
        "--previous",
        "not-a-report.json",
    ]);
    assert_eq!(r.code, 64, "{r:?}");
    assert!(r.stderr.contains("--previous not-a-report.json"), "{r:?}");
    assert!(
        r.stderr.contains("not-a-report.json:1:"),
        "the error names line and column: {r:?}"
    );
    assert!(
        !ws.join("other").exists(),
        "nothing is written when --previous cannot be read"
    );

    // A previous site with a partition is refused at once (a partial report has no site).
    let r = ws.lith(&["build", "--partition", "1/2", "--previous", "last-night"]);
    assert_eq!(r.code, 64, "{r:?}");
}

#[test]
fn a_previous_report_of_an_older_lith_is_a_warning_and_a_newer_one_an_error() {
    let ws = two_builds();
    // last-night's report as the lith before `lith.report/v2` wrote it: each run's
    // state beside its run_status, which held run_id, state and the fields apart.
    let mut old: Value = serde_json::from_str(&ws.read("last-night/report.json")).unwrap();
    old["schema_version"] = json!("lith.report/v1");
    for root in old["bundles"]["roots"].as_array_mut().unwrap() {
        for run in root["runs"].as_array_mut().unwrap() {
            let fields = run["run_status"].take();
            run["state"] = fields["state"].clone();
            run["run_status"] =
                json!({"run_id": fields["run_id"], "state": fields["state"], "fields": fields});
        }
    }
    ws.write("v1.json", old.to_string());
    let r = ws.lith_env(
        &["build", "--out", "site", "--previous", "v1.json"],
        &[EPOCH],
    );
    assert_eq!(r.code, 2, "the verdict is this build's: {r:?}");
    assert!(
        r.stderr.contains("--previous v1.json: a report of schema \"lith.report/v1\", written by an older lith; nothing to compare with"),
        "{r:?}"
    );
    let report: Value = serde_json::from_str(&ws.read("site/report.json")).unwrap();
    assert!(report.get("changes").is_none(), "nothing is compared");
    // Rendering or comparing an older report is refused, saying what to do.
    for args in [
        &["render", "v1.json", "--out", "again"][..],
        &["diff", "v1.json", "site"][..],
    ] {
        let r = ws.lith(args);
        assert_eq!(r.code, 64, "{r:?}");
        assert!(
            r.stderr.contains("schema_version is \"lith.report/v1\"; this lith reads \"lith.report/v2\": written by an older lith; build again with this one"),
            "{r:?}"
        );
    }

    old["schema_version"] = json!("lith.report/v9");
    ws.write("v9.json", old.to_string());
    let r = ws.lith(&["build", "-q", "--out", "other", "--previous", "v9.json"]);
    assert_eq!(r.code, 64, "a newer report is not guessed at: {r:?}");
    assert!(
        r.stderr
            .contains("schema_version is \"lith.report/v9\"; this lith reads \"lith.report/v2\""),
        "{r:?}"
    );
    assert!(!ws.join("other").exists());
}

/// (failing items, passing items) of each line of a site's history.jsonl.
fn history_lines(ws: &Workspace, site: &str) -> Vec<Value> {
    ws.read(&format!("{site}/history.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A line of history.jsonl told apart by its time, which starts with `tag-`.
fn line_at(line: &str, tag: impl std::fmt::Display) -> String {
    line.replacen(
        "\"generated_at\":\"",
        &format!("\"generated_at\":\"{tag}-"),
        1,
    )
}

/// `lith build -q --out site --history FILE` and `more`, with its peak memory.
fn build_with_history(ws: &Workspace, file: &str, more: &[&str]) -> (crate::support::Run, u64) {
    let mut args = vec!["build", "-q", "--out", "site", "--history", file];
    args.extend_from_slice(more);
    ws.lith_peak_mib(&args)
}

#[test]
fn history_is_carried_truncated_to_the_newest_lines_and_marks_flaky_runs() {
    let ws = out_workspace();
    ws.committed_run("out/steady", "complete", &[("a.txt", "steady")]);
    ws.committed_run("out/flip", "complete", &[("a.txt", "good")]);
    ws.committed_run("out/once", "complete", &[("a.txt", "once")]);
    // Night by night: flip fails, passes, fails; once fails and is fixed for good.
    let nights: [(&str, &str); 5] = [
        ("good", "once"),
        ("bad", "broken"),
        ("good", "once"),
        ("bad", "once"),
        ("bad", "once"),
    ];
    let mut codes = Vec::new();
    for (flip, once) in nights {
        ws.write("out/flip/a.txt", flip);
        ws.write("out/once/a.txt", once);
        let r = ws.lith(&[
            "build",
            "-q",
            "--out",
            "site",
            "--history",
            "site",
            "--history-limit",
            "4",
        ]);
        codes.push(r.code);
    }
    assert_eq!(codes, [0, 2, 0, 2, 2]);
    let lines = history_lines(&ws, "site");
    assert_eq!(lines.len(), 4, "the limit keeps the newest 4 of 5 builds");
    let failing: Vec<Vec<&str>> = lines
        .iter()
        .map(|l| {
            l["failing"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(
        failing,
        [
            vec!["run:out/flip", "run:out/once"],
            vec![],
            vec!["run:out/flip"],
            vec!["run:out/flip"],
        ],
        "the first night (all passing) was dropped"
    );
    assert_eq!(
        lines[1]["passing"],
        serde_json::json!(["run:out/flip", "run:out/once"])
    );
    let report: Value = serde_json::from_str(&ws.read("site/report.json")).unwrap();
    assert_eq!(
        report["history"]["flaky"],
        serde_json::json!([{"item": "run:out/flip", "flips": 2, "states": "fail pass fail fail"}]),
        "once was fixed once: not flaky; flip failed, passed and failed again, and its latest state does not hide it"
    );
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "history.flaky")
        .unwrap();
    assert_eq!(finding["severity"], "warning");
    assert!(ws.read("site/index.html").contains("<a href=\"runs/flip/index.html\"><code class=\"wrap\"><bdi>run:out/flip</bdi></code></a> · 2 flips"));
    assert!(
        ws.read("site/index.html")
            .contains("id=\"trend-verified-title\"")
    );
    let runs = ws.read("site/runs/index.html");
    assert_eq!(
        runs.matches("<span class=\"tag tag-flaky\">flaky</span>")
            .count(),
        1,
        "only flip is marked"
    );
    assert!(runs.contains(
        "<code class=\"wrap\">flip</code></a> <span class=\"tag tag-flaky\">flaky</span>"
    ));
    assert!(ws.read("site/runs/flip/index.html").contains("Flaky: its verification changed 2 times over the kept builds (oldest first: fail pass fail fail)."));
    assert!(!ws.read("site/runs/once/index.html").contains("tag-flaky"));

    // CI can count a flaky item as a failure: here, with flip passing tonight.
    ws.write("out/flip/a.txt", "good");
    let lenient = ws.lith(&["build", "-q", "--out", "lenient", "--history", "site"]);
    assert_eq!(
        lenient.code, 0,
        "a flaky item alone is a warning: {lenient:?}"
    );
    let strict = ws.lith(&[
        "build",
        "-q",
        "--out",
        "strict",
        "--history",
        "site",
        "--flaky-is-failure",
    ]);
    assert_eq!(strict.code, 2, "{strict:?}");
    let last = history_lines(&ws, "strict").pop().unwrap();
    assert_eq!(
        last["verdict"], "partial",
        "the line records the verdict the flaky finding made"
    );
}

/// SPEC §11: a long history costs the lines kept, not the lines read. The previous
/// lith held every line of `--history` before keeping the newest 50 (a 250 MB
/// history.jsonl of 1.1 M lines: 279 MiB; 11 MiB now).
#[test]
fn a_long_history_is_read_keeping_the_newest_lines() {
    let ws = out_workspace();
    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    assert_eq!(ws.lith(&["build", "-q", "--out", "site"]).code, 0);
    let line = ws.read("site/history.jsonl");
    let n = (100 << 20) / line.len();
    let mut long = String::with_capacity(n * line.len() + 200);
    for i in 0..n {
        long.push_str(&line_at(&line, format_args!("{i:07}")));
    }
    ws.write("long-history.jsonl", &long);
    drop(long);
    let (r, peak) = build_with_history(&ws, "long-history.jsonl", &["--history-limit", "3"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(peak < 64, "the build held {peak} MiB");
    let lines = history_lines(&ws, "site");
    let times: Vec<&str> = lines
        .iter()
        .map(|l| l["generated_at"].as_str().unwrap())
        .collect();
    assert_eq!(times.len(), 3);
    assert!(times[0].starts_with(&format!("{:07}-", n - 2)), "{times:?}");
    assert!(times[1].starts_with(&format!("{:07}-", n - 1)), "{times:?}");
}

/// SPEC §11: any single input file keeps peak RSS under 256 MB. The previous lith
/// held a history line whole, then its items again: a line naming one item of
/// 250 MB took 760 MiB, and 50 lines naming the same 100,000 runs 638 MiB. A line
/// longer than 64 MiB is now left out with the lines before it, and the kept lines
/// share their names within 96 MiB, leaving out the oldest past it (`history.cut`).
#[test]
fn a_history_of_more_than_lith_holds_keeps_its_newest_lines_in_bounded_memory() {
    let ws = out_workspace();
    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    assert_eq!(ws.lith(&["build", "-q", "--out", "site"]).code, 0);
    let line = ws.read("site/history.jsonl");
    let at = |i: usize| line_at(&line, i);
    let mut text = at(0).replacen(
        "\"failing\":[",
        &format!("\"failing\":[\"run:{}\"", "x".repeat(100 << 20)),
        1,
    );
    text.push_str(&at(1));
    text.push_str(&at(2));
    ws.write("big-history.jsonl", &text);
    drop(text);
    let (r, peak) = build_with_history(&ws, "big-history.jsonl", &[]);
    assert_eq!(r.code, 0, "a warning: {r:?}");
    // The line is read up to the 64 MiB cap, never held whole.
    assert!(peak < 128, "the build held {peak} MiB");
    let times: Vec<String> = history_lines(&ws, "site")
        .iter()
        .map(|l| l["generated_at"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(times.len(), 3, "{times:?}");
    assert!(
        times[0].starts_with("1-") && times[1].starts_with("2-"),
        "{times:?}"
    );
    let report: serde_json::Value = serde_json::from_str(&ws.read("site/report.json")).unwrap();
    let cut: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "history.cut")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(cut.len(), 1, "{cut:?}");
    assert!(
        cut[0].starts_with("history.jsonl: 1 line(s) left out"),
        "{cut:?}"
    );
}

#[test]
fn a_report_whose_history_names_the_same_items_on_every_line_is_read_back_sharing_them() {
    let ws = out_workspace();
    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    // Twenty builds naming the same 10,000 failing runs (a red streak): 80 MB.
    crate::support::hostile::history(&ws.path().join("red.jsonl"), 20, 10_000, 400, true);
    let (r, _) = build_with_history(&ws, "red.jsonl", &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let (r, peak) = ws.lith_peak_mib(&["render", "-q", "site/report.json", "--out", "again"]);
    assert_eq!(r.code, 0, "{r:?}");
    // 200,000 mentions of 400-byte names held apart take over 90 MiB; shared, each
    // name is held once and a mention is a pointer.
    assert!(peak < 64, "render held {peak} MiB");
    let lines = history_lines(&ws, "again");
    assert_eq!(lines.len(), 21);
    assert_eq!(lines[0]["failing"].as_array().unwrap().len(), 10_000);
    assert_eq!(
        ws.read("again/history.jsonl"),
        ws.read("site/history.jsonl")
    );
}

#[test]
fn a_history_line_lith_cannot_read_is_refused_naming_it() {
    let ws = out_workspace();
    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    assert_eq!(ws.lith(&["build", "-q", "--out", "site"]).code, 0);
    let mut text = ws.read("site/history.jsonl");
    text.push_str("{\"v\":\"lith.history/v1\",\"generated_at\":3}\n");
    ws.write("old-history.jsonl", &text);
    let r = ws.lith(&[
        "build",
        "-q",
        "--out",
        "site",
        "--history",
        "old-history.jsonl",
    ]);
    assert_eq!(r.code, 64, "{r:?}");
    assert!(
        r.stderr.contains("old-history.jsonl:2:"),
        "names the line: {r:?}"
    );
    assert_eq!(
        history_lines(&ws, "site").len(),
        1,
        "the previous site is untouched"
    );
    let missing = ws.lith(&["build", "--out", "site", "--history", "nothing-here"]);
    assert_eq!(missing.code, 0, "{missing:?}");
    assert!(
        missing.stderr.contains(
            "--history nothing-here: no such file or folder; the history starts with this build"
        ),
        "{missing:?}"
    );
}

#[test]
fn the_single_file_report_is_self_contained_and_details_only_failing_and_changed_runs() {
    let ws = two_builds();
    let r = ws.lith_env(
        &[
            "build",
            "-q",
            "--out",
            "site",
            "--previous",
            "last-night",
            "--single-file",
            "one.html",
        ],
        &[EPOCH],
    );
    assert_eq!(r.code, 2, "{r:?}");
    let html = ws.read("one.html");
    // Nothing outside the file: no stylesheet, script or image by URL, and every
    // link is to a place in the file.
    for needle in ["<link", " src=", "url(", "@import"] {
        assert!(!html.contains(needle), "{needle} in the single file");
    }
    for href in html.split("href=\"").skip(1) {
        assert!(
            href.starts_with('#'),
            "a link out of the file: {}",
            &href[..href.find('"').unwrap()]
        );
    }
    assert!(html.contains("<style>") && html.contains("<script>"));
    // Every run in the table; details for the failing and changed ones only.
    for id in [
        "r-broke",
        "r-fixed",
        "r-same",
        "r-recommit",
        "r-still",
        "r-new",
    ] {
        assert!(
            html.contains(&format!("<bdi>{id}</bdi>")),
            "{id} is not in the runs table"
        );
    }
    let details =
        &html[html.find("id=\"h-details\"").unwrap()..html.find("id=\"h-findings\"").unwrap()];
    let detailed: Vec<&str> = details
        .split("<h3 ")
        .skip(1)
        .map(|h| {
            let s = &h[h.find("<bdi>").unwrap() + 5..];
            &s[..s.find("</bdi>").unwrap()]
        })
        .collect();
    assert_eq!(
        detailed,
        ["r-broke", "r-fixed", "r-new", "r-recommit", "r-still"],
        "r-same verified and did not change"
    );
    assert!(details.contains("<span class=\"tag\">newly_failing</span>"));
    assert!(html.contains("id=\"h-changes\""));
    // The same bytes from the same inputs, and from the report alone.
    let again = ws.lith_env(
        &[
            "render",
            "site",
            "--out",
            "again",
            "-q",
            "--single-file",
            "two.html",
        ],
        &[EPOCH],
    );
    assert_eq!(again.code, 2, "{again:?}");
    assert_eq!(ws.read("two.html"), html);
}

#[test]
fn the_index_of_every_run_escapes_what_could_end_its_script() {
    let ws = out_workspace();
    let hostile = "<script>alert(1)<&amp;";
    for i in 0..500 {
        ws.committed_run(&format!("out/r{i:03}"), "complete", &[("a.txt", "a")]);
    }
    ws.committed_run(&format!("out/{hostile}"), "complete", &[("a.txt", "a")]);
    let r = ws.lith(&["build", "-q"]);
    assert_eq!(r.code, 0, "{r:?}");
    let js = ws.read("site/runs/index.js");
    assert!(js.starts_with("window.LITH_RUNS = [["), "{}", &js[..80]);
    assert!(
        !js.contains('<') && !js.contains('>') && !js.contains('&'),
        "raw markup characters in the script"
    );
    let data: Value = serde_json::from_str(
        js.trim_start_matches("window.LITH_RUNS = ")
            .trim_end()
            .trim_end_matches(';'),
    )
    .unwrap();
    let rows = data.as_array().unwrap();
    assert_eq!(rows.len(), 501, "every run, not one page");
    let row = rows
        .iter()
        .find(|r| r[0] == hostile)
        .expect("the hostile run is indexed");
    assert_eq!(row[2], "verified");
    assert!(
        ws.read("site/runs/index.html")
            .contains("<script src=\"index.js\" defer></script>")
    );
    assert!(ws.read("site/runs/index.html").contains("page 1 of 2"));
}

#[test]
fn drift_ages_read_in_human_units_with_a_bar_against_the_threshold() {
    let ws = Workspace::demo();
    // The real clock: the demo's feed ended on 2026-11-22, days ago.
    let r = ws.lith(&["build", "-q", "--out", "site"]);
    assert_eq!(r.code, 3, "{r:?}");
    let page = ws.read("site/drift/index.html");
    // Stale by far: each bar is full, its scale twice the threshold.
    assert!(
        page.contains("<td>15 min</td>"),
        "the idle threshold of 900 s"
    );
    assert!(
        page.contains("<td>2 min</td>"),
        "the heartbeat threshold of 120 s"
    );
    assert!(
        page.contains("<meter min=\"0\" max=\"1800\" high=\"900\" optimum=\"0\" value=\"1800\""),
        "{page}"
    );
    assert!(page.contains("<meter min=\"0\" max=\"240\" high=\"120\" optimum=\"0\" value=\"240\""));
    assert!(
        !page.contains(" s</td><td>"),
        "no age in raw seconds beside a threshold"
    );
}
