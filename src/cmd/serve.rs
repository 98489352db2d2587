//! `lith serve`: a local preview of the site that stays fresh (SPEC §5).
//!
//! It builds once, then serves the output folder on 127.0.0.1 (by default). Every
//! poll and every `GET /api/catalog` is a *check*: within `debounce-ms` of the last
//! look at the inputs the cached snapshot is served (`debounced-cache`); after that a
//! signature of the inputs (paths, sizes, inodes, times) decides between `cache-hit` and
//! `refreshed`, which rebuilds the site. Only files inside the output folder are
//! served. Ctrl-C (SIGINT) or SIGTERM stops it cleanly.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

use crate::beneath::{Dir, Refusal};
use crate::bundle::verify::{Mode, hex};
use crate::catalog::{self, Catalog, Refresh, RefreshDecision};
use crate::cli::{GlobalArgs, ServeArgs};
use crate::clock::Clock;
use crate::http::{self, Response};
use crate::lith::Manifest;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

struct State {
    manifest: Manifest,
    out: PathBuf,
    mode: Mode,
    refresh: Refresh,
    catalog: Catalog,
    signature: String,
    /// When the inputs were last examined (the debounce window starts here).
    last_look: Instant,
    debounce: Duration,
}

/// A signature of everything a build reads: each entry's path, size, inode, mode,
/// links, and modification and change times (a change time cannot be set back).
fn signature(m: &Manifest) -> String {
    let ws = &m.workspace;
    let mut paths: Vec<PathBuf> = vec![m.path.clone()];
    if let Some(b) = &m.bundles {
        for pattern in &b.roots {
            if let Ok(found) = crate::bundle::layout::expand_glob(ws, pattern) {
                paths.extend(found.into_iter().map(|r| ws.join(r)));
            }
        }
    }
    for p in [
        m.queue.as_ref().map(|q| q.log.clone()),
        m.receipts.as_ref().map(|r| r.log.clone()),
        m.receipts.as_ref().and_then(|r| r.contract.clone()),
        m.promptdb.as_ref().map(|p| p.root.clone()),
    ]
    .into_iter()
    .flatten()
    .chain(m.gates.iter().filter_map(|g| g.open_questions.clone()))
    .chain(m.proof_schema.iter().flat_map(|p| p.required_refs.clone()))
    .chain(
        m.hash_sources
            .iter()
            .map(|(_, g)| g.as_str())
            .chain(std::iter::once(crate::gate::DEFAULT_PI_ZIP))
            .map(literal_prefix),
    ) {
        paths.push(ws.join(p));
    }
    paths.sort();
    paths.dedup();
    // Digested as the walk meets each entry, in name order: a workspace of a million
    // files costs this check no memory.
    let mut h = Sha256::new();
    for root in paths {
        for e in walkdir::WalkDir::new(&root)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_map(Result::ok)
        {
            use std::os::unix::ffi::OsStrExt;
            use std::os::unix::fs::MetadataExt;
            if let Ok(md) = e.metadata() {
                let path = e.path().as_os_str().as_bytes();
                h.update((path.len() as u64).to_le_bytes());
                h.update(path);
                for n in [md.len(), md.ino(), md.mode() as u64, md.nlink()] {
                    h.update(n.to_le_bytes());
                }
                for t in [md.mtime(), md.mtime_nsec(), md.ctime(), md.ctime_nsec()] {
                    h.update(t.to_le_bytes());
                }
            }
        }
    }
    hex(&h.finalize())
}

/// The folder part of a glob before its first wildcard (`artifacts/truth/Π*.zip` →
/// `artifacts/truth`).
fn literal_prefix(glob: &str) -> String {
    glob.split('/')
        .take_while(|c| !c.contains(['*', '?', '[', '{']))
        .collect::<Vec<_>>()
        .join("/")
}

fn rebuild(st: &mut State, quiet: bool) -> anyhow::Result<()> {
    let clock = Clock::from_env().map_err(anyhow::Error::msg)?;
    // The manifest may have changed too.
    if let Ok(m) = Manifest::load(&st.manifest.path) {
        st.manifest = m;
    }
    let opts = crate::pipeline::Options {
        mode: st.mode,
        quiet: true,
        attest: false,
        reuse: None,
    };
    let mut report = crate::pipeline::evaluate(&st.manifest, &clock, &opts)?;
    let now = clock.now_rfc3339();
    st.refresh.last_refreshed_at = Some(now);
    // The build read the packets once; the catalog keeps them with serve's own
    // refresh statistics instead of a single build's.
    if let Some(db) = report.promptdb.as_mut() {
        db.refresh = st.refresh.clone();
    }
    if let Some(db) = &report.promptdb {
        st.catalog = Catalog::of(&report, db);
    }
    crate::site::publish(&mut report, &st.out, None)?;
    if !quiet {
        crate::term::eprint(&format!(
            "lith serve: rebuilt ({}, exit code {})",
            report.verdict.label, report.verdict.exit_code
        ));
    }
    Ok(())
}

