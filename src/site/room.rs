//! Each page's room: SPEC §11 wants every page of the site under 1 MB and the
//! overview under 100 KB, whatever the inputs hold.
//!
//! Each list and text a page shows has caps of its own (items, characters), and a
//! usual page is a few KB; but nothing bounded their sum, and every character a
//! page shows may escape to five bytes. So the lists fill a budget of bytes,
//! measured as escaped ([`html_len`]), in the order a reviewer needs them, and each
//! counts what it leaves out ([`keep_within`]). Where several lists share a page,
//! each has its share of the room ([`Shares`]), so one long list never hides the
//! others. A run page's facts, promotion facts and table of artifacts (whose rows
//! are bounded on their own) are kept whole: a run page larger than
//! [`RUN_PAGE_BYTES`] is measured without the rest, which then fills what is left
//! ([`render`]).

use askama::Template;

use super::{FindingRow, RunPage};

/// The most bytes of a run page.
pub const RUN_PAGE_BYTES: usize = 1_000_000;

/// The bytes the lists of a section's page (the queue's findings, pending tasks and
/// cross-check, …) share, leaving the rest of [`RUN_PAGE_BYTES`] to what the page
/// shows besides them.
pub const LISTS_ROOM: usize = 900_000;

/// Markup around one item of a list a run page shows, at most (its tags, a badge,
/// a severity and a code), besides the escaped text of its values.
pub(super) const ITEM_MARKUP: usize = 256;

/// Room kept for what a fitted page has and its bare form has not: the tags around
/// a list, a `<pre>` or a Markdown block, and notes longer than the bare page's.
const WRAPPERS: usize = 4096;

/// The bytes `s` takes once askama has escaped it: `"`, `&`, `'`, `<` and `>`
/// become five-byte references.
pub fn html_len(s: &str) -> usize {
    s.len()
        + 4 * s
            .bytes()
            .filter(|b| matches!(b, b'"' | b'&' | b'\'' | b'<' | b'>'))
            .count()
}

/// The bytes `s` takes in a `<pre>` ([`super::PreText`]): `&` is five bytes, `<`
/// and `>` four.
fn pre_len(s: &str) -> usize {
    s.len()
        + s.bytes()
            .map(|b| match b {
                b'&' => 4,
                b'<' | b'>' => 3,
                _ => 0,
            })
            .sum::<usize>()
}

/// Renders a run's page within [`RUN_PAGE_BYTES`]. `summary_md` is the run's
/// `summary.md`, rendered again shorter when the page has no room for all of it.
pub(super) fn render<'s>(
    view: &mut RunPage<'s>,
    summary_md: Option<&'s str>,
) -> askama::Result<String> {
    let html = view.render()?;
    if html.len() <= RUN_PAGE_BYTES {
        return Ok(html);
    }
    let held = Held::take(view, summary_md);
    let bare = view.render()?;
    let mut room = RUN_PAGE_BYTES.saturating_sub(bare.len() + WRAPPERS);
    held.put_back(view, &mut room);
    let html = view.render()?;
    // The costs above are bounds, so this holds; the bare page is the answer if not.
    Ok(if html.len() <= RUN_PAGE_BYTES {
        html
    } else {
        bare
    })
}

/// What a run page shows that is fitted into its room, taken out of it.
struct Held<'s> {
    findings: Vec<FindingRow>,
    index_missing: Vec<std::borrow::Cow<'s, str>>,
    unindexed: Vec<std::borrow::Cow<'s, str>>,
    status_fields: Vec<(String, String)>,
    witnesses: Vec<(String, String, String, String)>,
    /// The packet's text and how much of it was already left out.
    packet: Option<(String, Option<u64>)>,
    summary: Option<(String, &'s str)>,
}

