//! Publishing a site: build it in a temporary folder beside the output, then swap it
//! in, so readers never see half a site and a failed build leaves the old one intact.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::fsutil::parent_dir;
use crate::report::Report;

/// Marks a folder as written by lith, so that `--out` never replaces anything else.
pub const MARKER: &str = ".lith-site";

/// Dotfiles in the old output folder that survive a rebuild (a `.gitignore` that
/// keeps the generated site out of version control, for example).
const KEPT: [&str; 2] = [".gitignore", ".gitkeep"];

pub fn publish(report: &Report, out: &Path) -> anyhow::Result<()> {
    let parent = parent_dir(out);
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    check_replaceable(out)?;
    let tmp = tempfile::Builder::new()
        .prefix(".lith-site-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a temporary folder in {}", parent.display()))?;
    {
        // tempfile makes private folders; a published site is meant to be read.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))?;
    }
    super::write_site(report, tmp.path())?;
    std::fs::write(
        tmp.path().join(MARKER),
        "written by lith; safe to delete with the site\n",
    )?;
    for name in KEPT {
        let old = out.join(name);
        if std::fs::symlink_metadata(&old).is_ok_and(|m| m.is_file()) {
            std::fs::copy(&old, tmp.path().join(name))?;
        }
    }
    swap(tmp.keep(), out)
}

/// Refuses to replace a folder that lith did not write.
fn check_replaceable(out: &Path) -> anyhow::Result<()> {
    let meta = match std::fs::symlink_metadata(out) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("examining {}", out.display())),
    };
    if !meta.is_dir() {
        bail!(
            "{} exists and is not a folder; choose another --out",
            out.display()
        );
    }
    if out.join(MARKER).exists() {
        return Ok(());
    }
    let foreign: Vec<String> = std::fs::read_dir(out)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !KEPT.contains(&n.as_str()))
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    bail!(
        "refusing to replace {}: it holds files lith did not write (no {MARKER} marker); choose an empty or new folder for --out",
        out.display()
    )
}

fn swap(new: PathBuf, out: &Path) -> anyhow::Result<()> {
    let parent = parent_dir(out);
    if std::fs::symlink_metadata(out).is_err() {
        std::fs::rename(&new, out)
            .with_context(|| format!("moving the new site to {}", out.display()))?;
        return Ok(());
    }
    let old = tempfile::Builder::new()
        .prefix(".lith-old-")
        .tempdir_in(&parent)?
        .keep();
    std::fs::remove_dir(&old)?;
    std::fs::rename(out, &old)
        .with_context(|| format!("moving the old site out of {}", out.display()))?;
    if let Err(e) = std::fs::rename(&new, out) {
        // Put the previous site back: a failed build leaves it intact.
        let _ = std::fs::rename(&old, out);
        let _ = std::fs::remove_dir_all(&new);
        return Err(e).with_context(|| format!("moving the new site to {}", out.display()));
    }
    std::fs::remove_dir_all(&old)
        .with_context(|| format!("removing the old site {}", old.display()))?;
    Ok(())
}
