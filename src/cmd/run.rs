//! `lith run --phase ID -- CMD…`: run a command inside a `runtime_auto` chain.

use crate::activity::run::{RunOptions, run};
use crate::cli::{GlobalArgs, RunArgs};
use crate::lith::Manifest;

pub fn execute(g: &GlobalArgs, a: &RunArgs) -> anyhow::Result<i32> {
    let manifest = if g.manifest.exists() {
        Some(Manifest::load(&g.manifest)?)
    } else {
        None
    };
    let workspace = manifest
        .as_ref()
        .map_or_else(|| std::path::PathBuf::from("."), |m| m.workspace.clone());
    let feed = match (&a.feed, &manifest) {
        (Some(f), _) => f.clone(),
        (None, Some(m)) => m.resolve(&crate::activity::drift::Paths::of(m).feed),
        (None, None) => anyhow::bail!(
            "no manifest at {} and no --feed: say where the activity feed is",
            g.manifest.display()
        ),
    };
    let heartbeat_file = a.heartbeat_file.clone().or_else(|| {
        manifest.as_ref().and_then(|m| {
            m.activity
                .as_ref()
                .and_then(|x| x.heartbeat_file.clone())
                .map(|h| m.resolve(&h))
        })
    });
    let tool = a.tool.clone().unwrap_or_else(|| {
        std::path::Path::new(&a.command[0])
            .file_name()
            .map_or_else(|| "command".into(), |n| n.to_string_lossy().into_owned())
    });
    let opts = RunOptions {
        phase: a.phase.clone(),
        tool,
        evidence: a.evidence.clone(),
        heartbeat_sec: a.heartbeat_sec,
        feed,
        heartbeat_file,
        workspace,
    };
    run(&opts, &a.command).map_err(|e| anyhow::anyhow!("cannot run {:?}: {e}", a.command[0]))
}
