//! Shard connections by id (the session's, and the driver's sockets for them): a vector kept
//! sorted by id. A session holds a handful and looks them up several times per statement; a
//! binary search over a short vector costs less than a B-tree walk. Ids only grow, so opening
//! a connection appends.

use super::BackendId;

#[derive(Debug)]
pub struct Slots<T> {
    items: Vec<(BackendId, T)>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots::new()
    }
}

impl<T> Slots<T> {
    pub fn new() -> Self {
        Slots { items: Vec::new() }
    }

    fn position(&self, id: BackendId) -> Result<usize, usize> {
        self.items.binary_search_by_key(&id, |(k, _)| *k)
    }

    pub fn get(&self, id: &BackendId) -> Option<&T> {
        self.position(*id).ok().map(|i| &self.items[i].1)
    }

    pub fn get_mut(&mut self, id: &BackendId) -> Option<&mut T> {
        match self.position(*id) {
            Ok(i) => Some(&mut self.items[i].1),
            Err(_) => None,
        }
    }

    /// Adds or replaces; returns the value replaced.
    pub fn insert(&mut self, id: BackendId, value: T) -> Option<T> {
        match self.position(id) {
            Ok(i) => Some(std::mem::replace(&mut self.items[i].1, value)),
            Err(i) => {
                self.items.insert(i, (id, value));
                None
            }
        }
    }

    pub fn remove(&mut self, id: &BackendId) -> Option<T> {
        self.position(*id).ok().map(|i| self.items.remove(i).1)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The smallest id above `id` (the next connection to visit in id order).
    pub fn next_key_after(&self, id: BackendId) -> Option<BackendId> {
        let i = match self.position(id) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        self.items.get(i).map(|(k, _)| *k)
    }

    pub fn keys(&self) -> impl Iterator<Item = &BackendId> {
        self.items.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.items.iter().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.items.iter_mut().map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&BackendId, &T)> {
        self.items.iter().map(|(k, v)| (k, v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&BackendId, &mut T)> {
        self.items.iter_mut().map(|(k, v)| (&*k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::Slots;

    #[test]
    fn behaves_as_an_ordered_map() {
        let mut s = Slots::new();
        assert_eq!(s.insert(3, "c"), None);
        assert_eq!(s.insert(1, "a"), None);
        assert_eq!(s.insert(7, "g"), None);
        assert_eq!(s.insert(3, "C"), Some("c"));
        assert_eq!(s.keys().copied().collect::<Vec<_>>(), [1, 3, 7]);
        assert_eq!(s.get(&3), Some(&"C"));
        assert_eq!(s.get(&4), None);
        assert_eq!(s.next_key_after(1), Some(3));
        assert_eq!(s.next_key_after(4), Some(7));
        assert_eq!(s.next_key_after(7), None);
        assert_eq!(s.remove(&3), Some("C"));
        assert_eq!(s.remove(&3), None);
        assert!(s.get(&3).is_none());
        assert_eq!(s.len(), 2);
        *s.get_mut(&7).unwrap() = "G";
        assert_eq!(s.values().copied().collect::<Vec<_>>(), ["a", "G"]);
    }
}
