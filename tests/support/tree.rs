//! Copies of folders for the tests and the benchmark harness (`benches/quality.rs`
//! includes this file).

use std::path::Path;

/// Copies a folder tree (following nothing: symlinks are recreated as symlinks).
pub fn copy_tree(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(from).unwrap();
        let dest = to.join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else if e.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
            let mut perms = std::fs::metadata(&dest).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&dest, perms).unwrap();
        }
    }
}

/// The demo workspace in `to`: its fixtures and the repository's `manifest.lith`.
pub fn copy_demo(to: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    copy_tree(
        &repo.join("tests/fixtures/demo"),
        &to.join("tests/fixtures/demo"),
    );
    std::fs::copy(repo.join("manifest.lith"), to.join("manifest.lith")).unwrap();
}
