//! Open retry windows (rules.md §A.3), indexed by what can link to them, so
//! that a new initial request finds its candidates by key, never by scan.
//!
//! Owns: the index from a request's [`LinkKeys`] to the failed attempts
//! whose window is open and that it may retry. A window is reachable:
//! - by its Call-ID and method (H0, H0': no further evidence needed);
//! - for a cross-Call-ID link (H1, H2, H3), under its identity bucket
//!   (method, E.164 buckets of From and To) and only with evidence that the
//!   request retries the failure (issue "right in an expert's eyes", item 5):
//!   after a 401/407, credentials for a challenged realm; after a 3xx, a
//!   Request-URI that is one of its Contacts; after any other failure, a
//!   different capability demand (Require, Proxy-Require, Supported, SDP
//!   precondition strength).
//!
//! Work per lookup is bounded whatever the number of open windows: at most
//! [`PER_GROUP`] windows (the most recent) of each evidence group, and at
//! most [`GROUPS`] capability groups per identity bucket. Never scores a
//! candidate (the tracker does) and never holds a message.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};

use rustc_hash::FxHashMap;

use super::linkkeys::{LinkKeys, ReplyKeys};

/// An attempt id of the tracker (ids grow with the merged timeline).
pub type Id = u64;

/// Windows taken from one evidence group per lookup: the most recent.
pub const PER_GROUP: usize = 4;
/// Capability groups of one identity bucket looked at per lookup.
pub const GROUPS: usize = 8;

/// Where a window was registered, for its removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WinKey {
    /// By method and Call-ID.
    Call(u64),
    /// By identity bucket and challenged realm or 3xx Contact.
    Evidence(u64),
    /// By identity bucket and capability demand.
    Caps(u64, u64),
}

fn h<T: Hash>(v: T) -> u64 {
    let mut s = super::stable_hasher(0x7769_6e64_6f77_7321);
    v.hash(&mut s);
    s.finish()
}

/// The identity bucket of a request: method, From and To E.164 buckets.
fn bucket(method: &str, k: &LinkKeys) -> u64 {
    h((method, k.from_id, k.to_id))
}

/// The evidence key of a realm (0: a challenge whose realm was not read).
fn realm_key(b: u64, realm: u64) -> u64 {
    h((b, 1u8, realm))
}

fn contact_key(b: u64, uri: u64) -> u64 {
    h((b, 2u8, uri))
}

/// The open windows.
#[derive(Default)]
pub struct Windows {
    by_call: FxHashMap<u64, Vec<Id>>,
    by_evidence: FxHashMap<u64, BTreeSet<Id>>,
    by_caps: FxHashMap<u64, Vec<(u64, BTreeSet<Id>)>>,
}

impl Windows {
    /// Opens the window of failed attempt `p` (request `call_id`, `method`,
    /// `keys`; final response `status` with `reply`). Returns where it was
    /// registered.
    pub fn open(
        &mut self,
        p: Id,
        req: (&str, &str, &LinkKeys),
        status: u16,
        reply: Option<&ReplyKeys>,
    ) -> Vec<WinKey> {
        let (call_id, method, keys) = req;
        let mut at = vec![WinKey::Call(h((method, call_id)))];
        let b = bucket(method, keys);
        match status {
            401 | 407 => {
                let realms = reply.map(|r| &r.realms[..]).unwrap_or(&[]);
                if realms.is_empty() {
                    at.push(WinKey::Evidence(realm_key(b, 0)));
                }
                at.extend(realms.iter().map(|&r| WinKey::Evidence(realm_key(b, r))));
            }
            300..=399 => {
                let contacts = reply.map(|r| &r.contacts[..]).unwrap_or(&[]);
                at.extend(
                    contacts
                        .iter()
                        .map(|&c| WinKey::Evidence(contact_key(b, c))),
                );
            }
            _ => at.push(WinKey::Caps(b, keys.caps)),
        }
        at.dedup();
        for &k in &at {
            self.insert(k, p);
        }
        at
    }

    fn insert(&mut self, k: WinKey, p: Id) {
        match k {
            WinKey::Call(c) => self.by_call.entry(c).or_default().push(p),
            WinKey::Evidence(e) => {
                self.by_evidence.entry(e).or_default().insert(p);
            }
            WinKey::Caps(b, caps) => {
                let groups = self.by_caps.entry(b).or_default();
                match groups.iter_mut().find(|(c, _)| *c == caps) {
                    Some((_, set)) => {
                        set.insert(p);
                    }
                    None => groups.push((caps, BTreeSet::from([p]))),
                }
            }
        }
    }

    /// Removes window `p` from where it was registered.
    pub fn close(&mut self, p: Id, at: &[WinKey]) {
        for &k in at {
            match k {
                WinKey::Call(c) => {
                    if let Some(v) = self.by_call.get_mut(&c) {
                        v.retain(|x| *x != p);
                        if v.is_empty() {
                            self.by_call.remove(&c);
                        }
                    }
                }
                WinKey::Evidence(e) => {
                    if let Some(s) = self.by_evidence.get_mut(&e) {
                        s.remove(&p);
                        if s.is_empty() {
                            self.by_evidence.remove(&e);
                        }
                    }
                }
                WinKey::Caps(b, caps) => {
                    if let Some(groups) = self.by_caps.get_mut(&b) {
                        if let Some(i) = groups.iter().position(|(c, _)| *c == caps) {
                            groups[i].1.remove(&p);
                            if groups[i].1.is_empty() {
                                groups.remove(i);
                            }
                        }
                        if groups.is_empty() {
                            self.by_caps.remove(&b);
                        }
                    }
                }
            }
        }
    }

    /// The open windows that initial request (`call_id`, `method`, `keys`)
    /// may retry, in id order, without duplicates.
    pub fn candidates(&self, call_id: &str, method: &str, keys: &LinkKeys) -> Vec<Id> {
        let mut out: Vec<Id> = Vec::new();
        if let Some(v) = self.by_call.get(&h((method, call_id))) {
            out.extend(v.iter().rev().take(PER_GROUP));
        }
        let b = bucket(method, keys);
        let recent = |s: &BTreeSet<Id>, out: &mut Vec<Id>| {
            out.extend(s.iter().rev().take(PER_GROUP));
        };
        if keys.realm != 0 {
            for e in [realm_key(b, keys.realm), realm_key(b, 0)] {
                if let Some(s) = self.by_evidence.get(&e) {
                    recent(s, &mut out);
                }
            }
        }
        if let Some(s) = self.by_evidence.get(&contact_key(b, keys.target)) {
            recent(s, &mut out);
        }
        if let Some(groups) = self.by_caps.get(&b) {
            for (_, s) in groups
                .iter()
                .rev()
                .filter(|(c, _)| *c != keys.caps)
                .take(GROUPS)
            {
                recent(s, &mut out);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Open windows in the index (for tests and memory checks).
    pub fn len(&self) -> usize {
        self.by_call.values().map(Vec::len).sum()
    }

    /// Whether no window is open.
    pub fn is_empty(&self) -> bool {
        self.by_call.is_empty()
    }
}
