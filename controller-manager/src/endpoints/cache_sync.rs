//! Waiting for shared caches to hold their first full list before the first sync, so a
//! controller never writes from a half-filled cache (upstream `WaitForNamedCacheSync`).
//!
//! kube-runtime's `Store::wait_until_ready` wakes only the last of several tasks waiting on the
//! same store at once (its `DelayedInit` keeps a single waker), and these stores are shared by
//! every controller. So the wait is re-armed at a short interval instead of relied on alone.

use std::time::Duration;

use kube::runtime::reflector::Store;
use kube::Resource;

const RECHECK: Duration = Duration::from_millis(200);

/// Returns once `store` has been filled (or its watch is gone for good).
pub async fn wait<K>(store: &Store<K>)
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    while tokio::time::timeout(RECHECK, store.wait_until_ready()).await.is_err() {}
}
