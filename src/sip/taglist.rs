//! The one option-tag and method list normaliser: for the reports
//! (contract.md "Option-tag lists", [`write_tag_list`], `;`-joined text) and
//! for the dialog record's tag sets ([`push_tag_list`], `,`-joined bytes).
//!
//! In: list items as read from the wire (e.g. [`Message::list`]). Out:
//! appended to a caller's buffer: case-mapped, deduplicated
//! case-insensitively in order of first appearance, empty items dropped,
//! joined with the separator. It never clears or reorders what the caller
//! already wrote, and allocates only when a list outgrows its stack buffer
//! or (as text) an item is not UTF-8.
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
    with_list(items, case, b';', |list, mapped| {
        let at = out.len();
        push_text(out, list);
        if !mapped {
            map_case(&mut out[at..], case);
        }
    });
}

/// Appends `items` to `out` as bytes, normalised as [`write_tag_list`]
/// does, joined with `sep` (a byte no item holds); bytes that are not UTF-8
/// are copied as they are.
pub fn push_tag_list<'i>(
    out: &mut Vec<u8>,
    items: impl Iterator<Item = &'i [u8]>,
    case: Case,
    sep: u8,
) {
    with_list(items, case, sep, |list, mapped| {
        let at = out.len();
        out.extend_from_slice(list);
        if !mapped {
            match case {
                Case::Lower => out[at..].make_ascii_lowercase(),
                Case::Upper => out[at..].make_ascii_uppercase(),
            }
        }
    });
}

/// Hands `emit` the normalised list of `items` (nothing when there are
/// none) and whether its case is mapped already. One item, as most lists a
/// message carries are, goes as it was read: nothing to deduplicate or
/// join, and no assembly buffer to set up; `emit` maps its case where it
/// writes it.
fn with_list<'i>(
    items: impl Iterator<Item = &'i [u8]>,
    case: Case,
    sep: u8,
    emit: impl FnOnce(&[u8], bool),
) {
    let mut items = items.filter(|i| !i.is_empty());
    let Some(first) = items.next() else {
        return;
    };
    let Some(second) = items.next() else {
        return emit(first, false);
    };
    let mut buf = Joined::new(case, sep);
    for item in [first, second].into_iter().chain(items) {
        if !buf.contains(item) {
            buf.push(item);
        }
    }
    emit(buf.bytes(), true);
}

/// Appends `bytes` as text (U+FFFD for what is not UTF-8).
fn push_text(out: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(s) => out.push_str(s),
        Err(_) => out.push_str(&String::from_utf8_lossy(bytes)),
    }
}

fn map_case(s: &mut str, case: Case) {
    match case {
        Case::Lower => s.make_ascii_lowercase(),
        Case::Upper => s.make_ascii_uppercase(),
    }
}

/// Bytes a list is assembled in before it is appended in one go.
const STACK: usize = 128;
/// Item spans remembered for the duplicate check.
const SEEN: usize = 16;

/// A `sep`-joined list being assembled on the stack; it falls back to a
/// heap buffer when it outgrows [`STACK`] bytes or [`SEEN`] items.
struct Joined {
    case: Case,
    sep: u8,
    bytes: [u8; STACK],
    len: usize,
    seen: [(u16, u16); SEEN],
    items: usize,
    /// The list so far once it no longer fits on the stack.
    spill: Vec<u8>,
}

impl Joined {
    fn new(case: Case, sep: u8) -> Self {
        Joined {
            case,
            sep,
            bytes: [0; STACK],
            len: 0,
            seen: [(0, 0); SEEN],
            items: 0,
            spill: Vec::new(),
        }
    }

    fn spilled(&self) -> bool {
        !self.spill.is_empty()
    }

    /// Whether an item equal to `item` (ASCII case-insensitive) was pushed.
    fn contains(&self, item: &[u8]) -> bool {
        if self.spilled() {
            return self
                .spill
                .split(|&b| b == self.sep)
                .any(|seen| seen.eq_ignore_ascii_case(item));
        }
        self.seen[..self.items].iter().any(|&(a, z)| {
            let (a, z) = (usize::from(a), usize::from(z));
            z - a == item.len() && self.bytes[a..z].eq_ignore_ascii_case(item)
        })
    }

    fn push(&mut self, item: &[u8]) {
        let sep = usize::from(self.len > 0 || self.spilled());
        if !self.spilled() && self.items < SEEN && self.len + sep + item.len() <= STACK {
            if sep == 1 {
                self.bytes[self.len] = self.sep;
            }
            let at = self.len + sep;
            let dst = &mut self.bytes[at..at + item.len()];
            match self.case {
                Case::Lower => {
                    for (d, &s) in dst.iter_mut().zip(item) {
                        *d = s.to_ascii_lowercase();
                    }
                }
                Case::Upper => {
                    for (d, &s) in dst.iter_mut().zip(item) {
                        *d = s.to_ascii_uppercase();
                    }
                }
            }
            self.len = at + item.len();
            // STACK fits in u16.
            self.seen[self.items] = (at as u16, self.len as u16);
            self.items += 1;
            return;
        }
        if !self.spilled() {
            self.spill.extend_from_slice(&self.bytes[..self.len]);
        }
        if sep == 1 {
            self.spill.push(self.sep);
        }
        let at = self.spill.len();
        self.spill.extend_from_slice(item);
        match self.case {
            Case::Lower => self.spill[at..].make_ascii_lowercase(),
            Case::Upper => self.spill[at..].make_ascii_uppercase(),
        }
    }

    /// The list so far.
    fn bytes(&self) -> &[u8] {
        if self.spilled() {
            &self.spill
        } else {
            &self.bytes[..self.len]
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
    fn single_item() {
        let mut s = String::new();
        let items: [&[u8]; 3] = [b"", b"Sec-Agree", b""];
        write_tag_list(&mut s, items.into_iter(), Case::Lower);
        assert_eq!(s, "sec-agree");
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
    fn long_items_spill_to_the_heap() {
        let long = "x".repeat(200);
        let items: [&[u8]; 4] = [b"a", long.as_bytes(), b"B", long.as_bytes()];
        let mut s = String::new();
        write_tag_list(&mut s, items.into_iter(), Case::Upper);
        assert_eq!(s, format!("A;{};B", "X".repeat(200)));
    }

    #[test]
    fn bytes_joined_with_another_separator() {
        let mut v = b"x".to_vec();
        let items: [&[u8]; 5] = [b"Timer", b"", b"t\xffg", b"TIMER", b"100rel"];
        push_tag_list(&mut v, items.into_iter(), Case::Lower, b',');
        assert_eq!(v, b"xtimer,t\xffg,100rel");
        let long = "Y".repeat(200);
        let items: [&[u8]; 3] = [long.as_bytes(), b"a", long.as_bytes()];
        let mut v = Vec::new();
        push_tag_list(&mut v, items.into_iter(), Case::Lower, b',');
        assert_eq!(v, format!("{},a", "y".repeat(200)).into_bytes());
    }

    #[test]
    fn non_utf8_is_replaced() {
        let mut s = String::new();
        let items: [&[u8]; 1] = [b"t\xffg"];
        write_tag_list(&mut s, items.into_iter(), Case::Lower);
        assert_eq!(s, "t\u{fffd}g");
    }
}