/// One check: decide between the cached snapshot and a rebuild.
fn check(st: &mut State, quiet: bool) {
    let clock =
        Clock::from_env().unwrap_or_else(|_| Clock::fixed_at(time::OffsetDateTime::now_utc()));
    st.refresh.checks += 1;
    st.refresh.last_checked_at = Some(clock.now_rfc3339());
    if st.last_look.elapsed() < st.debounce {
        st.refresh.cache_hits += 1;
        st.refresh.last_decision = RefreshDecision::DebouncedCache;
    } else {
        st.last_look = Instant::now();
        let sig = signature(&st.manifest);
        let root_missing = st
            .manifest
            .promptdb
            .as_ref()
            .is_some_and(|p| !st.manifest.resolve(&p.root).is_dir());
        if sig == st.signature {
            st.refresh.cache_hits += 1;
            st.refresh.last_decision = if root_missing {
                RefreshDecision::RootMissing
            } else {
                RefreshDecision::CacheHit
            };
        } else {
            st.signature = sig;
            st.refresh.refreshes += 1;
            st.refresh.last_decision = if root_missing {
                RefreshDecision::RootMissing
            } else {
                RefreshDecision::Refreshed
            };
            if let Err(e) = rebuild(st, quiet) {
                crate::term::eprint(&format!(
                    "lith serve: rebuild failed, serving the previous site: {e:#}"
                ));
            }
        }
    }
    st.catalog.refresh = st.refresh.clone();
}

pub fn execute(g: &GlobalArgs, a: &ServeArgs) -> anyhow::Result<i32> {
    let manifest = Manifest::load(&g.manifest)?;
    let out = a
        .build
        .out
        .clone()
        .unwrap_or_else(|| crate::cmd::build::default_out(&manifest));
    let mode = if a.build.fast { Mode::Fast } else { Mode::Full };
    let debounce_ms = catalog::debounce_ms(&manifest);
    let refresh = Refresh {
        strategy: "polling+debounce".into(),
        debounce_ms,
        checks: 0,
        refreshes: 0,
        cache_hits: 0,
        last_checked_at: None,
        last_refreshed_at: None,
        last_decision: RefreshDecision::Refreshed,
    };
    let mut st = State {
        signature: String::new(),
        catalog: Catalog {
            generated_at: String::new(),
            promptdb_root: None,
            packets: Vec::new(),
            errors: 0,
            runs: Vec::new(),
            refresh: refresh.clone(),
        },
        refresh,
        manifest,
        out,
        mode,
        last_look: Instant::now() - Duration::from_secs(3600),
        debounce: Duration::from_millis(debounce_ms.max(0) as u64),
    };
    // The first build is a check and a refresh like any other.
    check(&mut st, g.quiet);
    if st.catalog.generated_at.is_empty() {
        anyhow::bail!("the first build failed; nothing to serve");
    }
    let site = std::fs::canonicalize(&st.out).with_context(|| format!("{}", st.out.display()))?;
    let listener = std::net::TcpListener::bind((a.bind.as_str(), a.port))
        .map_err(|e| anyhow::anyhow!("cannot listen on {}:{}: {e}", a.bind, a.port))?;
    let addr = listener.local_addr()?;
    crate::term::eprint(&format!(
        "lith serve: http://{addr}/ (serving {}; Ctrl-C to stop)",
        crate::fsutil::slash_path(&st.out)
    ));
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let state = Arc::new(Mutex::new(st));
    let poller = {
        let state = Arc::clone(&state);
        let every = Duration::from_millis(a.poll_ms.max(50));
        let quiet = g.quiet;
        std::thread::spawn(move || {
            let mut next = Instant::now() + every;
            while !STOP.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
                if Instant::now() >= next {
                    if let Ok(mut st) = state.lock() {
                        check(&mut st, quiet);
                    }
                    next = Instant::now() + every;
                }
            }
        })
    };
    let quiet = g.quiet;
    let handler: http::Handler =
        Arc::new(move |req: &http::Request| respond(req, &state, &site, quiet));
    http::serve(listener, http::Limits::default(), &STOP, handler);
    let _ = poller.join();
    if !g.quiet {
        crate::term::eprint("lith serve: stopped");
    }
    Ok(crate::exit::OK)
}

