//! Writing option-tag and method lists for the reports (contract.md
//! "Option-tag lists").
//!
//! In: list items as read from the wire (e.g. [`Message::list`]). Out: text
//! appended to a caller's `String`: case-mapped, deduplicated
//! case-insensitively in order of first appearance, joined with `;`. It
//! never clears or reorders what the caller already wrote, and allocates
//! only when an item is not UTF-8.
//!
//! [`Message::list`]: super::Message::list

/// How list items are case-mapped (ASCII only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// Option tags (`require`, `supported`, `unsupported`, ...).
    Lower,
    /// Methods (`allow`).
    Upper,
}

/// Appends `items` to `out`, case-mapped, deduplicated case-insensitively
/// (first appearance wins) and joined with `;`. Nothing is written when
/// there are no items. Bytes that are not UTF-8 are written as U+FFFD.
pub fn write_tag_list<'i>(out: &mut String, items: impl Iterator<Item = &'i [u8]>, case: Case) {
    let base = out.len();
    // Spans (in `out`) of the items written so far, for the duplicate
    // check; past SEEN items it falls back to splitting `out`.
    const SEEN: usize = 32;
    let mut seen = [(0usize, 0usize); SEEN];
    let mut n = 0;
    for item in items {
        if item.is_empty() {
            continue;
        }
        let dup = if n <= SEEN {
            let written = out.as_bytes();
            seen[..n]
                .iter()
                .any(|&(a, z)| z - a == item.len() && written[a..z].eq_ignore_ascii_case(item))
        } else {
            false
        };
        if dup || (n > SEEN && contains(&out.as_bytes()[base..], item)) {
            continue;
        }
        if out.len() > base {
            out.push(';');
        }
        let at = out.len();
        if item.is_ascii() {
            out.reserve(item.len());
            out.extend(item.iter().map(|&b| {
                char::from(match case {
                    Case::Lower => b.to_ascii_lowercase(),
                    Case::Upper => b.to_ascii_uppercase(),
                })
            }));
        } else {
            out.push_str(&String::from_utf8_lossy(item));
            match case {
                Case::Lower => out[at..].make_ascii_lowercase(),
                Case::Upper => out[at..].make_ascii_uppercase(),
            }
        }
        if let Some(s) = seen.get_mut(n) {
            *s = (at, out.len());
        }
        n += 1;
    }
}

/// Whether the `;`-joined `list` holds `item` (ASCII case-insensitive).
fn contains(list: &[u8], item: &[u8]) -> bool {
    list.split(|&b| b == b';')
        .any(|seen| seen.eq_ignore_ascii_case(item))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercased_deduplicated_in_first_order() {
        let mut s = String::from("x,");
        let items: [&[u8]; 5] = [
            b"100Rel",
            b"precondition",
            b"100rel",
            b"Timer",
            b"PRECONDITION",
        ];
        write_tag_list(&mut s, items.into_iter(), Case::Lower);
        assert_eq!(s, "x,100rel;precondition;timer");
    }

    #[test]
    fn methods_uppercased() {
        let mut s = String::new();
        let items: [&[u8]; 3] = [b"invite", b"ACK", b"Invite"];
        write_tag_list(&mut s, items.into_iter(), Case::Upper);
        assert_eq!(s, "INVITE;ACK");
    }

    #[test]
    fn empty_list_writes_nothing() {
        let mut s = String::from("a");
        write_tag_list(&mut s, std::iter::empty(), Case::Lower);
        assert_eq!(s, "a");
    }

    #[test]
    fn many_items_still_deduplicated() {
        let names: Vec<String> = (0..40).map(|i| format!("Tag{i}")).collect();
        let mut items: Vec<&[u8]> = names.iter().map(|s| s.as_bytes()).collect();
        items.push(b"TAG39");
        items.push(b"tag0");
        let mut s = String::new();
        write_tag_list(&mut s, items.into_iter(), Case::Lower);
        assert_eq!(s.split(';').count(), 40);
        assert!(s.ends_with("tag38;tag39"));
    }

    #[test]
    fn non_utf8_is_replaced() {
        let mut s = String::new();
        let items: [&[u8]; 1] = [b"t\xffg"];
        write_tag_list(&mut s, items.into_iter(), Case::Lower);
        assert_eq!(s, "t\u{fffd}g");
    }
}
