//! Settings that SIGHUP can replace while the gateway runs. A reader takes a
//! snapshot (an `Arc`) for one use, so one request or one check sees one
//! consistent version, and a reload never waits for requests in flight.

use std::sync::{Arc, RwLock};

pub struct Live<T>(RwLock<Arc<T>>);

impl<T> Live<T> {
    pub fn new(value: T) -> Live<T> {
        Live(RwLock::new(Arc::new(value)))
    }

    /// The current version.
    pub fn get(&self) -> Arc<T> {
        // A poisoned lock still holds a whole value: `set` swaps one Arc.
        match self.0.read() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the value; snapshots already taken keep the old one.
    pub fn set(&self, value: T) {
        let value = Arc::new(value);
        match self.0.write() {
            Ok(mut v) => *v = value,
            Err(p) => *p.into_inner() = value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Live;

    #[test]
    fn a_snapshot_keeps_its_version_across_a_set() {
        let live = Live::new(1);
        let before = live.get();
        live.set(2);
        assert_eq!((*before, *live.get()), (1, 2));
    }
}
