//! Per-resource write locks within one process.
//!
//! A read-modify-write (PUT, PATCH) loses the store's compare-and-swap when another request
//! changed the resource in between, and must start over. Taking a lock per resource first makes
//! that rare: concurrent PATCHes to one Group (Entra sends them in parallel) queue up instead of
//! retrying. Reads and writes to other resources never wait. Across processes the store's
//! version check still decides.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

#[derive(Default)]
pub struct KeyedLocks {
    map: Mutex<HashMap<String, Weak<AsyncMutex<()>>>>,
}

impl KeyedLocks {
    pub async fn lock(&self, key: String) -> OwnedMutexGuard<()> {
        let lock = {
            let mut map = match self.map.lock() {
                Ok(m) => m,
                Err(poisoned) => poisoned.into_inner(),
            };
            if map.len() > 1024 {
                map.retain(|_, w| w.strong_count() > 0);
            }
            match map.get(&key).and_then(Weak::upgrade) {
                Some(l) => l,
                None => {
                    let l = Arc::new(AsyncMutex::new(()));
                    map.insert(key, Arc::downgrade(&l));
                    l
                }
            }
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn same_key_waits_other_keys_do_not() {
        let locks = Arc::new(KeyedLocks::default());
        let g = locks.lock("a".into()).await;
        let _other = locks.lock("b".into()).await;
        let l2 = locks.clone();
        let waiter = tokio::spawn(async move { l2.lock("a".into()).await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(g);
        waiter.await.unwrap();
    }
}
