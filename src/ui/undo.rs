//! Undo/redo of edits: a bounded history of snapshots.
//!
//! Edits to the prompt timeline are small values, so whole snapshots are simpler and safer than
//! inverse operations: an undo can never drift from what was actually shown.

/// Snapshots before each edit (`undo`) and after each undo (`redo`).
#[derive(Debug, Clone)]
pub struct History<T> {
    undo: Vec<T>,
    redo: Vec<T>,
    limit: usize,
}

impl<T: Clone + PartialEq> History<T> {
    pub fn new(limit: usize) -> Self {
        History { undo: Vec::new(), redo: Vec::new(), limit: limit.max(1) }
    }

    /// Records the state before an edit. A new edit clears the redo list.
    pub fn record(&mut self, before: &T) {
        if self.undo.last() != Some(before) {
            self.undo.push(before.clone());
            if self.undo.len() > self.limit {
                self.undo.remove(0);
            }
        }
        self.redo.clear();
    }

    /// The state to go back to, given the current one.
    pub fn undo(&mut self, current: &T) -> Option<T> {
        let prev = self.undo.pop()?;
        self.redo.push(current.clone());
        Some(prev)
    }

    pub fn redo(&mut self, current: &T) -> Option<T> {
        let next = self.redo.pop()?;
        self.undo.push(current.clone());
        Some(next)
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::History;

    #[test]
    fn undo_redo_round_trip() {
        let mut h = History::new(3);
        let mut v = 0;
        for next in 1..=4 {
            h.record(&v);
            v = next;
        }
        assert_eq!(h.undo(&v), Some(3));
        assert_eq!(h.undo(&3), Some(2));
        assert_eq!(h.redo(&2), Some(3));
        assert_eq!(h.undo(&3), Some(2));
        assert_eq!(h.undo(&2), Some(1));
        assert_eq!(h.undo(&1), None, "the limit keeps three snapshots");
        h.record(&1);
        assert!(!h.can_redo());
    }
}
