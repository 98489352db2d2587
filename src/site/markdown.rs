//! Markdown from the inputs (a run's `summary.md`, later DoD documents), rendered
//! with pulldown-cmark and sanitized with ammonia: no script, no event handlers, no
//! `javascript:` URLs, no images that would load from the network, and no relative
//! links that could not resolve inside the site.

use pulldown_cmark::{Options, Parser, html};

/// The deepest block quote rendered; deeper `>` markers are shown as text. Nested
/// quotes make the Markdown parser's work grow with the square of the depth (a
/// 200 KB document of `>` took minutes), and no report needs more than a few.
pub const MAX_QUOTE_DEPTH: usize = 16;

pub fn render(text: &str) -> String {
    let text = cap_quote_depth(text);
    let parser = Parser::new_ext(
        &text,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    );
    let mut raw = String::with_capacity(text.len() * 2);
    html::push_html(&mut raw, parser);
    ammonia::Builder::default()
        .url_relative(ammonia::UrlRelative::Deny)
        .rm_tags(["img"])
        // Links open in the same tab; a `rel` on an `<a>` whose href was removed
        // would make the page invalid HTML.
        .link_rel(None)
        .clean(&raw)
        .to_string()
}

/// Escapes the `>` markers past [`MAX_QUOTE_DEPTH`] at the start of each line, so
/// rendering stays linear in the size of the document.
fn cap_quote_depth(text: &str) -> std::borrow::Cow<'_, str> {
    let too_deep = |line: &str| {
        line.bytes()
            .take_while(|b| matches!(b, b'>' | b' ' | b'\t'))
            .filter(|b| *b == b'>')
            .count()
            > MAX_QUOTE_DEPTH
    };
    if !text.lines().any(too_deep) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        if !too_deep(line) {
            out.push_str(line);
            continue;
        }
        let mut depth = 0;
        let mut rest = line;
        while let Some(c) = rest.chars().next() {
            match c {
                '>' if depth < MAX_QUOTE_DEPTH => depth += 1,
                '>' => out.push('\\'),
                ' ' | '\t' => {}
                _ => break,
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out.push_str(rest);
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::{MAX_QUOTE_DEPTH, render};

    #[test]
    fn quote_nesting_is_capped() {
        let doc = ">".repeat(40_000) + " deep\n";
        let html = render(&doc);
        assert_eq!(html.matches("<blockquote>").count(), MAX_QUOTE_DEPTH);
        assert!(html.contains("deep"));
        // Shallow quotes are untouched.
        assert_eq!(render("> > a\n").matches("<blockquote>").count(), 2);
    }

    #[test]
    fn hostile_markdown_is_defused() {
        let html = render(
            "# Hi\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n\
             [click](javascript:alert(1)) [rel](other.html) [ok](https://example.org/)\n\n\
             <a href=\"#\" onclick=\"alert(1)\">x</a>",
        );
        for bad in [
            "<script",
            "onerror",
            "onclick",
            "javascript:",
            "<img",
            "other.html",
        ] {
            assert!(!html.contains(bad), "{bad} survived: {html}");
        }
        assert!(html.contains("<h1>Hi</h1>"));
        assert!(html.contains("https://example.org/"));
    }
}
