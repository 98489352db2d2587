//! Markdown from the inputs (a run's `summary.md`, later DoD documents), rendered
//! with pulldown-cmark and sanitized with ammonia: no script, no event handlers, no
//! `javascript:` URLs, no images that would load from the network, and no relative
//! links that could not resolve inside the site.

use pulldown_cmark::{Event, Options, Parser, Tag, html};

/// The deepest block quote rendered; deeper `>` markers are shown as text. Nested
/// quotes make the Markdown parser's work grow with the square of the depth (a
/// 200 KB document of `>` took minutes), and no report needs more than a few.
pub const MAX_QUOTE_DEPTH: usize = 16;

/// The most tags of raw HTML a document's Markdown passes on to the sanitizer;
/// raw HTML past them is shown as text. The HTML parser behind the sanitizer works
/// in proportion to the depth of open elements for each tag, so tags left open
/// cost the square of their number: 60,000 `<div>` took 12 s, and a run's
/// `summary.md` (256 KiB) could hold 50,000 of them. Tags left open also nest the
/// page: past 513 elements deep, browsers flatten the tree and the Nu HTML Checker
/// calls the page invalid. No report needs more than a few hundred.
pub const MAX_RAW_HTML_TAGS: usize = 256;

/// The deepest the Markdown's own elements nest (lists in lists, emphasis in
/// emphasis): deeper ones are left out and their content flows into the deepest
/// kept, so that with the raw HTML kept and the page around it the tree stays
/// under the 513 elements browsers keep (1,400 nested list items made a page the
/// Nu HTML Checker refused).
pub const MAX_NESTING: usize = 128;

pub fn render(text: &str) -> String {
    let text = cap_quote_depth(text);
    let parser = Parser::new_ext(
        &text,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    );
    let mut tags = 0usize;
    let mut nesting = Nesting::default();
    let events = parser.filter_map(|event| {
        if let Event::Html(h) | Event::InlineHtml(h) = &event {
            tags += tags_in(h);
            if tags > MAX_RAW_HTML_TAGS {
                return Some(Event::Text(h.clone()));
            }
        }
        nesting.keep(event)
    });
    let mut raw = String::with_capacity(text.len() * 2);
    html::push_html(&mut raw, events);
    ammonia::Builder::default()
        .url_relative(ammonia::UrlRelative::Deny)
        .rm_tags(["img"])
        // Links open in the same tab; a `rel` on an `<a>` whose href was removed
        // would make the page invalid HTML.
        .link_rel(None)
        .clean(&raw)
        .to_string()
}

/// The Markdown elements open, each kept or left out ([`MAX_NESTING`]).
#[derive(Default)]
struct Nesting {
    /// For each element open, whether it was kept…
    open: Vec<bool>,
    /// …and the kept ones whose children must be kept for the page to be valid
    /// (a list's items, a table's rows and cells), or not.
    kept: Vec<bool>,
}

impl Nesting {
    /// The event, or none when it opens or closes an element left out.
    fn keep<'e>(&mut self, event: Event<'e>) -> Option<Event<'e>> {
        match &event {
            Event::Start(tag) => {
                let needs_children = matches!(
                    tag,
                    Tag::List(_) | Tag::Table(_) | Tag::TableHead | Tag::TableRow
                );
                let parent_needs = self.kept.last().copied().unwrap_or(false);
                let keep = self.kept.len() < MAX_NESTING || parent_needs;
                self.open.push(keep);
                if !keep {
                    return None;
                }
                self.kept.push(needs_children);
            }
            Event::End(_) => {
                if !self.open.pop().unwrap_or(true) {
                    return None;
                }
                self.kept.pop();
            }
            _ => {}
        }
        Some(event)
    }
}

/// The tags in a piece of raw HTML, counted generously: every `<` before a letter,
/// `/` or `!`.
fn tags_in(html: &str) -> usize {
    html.as_bytes()
        .windows(2)
        .filter(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || matches!(w[1], b'/' | b'!')))
        .count()
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
    fn raw_html_past_its_tags_budget_is_shown_as_text() {
        use super::MAX_RAW_HTML_TAGS;
        // 60,000 open `<div>` took the sanitizer 12 s; on one line or on many.
        for doc in ["<div>".repeat(60_000), "<div>\n".repeat(60_000)] {
            let html = render(&doc);
            assert!(
                html.matches("<div>").count() <= MAX_RAW_HTML_TAGS,
                "divs kept"
            );
            assert!(html.contains("&lt;div&gt;"), "the rest is text");
        }
        // A document with a few tags keeps them.
        let few = render("<details><summary>More</summary>\n\nText\n\n</details>\n");
        assert!(few.contains("<details><summary>More</summary>"), "{few}");
    }

    #[test]
    fn nesting_past_its_cap_flows_into_the_deepest_element_kept() {
        use super::MAX_NESTING;
        // 1,400 nested list items; emphasis in emphasis 2,000 deep.
        let lists: String = (0..1_400)
            .map(|i| format!("{}- item {i}\n", "  ".repeat(i)))
            .collect();
        let html = render(&lists);
        let depth = |html: &str, tag: &str| {
            let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
            let (mut d, mut max) = (0usize, 0usize);
            let mut rest = html;
            while let Some(i) = rest.find('<') {
                rest = &rest[i..];
                if rest.starts_with(&open) {
                    d += 1;
                    max = max.max(d);
                } else if rest.starts_with(&close) {
                    d = d.saturating_sub(1);
                }
                rest = &rest[1..];
            }
            max
        };
        let ul = depth(&html, "ul");
        assert!(ul > 10 && ul <= MAX_NESTING, "{ul} lists deep");
        assert!(
            html.contains("item 1399"),
            "the deepest items are still shown"
        );
        // `*a _a *a … a_ a* a_ a*`: each closes the one opened before it.
        let marks = |i: usize| if i.is_multiple_of(2) { '*' } else { '_' };
        let mut emph: String = (0..2_000).map(|i| format!("{}a ", marks(i))).collect();
        emph.extend((0..2_000).rev().map(|i| format!("a{} ", marks(i))));
        let html = render(&emph);
        assert!(depth(&html, "em") <= MAX_NESTING, "{}", depth(&html, "em"));
        // Tables keep their rows and cells whatever the depth around them.
        let table = render("> | a | b |\n> |---|---|\n> | 1 | 2 |\n");
        assert!(table.contains("<td>1</td><td>2</td>"), "{table}");
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
