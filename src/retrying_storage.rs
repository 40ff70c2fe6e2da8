//! A [`Storage`] layer that retries transient failures of the storage below it, by error kind
//! ([`crate::retry::RetryPolicy`]): listings, batches of ranged reads (only the failed ranges
//! are sent again) and overwriting puts. Waits go through the injected [`Clock`], so tests and
//! the component control time.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::error::Result;
use crate::retry::{Operation, RetryPolicy};
use crate::storage::{Clock, ObjectInfo, PutMode, RangeRequest, Storage};

pub struct RetryingStorage {
    inner: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
}

impl RetryingStorage {
    pub fn new(inner: Arc<dyn Storage>, clock: Arc<dyn Clock>, policy: RetryPolicy) -> Self {
        Self { inner, clock, policy }
    }

    fn elapsed(&self, started: i64) -> Duration {
        Duration::from_nanos(u64::try_from(self.clock.now().saturating_sub(started)).unwrap_or(0))
    }

    /// Run `call` on the pending indexes of an `n`-item batch until every item succeeded or
    /// failed for good. `call` gets the indexes and returns one result per index, in order.
    fn batch<T>(
        &self,
        op: Operation,
        what: &str,
        n: usize,
        mut call: impl FnMut(&[usize]) -> Vec<Result<T>>,
    ) -> Vec<Result<T>> {
        let started = self.clock.now();
        let mut results: Vec<Option<Result<T>>> = (0..n).map(|_| None).collect();
        let mut pending: Vec<usize> = (0..n).collect();
        let mut attempt = 1u32;
        loop {
            let got = call(&pending);
            let mut failed = Vec::new();
            for (i, r) in pending.iter().copied().zip(got.into_iter().map(Some).chain(std::iter::repeat_with(|| None)))
            {
                let r = r.unwrap_or_else(|| Err(crate::error::Error::internal("storage returned too few results")));
                if let Err(e) = &r {
                    if self.policy.should_retry(op, e, attempt) {
                        failed.push(i);
                    }
                }
                results[i] = Some(r);
            }
            if failed.is_empty() {
                break;
            }
            let Some(wait) = self.policy.next_wait(attempt, self.elapsed(started), fastrand::f64()) else {
                tracing::debug!(op = ?op, attempt, "{what}: no time left for another attempt");
                break;
            };
            if let Some(Some(Err(e))) = failed.first().map(|&i| results[i].as_ref()) {
                tracing::debug!(op = ?op, attempt, failed = failed.len(), ?wait, "{what}: retrying after: {e}");
            }
            self.clock.sleep(wait);
            attempt += 1;
            pending = failed;
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(crate::error::Error::internal("request not attempted"))))
            .collect()
    }
}

impl Storage for RetryingStorage {
    fn list(&self, prefix: &str, with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        let mut out = self.batch(Operation::List, "list", 1, |_| vec![self.inner.list(prefix, with_metadata)]);
        out.pop().unwrap_or_else(|| Err(crate::error::Error::internal("empty listing batch")))
    }

    fn list_after(&self, prefix: &str, after_key: &str, with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        let mut out =
            self.batch(Operation::List, "list", 1, |_| vec![self.inner.list_after(prefix, after_key, with_metadata)]);
        out.pop().unwrap_or_else(|| Err(crate::error::Error::internal("empty listing batch")))
    }

    fn list_many(&self, prefixes: &[String], with_metadata: bool) -> Vec<Result<Vec<ObjectInfo>>> {
        self.batch(Operation::List, "list", prefixes.len(), |idx| {
            let some: Vec<String> = idx.iter().map(|&i| prefixes[i].clone()).collect();
            self.inner.list_many(&some, with_metadata)
        })
    }

    fn get_ranges(&self, requests: &[RangeRequest]) -> Vec<Result<Bytes>> {
        if requests.is_empty() {
            return Vec::new();
        }
        self.batch(Operation::Read, "get", requests.len(), |idx| {
            let some: Vec<RangeRequest> = idx.iter().map(|&i| requests[i].clone()).collect();
            self.inner.get_ranges(&some)
        })
    }

    fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()> {
        let op = if mode == PutMode::Create { Operation::CreatePut } else { Operation::Put };
        let mut out = self.batch(op, "put", 1, |_| vec![self.inner.put(key, data.clone(), mode)]);
        out.pop().unwrap_or_else(|| Err(crate::error::Error::internal("empty put batch")))
    }

    fn supports_conditional_create(&self) -> bool {
        self.inner.supports_conditional_create()
    }

    /// Retried like a listing (missing is an answer, not an error).
    fn exists(&self, key: &str) -> Result<bool> {
        let mut out = self.batch(Operation::List, "exists", 1, |_| vec![self.inner.exists(key)]);
        out.pop().unwrap_or_else(|| Err(crate::error::Error::internal("empty exists batch")))
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, ErrorKind};
    use crate::memory_storage::MemoryStorage;
    use parking_lot::Mutex;
    use std::sync::atomic::{AtomicI64, Ordering};

    /// A clock that moves only when slept on.
    #[derive(Default)]
    struct ManualClock(AtomicI64);
    impl Clock for ManualClock {
        fn now(&self) -> i64 {
            self.0.load(Ordering::Relaxed)
        }
        fn sleep(&self, d: Duration) {
            self.0.fetch_add(d.as_nanos() as i64, Ordering::Relaxed);
        }
    }

    /// Memory storage whose next `fail` calls per key fail with `kind`.
    struct Flaky {
        inner: MemoryStorage,
        faults: Mutex<Vec<(String, ErrorKind)>>,
        calls: Mutex<Vec<String>>,
    }
    impl Flaky {
        fn new(faults: &[(&str, ErrorKind)]) -> Self {
            let inner = MemoryStorage::new();
            inner.insert("d/a", Bytes::from_static(b"aaaa"), 1);
            inner.insert("d/b", Bytes::from_static(b"bbbb"), 2);
            Self {
                inner,
                faults: Mutex::new(faults.iter().map(|(k, e)| (k.to_string(), *e)).collect()),
                calls: Mutex::new(Vec::new()),
            }
        }
        fn fault(&self, key: &str) -> Option<Error> {
            self.calls.lock().push(key.to_string());
            let mut f = self.faults.lock();
            let i = f.iter().position(|(k, _)| k == key)?;
            let (_, kind) = f.remove(i);
            Some(Error::new(kind, format!("injected {kind:?} for {key}")))
        }
    }
    impl Storage for Flaky {
        fn list(&self, prefix: &str, m: bool) -> Result<Vec<ObjectInfo>> {
            match self.fault(prefix) {
                Some(e) => Err(e),
                None => self.inner.list(prefix, m),
            }
        }
        fn get_ranges(&self, requests: &[RangeRequest]) -> Vec<Result<Bytes>> {
            requests
                .iter()
                .map(|r| match self.fault(&r.key) {
                    Some(e) => Err(e),
                    None => self.inner.get_ranges(std::slice::from_ref(r)).remove(0),
                })
                .collect()
        }
        fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()> {
            match self.fault(key) {
                Some(e) => Err(e),
                None => self.inner.put(key, data, mode),
            }
        }
        fn describe(&self) -> String {
            "flaky".into()
        }
    }