impl<'s> Held<'s> {
    /// Takes every fitted part out of `view`, counting it as not shown.
    fn take(view: &mut RunPage<'s>, summary_md: Option<&'s str>) -> Held<'s> {
        fn out<T>(items: &mut Vec<T>, more: &mut usize) -> Vec<T> {
            *more += items.len();
            std::mem::take(items)
        }
        let packet = view.promotion.as_mut().map(|p| {
            let text = std::mem::take(&mut p.packet_json.0);
            let cut = p.packet_cut;
            p.packet_cut = Some(cut.unwrap_or(0) + text.len() as u64);
            (text, cut)
        });
        let summary = match (view.summary_html.take(), summary_md) {
            (Some(html), Some(md)) => {
                view.summary_cut = Some(md.len());
                Some((html, md))
            }
            _ => None,
        };
        Held {
            findings: out(&mut view.findings, &mut view.findings_more),
            index_missing: out(&mut view.index_missing.items, &mut view.index_missing.more),
            unindexed: out(&mut view.unindexed.items, &mut view.unindexed.more),
            status_fields: out(&mut view.status_fields, &mut view.status_more),
            witnesses: out(&mut view.witnesses, &mut view.witnesses_more),
            packet,
            summary,
        }
    }

    /// Puts back into `view` what fits in `room`, most telling first: the findings,
    /// what the index lists as missing, the unindexed files, `run_status.json`, the
    /// path witnesses, the promotion packet and `summary.md`.
    fn put_back(self, view: &mut RunPage<'s>, room: &mut usize) {
        fn back<T>(
            items: Vec<T>,
            more: &mut usize,
            room: &mut usize,
            cost: impl Fn(&T) -> usize,
        ) -> Vec<T> {
            let kept = keep_within(items, room, cost);
            *more -= kept.len();
            kept
        }
        // A run page shows a finding's message, not its place (the run).
        view.findings = back(self.findings, &mut view.findings_more, room, |f| {
            html_len(&f.message)
        });
        view.index_missing.items = back(
            self.index_missing,
            &mut view.index_missing.more,
            room,
            |s| html_len(s),
        );
        view.unindexed.items = back(self.unindexed, &mut view.unindexed.more, room, |s| {
            html_len(s)
        });
        view.status_fields = back(self.status_fields, &mut view.status_more, room, |(k, v)| {
            html_len(k) + html_len(v)
        });
        view.witnesses = back(self.witnesses, &mut view.witnesses_more, room, |w| {
            html_len(&w.0) + html_len(&w.1) + html_len(&w.2) + html_len(&w.3)
        });
        if let (Some((text, cut)), Some(p)) = (self.packet, view.promotion.as_mut()) {
            let kept = lines_within(&text, *room);
            *room -= pre_len(kept);
            let left_out = (text.len() - kept.len()) as u64;
            p.packet_cut = match (cut, left_out) {
                (cut, 0) => cut,
                (cut, n) => Some(cut.unwrap_or(0) + n),
            };
            p.packet_no_room = left_out > 0;
            p.packet_json.0 = kept.to_string();
        }
        if let Some((html, md)) = self.summary {
            let (html, shown) = markdown_within(html, md, *room);
            view.summary_html = html;
            view.summary_cut = (shown < md.len()).then_some(md.len() - shown);
        }
    }
}

/// The longest start of `items` whose costs (each with [`ITEM_MARKUP`]) fit in
/// `room`, taken from it. Items after the first that does not fit are never made.
pub(super) fn keep_within<T>(
    items: impl IntoIterator<Item = T>,
    room: &mut usize,
    cost: impl Fn(&T) -> usize,
) -> Vec<T> {
    let mut kept = Vec::new();
    for item in items {
        if !take(room, cost(&item)) {
            break;
        }
        kept.push(item);
    }
    kept
}

/// The longest start of `items` that fits in `room` ([`keep_within`]), and how many
/// it leaves out.
pub(super) fn fill<'a, T>(
    items: &'a [T],
    room: &mut usize,
    cost: impl Fn(&T) -> usize,
) -> (Vec<&'a T>, usize) {
    let kept = keep_within(items, room, |t| cost(t));
    let more = items.len() - kept.len();
    (kept, more)
}

