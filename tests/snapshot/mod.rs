//! Snapshots (insta) of what a user reads: every `--help`, the demo build's text
//! summary, and the demo's `report.json`, all under `SOURCE_DATE_EPOCH`. A change to
//! any of them shows up as a reviewed diff (`cargo insta review`, or compare the
//! `.snap.new` file beside the snapshot), never silently.

use crate::support::Workspace;

const EPOCH: (&str, &str) = ("SOURCE_DATE_EPOCH", "1790000000");
/// Help is wrapped to the terminal's width; a fixed one keeps it stable.
const COLUMNS: (&str, &str) = ("COLUMNS", "100");

#[test]
fn every_help_text() {
    let ws = Workspace::new();
    let commands: [&[&str]; 23] = [
        &[],
        &["build"],
        &["verify"],
        &["commit"],
        &["reindex"],
        &["promote"],
        &["queue"],
        &["queue", "enqueue"],
        &["queue", "dequeue"],
        &["queue", "replay"],
        &["receipts"],
        &["gate"],
        &["dod"],
        &["drift"],
        &["run"],
        &["serve"],
        &["merge"],
        &["render"],
        &["diff"],
        &["attest"],
        &["attest", "verify"],
        &["receipts", "check"],
        &["gate", "push-truth"],
    ];
    for cmd in commands {
        let mut args = cmd.to_vec();
        args.push("--help");
        let r = ws.lith_env(&args, &[COLUMNS]);
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        let name = if cmd.is_empty() {
            "lith".to_string()
        } else {
            format!("lith-{}", cmd.join("-"))
        };
        insta::assert_snapshot!(name, r.stdout);
    }
}

#[test]
fn the_demo_build_summary_and_report() {
    let ws = Workspace::demo();
    let r = ws.lith_env(&["build"], &[EPOCH]);
    assert_eq!(r.code, 3, "{r:?}");
    insta::assert_snapshot!("demo-build-summary", r.stdout);
    // report.json is compact; the snapshot shows it read back and pretty-printed
    // (the model's field order), so that a change reads as a diff of fields.
    let report: lith::report::Report = serde_json::from_str(&ws.read("site/report.json")).unwrap();
    insta::assert_snapshot!(
        "demo-report.json",
        serde_json::to_string_pretty(&report).unwrap()
    );
}
