//! A short list kept inline while it holds one item ([`Few`]). Owns only
//! that container; never decides what goes in it.

/// A short list that is nearly always one item (the attempts under one
/// index key, the Call-IDs of a session, the times a correlation value was
/// seen): that item is kept inline (24 bytes, as a `Vec`, but no
/// allocation of its own).
#[derive(Clone, Debug)]
pub enum Few<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> Default for Few<T> {
    fn default() -> Self {
        Few::Many(Vec::new())
    }
}

impl<T> std::ops::Deref for Few<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            Few::One(x) => std::slice::from_ref(x),
            Few::Many(v) => v,
        }
    }
}

impl<T> Few<T> {
    pub fn push(&mut self, item: T) {
        match std::mem::take(self) {
            Few::Many(v) if v.is_empty() => *self = Few::One(item),
            Few::Many(mut v) => {
                v.push(item);
                *self = Few::Many(v);
            }
            Few::One(x) => *self = Few::Many(vec![x, item]),
        }
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        match self {
            Few::One(x) if !keep(x) => *self = Few::default(),
            Few::One(_) => {}
            Few::Many(v) => v.retain(keep),
        }
    }

    /// Removes the first item, if any.
    pub fn pop_front(&mut self) {
        match self {
            Few::One(_) => *self = Few::default(),
            Few::Many(v) if !v.is_empty() => {
                v.remove(0);
            }
            Few::Many(_) => {}
        }
    }

    pub fn into_vec(self) -> Vec<T> {
        match self {
            Few::One(x) => vec![x],
            Few::Many(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Pushes and pops from the front behave as a `VecDeque`'s.
    #[test]
    fn few_pushes_and_pops_as_a_deque() {
        let mut f: Few<i64> = Few::default();
        let mut v: VecDeque<i64> = VecDeque::new();
        let ops = [1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 1];
        for (i, &push) in ops.iter().enumerate() {
            if push == 1 {
                f.push(i as i64);
                v.push_back(i as i64);
            } else {
                f.pop_front();
                v.pop_front();
            }
            assert_eq!(f.iter().copied().collect::<Vec<_>>(), Vec::from(v.clone()));
        }
        assert_eq!(std::mem::size_of::<Few<i64>>(), 24);
    }
}