/// What the items of a list take from a room, each with its [`ITEM_MARKUP`].
pub(super) fn wanted<T>(items: impl IntoIterator<Item = T>, cost: impl Fn(&T) -> usize) -> usize {
    items
        .into_iter()
        .fold(0, |sum, item| sum.saturating_add(cost(&item) + ITEM_MARKUP))
}

/// One room shared by the lists of a page, so that no list crowds out those after
/// it: each gets what it wants when all fit, else an equal share (a list that wants
/// less keeps all it wants, and the others share the rest), and the room a list
/// leaves unused goes to the lists after it, in page order.
pub(super) struct Shares {
    shares: std::vec::IntoIter<usize>,
    spare: usize,
}

impl Shares {
    /// Shares of `room` for lists wanting `wants` bytes each, in page order.
    pub(super) fn new(wants: &[usize], room: usize) -> Shares {
        let mut order: Vec<usize> = (0..wants.len()).collect();
        order.sort_by_key(|&i| wants[i]);
        let mut shares = vec![0; wants.len()];
        let mut left = room;
        for (k, &i) in order.iter().enumerate() {
            let even = left / (wants.len() - k);
            shares[i] = wants[i].min(even);
            left -= shares[i];
        }
        Shares {
            shares: shares.into_iter(),
            spare: left,
        }
    }

    /// Fills the next list through `f`, which takes what it uses from the room it
    /// is given; what is left goes on to the next list.
    pub(super) fn next<R>(&mut self, f: impl FnOnce(&mut usize) -> R) -> R {
        let mut room = self.shares.next().unwrap_or(0) + self.spare;
        let r = f(&mut room);
        self.spare = room;
        r
    }
}

/// Where each page of a paged list starts: a page holds at most `per_page` items,
/// and past its first item no more than `room` bytes of their costs.
pub(super) fn page_starts<T>(
    items: &[T],
    per_page: usize,
    room: usize,
    cost: impl Fn(&T) -> usize,
) -> Vec<usize> {
    let mut starts = vec![0];
    let mut used = 0;
    for (i, item) in items.iter().enumerate() {
        let c = cost(item);
        let start = starts.last().copied().unwrap_or(0);
        // A page's first item is on it whatever its size.
        if i > start && (i - start == per_page || used + c > room) {
            starts.push(i);
            used = 0;
        }
        used += c;
    }
    starts
}

/// Takes an item of `cost` bytes and its [`ITEM_MARKUP`] from `room`, if they fit.
pub(super) fn take(room: &mut usize, cost: usize) -> bool {
    match room.checked_sub(cost + ITEM_MARKUP) {
        Some(left) => {
            *room = left;
            true
        }
        None => false,
    }
}

/// The longest start of `text` made of whole lines whose `<pre>` text fits in
/// `room` bytes.
fn lines_within(text: &str, room: usize) -> &str {
    let mut end = 0;
    let mut used = 0;
    for line in text.split_inclusive('\n') {
        used += pre_len(line);
        if used > room {
            break;
        }
        end += line.len();
    }
    &text[..end]
}

