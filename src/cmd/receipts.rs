//! `lith receipts check FILE`.

use anyhow::Context;

use crate::cli::{GlobalArgs, ReceiptsCheckArgs};
use crate::exit;
use crate::receipts::{self, Contract};

pub fn execute(g: &GlobalArgs, a: &ReceiptsCheckArgs) -> anyhow::Result<i32> {
    let contract = match &a.contract {
        Some(c) => Contract::load(c).map_err(|e| {
            anyhow::anyhow!(
                "{e}\n  (fix the contract, or leave --contract out to use the built-in one)"
            )
        })?,
        None => Contract::default(),
    };
    let (file, _) = crate::fsutil::open_regular(&a.file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.file.display()))
        .context("cannot read the receipts log")?;
    let check = receipts::check_reader(file, &contract, |_| {})
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.file.display()))
        .context("cannot read the receipts log")?;
    let code = if check.lines_with_findings == 0 {
        exit::OK
    } else {
        exit::PARTIAL
    };
    if g.json {
        crate::cmd::print_json(&check)?;
    } else if !g.quiet {
        let mut s = format!(
            "{}: {} receipt(s), {} line(s) with findings (contract: {})\n",
            a.file.display(),
            check.receipts,
            check.lines_with_findings,
            check.contract
        );
        for (k, n) in &check.lines_by_finding {
            s.push_str(&format!("  {k}: {n} line(s)\n"));
        }
        const SHOWN: usize = 20;
        for f in check.findings.iter().take(SHOWN) {
            s.push_str(&format!(
                "  line {}: {}: {}\n",
                f.line,
                f.kind.as_str(),
                crate::term::one_line(&f.message)
            ));
        }
        if check.findings.len() > SHOWN {
            s.push_str(&format!(
                "  … {} more finding(s); use --json for all\n",
                check.findings.len() - SHOWN
            ));
        }
        crate::cmd::print_stdout(&s)?;
    }
    Ok(code)
}