    fn layer(flaky: Arc<Flaky>, policy: RetryPolicy) -> (RetryingStorage, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::default());
        (RetryingStorage::new(flaky, clock.clone(), policy), clock)
    }

    fn req(key: &str) -> RangeRequest {
        RangeRequest { key: key.into(), range: 0..4 }
    }

    #[test]
    fn only_failed_ranges_are_sent_again() {
        let flaky = Arc::new(Flaky::new(&[("d/b", ErrorKind::Network), ("d/b", ErrorKind::Network)]));
        let (s, clock) = layer(flaky.clone(), RetryPolicy::default());
        let got = s.get_ranges(&[req("d/a"), req("d/b")]);
        assert_eq!(got[0].as_ref().unwrap().as_ref(), b"aaaa");
        assert_eq!(got[1].as_ref().unwrap().as_ref(), b"bbbb");
        assert_eq!(*flaky.calls.lock(), vec!["d/a", "d/b", "d/b", "d/b"]);
        assert!(clock.now() <= 150_000_000, "two backoffs of at most 50 and 100 ms: {}", clock.now());
    }

    #[test]
    fn permanent_and_auth_errors_are_not_retried() {
        let flaky = Arc::new(Flaky::new(&[("d/a", ErrorKind::Auth), ("d/b", ErrorKind::Permanent)]));
        let (s, clock) = layer(flaky.clone(), RetryPolicy::default());
        let got = s.get_ranges(&[req("d/a"), req("d/b")]);
        assert_eq!(got[0].as_ref().unwrap_err().kind, ErrorKind::Auth);
        assert_eq!(got[1].as_ref().unwrap_err().kind, ErrorKind::Permanent);
        assert_eq!(flaky.calls.lock().len(), 2);
        assert_eq!(clock.now(), 0, "no sleeping");
    }

    #[test]
    fn a_persistent_failure_gives_up_within_the_bounds() {
        let faults: Vec<(&str, ErrorKind)> = (0..100).map(|_| ("d/", ErrorKind::Network)).collect();
        let flaky = Arc::new(Flaky::new(&faults));
        let (s, clock) = layer(flaky.clone(), RetryPolicy::default());
        let e = s.list("d/", false).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Network);
        assert_eq!(flaky.calls.lock().len(), 6, "max_attempts");
        assert!(clock.now() < 2_000_000_000 * 5, "{}", clock.now());

        // With little time, fewer attempts: none may start that could end after max_wait.
        let policy = RetryPolicy {
            max_wait: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        let flaky = Arc::new(Flaky::new(&faults));
        let (s, _) = layer(flaky.clone(), policy);
        assert!(s.list("d/", false).is_err());
        assert_eq!(flaky.calls.lock().len(), 1);
    }

    #[test]
    fn listings_retry_per_prefix() {
        let flaky = Arc::new(Flaky::new(&[("e/", ErrorKind::Timeout)]));
        let (s, _) = layer(flaky.clone(), RetryPolicy::default());
        let got = s.list_many(&["d/".to_string(), "e/".to_string()], false);
        assert_eq!(got[0].as_ref().unwrap().len(), 2);
        assert!(got[1].as_ref().unwrap().is_empty());
        assert_eq!(*flaky.calls.lock(), vec!["d/", "e/", "e/"]);
    }

    #[test]
    fn not_found_reads_are_retried_briefly_and_create_puts_never() {
        let flaky = Arc::new(Flaky::new(&[]));
        let (s, _) = layer(flaky.clone(), RetryPolicy::default());
        let got = s.get_ranges(&[req("d/missing")]);
        assert_eq!(got[0].as_ref().unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(flaky.calls.lock().len(), 3);

        let flaky = Arc::new(Flaky::new(&[("k", ErrorKind::Network), ("k2", ErrorKind::Network)]));
        let (s, _) = layer(flaky.clone(), RetryPolicy::default());
        assert_eq!(s.put("k", Bytes::from_static(b"x"), PutMode::Create).unwrap_err().kind, ErrorKind::Network);
        s.put("k2", Bytes::from_static(b"x"), PutMode::Overwrite).unwrap();
        assert_eq!(*flaky.calls.lock(), vec!["k", "k2", "k2"]);
        s.put("k3", Bytes::from_static(b"x"), PutMode::Create).unwrap();
        let e = s.put("k3", Bytes::from_static(b"y"), PutMode::Create).unwrap_err();
        assert_eq!(e.kind, ErrorKind::AlreadyExists);
        assert!(s.supports_conditional_create() == flaky.supports_conditional_create());
    }
}
