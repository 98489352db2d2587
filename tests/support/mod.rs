//! A temp workspace that writes files, builds bundles with correct digests, and runs
//! the real `lith` binary.

#![allow(dead_code)]

pub mod hostile;
pub mod tree;

pub use tree::copy_tree;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A workspace holding a copy of the demo: its fixtures and the repository's
    /// `manifest.lith`.
    pub fn demo() -> Workspace {
        let ws = Workspace::new();
        tree::copy_demo(ws.path());
        ws
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> &Self {
        let p = self.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        self
    }

    pub fn read_opt(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.join(rel)).ok()
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// Writes a run folder with `files`, a `run_status.json` in `state`, and an index
    /// listing every file with correct sizes and digests (bundle-relative paths).
    pub fn committed_run(&self, run_dir: &str, state: &str, files: &[(&str, &str)]) -> &Self {
        let run_id = run_dir.rsplit('/').next().unwrap();
        self.write(
            &format!("{run_dir}/run_status.json"),
            serde_json::to_string_pretty(&json!({"run_id": run_id, "state": state})).unwrap(),
        );
        for (name, content) in files {
            self.write(&format!("{run_dir}/{name}"), content);
        }
        let artifacts: Vec<Value> = files
            .iter()
            .map(|(name, content)| json!({"path": name, "file_size": content.len(), "sha256": sha256_hex(content.as_bytes())}))
            .collect();
        self.index(
            run_dir,
            json!({"run_id": run_id, "artifacts": artifacts, "missing": [], "status": "ok"}),
        )
    }

    pub fn index(&self, run_dir: &str, index: Value) -> &Self {
        self.write(
            &format!("{run_dir}/artifact_index.json"),
            serde_json::to_string_pretty(&index).unwrap(),
        )
    }

    pub fn lith(&self, args: &[&str]) -> Run {
        self.lith_env(args, &[])
    }

    /// Starts lith with no input and its output piped.
    fn spawn_piped(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs lith, killing it when it has not finished within `secs` (a hang is a
    /// failure, reported as `None`, not a test that never ends).
    pub fn lith_within(&self, args: &[&str], secs: u64) -> Option<Run> {
        let mut child = self.spawn_piped(args);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Some(child.wait_with_output().unwrap().into())
    }

    /// The real `lith` binary, run in the workspace as CI would run it.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lith"));
        cmd.args(args)
            .current_dir(self.path())
            .env("CI", "true")
            .env_remove("SOURCE_DATE_EPOCH");
        cmd
    }

    /// Runs lith and returns what it printed with its peak resident memory in MiB,
    /// as lith itself measured it (`LITH_PEAK_RSS_FILE`; a parent's `ru_maxrss`
    /// would include the test process's own high-water mark).
    pub fn lith_peak_mib(&self, args: &[&str]) -> (Run, u64) {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = self.command(args);
        cmd.env("LITH_PEAK_RSS_FILE", file.path());
        let run: Run = cmd.output().unwrap().into();
        let kib: u64 = std::fs::read_to_string(file.path())
            .unwrap()
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("no peak recorded ({e}): {run:?}"));
        (run, kib / 1024)
    }

    pub fn lith_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap().into()
    }
}

/// Every file below `dir`, relative, sorted.
pub fn files_below(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    out.sort();
    out
}

/// The corpus folder, when `LITH_CORPUS` points at one.
pub fn corpus() -> PathBuf {
    let dir = std::env::var("LITH_CORPUS")
        .expect("set LITH_CORPUS to the corpus folder to run the corpus checks");
    let p = PathBuf::from(dir);
    let p = if p.is_absolute() {
        p
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
    };
    assert!(p.is_dir(), "LITH_CORPUS={} is not a folder", p.display());
    p
}

