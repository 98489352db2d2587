//! `lith build` end to end: the demo workspace, determinism, bad inputs as findings,
//! hostile names, links, and the swap of the output folder.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::{Workspace, files_below};

fn report(ws: &Workspace, out: &str) -> Value {
    serde_json::from_str(&ws.read(&format!("{out}/report.json"))).unwrap()
}

fn run_by_id<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["bundles"]["roots"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["runs"].as_array().unwrap())
        .find(|r| r["run_id"] == id)
        .unwrap_or_else(|| panic!("no run {id}"))
}

/// An artifact row of report.json: `[path, size, sha256]` for a plain ok row,
/// else an object.
fn artifact_row(a: &Value) -> (&str, &str) {
    match a.as_array() {
        Some(row) => {
            assert_eq!(row.len(), 3, "a compact row is [path, size, sha256]: {a}");
            (row[0].as_str().unwrap(), "ok")
        }
        None => (
            a["rel"].as_str().unwrap_or(a["path"].as_str().unwrap()),
            a["status"].as_str().unwrap(),
        ),
    }
}

#[test]
fn the_demo_shows_every_outcome() {
    let ws = Workspace::demo();
    let r = ws.lith(&["build"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stdout.contains("lith build: designed (exit 3)"), "{r:?}");
    let rep = report(&ws, "site");
    // The demo's feed and heartbeat are old: both drift checks are stale, each a
    // finding whose code carries the section's prefix once.
    let drift: Vec<&str> = rep["drift"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(drift, ["drift.heartbeat.stale", "drift.idle.system.stale"]);
    let t = &rep["bundles"]["totals"];
    assert_eq!(
        (
            t["runs"].as_u64(),
            t["verified"].as_u64(),
            t["failed"].as_u64(),
            t["in_progress"].as_u64(),
            t["uncommitted"].as_u64()
        ),
        (Some(6), Some(2), Some(2), Some(1), Some(1))
    );
    let verified = run_by_id(&rep, "2026-11-20T0200-a41f");
    assert_eq!(verified["verification"], "verified");
    assert_eq!(verified["latest"], true);
    assert_eq!(
        verified["unindexed"],
        serde_json::json!(["path_witnesses.json", "scratch/notes.txt"])
    );
    let mism = run_by_id(&rep, "2026-11-19T0200-9c2e");
    let st: Vec<&str> = mism["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| artifact_row(a).1)
        .collect();
    assert!(
        st.contains(&"digest_mismatch") && st.contains(&"size_mismatch"),
        "{st:?}"
    );
    let missing = run_by_id(&rep, "2026-11-18T0200-5b07");
    assert!(
        missing["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| artifact_row(a).1 == "missing")
    );
    assert_eq!(
        run_by_id(&rep, "2026-11-21T0200-e3d9")["verification"],
        "in_progress"
    );
    assert_eq!(
        run_by_id(&rep, "2026-11-17T0200-77aa")["verification"],
        "uncommitted"
    );
    let smoke = rep["bundles"]["roots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "tests/fixtures/demo/smoke/out")
        .unwrap();
    assert_eq!(smoke["latest"]["valid"], false);
    assert_eq!(smoke["findings"][0]["code"], "latest_invalid");
    for page in [
        "index.html",
        "runs/index.html",
        "runs/2026-11-20T0200-a41f/index.html",
        "runs/2026-11-19T0200-9c2e/index.html",
    ] {
        assert!(ws.join(&format!("site/{page}")).is_file(), "{page}");
    }
    // The queue log carries the trace of a writer that died between event and receipt.
    assert_eq!(
        rep["queue"]["replay"]["pending"].as_array().unwrap().len(),
        3
    );
    assert_eq!(rep["queue"]["cross_check"]["receipt_missing"][0]["line"], 5);
    assert_eq!(
        rep["receipts"]["check"]["lines_by_finding"],
        serde_json::json!({"malformed_field": 1})
    );
    for page in ["queue/index.html", "receipts/index.html"] {
        assert!(ws.join(&format!("site/{page}")).is_file(), "{page}");
    }
    let run_page = ws.read("site/runs/2026-11-19T0200-9c2e/index.html");
    assert!(run_page.contains("digest_mismatch"));
    // The run's summary.md is rendered, its table included: a row of it appears as
    // table cells inside the Markdown block (not as the `| … |` source text).
    let markdown = run_page
        .split_once("<div class=\"markdown\">")
        .map(|(_, rest)| rest)
        .expect("the summary is rendered");
    assert!(
        markdown.contains("<td>net_deny</td>") && markdown.contains("<strong>clean</strong>"),
        "summary.md rendered as a table: {}",
        &markdown[..markdown.len().min(400)]
    );
    assert!(!markdown.contains("| net_deny |"));
}

#[test]
fn builds_are_byte_identical_under_source_date_epoch_wherever_they_run() {
    let a = Workspace::demo();
    let b = Workspace::demo();
    let env = [("SOURCE_DATE_EPOCH", "1790000000")];
    assert_eq!(a.lith_env(&["build"], &env).code, 3);
    assert_eq!(b.lith_env(&["build", "--jobs", "1"], &env).code, 3);
    let fa = files_below(&a.join("site"));
    assert_eq!(fa, files_below(&b.join("site")));
    assert!(fa.len() > 8, "{fa:?}");
    for f in &fa {
        assert_eq!(
            std::fs::read(a.join("site").join(f)).unwrap(),
            std::fs::read(b.join("site").join(f)).unwrap(),
            "{f} differs"
        );
    }
    let rep = report(&a, "site");
    assert_eq!(rep["generated_at"], "2026-09-21T14:13:20Z");
    assert!(rep.get("duration_ms").is_none());
    // No absolute path of the machine leaks into any output.
    let tmp = a.path().to_string_lossy().into_owned();
    for f in &fa {
        let text =
            String::from_utf8_lossy(&std::fs::read(a.join("site").join(f)).unwrap()).into_owned();
        assert!(!text.contains(&tmp), "{f} contains {tmp}");
    }
}

#[test]
fn a_corrupt_index_is_exit_4_after_everything_is_written() {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    ws.committed_run("out/good", "complete", &[("a.txt", "a")]);
    ws.committed_run("out/bad", "complete", &[("a.txt", "a")]);
    ws.write("out/bad/artifact_index.json", "{\"artifacts\": [");
    let r = ws.lith(&["build"]);
    assert_eq!(r.code, 4, "{r:?}");
    let rep = report(&ws, "site");
    assert_eq!(run_by_id(&rep, "good")["verification"], "verified");
    assert_eq!(run_by_id(&rep, "bad")["verification"], "error");
    assert_eq!(rep["verdict"]["exit_code"], 4);
    assert!(ws.join("site/runs/good/index.html").is_file());
    assert!(ws.join("site/runs/bad/index.html").is_file());
}

#[test]
fn a_clean_workspace_exits_0() {
    let ws = Workspace::new();
    ws.write("manifest.lith", "(manifest (v \"promethean.manifest/v1\") (site (base-url \"https://ci.example/e/\")) (bundles (roots [\"**/out\"])))");
    ws.committed_run("a/out/r1", "complete", &[("x.json", "{}")]);
    ws.committed_run("b/c/out/r2", "complete", &[("y.json", "[]")]);
    ws.write("a/out/LATEST", "r1");
    let r = ws.lith(&["build", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["bundles"]["verified"], 2);
    let rep = report(&ws, "site");
    let r1 = run_by_id(&rep, "r1");
    assert_eq!(r1["url"], "https://ci.example/e/runs/r1/");
    // The anchor is derived from the path (never written in report.json).
    assert!(r1["artifacts"][0].get("anchor").is_none());
    let path = r1["artifacts"][0]["path"].as_str().unwrap();
    let anchor = format!("a-{}", &crate::support::sha256_hex(path.as_bytes())[..12]);
    assert_eq!(
        r1["artifacts"][0]["url"],
        format!("https://ci.example/e/runs/r1/#{anchor}")
    );
    assert!(
        ws.read("site/runs/r1/index.html")
            .contains(&format!("id=\"{anchor}\""))
    );
}

/// The row ids (`a-…`) of an artifact table page, in order.
fn row_ids(html: &str) -> Vec<String> {
    html.match_indices("<tr id=\"a-")
        .map(|(i, _)| html[i + 8..i + 22].to_string())
        .collect()
}

/// SPEC §11: no page passes 1 MB, and a run of many artifacts pages its table. A
/// run page listed every row it kept (up to 10,000, some 2 MB of rows); the table
/// now goes on over `artifacts-N.html` beside the run's page, 250 rows a page,
/// failing rows first, and each row's link in report.json names the page holding
/// it. A rebuild with fewer rows removes the pages no longer needed.
#[test]
fn a_run_of_many_artifacts_pages_its_table_and_links_each_row_to_its_page() {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (site (base-url \"https://ci.example/e/\")) (bundles (roots [\"out\"])))",
    );
    let names: Vec<String> = (0..600).map(|i| format!("f{i:03}.txt")).collect();
    let bodies: Vec<String> = (0..600).map(|i| format!("body {i:03}")).collect();
    let files: Vec<(&str, &str)> = names
        .iter()
        .zip(&bodies)
        .map(|(n, b)| (n.as_str(), b.as_str()))
        .collect();
    ws.committed_run("out/r1", "complete", &files);
    // Ten missing, ten tampered (same size), and a missing entry whose path is
    // 1,000 characters long: 21 failing rows, listed first.
    for i in 100..110 {
        std::fs::remove_file(ws.join(&format!("out/r1/f{i:03}.txt"))).unwrap();
    }
    for i in 500..510 {
        ws.write(&format!("out/r1/f{i:03}.txt"), format!("BODY {i:03}"));
    }
    let long = "d".repeat(1000);
    let mut index: Value = serde_json::from_str(&ws.read("out/r1/artifact_index.json")).unwrap();
    index["artifacts"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(
            {"path": long, "file_size": 1, "sha256": "0".repeat(64)}
        ));
    ws.index("out/r1", index);
    let r = ws.lith(&["build", "-q"]);
    assert_eq!(r.code, 2, "{r:?}");

    let pages: Vec<(String, String)> = ["index.html", "artifacts-2.html", "artifacts-3.html"]
        .iter()
        .map(|f| (f.to_string(), ws.read(&format!("site/runs/r1/{f}"))))
        .collect();
    assert!(!ws.join("site/runs/r1/artifacts-4.html").exists());
    let ids: Vec<Vec<String>> = pages.iter().map(|(_, html)| row_ids(html)).collect();
    assert_eq!(
        ids.iter().map(Vec::len).collect::<Vec<_>>(),
        [250, 250, 101]
    );
    let anchor = |p: &str| format!("a-{}", &crate::support::sha256_hex(p.as_bytes())[..12]);
    let failing: Vec<String> = (100..110)
        .chain(500..510)
        .map(|i| anchor(&format!("f{i:03}.txt")))
        .chain([anchor(&long)])
        .collect();
    assert_eq!(
        ids[0][..21],
        failing[..],
        "failing rows lead the first page"
    );
    let mut all: Vec<&String> = ids.iter().flatten().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 601, "every row is on exactly one page");
    // Each page links to the others and marks itself.
    for (n, (file, html)) in pages.iter().enumerate() {
        assert!(
            html.contains(&format!(
                "<a href=\"{file}\" aria-current=\"page\">{}</a>",
                n + 1
            )),
            "{file}"
        );
        for other in ["index.html", "artifacts-2.html", "artifacts-3.html"] {
            assert!(
                html.contains(&format!("href=\"{other}\"")),
                "{file} links {other}"
            );
        }
    }
    assert!(
        pages[1]
            .1
            .contains("<h1>Run <code class=\"wrap\">r1</code>: artifacts 251–500</h1>")
    );
    // The long path is shown cut; its anchor is made from the whole of it.
    let first = &pages[0].1;
    assert!(first.contains(&format!("<code>{}…</code>", "d".repeat(200))));
    assert!(!first.contains(&"d".repeat(201)));
    // A row's link names the page that holds its id.
    let rep = report(&ws, "site");
    let rows = run_by_id(&rep, "r1")["artifacts"].as_array().unwrap();
    assert_eq!(rows.len(), 601);
    let mut on_page = [0usize; 3];
    for a in rows {
        let url = a["url"].as_str().unwrap();
        let (page, id) = url
            .strip_prefix("https://ci.example/e/runs/r1/")
            .and_then(|rest| rest.split_once('#'))
            .unwrap_or_else(|| panic!("{url}"));
        let n = match page {
            "" => 0,
            "artifacts-2.html" => 1,
            "artifacts-3.html" => 2,
            _ => panic!("{url}"),
        };
        assert!(ids[n].iter().any(|i| i == id), "{url} is not on {page}");
        on_page[n] += 1;
    }
    assert_eq!(on_page, [250, 250, 101]);
    // The pages are the report's: rendered again from it, byte for byte.
    let r = ws.lith(&["render", "site/report.json", "--out", "rendered", "-q"]);
    assert_eq!(r.code, 2, "{r:?}");
    for (file, html) in &pages {
        assert_eq!(
            &ws.read(&format!("rendered/runs/r1/{file}")),
            html,
            "{file}"
        );
    }

    // Fewer rows: the third page goes, the second is rewritten.
    ws.committed_run("out/r1", "complete", &files[..300]);
    let r = ws.lith(&["build", "-q"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(row_ids(&ws.read("site/runs/r1/artifacts-2.html")).len(), 50);
    assert!(!ws.join("site/runs/r1/artifacts-3.html").exists());
    assert!(
        !ws.read("site/runs/r1/index.html")
            .contains("artifacts-3.html")
    );
}

/// A run page shows the first 100 of its unindexed files and of the entries its
/// index lists as missing, and counts the rest, which report.json lists (the page
/// listed all 10,000 a report may hold).
#[test]
fn a_run_page_shows_a_hundred_of_its_other_lists_and_counts_the_rest() {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    for i in 0..150 {
        ws.write(&format!("out/r1/stray-{i:03}.txt"), "x");
    }
    let mut index: Value = serde_json::from_str(&ws.read("out/r1/artifact_index.json")).unwrap();
    index["missing"] = (0..130).map(|i| format!("gone-{i:03}.json")).collect();
    ws.index("out/r1", index);
    ws.lith(&["build", "-q"]);
    let page = ws.read("site/runs/r1/index.html");
    assert!(page.contains("<div><dt>Unindexed files</dt><dd>150</dd></div>"));
    assert!(page.contains("<code class=\"wrap\">stray-099.txt</code>"));
    assert!(!page.contains("stray-100.txt"));
    assert!(page.contains("… 50 more; <code>report.json</code> lists them."));
    assert!(page.contains("<code class=\"wrap\">gone-099.json</code>"));
    assert!(!page.contains("gone-100.json"));
    assert!(page.contains("… 30 more; <code>report.json</code> lists them."));
    let rep = report(&ws, "site");
    let r1 = run_by_id(&rep, "r1");
    assert_eq!(r1["unindexed"].as_array().unwrap().len(), 150);
    assert_eq!(r1["index"]["missing"].as_array().unwrap().len(), 130);
}

/// SPEC §11: a page under 1 MB, whatever a run holds. Every section of this run's
/// page is as large as its own caps allow, of characters escaped at five bytes
/// (together some 3.5 MB): the page keeps its facts and table, fills the rest in
/// order, and says what it leaves out.
#[test]
fn a_run_whose_every_section_is_hostile_keeps_its_page_under_a_megabyte() {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    let esc = |c: &str, n: usize| c.repeat(n);
    // 150 status fields of 600-character names and values (100 shown, cut at 500).
    let mut status = serde_json::Map::new();
    status.insert("run_id".into(), "r1".into());
    status.insert("state".into(), "complete".into());
    for i in 0..150 {
        status.insert(format!("{i:03}{}", esc("'", 600)), esc("\"", 600).into());
    }
    ws.write("out/r1/run_status.json", Value::Object(status).to_string());
    // A gating input of 100,000 `<`: the packet is cut at 32 KiB.
    ws.write(
        "out/r1/run_manifest.json",
        serde_json::json!({"channel": esc("<", 100_000)}).to_string(),
    );
    // 150 unindexed files of 250-character names (100 shown, cut at 200).
    for i in 0..150 {
        ws.write(&format!("out/r1/{i:03}{}", esc("'", 247)), "x");
    }
    // 150 witness records of four 300-character paths (100 shown, each cut at 200).
    let record = serde_json::json!({
        "requested_path": esc(">", 300), "observed_path": esc("<", 300),
        "observed_path_nofirmlink": esc("&", 300), "normalized_path": esc("\"", 300),
    });
    ws.write(
        "out/r1/path_witnesses.json",
        serde_json::json!({"records": vec![record; 150]}).to_string(),
    );
    // summary.md at its 256 KiB cap, every character escaped when rendered.
    let line = format!("{}\n\n", esc("&<", 200));
    ws.write("out/r1/summary.md", line.repeat(256 * 1024 / line.len()));
    // 250 rows of 4,000-character paths (cut at 200), the last 200 repeating one
    // path with sizes that differ: 201 findings of that path (cut at 500 on the
    // page); and 150 entries the index lists as missing (100 shown, cut at 200).
    let long = esc("&", 4_000);
    let entry = |p: &str, size: usize| serde_json::json!({"path": p, "file_size": size, "sha256": "ab".repeat(32)});
    let mut artifacts: Vec<Value> = (0..50)
        .map(|i| entry(&format!("{i:03}{}", esc("\"", 4_000)), 1))
        .collect();
    artifacts.extend((0..200).map(|i| entry(&long, i)));
    ws.index(
        "out/r1",
        serde_json::json!({"run_id": "r1", "status": "ok", "artifacts": artifacts,
            "missing": vec![esc("<", 4_000); 150]}),
    );
    let r = ws.lith(&["build", "-q"]);
    assert_eq!(r.code, 2, "{r:?}");
    let page = ws.read("site/runs/r1/index.html");
    assert!(page.len() <= 1_000_000, "{} bytes", page.len());
    assert!(
        page.len() > 900_000,
        "the room is used: {} bytes",
        page.len()
    );
    // Its facts and whole table are there, and every finding (the first to fill).
    assert!(page.contains("<div><dt>Artifacts ok</dt><dd>0/250</dd></div>"));
    assert_eq!(page.matches("<tr id=\"a-").count(), 250);
    let ids: std::collections::BTreeSet<&str> = page
        .match_indices("<tr id=\"")
        .map(|(i, _)| page[i + 8..].split('"').next().unwrap())
        .collect();
    assert_eq!(ids.len(), 250, "every row has an id of its own");
    let rep = report(&ws, "site");
    let run = &rep["bundles"]["roots"][0]["runs"][0];
    assert_eq!(
        page.matches("<li class=\"sev-").count(),
        run["findings"].as_array().unwrap().len()
    );
    assert!(page.contains("<code>duplicate_entry</code>: <bdi>&#38;&#38;"));
    // Then what the index lists as missing, all 100 a page lists.
    let section = |id: &str| {
        let at = page.find(&format!("<h2 id=\"{id}\"")).unwrap();
        let end = page[at..].find("</section>").unwrap();
        &page[at..at + end]
    };
    assert_eq!(
        section("h-artifacts")
            .matches("<li><code class=\"wrap\">&#60;")
            .count(),
        100
    );
    // Then as many of the rest as fit, each section counting what it leaves out.
    let more = |text: &str, says: &str| -> usize {
        let at = text
            .find(says)
            .unwrap_or_else(|| panic!("no {says:?} in {}", &text[..200]));
        let start = text[..at].rfind(['…', ' ']).unwrap();
        let start = start + text[start..].chars().next().unwrap().len_utf8();
        text[start..at].trim().parse().unwrap()
    };
    let unindexed = section("h-unindexed");
    assert_eq!(
        unindexed.matches("<li>").count() + more(unindexed, " more; <code>report.json</code>"),
        run["unindexed"].as_array().unwrap().len()
    );
    let status = section("h-status");
    assert_eq!(
        status.matches("<tr>").count() + more(status, " more fields are not shown"),
        152
    );
    assert!(unindexed.matches("<li>").count() > 0 && status.matches("<tr>").count() > 0);
    assert!(
        section("h-witnesses").contains(
            "None of its 150 records is shown: this page has no room for them; the run's"
        )
    );
    // The packet, already cut before its long line, fits in what the witnesses
    // left.
    assert!(page.contains(
        "more bytes of the packet are not shown: its gating inputs are large. <code>lith promote</code> writes it whole."
    ));
    let summary = section("h-summary");
    assert!(
        summary.contains(
            "bytes) is not shown: this page has no room for it. The run's folder has the file."
        ),
        "{summary}"
    );
    // The same page, rendered again from report.json.
    let r = ws.lith(&["render", "site/report.json", "--out", "again"]);
    assert!(r.code == 0 || r.code == 2, "{r:?}");
    assert_eq!(ws.read("again/runs/r1/index.html"), page);
}

/// The number `says` counts in `text` ("… 12 more …", "12 more …").
fn count_before(text: &str, says: &str) -> usize {
    let at = text
        .find(says)
        .unwrap_or_else(|| panic!("no {says:?} on the page"));
    let digits = text[..at].trim_end();
    let start = digits
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    digits[start..].parse().unwrap()
}

/// SPEC §11: the overview under 100 KB. 300 runs of long names, each with two
/// findings naming it, listed 200 findings of some 2.8 KB: an overview of 568 KB.
/// A thousand items flipping in the history listed a thousand rows of marks.
#[test]
fn the_overview_lists_what_fits_in_100_kb_and_counts_the_rest() {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    for i in 0..300 {
        let run = format!("out/{i:03}{}", "'".repeat(240));
        ws.write(
            &format!("{run}/run_status.json"),
            serde_json::json!({"run_id": format!("{}{}", "x".repeat(100), "\"".repeat(100)), "state": "complete"}).to_string(),
        );
        ws.index(
            &run,
            serde_json::json!({"run_id": "y", "status": "ok", "artifacts": []}),
        );
    }
    // A history in which 1,000 items failed and passed by turns.
    let items: Vec<String> = (0..1000)
        .map(|i| format!("gate:g{i:04}{}", "<".repeat(40)))
        .collect();
    ws.lith(&["build", "-q", "--out", "first"]);
    let first: Value = serde_json::from_str(ws.read("first/history.jsonl").trim()).unwrap();
    let line = |failing: bool| {
        let (f, p) = if failing {
            (&items[..], &[][..])
        } else {
            (&[][..], &items[..])
        };
        let mut l = first.clone();
        l["failing"] = serde_json::json!(f);
        l["passing"] = serde_json::json!(p);
        l.to_string()
    };
    let history: Vec<String> = [true, false, true, false]
        .iter()
        .map(|f| line(*f))
        .collect();
    ws.write("old/history.jsonl", history.join("\n") + "\n");
    let r = ws.lith(&["build", "-q", "--history", "old"]);
    assert_eq!(r.code, 2, "{r:?}");
    let page = ws.read("site/index.html");
    assert!(page.len() < 100_000, "{} bytes", page.len());
    let rep = report(&ws, "site");
    let at_warning = rep["bundles"]["roots"][0]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|run| run["findings"].as_array().unwrap())
        .chain(rep["findings"].as_array().unwrap())
        .filter(|f| f["severity"] != "info")
        .count();
    assert!(at_warning > 600, "{at_warning}");
    let findings = page.find("<h2 id=\"h-findings\"").unwrap();
    let shown = page[findings..].matches("<li class=\"sev-").count();
    assert!(shown > 10, "{shown}");
    assert_eq!(
        shown
            + count_before(
                &page[findings..],
                "more not shown; see <a href=\"report.json\">report.json</a>."
            ),
        at_warning
    );
    assert_eq!(rep["history"]["flaky"].as_array().unwrap().len(), 1000);
    assert!(page.contains("Flaky: 1000 item(s) flipped between pass and fail"));
    let flaky = page.find("<h2 id=\"h-flaky\"").unwrap();
    let listed = page[flaky..findings].matches("<li>").count();
    assert!(listed > 10, "{listed}");
    assert_eq!(
        listed + count_before(&page[flaky..findings], "more not shown; see the history"),
        1000
    );
}

/// SPEC §11: a page under 1 MB. 1,200 pending tasks of 300-character fields made a
/// queue page of 8.4 MB.
#[test]
fn the_queue_page_lists_what_fits_and_counts_the_rest() {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (queue (log \"queue.jsonl\")))",
    );
    let q = "\"".repeat(300);
    let log: String = (0..1200)
        .map(|i| {
            let task = serde_json::json!({"created_at": q, "dedupe_key": format!("{i:04}{q}"),
                "id": format!("{i:04}{q}"), "kind": q, "owner": q, "payload": {"x": q}, "status": "pending"});
            serde_json::json!({"op": "enqueue", "task": task, "ts": "2026-11-20T01:00:00Z",
                "v": "eta-mu.task-queue/v1"})
            .to_string()
                + "\n"
        })
        .collect();
    ws.write("queue.jsonl", log);
    ws.lith(&["build", "-q"]);
    let page = ws.read("site/queue/index.html");
    assert!(page.len() <= 1_000_000, "{} bytes", page.len());
    assert!(
        page.len() > 800_000,
        "the room is used: {} bytes",
        page.len()
    );
    let pending = page.find("<h2 id=\"h-pending\"").unwrap();
    let rows = page[pending..].matches("<tr><td>").count();
    assert!(rows > 50, "{rows}");
    assert_eq!(
        rows + count_before(&page[pending..], "more pending task(s) not shown"),
        1200
    );
    // Cross-checked against receipts, none of the 1,200 has one: the pending tasks,
    // first on the page, left no room to list an operation without a receipt.
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (queue (log \"queue.jsonl\")) (receipts (log \"receipts.log\")))",
    );
    ws.write("receipts.log", "");
    ws.lith(&["build", "-q"]);
    let page = ws.read("site/queue/index.html");
    assert!(page.len() <= 1_000_000, "{} bytes", page.len());
    let pending = page.find("<h2 id=\"h-pending\"").unwrap();
    let cross = page.find("<h2 id=\"h-cross\"").unwrap();
    let rows = page[pending..cross].matches("<tr><td>").count();
    let missing = page[cross..].matches("<li>line ").count();
    assert!(rows > 20, "{rows} pending tasks shown");
    assert!(
        missing > 100,
        "{missing} operations without a receipt shown"
    );
    assert_eq!(
        missing
            + count_before(
                &page[cross..],
                "more operation(s) without a receipt not shown"
            ),
        1200
    );
}

/// SPEC §11: every page under 1 MB. The demo with 1,200 receipts of 300-character
/// fields (pages of 3.3 MB), 2,000 feed events of a phase with such fields (its
/// page 4.7 MB) and 1,200 open questions of 1,000 `<` (the gates page 5.3 MB).
#[test]
fn section_pages_of_hostile_inputs_stay_under_a_megabyte_and_count_the_rest() {
    let ws = Workspace::demo();
    let q = "\"".repeat(300);
    let demo = "tests/fixtures/demo";
    let mut receipts = ws.read(&format!("{demo}/receipts.log"));
    for i in 0..1200 {
        receipts.push_str(&format!(
            "ts={q} | kind=:{q} | origin={q} | owner={q} | dod={q} | pi={q} | host={q} | manifest={q} | refs={q},{q},{q},{q},{q} | x{i}={q}{}\n",
            // Every hundredth with a finding, to be linked from every page.
            if i % 100 == 0 { " | no equals sign" } else { "" }
        ));
    }
    ws.write(&format!("{demo}/receipts.log"), receipts);
    let mut feed = ws.read(&format!("{demo}/activity/activity_feed.jsonl"));
    for i in 0..2000u64 {
        feed.push_str(
            &(serde_json::json!({"action": "started", "emit_mode": q, "phase_id": "PHASE_NIGHTLY",
                "run_id": format!("{q}{i}"), "tool": q, "ts_epoch_ms": 1795308098128u64 + i,
                "ts_utc": q, "verifier_mode": q})
            .to_string()
                + "\n"),
        );
    }
    ws.write(&format!("{demo}/activity/activity_feed.jsonl"), feed);
    let packet = format!("{demo}/promptdb/diagrams/release_gate.packet.lisp");
    let questions: String = (0..1200)
        .map(|i| format!("      (q (id q.x{i:04}) (text \"{}\"))\n", "<".repeat(1000)))
        .collect();
    ws.write(
        &packet,
        ws.read(&packet).replace(
            "      (q (id q.retention)",
            &format!("{questions}      (q (id q.retention)"),
        ),
    );
    ws.lith(&["build", "-q"]);
    let site = ws.join("site");
    for f in files_below(&site).iter().filter(|f| f.ends_with(".html")) {
        let len = std::fs::metadata(site.join(f)).unwrap().len();
        assert!(len <= 1_000_000, "{f}: {len} bytes");
    }
    let rep = report(&ws, "site");
    // Receipts: pages of fewer rows, every row on one of them, and a finding's link
    // names the page that holds its line.
    let pages: Vec<String> = files_below(&site.join("receipts"))
        .into_iter()
        .filter(|f| f.ends_with(".html"))
        .collect();
    assert!(pages.len() > 3, "{pages:?}");
    let mut lines = Vec::new();
    for p in &pages {
        let html = ws.read(&format!("site/receipts/{p}"));
        lines.extend(
            html.match_indices("<tr id=\"line-")
                .map(|(i, _)| html[i + 13..].split('"').next().unwrap().to_string()),
        );
    }
    lines.sort();
    lines.dedup();
    assert_eq!(
        lines.len(),
        rep["receipts"]["rows"].as_array().unwrap().len()
    );
    let mut checked = 0;
    for p in &pages {
        let html = ws.read(&format!("site/receipts/{p}"));
        let summary = html.find("<summary>Jump to a line").unwrap();
        for (i, _) in html[summary..].match_indices("<li><a href=\"") {
            let href = html[summary + i + 13..].split('"').next().unwrap();
            let (file, anchor) = href.split_once('#').unwrap();
            let target = if file.is_empty() { p.as_str() } else { file };
            assert!(
                ws.read(&format!("site/receipts/{target}"))
                    .contains(&format!("<tr id=\"{anchor}\"")),
                "{p}: {href}"
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
    // The gate's questions: those shown and those counted make all.
    let gates = ws.read("site/gates/index.html");
    let shown = gates.matches("<li><code>q.x").count();
    assert!(shown > 100, "{shown}");
    assert_eq!(
        shown + count_before(&gates, "more unresolved question(s) not shown"),
        1202
    );
    // The phase: the steps proof was judged on, then the latest.
    let phase = ws.read("site/phases/PHASE_NIGHTLY/index.html");
    let chain = &rep["dod"]["phases"]["PHASE_NIGHTLY"]["checks"]["activity_chain"];
    assert_eq!(
        phase.matches("<span class=\"tag\">judged</span>").count(),
        chain["triple"].as_array().unwrap().len()
    );
    let listed =
        phase.matches("<li><time").count() + phase.matches("<li class=\"in-triple\"><time").count();
    assert!(listed > 100, "{listed}");
    assert!(phase.contains("earlier event(s) of this phase not shown"));
}

/// A path the index names three times is three rows: each has an id of its own
/// (the page was invalid HTML, three rows of one id), and report.json links each.
#[test]
fn rows_of_a_path_the_index_repeats_have_ids_of_their_own() {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (site (base-url \"https://ci.example/e/\")) (bundles (roots [\"out\"])))",
    );
    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    let a = serde_json::json!({"path": "a.txt", "file_size": 1,
        "sha256": crate::support::sha256_hex(b"a")});
    ws.index(
        "out/r1",
        serde_json::json!({"run_id": "r1", "status": "ok", "artifacts": [a, a, a]}),
    );
    assert_eq!(ws.lith(&["build", "-q"]).code, 0);
    let page = ws.read("site/runs/r1/index.html");
    let ids: Vec<&str> = page
        .match_indices("<tr id=\"")
        .map(|(i, _)| page[i + 8..].split('"').next().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[1], format!("{}-2", ids[0]));
    assert_eq!(ids[2], format!("{}-3", ids[0]));
    let rep = report(&ws, "site");
    let urls: Vec<String> = run_by_id(&rep, "r1")["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["url"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = ids
        .iter()
        .map(|id| format!("https://ci.example/e/runs/r1/#{id}"))
        .collect();
    assert_eq!(urls, want);
}

/// SPEC §11: a page under 1 MB. 300 DoD documents naming 50 absent evidence files
/// of long names each made a phases list of 24 MB: a row now names five and links
/// its page for the rest, and the rows fill a room.
#[test]
fn the_phases_list_names_a_few_missing_items_a_row_and_counts_the_rest() {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (activity (feed \"feed.jsonl\")) (dod (docs \"docs/dod\")))",
    );
    ws.write("feed.jsonl", "");
    for i in 0..1500 {
        let id = format!("PHASE_{i:04}");
        let evidence: String = (0..10)
            .map(|j| {
                format!(
                    "- file: `e/{j:03}{}` sha256:{}\n",
                    "<".repeat(150),
                    "0".repeat(64)
                )
            })
            .collect();
        ws.write(
            &format!("docs/dod/DOD__{id}.md"),
            format!("# DoD — {id}\n\n## 0. Metadata\n- **Phase / Task ID**: {id}\n- **Gate**: G1\n\n## Evidence\n{evidence}"),
        );
    }
    ws.lith(&["build", "-q"]);
    let page = ws.read("site/phases/index.html");
    assert!(page.len() <= 1_000_000, "{} bytes", page.len());
    let rows = page.matches("<tr><td><a href=\"PHASE_").count();
    assert!(rows > 100, "{rows}");
    assert_eq!(
        rows + count_before(
            &page,
            "more phase(s) not listed: this page has no room for them"
        ),
        1500
    );
    let first = &page[page
        .find("<tr><td><a href=\"PHASE_0000/index.html\"")
        .unwrap()..];
    let first = &first[..first.find("</tr>").unwrap()];
    assert_eq!(first.matches("<code class=\"wrap\">").count(), 5, "{first}");
    let missing = report(&ws, "site")["dod"]["phases"]["PHASE_0000"]["missing"]
        .as_array()
        .unwrap()
        .len();
    assert!(first.contains(&format!(
        " and <a href=\"PHASE_0000/index.html\">{} more</a>",
        missing - 5
    )));
    // The phases the list leaves out still have their pages.
    assert!(ws.join("site/phases/PHASE_1499/index.html").exists());
}

/// SPEC §11: a page under 1 MB. 1,200 runs of 255-character names failing since the
/// previous build made a Changes page of 2.0 MB.
#[test]
fn the_changes_page_lists_what_fits_and_counts_the_rest() {
    let ws = Workspace::new();
    // A gate clear while x.txt is there.
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"]))
           (proof-schema (required-refs [\"x.txt\"]) (host-handle \"h\"))
           (gates (gate (id push-truth))))",
    );
    ws.write("x.txt", "x");
    for i in 0..1200 {
        ws.committed_run(
            &format!("out/{i:04}{}", "\"".repeat(251)),
            "complete",
            &[("a.txt", "a")],
        );
    }
    assert_eq!(ws.lith(&["build", "-q", "--out", "before"]).code, 0);
    for i in 0..1200 {
        ws.write(&format!("out/{i:04}{}/a.txt", "\"".repeat(251)), "b");
    }
    std::fs::remove_file(ws.join("x.txt")).unwrap();
    assert_eq!(ws.lith(&["build", "-q", "--previous", "before"]).code, 2);
    let page = ws.read("site/changes/index.html");
    assert!(page.len() <= 1_000_000, "{} bytes", page.len());
    let rows = page.matches("<tr class=\"ch-newly_failing\">").count();
    // The gate's row has its share of the room: the runs filled it all before.
    let gate = page
        .matches("gate <a href=\"../gates/index.html\"><code class=\"wrap\"><bdi>push-truth<")
        .count();
    assert_eq!(gate, 1, "the gate that closed is listed");
    let runs = rows - gate;
    assert!(runs > 100, "{runs}");
    assert_eq!(
        runs + count_before(
            &page,
            "more not shown; <a href=\"../report.json\">report.json</a> lists every one"
        ),
        1200
    );
}

/// SPEC §11: a page under 1 MB. 600 runs of 255-character names under a root
/// whose path is 754 such characters made a runs page of 2.7 MB: pages hold 500
/// runs or 800 KB of rows, whichever comes first.
#[test]
fn the_runs_list_is_paged_by_bytes_as_well_as_by_count() {
    let ws = Workspace::new();
    let root = format!("out/{0}/{0}/{0}", "'".repeat(250));
    ws.write(
        "manifest.lith",
        format!("(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"{root}\"])))"),
    );
    for i in 0..600 {
        ws.committed_run(
            &format!("{root}/{i:03}{}", "\"".repeat(252)),
            "complete",
            &[("a.txt", "a")],
        );
    }
    assert_eq!(ws.lith(&["build", "-q"]).code, 0);
    let pages: Vec<String> = files_below(&ws.join("site/runs"))
        .into_iter()
        .filter(|f| !f.contains('/') && f.ends_with(".html"))
        .collect();
    assert!(pages.len() > 2, "{pages:?}");
    let mut listed = 0;
    for p in &pages {
        let page = ws.read(&format!("site/runs/{p}"));
        assert!(page.len() <= 1_000_000, "{p}: {} bytes", page.len());
        assert!(page.contains("at most 500 runs per page"), "{p}");
        listed += page.matches("<tr data-status=").count();
    }
    assert_eq!(listed, 600, "every run is on one page");
}

#[test]
fn no_bundles_section_means_not_configured_and_nothing_checked_is_not_green() {
    let ws = Workspace::new();
    ws.write("manifest.lith", "(manifest (v \"promethean.manifest/v1\"))");
    let r = ws.lith(&["build"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("bundles: not configured"), "{r:?}");
    assert!(r.stdout.contains("NOTHING WAS CHECKED"), "{r:?}");
    let rep = report(&ws, "site");
    assert_eq!(rep["bundles"]["configured"], false);
    assert_eq!(rep["findings"][0]["code"], "build.nothing_checked");
    // One verified run is something checked: green.
    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    let r = ws.lith(&["build"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains("NOTHING WAS CHECKED"), "{r:?}");
}

/// SPEC §1, never green on nothing: each mistake a new user makes is a finding with
/// the exit code of §1 and a message that says what to do.
#[test]
fn a_new_users_mistakes_are_findings_not_green_builds() {
    let ws = Workspace::new();
    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    let build = |manifest: &str| {
        ws.write("manifest.lith", manifest);
        let r = ws.lith(&["build"]);
        let codes: Vec<String> = report(&ws, "site")["findings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| f["code"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        (r, codes)
    };
    // A glob that matches nothing.
    let (r, codes) = build("(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"ouy\"])))");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        codes.contains(&"bundles.none_found".to_string()),
        "{codes:?}"
    );
    // A root that is a run folder.
    let (r, codes) =
        build("(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out/r1\"])))");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        codes.contains(&"bundles.root_is_run".to_string()),
        "{codes:?}"
    );
    // A typo'd section name: a warning that names the section it probably meant,
    // and, as nothing else is configured, a build that checked nothing.
    let (r, codes) = build("(manifest (v \"promethean.manifest/v1\") (bundels (roots [\"out\"])))");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("did you mean (bundles …)?"), "{r:?}");
    assert!(
        codes.contains(&"build.nothing_checked".to_string()),
        "{codes:?}"
    );
    // A configured queue log that is not there.
    let (r, _) = build(
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])) (queue (log \"state/queu.jsonl\")))",
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("queue.input_missing"), "{r:?}");
    let r = ws.lith(&["queue", "replay", "--log", "state/queu.jsonl"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("queue.input_missing"), "{r:?}");
    // A DoD folder that is not there.
    let (r, _) = build(
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])) (dod (docs \"doc/dod\")))",
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("dod.input_missing"), "{r:?}");
    // An unknown manifest version is a manifest error.
    ws.write(
        "manifest.lith",
        "(manifest\n  (v \"promethean.manifest/v2\"))",
    );
    let r = ws.lith(&["build"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr
            .contains("manifest.lith:2:3: unknown manifest version"),
        "{r:?}"
    );
    // A missing manifest names the folder searched and the flag, never `:0:0`.
    std::fs::remove_file(ws.join("manifest.lith")).unwrap();
    let r = ws.lith(&["build"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("--manifest"), "{r:?}");
    assert!(r.stderr.contains(&*ws.path().to_string_lossy()), "{r:?}");
    assert!(!r.stderr.contains(":0:0"), "{r:?}");
}

/// What a CI runner or a terminal would act on in `text`: a line that starts a
/// workflow command (`::`, after blanks) unless lith made it (an annotation of a
/// run below `out/`, when `annotations`), `##[` anywhere, and characters but line
/// breaks and tabs that are control or invisible ones. Commands are looked for in
/// a line's ASCII characters alone, as the runner's search skips characters it
/// ignores.
fn acted_on(text: &str, annotations: bool) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let ascii: String = line.chars().filter(char::is_ascii).collect();
        let start = ascii.trim_start();
        let ours = annotations
            && [
                "::error file=out/",
                "::warning file=out/",
                "::notice file=out/",
            ]
            .iter()
            .any(|p| start.starts_with(p));
        if start.starts_with("::") && !ours {
            found.push(format!("a command: {line:?}"));
        }
        if ascii.contains("##[") {
            found.push(format!("##[: {line:?}"));
        }
        if let Some(c) = line.chars().find(|&c| {
            (c.is_control() && c != '\t')
                || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        }) {
            found.push(format!("{c:?}: {line:?}"));
        }
    }
    found
}

#[test]
fn nothing_lith_prints_is_a_workflow_command_or_an_escape_sequence() {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    // A run folder and an artifact named to give the CI runner orders if printed
    // as they are: a line of their own starting with `::`, the older `##[` form
    // anywhere in a line (also with a soft hyphen inside, which the runner's search
    // skips), and a terminal's escape sequences (retitle the window, clear it).
    // The step summary is Markdown: a link and HTML must show as text there.
    let id = "0evil\n::error file=x::injected ##[set-output name=verdict;]passed \u{1b}]0;title\u{7} \u{9b}2J #\u{ad}#[add-mask]z #é#[x \u{202e} [click](evil.example) <b>x";
    let artifact = "r\r\n::warning::spoofed ##[group]x.txt";
    ws.committed_run(&format!("out/{id}"), "complete", &[(artifact, "before")]);
    ws.write(&format!("out/{id}/{artifact}"), "after!");
    let verify = format!("out/{id}");
    // Each command, whether it prints annotations, and what it names.
    let runs: [(&[&str], bool, &[&str]); 5] = [
        (&["build", "--summary", "summary.md"], false, &["0evil"]),
        (
            &["build", "--annotations", "--out", "site2"],
            true,
            &["0evil"],
        ),
        (&["build", "--json", "--out", "site3"], false, &[]),
        (&["verify", &verify], false, &["0evil", "spoofed"]),
        (&["verify", "--json", &verify], false, &["0evil", "spoofed"]),
    ];
    let mut text_summary = String::new();
    for (args, annotations, names) in runs {
        let r = ws.lith(args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        if args[0] == "build" && text_summary.is_empty() {
            text_summary = r.stdout.clone();
        }
        for name in names {
            assert!(r.stdout.contains(name), "{args:?} names {name}: {r:?}");
        }
        let found = [acted_on(&r.stdout, annotations), acted_on(&r.stderr, false)].concat();
        assert!(found.is_empty(), "{args:?}: {found:#?}");
    }
    // The summary names the run in a code span, and in its findings as text whose
    // link and HTML are escaped.
    let md = ws.read("summary.md");
    assert_eq!(acted_on(&md, false), Vec::<String>::new());
    let text: String = md.replace("\\`", "").split('`').step_by(2).collect();
    assert!(md.contains("0evil") && text.contains("0evil"), "{md}");
    for markup in ["[click](", "<b>"] {
        assert!(!text.contains(markup), "{markup} in {md}");
    }
    // JSON is escaped with JSON's escapes: the document still says what it said.
    let doc: Value = serde_json::from_str(&ws.lith(&["verify", "--json", &verify]).stdout).unwrap();
    let said = doc.to_string();
    for name in [id, artifact] {
        assert!(
            said.contains(&Value::from(name).to_string()),
            "{name:?} in {said}"
        );
    }
    // The text summary keeps the run on one line, its line break written `\n`.
    assert!(
        text_summary
            .lines()
            .any(|l| l.starts_with("  - out/0evil\\n::error")),
        "{text_summary}"
    );
}

/// The lines of `text` that a value from the inputs started: each value below
/// carries a line break followed by `FORGED`, which could pass for a line of
/// lith's own if it started one.
fn forged_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.trim_start().starts_with("FORGED"))
        .collect()
}

#[test]
fn a_value_from_the_inputs_never_starts_a_line_of_its_own() {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    // A folder that is not a run, refused by name.
    std::fs::create_dir_all(ws.join("out/none\nFORGED verified")).unwrap();
    // A run committed by its writer: its folder, a link it skips, and an expected
    // file that is missing.
    ws.write("out/c\nFORGED committed/a.txt", "a");
    ws.write(
        "out/c\nFORGED committed/run_status.json",
        r#"{"run_id": "c", "state": "complete"}"#,
    );
    std::os::unix::fs::symlink(
        "a.txt",
        ws.join("out/c\nFORGED committed/l\nFORGED skipped"),
    )
    .unwrap();
    // A run whose index a repair changes.
    ws.committed_run("out/q", "complete", &[("b\nFORGED changed", "before")]);
    ws.write("out/q/b\nFORGED changed", "after!");
    let runs: [(&[&str], i32, &str); 3] = [
        (&["verify", "out/none\nFORGED verified"], 2, "refused"),
        (
            &[
                "commit",
                "out/c\nFORGED committed",
                "--expect",
                "m\nFORGED missing",
            ],
            0,
            "skipped  l\\nFORGED skipped",
        ),
        (&["reindex", "out/q", "--repair"], 0, "sha256: "),
    ];
    for (args, code, says) in runs {
        let r = ws.lith(args);
        assert_eq!(r.code, code, "{args:?}: {r:?}");
        assert!(r.stdout.contains(says), "{args:?}: {r:?}");
        let found = [forged_lines(&r.stdout), forged_lines(&r.stderr)].concat();
        assert!(found.is_empty(), "{args:?}: {found:#?}\n{r:?}");
    }
    // Committed again: refused, with the folder in the error.
    let r = ws.lith(&["commit", "out/c\nFORGED committed"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("already committed"), "{r:?}");
    assert_eq!(forged_lines(&r.stderr), Vec::<&str>::new());

    // The drift report's evidence, from the activity feed.
    let ws = Workspace::demo();
    let feed = ws.join("tests/fixtures/demo/activity/activity_feed.jsonl");
    let mut text = std::fs::read_to_string(&feed).unwrap();
    text.push_str(&format!(
        "{}\n",
        serde_json::json!({"ts_epoch_ms": 1795308199000u64, "phase_id": "PHASE_SHARDING", "action": "heartbeat", "emit_mode": "runtime_auto", "verifier_mode": "operational_proof", "tool": "t", "run_id": "s-2", "evidence": ["e\nFORGED evidence"]})
    ));
    std::fs::write(&feed, text).unwrap();
    let r = ws.lith(&["drift"]);
    assert!(r.stdout.contains("evidence: e\\nFORGED evidence"), "{r:?}");
    assert_eq!(forged_lines(&r.stdout), Vec::<&str>::new());

    // A syntax error quotes the reason it found in the file on its line.
    ws.write("bad.lith", "(manifest (v \"x\\\nFORGED reason\"))");
    let r = ws.lith(&["build", "--manifest", "bad.lith"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("unknown escape"), "{r:?}");
    assert_eq!(forged_lines(&r.stderr), Vec::<&str>::new());
}

#[test]
fn hostile_names_and_markdown_are_escaped() {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    let id = "<script>alert(1)<\\script>\"'&";
    ws.committed_run(
        &format!("out/{id}"),
        "complete",
        &[
            ("<img src=x onerror=alert(2)>.txt", "x"),
            (
                "summary.md",
                "# Hi\n<script>alert(3)</script>\n[x](javascript:alert(4))\n",
            ),
        ],
    );
    ws.write(
        &format!("out/{id}/run_status.json"),
        serde_json::json!({"run_id": id, "state": "<b>complete</b>"}).to_string(),
    );
    let r = ws.lith(&["build"]);
    assert_eq!(r.code, 2, "{r:?}");
    let rep = report(&ws, "site");
    let page = run_by_id(&rep, id)["page"].as_str().unwrap().to_string();
    assert!(page.starts_with("runs/script-alert-1---script-"), "{page}");
    for f in files_below(&ws.join("site"))
        .iter()
        .filter(|f| f.ends_with(".html"))
    {
        let html = ws.read(&format!("site/{f}"));
        for bad in [
            "<script>alert",
            "<img src=x",
            "javascript:",
            "<b>complete",
            "alert(3)",
        ] {
            assert!(!html.contains(bad), "{f} contains {bad}");
        }
    }
}

#[test]
fn manifest_errors_are_exit_4_with_a_position() {
    let ws = Workspace::new();
    ws.write("manifest.lith", "(manifest\n  (v \"t\"\n");
    let r = ws.lith(&["build"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr
            .contains("manifest.lith:2:3: this bracket is never closed"),
        "{r:?}"
    );
    let r = ws.lith(&["build", "--manifest", "nope.lith"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("nope.lith"), "{r:?}");
}

#[test]
fn out_never_replaces_a_folder_lith_did_not_write() {
    let ws = Workspace::new();
    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    ws.write("docs/important.txt", "keep me");
    let r = ws.lith(&["build", "--out", "docs"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr
            .contains("refusing to write the site to docs: it holds files lith did not write"),
        "{r:?}"
    );
    assert_eq!(ws.read("docs/important.txt"), "keep me");
    // A site lith wrote is replaced whole, and a .gitignore in it survives.
    assert_eq!(ws.lith(&["build", "--out", "pub"]).code, 0);
    ws.write("pub/.gitignore", "*\n");
    ws.write("pub/stale.html", "old");
    assert_eq!(ws.lith(&["build", "--out", "pub"]).code, 0);
    assert!(!ws.join("pub/stale.html").exists());
    assert_eq!(ws.read("pub/.gitignore"), "*\n");
    let leftovers: Vec<String> = std::fs::read_dir(ws.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".lith-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn every_link_in_the_site_resolves() {
    let ws = Workspace::demo();
    ws.lith(&["build"]);
    let site = ws.join("site");
    let mut checked = 0;
    for f in files_below(&site).iter().filter(|f| f.ends_with(".html")) {
        let html = ws.read(&format!("site/{f}"));
        let page_dir = site.join(f).parent().unwrap().to_path_buf();
        for attr in ["href=\"", "src=\""] {
            for part in html.split(attr).skip(1) {
                let target = &part[..part.find('"').unwrap()];
                if target.starts_with("https://") || target.starts_with("http://") {
                    continue;
                }
                let (path, frag) = target.split_once('#').unwrap_or((target, ""));
                // A query only tells the page's script what to show (a filter).
                let path = path.split('?').next().unwrap_or_default();
                let file = if path.is_empty() {
                    site.join(f)
                } else {
                    page_dir.join(path)
                };
                assert!(file.is_file(), "{f}: broken link {target}");
                if !frag.is_empty() {
                    let dest = std::fs::read_to_string(&file).unwrap();
                    assert!(
                        dest.contains(&format!("id=\"{frag}\"")),
                        "{f}: missing anchor {target}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} links checked");
}

#[test]
fn many_runs_are_paged() {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    for i in 0..1001 {
        ws.write(
            &format!("out/r{i:04}/run_status.json"),
            format!("{{\"run_id\":\"r{i:04}\",\"state\":\"in_progress\"}}"),
        );
    }
    // One unreadable run: it fails, so it leads the list although it is old.
    ws.write("out/r0002/run_status.json", "{");
    let r = ws.lith(&["build", "--fast"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(ws.join("site/runs/page-3.html").is_file());
    assert!(!ws.join("site/runs/page-4.html").exists());
    // Failing first, then newest first: page 1 is r0002, r1000 … r0502.
    let ids = |page: &str| -> Vec<String> {
        ws.read(&format!("site/runs/{page}"))
            .split("<tr data-status=")
            .skip(1)
            .map(|row| {
                let at = row.find("<code class=\"wrap\">").unwrap() + 19;
                row[at..at + 5].to_string()
            })
            .collect()
    };
    let p1 = ids("index.html");
    assert_eq!(p1.len(), 500);
    assert_eq!(&p1[..3], ["r0002", "r1000", "r0999"]);
    assert_eq!(p1.last().unwrap(), "r0502");
    let p2 = ids("page-2.html");
    assert_eq!((p2[0].as_str(), p2[499].as_str()), ("r0501", "r0001"));
    assert_eq!(ids("page-3.html"), ["r0000"]);
    let p2 = ws.read("site/runs/page-2.html");
    assert!(
        p2.contains("href=\"index.html\" rel=\"prev\"")
            && p2.contains("href=\"page-3.html\" rel=\"next\"")
    );
}

/// SPEC §9: reserved names never collide. A run named `index.html` or `assets`
/// gets its own page beside the runs list, and the build still writes every page.
#[test]
fn runs_named_like_site_pages_get_their_own_pages() {
    let ws = Workspace::new();
    for id in ["index.html", "assets", "page-2.html", "plain"] {
        ws.committed_run(&format!("out/{id}"), "complete", &[("a.txt", id)]);
    }
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    let r = ws.lith(&["build"]);
    assert_eq!(r.code, 0, "{r:?}");
    let rep = report(&ws, "site");
    let pages: Vec<String> = rep["bundles"]["roots"][0]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["page"].as_str().unwrap().to_string())
        .collect();
    let distinct: std::collections::BTreeSet<&String> = pages.iter().collect();
    assert_eq!(distinct.len(), 4, "{pages:?}");
    assert!(pages.contains(&"runs/plain/".to_string()), "{pages:?}");
    for p in &pages {
        assert!(ws.join(&format!("site/{p}index.html")).is_file(), "{p}");
    }
    assert!(ws.read("site/runs/index.html").contains("plain"));
}

/// The helper folders of publishes left in the workspace (any lith temporary folder
/// beside the output; the lock file stays).
/// Relative links of the site's pages that name no file (`href`/`src` without a
/// scheme; fragments and query strings cut off).
fn broken_links(site: &std::path::Path) -> Vec<String> {
    let mut broken = Vec::new();
    for f in files_below(site)
        .into_iter()
        .filter(|f| f.ends_with(".html"))
    {
        let page = site.join(&f);
        let Ok(html) = std::fs::read_to_string(&page) else {
            continue; // swapped away between the listing and the read
        };
        for attr in ["href=\"", "src=\""] {
            for part in html.split(attr).skip(1) {
                let target = &part[..part.find('"').unwrap_or(0)];
                let target = target.split(['#', '?']).next().unwrap_or("");
                if target.is_empty() || target.contains(':') {
                    continue;
                }
                if !page.parent().unwrap().join(target).exists() {
                    broken.push(format!("{f} -> {target}"));
                }
            }
        }
    }
    broken
}

/// SPEC §9 "incremental by design": a rebuild of unchanged inputs rewrites no file
/// of the site; when one run changes, only its page and the pages that list or
/// count it are rewritten, the rest keep their inodes (so a deploy step that syncs
/// what changed ships only those).
#[test]
fn a_rebuild_rewrites_only_the_pages_whose_bytes_changed() {
    use std::os::unix::fs::MetadataExt;
    let ws = Workspace::demo();
    let inodes = || -> BTreeMap<String, u64> {
        files_below(&ws.join("site"))
            .into_iter()
            .map(|f| {
                let ino = std::fs::metadata(ws.join("site").join(&f)).unwrap().ino();
                (f, ino)
            })
            .collect()
    };
    let build = || {
        let r = ws.lith_env(&["build", "-q"], &[("SOURCE_DATE_EPOCH", "1790000000")]);
        assert_eq!(r.code, 3, "{r:?}");
    };
    build();
    let first = inodes();
    build();
    assert_eq!(inodes(), first, "an unchanged rebuild rewrote files");
    // The demo's verified run loses an artifact's bytes: its page, the runs list,
    // the overview, the catalog (which lists runs) and report.json change; nothing
    // else is rewritten.
    let rep = report(&ws, "site");
    let run = rep["bundles"]["roots"][0]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["verification"] == "verified")
        .unwrap()
        .clone();
    let page = format!("{}index.html", run["page"].as_str().unwrap());
    // Any artifact but the two the promotion check parses.
    let artifact = run["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| artifact_row(a).0)
        .find(|p| !p.ends_with("run_manifest.json") && !p.ends_with("run_status.json"))
        .unwrap()
        .to_string();
    ws.write(
        &format!("{}/{artifact}", run["dir"].as_str().unwrap()),
        "tampered",
    );
    let r = ws.lith_env(&["build", "-q"], &[("SOURCE_DATE_EPOCH", "1790000000")]);
    assert_eq!(r.code, 3, "{r:?}");
    let after = inodes();
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        first.keys().collect::<Vec<_>>()
    );
    let rewritten: Vec<&str> = after
        .iter()
        .filter(|(f, ino)| first[*f] != **ino)
        .map(|(f, _)| f.as_str())
        .collect();
    let mut want = vec![
        "api/catalog.json",
        "history.jsonl",
        "index.html",
        "report.json",
        "runs/index.html",
        page.as_str(),
    ];
    want.sort();
    assert_eq!(rewritten, want);
}

fn publish_leftovers(ws: &Workspace) -> Vec<String> {
    std::fs::read_dir(ws.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with('.')
                && n.contains("lith-")
                && !n.ends_with(".lith-lock")
                && !n.ends_with(".lith-verified")
        })
        .collect()
}

/// SPEC §9: publishing is crash-safe. `kill -9` at random points of `lith build`
/// never leaves the workspace without a complete site, and the next build sweeps what
/// the killed ones left; concurrent builds into one `--out` are serialized.
#[test]
fn builds_killed_at_random_points_always_leave_a_whole_site() {
    let ws = Workspace::demo();
    let started = std::time::Instant::now();
    let first = ws.lith(&["build", "-q"]).code;
    let took = started.elapsed().as_millis() as u64;
    assert_eq!(first, 3, "the demo's verdict");
    let mut rng = crate::support::Lcg(took ^ 0x5eed);
    let (mut killed, mut finished) = (0, 0);
    // At least 40 rounds, and more (to 400) until 10 kills have landed mid-build:
    // on a busy machine a build may finish before its kill.
    for round in 0..400 {
        if round >= 40 && killed >= 10 {
            break;
        }
        let mut child = ws.command(&["build", "-q"]).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(
            rng.below(took * 12 / 10 + 1),
        ));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.code().is_some() {
            finished += 1;
        } else {
            killed += 1;
        }
        // At every point the site is whole: marker, overview and report, and every
        // link between its pages resolves (pages are swapped in before the pages
        // that link to them).
        for f in ["site/.lith-site", "site/index.html", "site/report.json"] {
            assert!(ws.join(f).is_file(), "{f} missing after a kill");
        }
        serde_json::from_str::<Value>(&ws.read("site/report.json")).unwrap();
        assert_eq!(broken_links(&ws.join("site")), Vec::<String>::new());
    }
    assert!(killed >= 10, "kills landed mid-build only {killed} times");
    // The next build sweeps every leftover, beside the site and in it.
    assert_eq!(ws.lith(&["build", "-q"]).code, 3);
    assert_eq!(publish_leftovers(&ws), Vec::<String>::new());
    let tmp: Vec<String> = files_below(&ws.join("site"))
        .into_iter()
        .filter(|f| f.contains(".lith-tmp-"))
        .collect();
    assert_eq!(tmp, Vec::<String>::new());
    // Four concurrent builds into one output all finish with the verdict.
    let children: Vec<_> = (0..4)
        .map(|_| ws.command(&["build", "-q"]).spawn().unwrap())
        .collect();
    for c in children {
        assert_eq!(c.wait_with_output().unwrap().status.code(), Some(3));
    }
    assert_eq!(publish_leftovers(&ws), Vec::<String>::new());
    eprintln!("{killed} builds killed mid-way, {finished} finished first");
}

/// SPEC §3.4: a run folder whose name is not UTF-8 is a finding of that run (exit 2),
/// not a build that fails with a misleading "no such file".
#[test]
fn a_run_folder_named_in_non_utf8_is_a_finding_of_that_run() {
    use std::os::unix::ffi::OsStrExt;
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    ws.committed_run("out/good", "complete", &[("a.txt", "a")]);
    let bad = ws.join("out").join(std::ffi::OsStr::from_bytes(b"bad\xff"));
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("run_status.json"), r#"{"state":"complete"}"#).unwrap();
    let r = ws.lith(&["build"]);
    assert_eq!(r.code, 2, "{r:?}");
    let rep = report(&ws, "site");
    assert_eq!(run_by_id(&rep, "good")["verification"], "verified");
    let bad = run_by_id(&rep, "bad\u{fffd}");
    assert_eq!(bad["findings"][0]["code"], "run_name_not_utf8", "{bad:#}");
    assert_ne!(bad["verification"], "verified");
}

/// SPEC §11: memory does not follow the input. A 550,000-entry index (63 MB) took
/// 686 MB to verify and 941 MB to build (a 198 MB run page, a 265 MB report.json);
/// three of them under `--jobs 3` took more. Peak RSS of the real binary stays under
/// 256 MB, and the page and report list a bounded number of rows with honest counts.
#[test]
#[ignore = "about a minute: three 63 MB indexes (.ci/run runs it with --include-ignored)"]
fn a_huge_index_is_verified_and_built_in_bounded_memory() {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    let n = 550_000;
    for id in ["r1", "r2", "r3"] {
        crate::support::hostile::huge_index(&ws.join(&format!("out/{id}")), n);
    }
    let (r, peak) = ws.lith_peak_mib(&["verify", "out/r1", "--json"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let v = &r.json()["run"];
    assert_eq!(v["counts"]["total"], n, "every entry is counted");
    assert_eq!(v["counts"]["by_status"]["missing"], n);
    assert_eq!(v["artifacts"].as_array().unwrap().len(), 10_000);
    assert_eq!(v["artifacts_unlisted"], n - 10_000);
    assert!(peak < 256, "verify peaked at {peak} MiB");
    let (r, peak) = ws.lith_peak_mib(&["build", "-q", "--jobs", "3"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(peak < 256, "build peaked at {peak} MiB");
    // 10,000 rows of 250 a page, each page under 1 MB (SPEC §11).
    let pages: Vec<(String, u64)> = std::fs::read_dir(ws.join("site/runs/r1"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".html"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(pages.len(), 40, "{pages:?}");
    for (name, len) in &pages {
        assert!(*len < 1 << 20, "{name} is {len} bytes");
    }
    assert!(
        ws.read("site/runs/r1/index.html")
            .contains("<p>Listing 10000 of 550000 artifacts, failing ones first"),
        "the page says what it leaves out"
    );
    let rep = report(&ws, "site");
    assert_eq!(run_by_id(&rep, "r2")["artifacts_unlisted"], n - 10_000);
}

/// SPEC §11: a 200 MB one-line activity feed is a `line_too_long` read in bounded
/// memory (it took 1.24 GB in `build`, and `dod` wrote two 419 MB reports).
#[test]
fn a_huge_feed_line_is_bounded_in_build_and_dod() {
    let ws = Workspace::demo();
    crate::support::hostile::append_huge_line(
        &ws.join("tests/fixtures/demo/activity/activity_feed.jsonl"),
        200,
    );
    let (r, peak) = ws.lith_peak_mib(&["build", "-q"]);
    // The strict drift monitor refuses the feed with the line's position (exit 4).
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(peak < 256, "build peaked at {peak} MiB");
    let rep = report(&ws, "site");
    let drift = rep["drift"]["findings"].to_string();
    assert!(drift.contains("line_too_long"), "{drift}");
    let (r, peak) = ws.lith_peak_mib(&["dod", "--all", "-q"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(peak < 256, "dod peaked at {peak} MiB");
    let written =
        std::fs::metadata(ws.join("tests/fixtures/demo/reports/dod/dod_report.latest.json"))
            .unwrap()
            .len();
    assert!(written < 1 << 20, "the DoD report is {written} bytes");
}

/// SPEC §11: a feed of hundreds of thousands of small events keeps the events of
/// the phases evaluated only, at most `MAX_KEPT_EVENTS` of them; a phase with
/// events past that is never proven (`activity.events_omitted`), and its timeline
/// and evidence are capped on its page. The previous lith held every event (some
/// 900 bytes each: 1.3 GB for a million) and listed each on the phase's page.
#[test]
fn a_feed_of_many_small_events_is_bounded_in_build_and_dod() {
    let ws = Workspace::demo();
    crate::support::hostile::append_many_events(
        &ws.join("tests/fixtures/demo/activity/activity_feed.jsonl"),
        300_000,
        "PHASE_NIGHTLY",
        110_000,
    );
    let (r, peak) = ws.lith_peak_mib(&["build", "-q"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(peak < 128, "build peaked at {peak} MiB");
    let page = std::fs::metadata(ws.join("site/phases/PHASE_NIGHTLY/index.html"))
        .unwrap()
        .len();
    assert!(page < 1 << 20, "the phase page is {page} bytes");
    let html = ws.read("site/phases/PHASE_NIGHTLY/index.html");
    assert!(html.contains("earlier event(s) of this phase not shown"));
    let (r, peak) = ws.lith_peak_mib(&["dod", "--all", "--json"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(peak < 128, "dod peaked at {peak} MiB");
    let v = r.json();
    let nightly = &v["phases"]["PHASE_NIGHTLY"];
    assert_eq!(nightly["verdict"], "PARTIAL", "{nightly}");
    let missing = nightly["missing"].to_string();
    assert!(missing.contains("activity.events_omitted"), "{missing}");
    assert!(missing.contains("activity.evidence_omitted"), "{missing}");
    let chain = &nightly["checks"]["activity_chain"];
    let lines = |steps: &Value| -> Vec<u64> {
        steps
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["line"].as_u64().unwrap())
            .collect()
    };
    let timeline = lines(&chain["timeline"]);
    // The latest thousand, and the triple (two of its three among them).
    assert_eq!(timeline.len(), 1001, "{timeline:?}");
    for line in lines(&chain["triple"]) {
        assert!(timeline.contains(&line), "the triple's line {line}");
    }
    assert_eq!(
        chain["timeline_omitted"].as_u64().unwrap() + 1001,
        chain["events"].as_u64().unwrap()
    );
    assert_eq!(chain["evidence"].as_array().unwrap().len(), 1000);
    // The other phases are judged as before.
    let before = Workspace::demo().lith(&["dod", "--all", "--json"]).json();
    for (phase, p) in before["phases"].as_object().unwrap() {
        if phase != "PHASE_NIGHTLY" {
            assert_eq!(v["phases"][phase]["verdict"], p["verdict"], "{phase}");
        }
    }
}

/// SPEC §11: a feed line within the cap is read in memory bounded by its size, not
/// by its shape: 12 MiB of `0,` in one event's `evidence` (6 million values; a
/// parsed value costs 32 bytes) keeps `build` and `dod` under 128 MiB, and the line
/// is read (not refused), with the same verdicts.
#[test]
fn a_feed_line_of_millions_of_values_is_read_in_bounded_memory() {
    let ws = Workspace::demo();
    let dod_before = ws.lith(&["dod", "--all", "--json"]);
    crate::support::hostile::append_wide_line(
        &ws.join("tests/fixtures/demo/activity/activity_feed.jsonl"),
        12,
    );
    let (r, peak) = ws.lith_peak_mib(&["build", "-q"]);
    // Exit 3 as without the line: the strict drift monitor read it (a line it could
    // not read would be exit 4).
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(peak < 128, "build peaked at {peak} MiB");
    let (r, peak) = ws.lith_peak_mib(&["dod", "--all", "--json"]);
    assert_eq!(r.code, dod_before.code, "{}", r.stderr);
    assert!(peak < 128, "dod peaked at {peak} MiB");
    assert_eq!(r.json()["phases"], dod_before.json()["phases"]);
}

/// SPEC §11: a feed line within the cap that names 60 MiB of evidence paths (15,000
/// of 4,010 characters, all `<`): an event keeps the first 4 MiB of them and says
/// it was cut, so its phase is never proven, and the drift page shows what fits in
/// its room. The previous lith held every path in the feed, the chain and drift's
/// latest evidence, and put all of them on the drift page, escaped: for this line
/// a build of 390 MiB, a `dod` of 249 MiB and a drift page of 314 MB.
#[test]
fn a_feed_line_of_long_evidence_paths_is_cut_in_bounded_memory() {
    let ws = Workspace::demo();
    crate::support::hostile::append_evidence_lines(
        &ws.join("tests/fixtures/demo/activity/activity_feed.jsonl"),
        1,
        60,
    );
    let (r, peak) = ws.lith_peak_mib(&["build", "-q"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(peak < 256, "build peaked at {peak} MiB");
    for page in ["drift", "phases/PHASE_NIGHTLY"] {
        let len = std::fs::metadata(ws.join(&format!("site/{page}/index.html")))
            .unwrap()
            .len();
        assert!(len < 1_000_000, "{page}: {len} bytes");
    }
    let drift = ws.read("site/drift/index.html");
    assert!(
        drift.contains(" more: this page has no room for them"),
        "drift page"
    );
    let rep = report(&ws, "site");
    let evidence = rep["drift"]["report"]["evidence"].as_array().unwrap();
    assert!(
        (1_000..1_100).contains(&evidence.len()),
        "drift keeps {} paths",
        evidence.len()
    );
    let nightly = &rep["dod"]["phases"]["PHASE_NIGHTLY"];
    assert_eq!(nightly["verdict"], "PARTIAL");
    assert!(
        nightly["missing"]
            .to_string()
            .contains("activity.evidence_omitted"),
        "{}",
        nightly["missing"]
    );
    let (r, peak) = ws.lith_peak_mib(&["dod", "--all", "-q"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(peak < 256, "dod peaked at {peak} MiB");
}

/// SPEC §11: a run's `state` and an index's `run_id`, `world_id` and
/// `schema_version` are words, cut at 4,096 characters: a 20 MiB `state` of `<` made
/// the runs list and the run page 105 MB each, and with a run whose index words are
/// as long a build of 461 MiB. Cut, the state is still no state lith knows
/// (`state_invalid`), and a `run_id` still is not the folder's
/// (`index_run_id_mismatch`).
#[test]
fn words_of_megabytes_in_a_run_are_cut_on_every_page() {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        r#"(manifest (v "promethean.manifest/v1") (bundles (roots ["out"])))"#,
    );
    let big = "<".repeat(20 << 20);
    ws.committed_run("out/r1", &big, &[("a.txt", "hi\n")]);
    ws.committed_run("out/r2", "complete", &[("a.txt", "hi\n")]);
    let mut index: Value = serde_json::from_str(&ws.read("out/r2/artifact_index.json")).unwrap();
    for k in ["run_id", "world_id", "schema_version"] {
        index[k] = Value::String(big.clone());
    }
    ws.index("out/r2", index);
    let (r, peak) = ws.lith_peak_mib(&["build", "-q"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(peak < 256, "build peaked at {peak} MiB");
    let site = ws.join("site");
    for f in files_below(&site)
        .iter()
        .filter(|f| f.ends_with(".html") || f.ends_with(".js"))
    {
        let len = std::fs::metadata(site.join(f)).unwrap().len();
        assert!(len < 1_000_000, "{f}: {len} bytes");
    }
    let rep = report(&ws, "site");
    let r1 = run_by_id(&rep, "r1");
    // The report keeps run_status.json as written.
    assert_eq!(r1["run_status"]["state"].as_str().unwrap().len(), big.len());
    let codes = |run: &Value| -> Vec<String> {
        run["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        codes(r1).contains(&"state_invalid".to_string()),
        "{:?}",
        codes(r1)
    );
    let r2 = run_by_id(&rep, "r2");
    assert!(
        codes(r2).contains(&"index_run_id_mismatch".to_string()),
        "{:?}",
        codes(r2)
    );
    for run in [r1, r2] {
        assert_eq!(run["verification"], "failed");
    }
    let page = ws.read("site/runs/r1/index.html");
    assert!(page.contains(&format!("<bdi>{}…</bdi>", "&#60;".repeat(4096))));
}

/// SPEC §10: `--summary` writes the build as Markdown for a CI job page: the verdict,
/// a table of the sections, the runs and phases that fell short, the findings; and it
/// appends, as step summaries are written.
#[test]
fn the_step_summary_tells_the_verdict_and_what_fell_short() {
    let ws = Workspace::demo();
    let env = [("SOURCE_DATE_EPOCH", "1790000000")];
    assert_eq!(
        ws.lith_env(&["build", "-q", "--summary", "summary.md"], &env)
            .code,
        3
    );
    let md = ws.read("summary.md");
    assert!(md.starts_with("## lith build: designed (exit 3)\n"), "{md}");
    assert!(md.contains("| Bundles | 6 run(s): 2 verified, 2 failed, 1 in progress, 1 uncommitted, 0 unreadable; 24/27 artifacts ok |"), "{md}");
    assert!(
        md.contains("| Phases | 2 PROVEN, 1 PARTIAL, 1 DESIGNED |"),
        "{md}"
    );
    assert!(md.contains("### Runs that did not verify (4)"), "{md}");
    assert!(md.contains("| `2026-11-19T0200-9c2e` | `tests/fixtures/demo/nightly/out` | failed | 2 of 8 artifacts failed verification: 1 digest_mismatch, 1 size_mismatch |"), "{md}");
    assert!(md.contains("### Phases not PROVEN (2)"), "{md}");
    assert!(md.contains("| `PHASE_PUBLISH` | DESIGNED |"), "{md}");
    assert!(!md.contains("more not shown"), "{md}");
    // A second build appends its own summary.
    assert_eq!(
        ws.lith_env(&["build", "-q", "--summary", "summary.md"], &env)
            .code,
        3
    );
    assert_eq!(ws.read("summary.md").matches("## lith build:").count(), 2);
}

/// The step summary stays under its cap however many runs fall short, and says how
/// many rows it left out.
#[test]
fn the_step_summary_stays_under_its_cap() {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    for i in 0..1500 {
        let id = format!("{i:04}-{}", "r".repeat(200));
        ws.write(
            &format!("out/{id}/run_status.json"),
            format!(r#"{{"run_id":"{id}","state":"complete"}}"#),
        );
    }
    assert_eq!(ws.lith(&["build", "-q", "--summary", "summary.md"]).code, 2);
    let md = ws.read("summary.md");
    assert!(md.len() <= 1000 * 1024, "{} bytes", md.len());
    assert!(md.contains("### Runs that did not verify (1500)"));
    let shown = md.matches("| uncommitted |").count();
    assert!(shown > 100 && shown < 1500, "{shown} rows shown");
    assert!(
        md.contains(&format!(
            "\n{} more not shown; see report.json.\n",
            1500 - shown
        )),
        "the summary says how many runs it left out"
    );
}

/// SPEC §9.1: the overview answers "what is worst?" with failures grouped by finding
/// code (counted, worst severity first, each example linking to its run) and the
/// runs split by verification, as a chart with its table.
#[test]
fn the_overview_groups_failures_by_code_and_splits_runs_by_verification() {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    for id in ["ok-1", "ok-2", "ok-3", "bad-1", "bad-2"] {
        ws.committed_run(&format!("out/{id}"), "complete", &[("a.txt", id)]);
    }
    for id in ["bad-1", "bad-2"] {
        ws.write(&format!("out/{id}/a.txt"), "tampered");
    }
    ws.write(
        "out/open-1/run_status.json",
        "{\"run_id\":\"open-1\",\"state\":\"complete\"}",
    );
    let r = ws.lith(&["build"]);
    assert_eq!(r.code, 2, "{r:?}");
    let html = ws.read("site/index.html");
    let section = |id: &str| -> String {
        let at = html.find(&format!("aria-labelledby=\"{id}\"")).unwrap();
        html[at..at + html[at..].find("</section>").unwrap()].to_string()
    };
    let split = section("h-split");
    for row in [
        "<tr><td>verified</td><td>3</td><td>50.0%</td></tr>",
        "<tr><td>failed</td><td>2</td><td>33.3%</td></tr>",
        "<tr><td>uncommitted</td><td>1</td><td>16.7%</td></tr>",
    ] {
        assert!(split.contains(row), "{row} not in {split}");
    }
    // The segments tile the bar: 150 + 100 + 50 units of 300.
    assert!(
        split.contains("x=\"0.00\" y=\"0\" width=\"150.00\""),
        "{split}"
    );
    assert!(
        split.contains("x=\"150.00\" y=\"0\" width=\"100.00\""),
        "{split}"
    );
    assert!(
        split.contains("x=\"250.00\" y=\"0\" width=\"50.00\""),
        "{split}"
    );
    assert!(split.contains("href=\"runs/index.html?status=failed\""));

    let groups = section("h-groups");
    let rows: Vec<&str> = groups.split("<tr><td><code>").skip(1).collect();
    let bad = rows
        .iter()
        .find(|r| r.starts_with("artifacts_not_ok<"))
        .unwrap_or_else(|| panic!("no artifacts_not_ok group in {groups}"));
    assert!(bad.contains("<td>2</td>"), "{bad}");
    assert!(
        bad.contains("<a href=\"runs/bad-1/index.html\"><bdi>bad-1</bdi></a>"),
        "{bad}"
    );
    assert!(
        bad.contains("<a href=\"runs/bad-2/index.html\"><bdi>bad-2</bdi></a>"),
        "{bad}"
    );
    let severities: Vec<usize> = rows
        .iter()
        .map(|r| {
            let s = &r[r.find("badge badge-").unwrap() + 12..];
            ["error", "designed", "partial", "warning"]
                .iter()
                .position(|k| s.starts_with(&format!("{k}\"")))
                .unwrap()
        })
        .collect();
    assert!(rows.len() >= 2, "{groups}");
    assert!(
        severities.windows(2).all(|w| w[0] <= w[1]),
        "{severities:?}"
    );
    // The failing count on the bundles card is linked to the filtered list.
    assert!(html.contains("<a class=\"count-bad\" href=\"runs/index.html?status=failed\">2</a>"));
}

/// A receipt's findings are on its own row with their messages, not only in a
/// collapsed list.
#[test]
fn a_receipts_findings_sit_on_its_row() {
    let ws = Workspace::demo();
    ws.lith(&["build"]);
    let report = report(&ws, "site");
    let html = ws.read("site/receipts/index.html");
    let findings = report["receipts"]["check"]["findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    for f in findings {
        let line = f["line"].as_u64().unwrap();
        let at = html
            .find(&format!("<tr id=\"line-{line}\""))
            .unwrap_or_else(|| panic!("no row for line {line}"));
        let row = &html[at..at + html[at..].find("</tr>").unwrap()];
        let message = f["message"]
            .as_str()
            .unwrap()
            .replace('&', "&#38;")
            .replace('"', "&#34;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert!(
            row.contains(&message),
            "line {line}: {message} not in {row}"
        );
        assert!(row.contains(f["kind"].as_str().unwrap()));
    }
}

/// `api/catalog.json` is written from the report's runs as they are met, never
/// gathered into a list; it must still be the catalog of the report, byte for byte.
#[test]
fn the_catalog_written_run_by_run_is_the_catalog_of_the_report() {
    let ws = Workspace::demo();
    let r = ws.lith_env(&["build"], &[("SOURCE_DATE_EPOCH", "1790000000")]);
    assert_eq!(r.code, 3, "{r:?}");
    let report: lith::report::Report = serde_json::from_str(&ws.read("site/report.json")).unwrap();
    let db = report.promptdb.as_ref().expect("the demo has a PromptDB");
    let catalog = lith::catalog::Catalog::of(&report, db);
    assert!(catalog.runs.len() >= 5, "{}", catalog.runs.len());
    assert_eq!(
        ws.read("site/api/catalog.json"),
        serde_json::to_string(&catalog).unwrap() + "\n"
    );
}

/// A run page shows run_status.json's fields when they say more than the facts at
/// its top (the folder's run id and the state), and leaves the table out when not.
/// Artifact rows carry their anchor as an id, without a link each (the page's
/// script adds the "#").
#[test]
fn a_run_page_shows_run_status_only_when_it_says_more() {
    let ws = Workspace::new();
    ws.committed_run("out/plain", "complete", &[("a.txt", "a")]);
    ws.committed_run("out/told", "complete", &[("a.txt", "a")]);
    ws.write(
        "out/told/run_status.json",
        r#"{"run_id": "told", "state": "complete", "writer_pid": 4242}"#,
    );
    ws.committed_run("out/renamed", "complete", &[("a.txt", "a")]);
    ws.write(
        "out/renamed/run_status.json",
        r#"{"run_id": "other", "state": "complete"}"#,
    );
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    ws.lith(&["build"]);
    let table = "<h2 id=\"h-status\">run_status.json</h2>";
    let plain = ws.read("site/runs/plain/index.html");
    assert!(!plain.contains(table));
    let told = ws.read("site/runs/told/index.html");
    assert!(told.contains(table) && told.contains("<code>writer_pid</code>"));
    let renamed = ws.read("site/runs/renamed/index.html");
    assert!(renamed.contains(table) && renamed.contains("<code class=\"wrap\">other</code>"));
    let anchor = lith::bundle::verify::artifact_anchor("a.txt");
    assert!(plain.contains(&format!(
        "<tr id=\"{anchor}\"><td><b>ok</b><td><code>a.txt</code>"
    )));
    assert!(!plain.contains(&format!("href=\"#{anchor}\"")));
}

/// A rebuild into the previous site takes the runs whose folders did not change
/// from that build's report, reads the changed ones (a byte flipped in place, same
/// size), and writes the very site a build that reads everything writes.
#[test]
fn a_rebuild_reads_only_the_runs_that_changed() {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    ws.committed_run("out/r1", "complete", &[("a.txt", "alpha")]);
    ws.committed_run("out/r2", "complete", &[("b.txt", "bravo")]);
    // Folders changed within two seconds of a build's start are never stamped.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let env = [("SOURCE_DATE_EPOCH", "1790000000")];
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "-v"];
        args.extend_from_slice(extra);
        ws.lith_env(&args, &env)
    };
    let reused = |r: &crate::support::Run| {
        r.stderr
            .lines()
            .find_map(|l| {
                l.strip_suffix(" run(s) unchanged since the previous build, taken from its report")
            })
            .unwrap_or_else(|| panic!("{r:?}"))
            .trim_start_matches("lith: ")
            .to_string()
    };
    let first = build(&[]);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(reused(&first), "0 of 2");
    assert!(
        !files_below(&ws.join("site"))
            .iter()
            .any(|f| f.contains("lith-verified"))
    );
    let second = build(&[]);
    assert_eq!(reused(&second), "2 of 2");

    // Same size, one byte different: only the folder's stamp can tell.
    ws.write("out/r1/a.txt", "alphA");
    let third = build(&[]);
    assert_eq!(third.code, 2, "{third:?}");
    assert_eq!(reused(&third), "1 of 2");
    assert_eq!(
        run_by_id(&report(&ws, "site"), "r1")["verification"],
        "failed"
    );
    let site = |dir: &str| -> Vec<(String, Vec<u8>)> {
        let dir = ws.join(dir);
        files_below(&dir)
            .into_iter()
            .map(|f| {
                let b = std::fs::read(dir.join(&f)).unwrap();
                (f, b)
            })
            .collect()
    };
    let warm = site("site");
    let cold = build(&["--rehash", "--out", "cold"]);
    assert_eq!(reused(&cold), "0 of 2");
    assert_eq!(
        warm,
        site("cold"),
        "a rebuild writes what a full build writes"
    );

    // A report that is not the one the stamps were taken with voids them all.
    let text = ws.read("site/report.json").replace("\"r2\"", "\"r2\" ");
    ws.write("site/report.json", text);
    let fourth = build(&[]);
    assert_eq!(reused(&fourth), "0 of 2");
    assert!(
        fourth
            .stderr
            .contains("not the report the stamps were taken with"),
        "{fourth:?}"
    );
    assert_eq!(reused(&build(&["--rehash"])), "0 of 2");
}

/// SPEC §11: the receipts log is read line by line. 60,000 receipts appended to the
/// demo's (14 MB): the build stays under 64 MiB; the report and pages keep the
/// newest 10,000 and say how many are left out; the counts and the queue's
/// cross-check cover every line, the first ones included.
#[test]
fn a_long_receipts_log_is_read_line_by_line() {
    use std::io::Write;
    let ws = Workspace::demo();
    let log = ws.join("tests/fixtures/demo/receipts.log");
    let first = ws
        .read("tests/fixtures/demo/receipts.log")
        .lines()
        .next()
        .unwrap()
        .to_string();
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    for _ in 0..60_000 {
        writeln!(f, "{first}").unwrap();
    }
    drop(f);
    let (r, peak) = ws.lith_peak_mib(&["build", "-q"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(peak < 64, "build held {peak} MiB");
    let rep = report(&ws, "site");
    let receipts = &rep["receipts"];
    assert_eq!(receipts["check"]["receipts"], 60_008);
    assert_eq!(receipts["rows"].as_array().unwrap().len(), 10_000);
    assert_eq!(receipts["rows_omitted"], 50_008);
    assert_eq!(receipts["rows"][0]["line"], 50_009);
    // The four task-queue receipts are among the first lines, left out of the rows.
    assert_eq!(rep["queue"]["cross_check"]["queue_receipts"], 4);
    assert_eq!(receipts["check"]["kinds"][":build"], 60_001);
    let page = ws.read("site/receipts/index.html");
    assert!(
        page.contains("60008 receipt(s)")
            && page.contains("list the newest 10000 receipts; the 50008 older ones"),
        "{page}"
    );
    // The finding on line 3 is listed, without a link to a page that lists no line 3.
    assert!(
        page.contains("<li>line 3 <code>malformed_field</code>"),
        "{page}"
    );
}

/// A workspace of more bundle roots than the process may hold descriptors open:
/// each root is listed and scanned through one handle, held only while that root is
/// scanned, so every root is read under a soft limit of 100 open files. Listing
/// every root through its handle before scanning any left the later roots
/// unreadable (`root_unreadable`: "Too many open files").
#[test]
fn more_roots_than_open_files_are_all_read() {
    use std::os::unix::process::CommandExt;
    const ROOTS: usize = 300;
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"*/out\"])))",
    );
    for i in 0..ROOTS {
        ws.committed_run(
            &format!("r{i:03}/out/run-{i:03}"),
            "complete",
            &[("x.json", "{}")],
        );
    }
    let mut cmd = ws.command(&["build", "--json"]);
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            lim.rlim_cur = lim.rlim_max.min(100);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let r: crate::support::Run = cmd.output().unwrap().into();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["bundles"]["verified"], ROOTS);
    let rep = report(&ws, "site");
    let roots = rep["bundles"]["roots"].as_array().unwrap();
    assert_eq!(roots.len(), ROOTS);
    for (i, root) in roots.iter().enumerate() {
        assert_eq!(root["path"], format!("r{i:03}/out"));
        assert_eq!(root["runs"][0]["run_id"], format!("run-{i:03}"), "{root}");
    }
}

/// A `run_status.json` of a million fields (within the budget of values lith reads
/// from one file), written out of order and with a key repeated, is read as its
/// text without building a value: the build stays under 140 MiB (175 MiB when it
/// was parsed into a `Value`), and `report.json` keeps every field, in key order,
/// the last of the repeated key kept, as a `Value` would have.
#[test]
fn a_run_status_of_a_million_fields_is_read_in_bounded_memory() {
    const FIELDS: usize = 1_000_000;
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    let mut status = String::from(r#"{"state":"failed","run_id":"r1""#);
    for i in (0..FIELDS).rev() {
        status.push_str(&format!(",\"k{i:07}\":{i}"));
    }
    status.push_str(r#","state":"complete"}"#);
    ws.write("out/r1/run_status.json", &status);
    let (r, peak) = ws.lith_peak_mib(&["build", "--json"]);
    assert!(r.stdout.contains("\"bundles\""), "{r:?}");
    assert!(peak < 140, "the build peaked at {peak} MiB");
    let rep = report(&ws, "site");
    let run = run_by_id(&rep, "r1");
    assert_eq!(
        run["run_status"]["state"], "complete",
        "the last `state` is kept"
    );
    let fields = run["run_status"].as_object().unwrap();
    assert_eq!(fields.len(), FIELDS + 2);
    let text = serde_json::to_string(&run["run_status"]).unwrap();
    let want: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(text, serde_json::to_string(&want).unwrap());
    assert!(
        text.starts_with(r#"{"k0000000":0,"k0000001":1,"#),
        "in key order"
    );
    assert!(
        ws.read("site/runs/r1/index.html")
            .contains(&format!("… {} more fields are not shown", FIELDS + 2 - 100))
    );
}

/// `LATEST` is read beneath the root's handle without following a link in its
/// place: a link to a file naming a committed run, inside the root or outside the
/// workspace, makes `LATEST` invalid, never the run it points at.
#[test]
fn a_latest_that_is_a_link_is_invalid_wherever_it_points() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("LATEST"), "r1\n").unwrap();
    for target in [
        std::path::PathBuf::from("named"),
        outside.path().join("LATEST"),
    ] {
        let ws = Workspace::new();
        ws.write(
            "manifest.lith",
            "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
        );
        ws.committed_run("out/r1", "complete", &[("x.json", "{}")]);
        ws.write("out/named", "r1\n");
        std::os::unix::fs::symlink(&target, ws.join("out/LATEST")).unwrap();
        let r = ws.lith(&["build", "--json"]);
        assert_eq!(r.code, 2, "{r:?}");
        let root = &report(&ws, "site")["bundles"]["roots"][0];
        assert_eq!(root["latest"]["valid"], false, "{target:?}: {root}");
        assert!(
            root["latest"]["reason"]
                .as_str()
                .unwrap()
                .contains("symbolic link"),
            "{root}"
        );
        assert!(
            root["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["code"] == "latest_invalid"),
            "{root}"
        );
    }
}
