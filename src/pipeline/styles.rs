//! report.html's ladder styles, interned for the whole run where each
//! message is found: the method, the four option-tag lists and the agent
//! ([`LadderStyle`]) that many messages share, kept once and named by an
//! id. Owns the run's shared table and the per-thread caches in front of
//! it. Never decides which messages a ladder shows (`html.rs` does) and
//! never renders anything (`report::ladder` does).
//!
//! Why here and not on the tracker's thread: a record reaches the tracker
//! after the 2 s reorder window, when its text has left the cache, and
//! reading six fields of it there to find the style took about 5 % of a
//! `-j1` run's samples, on the thread every other thread waits for at
//! `-j2` (13.6 % of that thread's samples there, with the Call-ID copy).
//! The threads that decode the messages still have the text at hand. Ids depend on which thread saw a style first, so they are never
//! written anywhere: only the fields they name are.

use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap;

use crate::dialog::SipRecord;
use crate::report::ladder::{LadderStyle, StyleFields};

/// The run's styles, by id (shared by every [`StyleCache`]).
#[derive(Default)]
pub(crate) struct Styles {
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    fields: Vec<Arc<StyleFields>>,
    /// Ids by [`LadderStyle::hash`]: every style of that hash.
    by_hash: FxHashMap<u64, Vec<u32>>,
}

impl Styles {
    /// The id of the style with these fields (a new one the first time).
    fn intern(&self, fields: &[&str; 6], hash: u64) -> (u32, Arc<StyleFields>) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let Table {
            fields: all,
            by_hash,
        } = &mut *t;
        let ids = by_hash.entry(hash).or_default();
        if let Some(&id) = ids
            .iter()
            .find(|&&id| LadderStyle::matches(&all[id as usize], fields))
        {
            return (id, all[id as usize].clone());
        }
        let id = all.len() as u32;
        all.push(Arc::new(LadderStyle::keep(fields)));
        ids.push(id);
        (id, all[id as usize].clone())
    }

    /// The fields of style `id`.
    pub fn fields(&self, id: u32) -> Arc<StyleFields> {
        let t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        t.fields[id as usize].clone()
    }

    /// How many styles the run has.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.table.lock().unwrap().fields.len()
    }
}

/// One thread's view of [`Styles`]: the styles it has met, compared
/// without the lock.
pub(crate) struct StyleCache {
    shared: Arc<Styles>,
    /// (id, fields) of the first style met with each hash; a second style
    /// with the same hash is looked up in the shared table every time.
    seen: FxHashMap<u64, (u32, Arc<StyleFields>)>,
}

impl StyleCache {
    /// A cache in front of `shared`.
    pub fn new(shared: Arc<Styles>) -> StyleCache {
        StyleCache {
            shared,
            seen: FxHashMap::default(),
        }
    }

    /// The table behind this cache.
    pub fn table(&self) -> &Arc<Styles> {
        &self.shared
    }

    /// The id of `rec`'s style.
    pub fn id(&mut self, rec: &SipRecord) -> u32 {
        let fields = LadderStyle::of(rec);
        let hash = LadderStyle::hash(&fields);
        if let Some((id, kept)) = self.seen.get(&hash)
            && LadderStyle::matches(kept, &fields)
        {
            return *id;
        }
        let (id, kept) = self.shared.intern(&fields, hash);
        self.seen.entry(hash).or_insert((id, kept));
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(method: &str, agent: &str) -> SipRecord {
        let a: std::net::SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let text = format!(
            "{method} sip:x@y SIP/2.0\r\nCall-ID: c\r\nCSeq: 1 {method}\r\nUser-Agent: {agent}\r\n\r\n"
        );
        SipRecord::from_text(&text, 1, 0, a, a)
    }

    #[test]
    fn caches_on_two_threads_share_one_id_per_style() {
        let shared = Arc::new(Styles::default());
        let (mut a, mut b) = (
            StyleCache::new(shared.clone()),
            StyleCache::new(shared.clone()),
        );
        let x = a.id(&rec("OPTIONS", "ua-1"));
        let y = b.id(&rec("INVITE", "ua-1"));
        assert_ne!(x, y);
        assert_eq!(b.id(&rec("OPTIONS", "ua-1")), x);
        assert_eq!(a.id(&rec("INVITE", "ua-1")), y);
        assert_eq!(a.id(&rec("OPTIONS", "ua-2")), 2);
        assert_eq!(shared.len(), 3);
        assert_eq!(&*shared.fields(y)[0], "INVITE");
        assert_eq!(&*shared.fields(2)[5], "ua-2");
    }

    #[test]
    fn styles_with_one_hash_keep_their_own_ids() {
        // Two styles forced to one hash: each is found by its fields.
        let shared = Styles::default();
        let p = ["OPTIONS", "", "", "", "", "a"];
        let q = ["OPTIONS", "", "", "", "", "b"];
        let (i, _) = shared.intern(&p, 7);
        let (j, _) = shared.intern(&q, 7);
        assert_ne!(i, j);
        assert_eq!(shared.intern(&p, 7).0, i);
        assert_eq!(shared.intern(&q, 7).0, j);
    }
}