/// A small deterministic random source for kill times.
pub struct Lcg(pub u64);
impl Lcg {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// Swaps `base/sub` (a folder) with `base/link` (a symlink) until `stop` is set (or
/// 200,000 swaps): the race a reader that checks a name and then opens it loses.
pub fn swap_folder_and_link(
    base: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u32> {
    swap_folder_and_link_up_to(base, stop, 200_000)
}

/// [`swap_folder_and_link`] for at most `most` swaps (a test that fails before it
/// sets `stop` does not leave the thread swapping).
pub fn swap_folder_and_link_up_to(
    base: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    most: u32,
) -> std::thread::JoinHandle<u32> {
    swapping(stop, most, move || {
        // sub (folder) → sub.real, link → sub, then back.
        let _ = std::fs::rename(base.join("sub"), base.join("sub.real"));
        let _ = std::fs::rename(base.join("link"), base.join("sub"));
        let _ = std::fs::rename(base.join("sub"), base.join("link"));
        let _ = std::fs::rename(base.join("sub.real"), base.join("sub"));
    })
}

/// A thread that runs `swap` over and over until `stop` is set or it ran `most`
/// times; it returns how many times it ran.
fn swapping(
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    most: u32,
    mut swap: impl FnMut() + Send + 'static,
) -> std::thread::JoinHandle<u32> {
    use std::sync::atomic::Ordering;
    std::thread::spawn(move || {
        let mut swaps = 0u32;
        while !stop.load(Ordering::Relaxed) && swaps < most {
            swap();
            swaps += 1;
        }
        swaps
    })
}

/// Runs `round` (given its number) over and over while another thread swaps the
/// folder `base/sub` for a new link to `target` and back, until 200 rounds did
/// their work (`Ok(true)`) and 5 were refused (`Err`), or 120 s pass (a loaded
/// machine leaves the swapper waiting for a core); `Ok(false)` is a round that
/// counts for neither. Then asserts that rounds met the link (at least one
/// refused) and did their work in between (at least 50), so the race was run.
pub fn race_with_new_links<E>(
    base: &Path,
    target: &Path,
    mut round: impl FnMut(u32) -> Result<bool, E>,
) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = swap_folder_for_new_links(
        base.to_path_buf(),
        target.to_path_buf(),
        stop.clone(),
        5_000_000,
    );
    let (mut done, mut refused, mut rounds) = (0, 0, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while (done < 200 || refused < 5) && std::time::Instant::now() <= deadline {
        match round(rounds) {
            Ok(true) => done += 1,
            Ok(false) => {}
            Err(_) => refused += 1,
        }
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(
        swaps > 100 && done >= 50 && refused >= 1,
        "swaps {swaps}, rounds that did their work {done}, refused {refused}, rounds {rounds}"
    );
}

/// Swaps the folder `base/sub` for a new link to `target` and back, up to `most`
/// times or until `stop`, for tests of writers that may make `sub` themselves
/// while it is away: the folder then takes its name back from what they made.
fn swap_folder_for_new_links(
    base: PathBuf,
    target: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    most: u32,
) -> std::thread::JoinHandle<u32> {
    swapping(stop, most, move || {
        let _ = std::fs::rename(base.join("sub"), base.join("sub.real"));
        let _ = std::os::unix::fs::symlink(&target, base.join("sub"));
        let _ = std::fs::remove_file(base.join("sub"));
        if std::fs::rename(base.join("sub.real"), base.join("sub")).is_err() {
            let _ = std::fs::remove_dir_all(base.join("sub"));
            let _ = std::fs::rename(base.join("sub.real"), base.join("sub"));
        }
    })
}

/// The promotion packet a run page shows (`<pre class="packet">`), HTML-unescaped
/// and parsed.
pub fn packet_on_page(html: &str) -> serde_json::Value {
    let start = html
        .find(r#"<pre class="packet"><code>"#)
        .expect("the page shows a promotion packet")
        + r#"<pre class="packet"><code>"#.len();
    let end = start + html[start..].find("</code></pre>").unwrap();
    let text = html[start..end]
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&text).expect("the packet is JSON")
}
