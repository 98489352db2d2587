//! The `lith` binary: parse, run, exit. Everything else is in the library.

fn main() {
    std::process::exit(lith::cli::run(std::env::args_os()));
}