/// Markdown (`md`: a run's `summary.md`, a DoD document) rendered whole (`html`)
/// or, when that is larger than `room`, a start of it cut at a line's end and
/// rendered again; with the bytes of `md` it shows. None when not even a start of
/// it fits.
pub(super) fn markdown_within(html: String, md: &str, room: usize) -> (Option<String>, usize) {
    if html.len() <= room {
        return (Some(html), md.len());
    }
    // Rendering grows with the text, not always in proportion: shrink the start
    // kept in proportion to how much too large it came out, a few times at most.
    let mut rendered = html.len();
    let mut keep = md.len();
    for _ in 0..8 {
        keep = (keep as u128 * room as u128 * 9 / 10 / rendered.max(1) as u128) as usize;
        let cut = (0..=keep.min(md.len()))
            .rev()
            .find(|&i| md.is_char_boundary(i))
            .unwrap_or(0);
        let start = match md[..cut].rfind('\n') {
            Some(i) => &md[..=i],
            None => break,
        };
        let html = super::markdown::render(start);
        if html.len() <= room {
            return (Some(html), start.len());
        }
        rendered = html.len();
        keep = start.len();
    }
    (None, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_those_of_the_escaped_text() {
        for s in ["", "plain", "\"'&<>", "é ü \u{1F600}", "a&b<c>d\"e'f"] {
            let escaped = askama::filters::escape(s, askama::filters::Html)
                .unwrap()
                .to_string();
            assert_eq!(html_len(s), escaped.len(), "{s:?} -> {escaped}");
            assert_eq!(
                pre_len(s),
                super::super::PreText(s.to_string()).to_string().len(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn lists_share_a_room_evenly_and_pass_on_what_they_leave() {
        // All fit: each gets what it wants, and the rest is spare.
        let mut s = Shares::new(&[100, 200], 1000);
        assert_eq!(s.next(|r| *r), 800);
        // A list wanting less than an even share keeps it all; the others split the
        // rest, whatever their order on the page.
        let mut s = Shares::new(&[5000, 100, 5000], 1000);
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(s.next(std::mem::take));
        }
        assert_eq!(got, [450, 100, 450]);
        // What a list leaves of its room goes to the next.
        let mut s = Shares::new(&[5000, 5000], 1000);
        s.next(|r| *r -= 300);
        assert_eq!(s.next(|r| *r), 700);
    }

    #[test]
    fn pages_start_at_the_count_or_the_room_whichever_comes_first() {
        let sizes = [10, 10, 10, 10, 10];
        assert_eq!(page_starts(&sizes, 2, 1_000, |s| *s), [0, 2, 4]);
        assert_eq!(page_starts(&sizes, 10, 25, |s| *s), [0, 2, 4]);
        assert_eq!(page_starts(&sizes, 10, 1_000, |s| *s), [0]);
        // An item larger than the room is a page of its own.
        assert_eq!(page_starts(&[5, 100, 5], 10, 20, |s| *s), [0, 1, 2]);
        assert_eq!(page_starts(&[] as &[usize], 10, 20, |s| *s), [0]);
    }

    #[test]
    fn a_packet_is_cut_at_a_line_within_its_room() {
        let text = "{\n  \"a\": \"<<\",\n  \"b\": 1\n}";
        assert_eq!(lines_within(text, 1_000), text);
        // "{\n" is 2 bytes, the next line 13 and 3 more for each `<`.
        assert_eq!(lines_within(text, 20), "{\n");
        assert_eq!(lines_within(text, 21), "{\n  \"a\": \"<<\",\n");
        assert_eq!(lines_within(text, 1), "");
    }

    #[test]
    fn a_summary_too_large_is_rendered_from_a_start_that_fits() {
        let md: String = (0..2_000)
            .map(|i| format!("* item {i} & <more>\n"))
            .collect();
        let html = crate::site::markdown::render(&md);
        let (whole, shown) = markdown_within(html.clone(), &md, html.len());
        assert_eq!((whole.as_deref(), shown), (Some(html.as_str()), md.len()));
        let (part, shown) = markdown_within(html.clone(), &md, html.len() / 3);
        let part = part.unwrap();
        assert!(part.len() <= html.len() / 3, "{} bytes", part.len());
        assert!(shown > md.len() / 5 && shown < md.len() / 2, "{shown}");
        assert!(md[..shown].ends_with('\n'));
        assert_eq!(part, crate::site::markdown::render(&md[..shown]));
        assert_eq!(markdown_within(html, &md, 10), (None, 0));
    }
}
