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
    for item in items {
        let text = String::from_utf8_lossy(item);
        let dup = out[base..]
            .split(';')
            .any(|seen| !seen.is_empty() && seen.eq_ignore_ascii_case(&text));
        if dup || text.is_empty() {
            continue;
        }
        if out.len() > base {
            out.push(';');
        }
        let at = out.len();
        out.push_str(&text);
        match case {
            Case::Lower => out[at..].make_ascii_lowercase(),
            Case::Upper => out[at..].make_ascii_uppercase(),
        }
    }
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
    fn non_utf8_is_replaced() {
        let mut s = String::new();
        let items: [&[u8]; 1] = [b"t\xffg"];
        write_tag_list(&mut s, items.into_iter(), Case::Lower);
        assert_eq!(s, "t\u{fffd}g");
    }
}
