//! The `lith` binary: parse, run, exit. Everything else is in the library.

fn main() {
    // A malloc arena per core, two at least and four at most. glibc gives each
    // thread that allocates its own arena (up to eight per core), and what one arena
    // frees cannot serve another: with that many, the hashing threads' short-lived
    // buffers left holes beside the report's long-lived rows, and at 100,000 runs the
    // process kept 50 MB more than it used (302 against 253 MB peak RSS). With one
    // arena for all threads, the two threads of a 2-core machine waited on its lock
    // in a fifth of a rebuild's samples: two arenas made a warm rebuild of 10,000
    // runs 0.87 → 0.58 s and a cold build of 100,000 runs 7.1 → 5.5 s of user time.
    // Blocks of 128 KiB and more are mapped from the system and given back when
    // freed, whatever was freed before (glibc raises that threshold as large blocks
    // are freed, keeping the next ones in an arena): with two arenas, what one
    // kept of a 63 MB index was not there for the next index another thread read,
    // and a build of three such indexes peaked at 256 MiB instead of 231 (now 230).
    // MALLOC_ARENA_MAX and MALLOC_MMAP_THRESHOLD_, when set, are glibc's to apply.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // Sets a malloc tunable unless the environment variable glibc reads for it is
        // set.
        fn tune(env: &str, param: libc::c_int, value: impl FnOnce() -> usize) {
            if std::env::var_os(env).is_none() {
                // SAFETY: mallopt only sets a tunable, before any thread exists.
                unsafe {
                    libc::mallopt(param, value() as libc::c_int);
                }
            }
        }
        tune("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, || {
            std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4))
        });
        tune("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, || {
            128 << 10
        });
    }
    // A panic is a bug in lith, never a verdict: report it as a runtime error (4).
    let code = std::panic::catch_unwind(|| lith::cli::run(std::env::args_os())).unwrap_or_else(|_| {
        lith::term::eprint("error: internal error in lith (this is a bug; please report it with the input that caused it)");
        lith::exit::RUNTIME_ERROR
    });
    lith::exit::record_peak_rss();
    std::process::exit(code);
}
