//! Markdown from the inputs (a run's `summary.md`, later DoD documents), rendered
//! with pulldown-cmark and sanitized with ammonia: no script, no event handlers, no
//! `javascript:` URLs, no images that would load from the network, and no relative
//! links that could not resolve inside the site.

use pulldown_cmark::{Options, Parser, html};

pub fn render(text: &str) -> String {
    let parser = Parser::new_ext(text, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH);
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

#[cfg(test)]
mod tests {
    use super::render;

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
