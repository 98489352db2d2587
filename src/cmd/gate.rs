//! `lith gate push-truth`: the dry run of the push-truth gate.

use crate::cli::GlobalArgs;
use crate::exit;
use crate::gate::{self, GateReport};
use crate::lith::Manifest;

pub fn execute(g: &GlobalArgs) -> anyhow::Result<i32> {
    let manifest = Manifest::load(&g.manifest)?;
    let Some(report) = gate::push_truth(&manifest) else {
        anyhow::bail!(
            "{}: no (proof-schema …) and no (gates (gate (id push-truth) …)): the push-truth gate is not configured",
            g.manifest.display()
        );
    };
    // Fails closed: an input the gate could not read is a runtime error, never clear.
    let code = if !report.unreadable_inputs.is_empty() {
        exit::RUNTIME_ERROR
    } else if report.blocked {
        exit::PARTIAL
    } else {
        exit::OK
    };
    if g.json {
        crate::cmd::print_json(&report)?;
    } else if !g.quiet {
        crate::cmd::print_stdout(&render(&report))?;
    }
    Ok(code)
}

pub fn render(r: &GateReport) -> String {
    use crate::term::one_line;
    let mut s = if r.blocked {
        format!(
            "{}: BLOCKED ({})\n",
            r.id,
            crate::gate::join_reasons(&r.reasons)
        )
    } else {
        format!("{}: clear\n", r.id)
    };
    s.push_str(&format!(
        "  truth unit {} · host handle {}\n",
        r.truth_unit.as_deref().unwrap_or("(none)"),
        r.host_handle.as_deref().unwrap_or("(missing)")
    ));
    if !r.required_refs.is_empty() {
        s.push_str("  required refs:\n");
        for c in &r.required_refs {
            s.push_str(&format!(
                "    {:<8} {} ({})\n",
                if c.satisfied { "ok" } else { "missing" },
                c.reference,
                c.how
            ));
        }
    }
    if !r.required_hashes.is_empty() {
        s.push_str("  required hashes:\n");
        for h in &r.required_hashes {
            let state = if h.available { "ok" } else { "missing" };
            s.push_str(&format!(
                "    {state:<8} {} ← {}\n",
                h.spec,
                if h.source.is_empty() {
                    "(unbound)".into()
                } else {
                    one_line(&h.source)
                }
            ));
            for f in &h.files {
                s.push_str(&format!(
                    "             {} sha256 {}\n",
                    one_line(&f.path),
                    f.sha256
                ));
            }
            if let Some(n) = &h.note {
                s.push_str(&format!("             {}\n", one_line(n)));
            }
        }
    }
    let rc = &r.receipts;
    if rc.configured {
        s.push_str(&format!(
            "  receipts: {} receipt(s), {} line(s) missing required keys",
            rc.receipts, rc.lines_missing_keys
        ));
        match (&rc.intent_ref, rc.intent_ref_line) {
            (Some(i), Some(l)) => s.push_str(&format!("; intent ref {i} at line {l}\n")),
            (Some(i), None) => s.push_str(&format!("; intent ref {i} not found\n")),
            (None, _) => s.push_str("; no intent ref configured\n"),
        }
    } else {
        s.push_str(
            "  receipts: not configured (no (receipts …) section); receipt checks skipped\n",
        );
    }
    if let Some(oq) = &r.open_questions {
        let open: Vec<_> = oq.questions.iter().filter(|q| !q.resolved).collect();
        s.push_str(&format!(
            "  open questions ({}): {} of {} unresolved\n",
            oq.packet,
            open.len(),
            oq.questions.len()
        ));
        for q in &oq.questions {
            s.push_str(&format!(
                "    {:<10} {}  {}\n",
                if q.resolved { "resolved" } else { "open" },
                one_line(&q.id),
                one_line(&q.text)
            ));
        }
        if let Some(e) = &oq.error {
            s.push_str(&format!("    error: {}\n", one_line(e)));
        }
    }
    for a in &r.advisories {
        s.push_str(&format!("  advisory: {a}\n"));
    }
    if !r.needs.is_empty() {
        s.push_str("  needs:\n");
        for n in &r.needs {
            s.push_str(&format!("    - {n}\n"));
        }
    }
    if let Some(k) = &r.keeper_of_contracts {
        s.push_str(&format!(
            "  Keeper of Contracts says: {}\n",
            k.say_intent.text
        ));
        s.push_str(&format!("    asks: {}\n", k.say_intent.asks.join("; ")));
        s.push_str(&format!("    facts: {}\n", k.say_intent.facts.join(", ")));
        s.push_str(&format!(
            "    repairs: {}\n",
            k.say_intent.repairs.join(" ")
        ));
    }
    s
}
