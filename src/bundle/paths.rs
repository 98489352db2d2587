//! Path rules for paths that come from untrusted files (SPEC §3.3–3.4).
//!
//! Two jobs: decide whether a path string is *lexically* unsafe (absolute, `..`, `~`,
//! NUL, drive or verbatim prefixes), and turn a repository-relative artifact path into
//! a bundle-relative one without knowing where the repository root is. Whether a safe
//! path *resolves* inside the run folder once symlinks are followed is decided by
//! [`resolve_inside`], which never opens the file.

use std::path::{Component, Path, PathBuf};

/// Why a path string is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafeReason {
    Empty,
    Absolute,
    ParentDir,
    Tilde,
    Nul,
    DrivePrefix,
    VerbatimPrefix,
}

impl UnsafeReason {
    pub fn describe(self) -> &'static str {
        match self {
            UnsafeReason::Empty => "the path is empty",
            UnsafeReason::Absolute => "the path is absolute",
            UnsafeReason::ParentDir => "the path contains a `..` component",
            UnsafeReason::Tilde => "the path starts with `~`",
            UnsafeReason::Nul => "the path contains a NUL byte",
            UnsafeReason::DrivePrefix => "the path starts with a drive letter",
            UnsafeReason::VerbatimPrefix => "the path starts with a `\\\\?\\` prefix",
        }
    }
}

/// Checks the spelling of a path. `Ok` holds its normal components (no `.`, no empty
/// parts), split on `/` and `\`.
pub fn lexical_components(p: &str) -> Result<Vec<&str>, UnsafeReason> {
    if p.contains('\0') {
        return Err(UnsafeReason::Nul);
    }
    if p.starts_with("\\\\?\\") || p.starts_with("//?/") {
        return Err(UnsafeReason::VerbatimPrefix);
    }
    if p.starts_with('/') || p.starts_with('\\') {
        return Err(UnsafeReason::Absolute);
    }
    if p.starts_with('~') {
        return Err(UnsafeReason::Tilde);
    }
    let b = p.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Err(UnsafeReason::DrivePrefix);
    }
    let parts: Vec<&str> = p
        .split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(UnsafeReason::ParentDir);
    }
    if parts.is_empty() {
        return Err(UnsafeReason::Empty);
    }
    Ok(parts)
}

/// Turns an index path into a bundle-relative one (SPEC §3.3).
///
/// `run_dir` is the run folder's path (absolute or as discovered); when the path's
/// leading components equal the trailing components of `run_dir` ending with the run
/// folder's name, they are stripped. With `repo_prefix` (the run folder relative to
/// `--repo-root`), exactly that prefix is stripped when present.
pub fn bundle_relative<'a>(
    parts: &[&'a str],
    run_dir: &Path,
    repo_prefix: Option<&[String]>,
) -> Vec<&'a str> {
    if let Some(prefix) = repo_prefix {
        if parts.len() > prefix.len() && parts.iter().zip(prefix).all(|(a, b)| *a == b) {
            return parts[prefix.len()..].to_vec();
        }
        return parts.to_vec();
    }
    let normal = |c: Component<'_>| match c {
        Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
        _ => None,
    };
    // Most entries name no folder that is the run's own (a file at the top of the
    // run, or beneath its own folders): nothing to strip, and no need to split the
    // run folder's path for each of them.
    let Some(run_name) = run_dir.components().rev().find_map(normal) else {
        return parts.to_vec();
    };
    if !parts[..parts.len().saturating_sub(1)].contains(&run_name.as_str()) {
        return parts.to_vec();
    }
    let run_parts: Vec<String> = run_dir.components().filter_map(normal).collect();
    // The longest prefix that ends with the run folder's name and matches the tail of
    // the run folder's own path wins; a file must remain after it.
    for k in (1..parts.len()).rev() {
        if parts[k - 1] != run_name.as_str() || k > run_parts.len() {
            continue;
        }
        let tail = &run_parts[run_parts.len() - k..];
        if parts[..k].iter().zip(tail).all(|(a, b)| *a == b) {
            return parts[k..].to_vec();
        }
    }
    parts.to_vec()
}

/// Where a bundle-relative path lands once symlinks are followed.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// Inside the base folder: the path to open and what `lstat` said of it (with no
    /// symlink on the way, or after following them, the final target's metadata).
    Inside(PathBuf, std::fs::Metadata),
    /// Nothing there (or a dangling link).
    Missing,
    /// A symlink (of the file or a parent) leads outside the base folder.
    Outside,
    /// The location could not be examined (permissions, loops, …).
    Unreadable(String),
}

/// Resolves `rel` (already lexically safe) below `base_canonical`, following symlinks
/// only to check where they lead.
///
/// The common case costs one `lstat` per component below the base: only when one of
/// them is a symlink is the whole path canonicalized and checked against the base.
pub fn resolve_inside(base_canonical: &Path, rel: &[&str]) -> Resolved {
    let mut p = base_canonical.to_path_buf();
    for (i, c) in rel.iter().enumerate() {
        p.push(c);
        match std::fs::symlink_metadata(&p) {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Resolved::Missing;
            }
            Err(e) => return Resolved::Unreadable(e.to_string()),
            Ok(m) if m.file_type().is_symlink() => {
                let full: PathBuf = rel
                    .iter()
                    .fold(base_canonical.to_path_buf(), |p, c| p.join(c));
                return resolve_through_links(base_canonical, &full);
            }
            Ok(m) if i + 1 == rel.len() => return Resolved::Inside(p, m),
            Ok(m) if !m.is_dir() => return Resolved::Missing,
            Ok(_) => {}
        }
    }
    Resolved::Missing
}