fn respond(req: &http::Request, state: &Arc<Mutex<State>>, site: &Path, quiet: bool) -> Response {
    let path = req.path();
    if path == "/api/catalog" || path == "/api/catalog/" {
        let body = match state.lock() {
            Ok(mut st) => {
                check(&mut st, quiet);
                serde_json::to_vec_pretty(&st.catalog).unwrap_or_default()
            }
            Err(_) => return Response::text(500, "the catalog is unavailable"),
        };
        return Response::bytes(200, "application/json", body)
            .with_header("Cache-Control", "no-store");
    }
    match resolve(site, path) {
        Target::File(file, len, name) => Response {
            status: 200,
            headers: vec![("Content-Type", content_type(&name).to_string())],
            body: http::Body::File(file, len),
        },
        Target::Folder(location) => Response::text(301, "moved")
            .with_header("Location", format!("{location}{}", req.query())),
        Target::NotFound => Response::text(404, "not found"),
    }
}

/// What a URL path names inside the site.
#[derive(Debug)]
pub enum Target {
    /// A regular file (opened beneath the site's handle), its length and its name.
    File(std::fs::File, u64, String),
    /// A folder asked for without its trailing slash: redirect here (the path with a
    /// slash, rebuilt from its checked components).
    Folder(String),
    NotFound,
}

/// Characters kept as they are in a redirect's path; the rest is escaped.
const PATH_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Maps a URL path to a file inside the site: percent-escapes are decoded first,
/// `..`, absolute and drive paths are refused, and the file is opened beneath the
/// site folder's handle, so no link leads outside it. A folder is its `index.html`;
/// a folder named without its trailing slash is a redirect, so relative links on its
/// page resolve.
pub fn resolve(site: &Path, url_path: &str) -> Target {
    let Ok(decoded) = percent_decode_str(url_path).decode_utf8() else {
        return Target::NotFound;
    };
    let trimmed = decoded.trim_start_matches('/');
    let parts = if trimmed.is_empty() {
        Vec::new()
    } else {
        match crate::bundle::paths::lexical_components(trimmed) {
            Ok(p) => p,
            Err(_) => return Target::NotFound,
        }
    };
    let Ok(dir) = Dir::open(site) else {
        return Target::NotFound;
    };
    let mut rel: Vec<&str> = parts.clone();
    let wants_folder = rel.is_empty() || decoded.ends_with('/');
    if wants_folder {
        rel.push("index.html");
    }
    match dir.open_file(&rel) {
        Ok((file, meta)) => Target::File(file, meta.len(), rel.last().unwrap_or(&"").to_string()),
        Err(Refusal::NotAFile("folder")) if !wants_folder => {
            let mut location = String::new();
            for p in &parts {
                location.push('/');
                location.extend(utf8_percent_encode(p, PATH_KEEP));
            }
            location.push('/');
            Target::Folder(location)
        }
        Err(_) => Target::NotFound,
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("txt") | Some("md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(site: &Path, url: &str) -> Option<String> {
        match resolve(site, url) {
            Target::File(mut f, _, _) => {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut f, &mut s).unwrap();
                Some(s)
            }
            Target::Folder(to) => Some(format!("-> {to}")),
            Target::NotFound => None,
        }
    }

    #[test]
    fn paths_outside_the_site_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        std::fs::create_dir_all(site.join("runs/a b")).unwrap();
        std::fs::write(site.join("index.html"), "i").unwrap();
        std::fs::write(site.join("runs/a b/index.html"), "a").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), site.join("leak")).unwrap();
        std::os::unix::fs::symlink(dir.path(), site.join("up")).unwrap();
        let site = std::fs::canonicalize(&site).unwrap();
        assert_eq!(found(&site, "/").as_deref(), Some("i"));
        assert_eq!(found(&site, "/runs/a%20b/").as_deref(), Some("a"));
        assert_eq!(
            found(&site, "/runs/%61%20b/index.html").as_deref(),
            Some("a")
        );
        // A folder without its slash redirects to the folder, escaped and rebuilt
        // from its components (never to another host).
        assert_eq!(found(&site, "/runs").as_deref(), Some("-> /runs/"));
        assert_eq!(
            found(&site, "//runs/a%20b").as_deref(),
            Some("-> /runs/a%20b/")
        );
        for bad in [
            "/../secret",
            "/%2e%2e/secret",
            "/runs/../../secret",
            "/leak",
            "/up/secret",
            "/up",
            "//etc/passwd",
            "/%2fetc/passwd",
            "/nope",
            "/%zz",
            "/%ff",
            "/..%5csecret",
            "/index.html/",
        ] {
            assert_eq!(found(&site, bad), None, "{bad}");
        }
    }
}
