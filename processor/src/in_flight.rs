//! Webhooks this instance is working on right now, by idempotency key.
//!
//! The KV claim keeps instances apart, but its lease can lapse while this
//! instance still holds the outcome: NATS away as the handler finished, the
//! `done` write being retried. A redelivery reaching this same instance
//! then waits here for the earlier worker to settle, instead of taking
//! the lapsed claim over and running the handler again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

/// The keys being worked on, each with a notifier for the waiters.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    keys: Mutex<HashMap<String, Arc<Notify>>>,
}

/// Held while a key is worked on; releasing it wakes the waiters.
pub(crate) struct Held<'a> {
    owner: &'a InFlight,
    key: String,
}

impl InFlight {
    /// Marks `key` as worked on by the caller, first waiting (at most
    /// `patience`) for another local worker holding it to finish. After
    /// `patience` the caller proceeds unmarked: the KV claim still decides.
    pub(crate) async fn enter(&self, key: &str, patience: Duration) -> Option<Held<'_>> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let notify = {
                let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
                match keys.get(key) {
                    None => {
                        keys.insert(key.to_owned(), Arc::new(Notify::new()));
                        return Some(Held {
                            owner: self,
                            key: key.to_owned(),
                        });
                    }
                    Some(notify) => Arc::clone(notify),
                }
            };
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Re-check: the holder may have left between the lookup and `enable`.
            let still_held = self
                .keys
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(key)
                .is_some_and(|current| Arc::ptr_eq(current, &notify));
            if still_held && tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let removed = self
            .owner
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
        if let Some(notify) = removed {
            notify.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_worker_waits_for_the_first() {
        let in_flight = Arc::new(InFlight::default());
        let first = in_flight.enter("k", Duration::from_secs(1)).await;
        assert!(first.is_some());
        let waiter = {
            let in_flight = Arc::clone(&in_flight);
            tokio::spawn(
                async move { in_flight.enter("k", Duration::from_secs(5)).await.is_some() },
            )
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "entered while the key was held");
        drop(first);
        assert!(
            waiter.await.unwrap(),
            "the waiter did not get the key after release"
        );
        assert!(in_flight.enter("other", Duration::ZERO).await.is_some());
    }

    #[tokio::test]
    async fn patience_is_bounded() {
        let in_flight = InFlight::default();
        let _held = in_flight.enter("k", Duration::ZERO).await;
        let started = std::time::Instant::now();
        assert!(
            in_flight
                .enter("k", Duration::from_millis(100))
                .await
                .is_none()
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