fn resolve_through_links(base_canonical: &Path, joined: &Path) -> Resolved {
    match std::fs::canonicalize(joined) {
        Ok(c) if c.starts_with(base_canonical) => match std::fs::metadata(&c) {
            Ok(m) => Resolved::Inside(c, m),
            Err(e) => Resolved::Unreadable(e.to_string()),
        },
        Ok(_) => Resolved::Outside,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            // A dangling link, or a linked folder without the file. Where would the
            // deepest existing part lead?
            let mut anc = Some(joined);
            while let Some(a) = anc {
                if a == base_canonical || !a.starts_with(base_canonical) {
                    break;
                }
                if std::fs::symlink_metadata(a).is_ok() {
                    return match std::fs::canonicalize(a) {
                        Ok(c) if c.starts_with(base_canonical) => Resolved::Missing,
                        Ok(_) => Resolved::Outside,
                        // The link itself dangles: judge it by its target's spelling.
                        Err(_) => match std::fs::read_link(a) {
                            Ok(t) if t.is_absolute() && !t.starts_with(base_canonical) => {
                                Resolved::Outside
                            }
                            Ok(t) if t.components().any(|c| c == Component::ParentDir) => {
                                Resolved::Outside
                            }
                            _ => Resolved::Missing,
                        },
                    };
                }
                anc = a.parent();
            }
            Resolved::Missing
        }
        Err(e) => Resolved::Unreadable(e.to_string()),
    }
}

/// True when `name` can be used as a file name in a URL and on every file system
/// as it is (SPEC §9.1 permalinks).
pub fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_rules() {
        let cases: &[(&str, Result<&[&str], UnsafeReason>)] = &[
            ("summary.json", Ok(&["summary.json"])),
            ("./a//b/./c.json", Ok(&["a", "b", "c.json"])),
            ("a\\b.json", Ok(&["a", "b.json"])),
            ("", Err(UnsafeReason::Empty)),
            (".", Err(UnsafeReason::Empty)),
            ("/etc/passwd", Err(UnsafeReason::Absolute)),
            ("\\share\\x", Err(UnsafeReason::Absolute)),
            ("../../outside", Err(UnsafeReason::ParentDir)),
            ("a/../../b", Err(UnsafeReason::ParentDir)),
            ("a\\..\\..\\b", Err(UnsafeReason::ParentDir)),
            ("~/secret", Err(UnsafeReason::Tilde)),
            ("~root", Err(UnsafeReason::Tilde)),
            ("a\0b", Err(UnsafeReason::Nul)),
            ("C:\\Windows\\x", Err(UnsafeReason::DrivePrefix)),
            ("c:/x", Err(UnsafeReason::DrivePrefix)),
            ("\\\\?\\C:\\x", Err(UnsafeReason::VerbatimPrefix)),
            ("a..b/c", Ok(&["a..b", "c"])),
        ];
        for (input, want) in cases {
            let got = lexical_components(input);
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(&g[..], *w, "{input:?}"),
                (Err(g), Err(w)) => assert_eq!(g, *w, "{input:?}"),
                (g, w) => panic!("{input:?}: got {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn repository_relative_paths_are_stripped() {
        let run = Path::new("/tmp/ws/book/experiments/x/out/run-1");
        let cases: &[(&str, &str)] = &[
            ("book/experiments/x/out/run-1/summary.json", "summary.json"),
            ("experiments/x/out/run-1/a/b.json", "a/b.json"),
            ("run-1/summary.json", "summary.json"),
            ("summary.json", "summary.json"),
            ("logs/apply.log", "logs/apply.log"),
            // The run's name deeper in, not ending a prefix of the run's own path.
            ("logs/run-1/x.json", "logs/run-1/x.json"),
            // A different run's path is not stripped: it stays bundle-relative.
            (
                "book/experiments/x/out/run-2/summary.json",
                "book/experiments/x/out/run-2/summary.json",
            ),
            // A prefix that does not match the run folder's own path is kept.
            (
                "other/out/run-1/summary.json",
                "other/out/run-1/summary.json",
            ),
            // The run folder itself is not an artifact.
            (
                "book/experiments/x/out/run-1",
                "book/experiments/x/out/run-1",
            ),
        ];
        for (input, want) in cases {
            let parts = lexical_components(input).unwrap();
            assert_eq!(
                bundle_relative(&parts, run, None).join("/"),
                *want,
                "{input}"
            );
        }
    }

    #[test]
    fn explicit_repo_root_prefix() {
        let prefix = vec!["out".to_string(), "r1".to_string()];
        let parts = lexical_components("out/r1/a.json").unwrap();
        assert_eq!(
            bundle_relative(&parts, Path::new("/x"), Some(&prefix)),
            vec!["a.json"]
        );
        let parts = lexical_components("r1/a.json").unwrap();
        assert_eq!(
            bundle_relative(&parts, Path::new("/x"), Some(&prefix)),
            vec!["r1", "a.json"]
        );
    }

    #[test]
    fn safe_file_names() {
        assert!(is_safe_file_name("04ebd64f-94a3-466c-a516-aa152e0dd3fb"));
        assert!(is_safe_file_name("run_1.2"));
        for bad in [
            "",
            ".hidden",
            "a/b",
            "<script>",
            "a b",
            "..",
            &"x".repeat(129),
        ] {
            assert!(!is_safe_file_name(bad), "{bad:?}");
        }
    }
}
