//! The `lith` binary: parse, run, exit. Everything else is in the library.

fn main() {
    // A panic is a bug in lith, never a verdict: report it as a runtime error (4).
    let code = std::panic::catch_unwind(|| lith::cli::run(std::env::args_os())).unwrap_or_else(|_| {
        eprintln!("error: internal error in lith (this is a bug; please report it with the input that caused it)");
        lith::exit::RUNTIME_ERROR
    });
    lith::exit::record_peak_rss();
    std::process::exit(code);
}
