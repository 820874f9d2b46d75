//! The body memory budget (`ingest.max_in_flight_bytes`), reserved when a
//! body's first bytes arrive, never for a client that only declared one.
//! A body reserves its declared length (or the source's `max_body` when it
//! declares none) in one step, so that no body waits for budget while
//! holding some: bodies each holding part of what they need and waiting
//! for the rest would wait for each other until they all time out.
//!
//! Every byte is unauthenticated until the whole body is in and its
//! signature holds, so bodies still arriving may hold at most half of the
//! budget ([`UNVERIFIED_SHARE`]); the other half is what only verified
//! webhooks awaiting their PubAck can use. When a body needs budget and
//! none is free, bodies that have held budget for longer than
//! [`SLOW_BODY_AGE`] while still arriving (a provider sends a webhook in
//! milliseconds) are shed, oldest first: they get 503 and their share goes
//! to the newcomer.
//! An attacker who wants to hold the budget must therefore keep opening
//! requests and sending their first bytes, and a provider's webhook waits
//! at most about a second; silent clients hold nothing at all.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Bodies still arriving hold at most this fraction of the budget (1/n).
pub const UNVERIFIED_SHARE: u32 = 2;
/// A body still arriving this long after it got its budget is slow and
/// yields the budget to a newcomer when none is free.
pub const SLOW_BODY_AGE: Duration = Duration::from_secs(1);
/// How often a waiting request looks again for slow bodies to shed.
const SHED_CHECK: Duration = Duration::from_millis(100);

/// The shared budget, in permits of 1 KiB.
#[derive(Debug)]
pub(crate) struct BodyBudget {
    total: Semaphore,
    total_kib: u32,
    unverified: Semaphore,
    unverified_kib: u32,
    /// Bodies that did not arrive in their first read, so may be shed.
    arriving: Mutex<Vec<Arriving>>,
    next_id: std::sync::atomic::AtomicU64,
    /// How long a request waits for budget before 503.
    wait: Duration,
}

#[derive(Debug)]
struct Arriving {
    id: u64,
    since: Instant,
    kib: u32,
    shed: CancellationToken,
}

/// Why no budget was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoBudget {
    /// None freed up within the wait.
    Exhausted,
    /// This body was shed (it arrived too slowly) while it waited.
    Shed,
}

impl BodyBudget {
    pub(crate) fn new(bytes: u64, wait: Duration) -> Self {
        let total_kib = u32::try_from(bytes / 1024).unwrap_or(u32::MAX).max(1);
        let unverified_kib = (total_kib / UNVERIFIED_SHARE).max(1);
        Self {
            total: Semaphore::new(total_kib as usize),
            total_kib,
            unverified: Semaphore::new(unverified_kib as usize),
            unverified_kib,
            arriving: Mutex::new(Vec::new()),
            next_id: std::sync::atomic::AtomicU64::new(0),
            wait,
        }
    }

    /// An empty reservation for one request's body.
    pub(crate) fn reservation(&self) -> Reservation<'_> {
        Reservation {
            budget: self,
            total_kib: 0,
            unverified_kib: 0,
            arriving: None,
        }
    }

    /// Sheds slow arriving bodies (oldest first, never `except`) until
    /// about `kib` is promised back. Returns whether any was shed.
    fn shed_slow(&self, kib: u32, except: Option<u64>) -> bool {
        let Ok(mut arriving) = self.arriving.lock() else {
            return false;
        };
        let now = Instant::now();
        let mut freed = 0u32;
        let mut any = false;
        // Oldest first: the list is in arrival order.
        for body in arriving.iter_mut() {
            if freed >= kib {
                break;
            }
            if Some(body.id) == except
                || body.shed.is_cancelled()
                || now.duration_since(body.since) < SLOW_BODY_AGE
            {
                continue;
            }
            body.shed.cancel();
            freed = freed.saturating_add(body.kib.max(1));
            any = true;
        }
        any
    }
}

/// The budget held by one request; released when dropped.
#[derive(Debug)]
pub(crate) struct Reservation<'a> {
    budget: &'a BodyBudget,
    total_kib: u32,
    unverified_kib: u32,
    /// Set once the body did not arrive in one read.
    arriving: Option<(u64, CancellationToken)>,
}

impl Reservation<'_> {
    /// Grows the reservation to cover `bytes`. A body larger than a pool
    /// takes all of it (and so goes through alone). Waits holding what it
    /// has: call it once per body with the whole size (see the module doc).
    pub(crate) async fn cover(&mut self, bytes: usize) -> Result<(), NoBudget> {
        let wanted = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        let unverified = wanted.min(self.budget.unverified_kib);
        let total = wanted.min(self.budget.total_kib);
        let need_unverified = unverified.saturating_sub(self.unverified_kib);
        let need_total = total.saturating_sub(self.total_kib);
        if need_unverified == 0 && need_total == 0 {
            return Ok(());
        }
        // The fast path: no lock, no timer.
        if let Ok(permit) = self.budget.unverified.try_acquire_many(need_unverified) {
            if let Ok(total_permit) = self.budget.total.try_acquire_many(need_total) {
                permit.forget();
                total_permit.forget();
                self.grew(need_unverified, need_total);
                return Ok(());
            }
            drop(permit);
        }
        self.cover_slowly(need_unverified, need_total).await
    }

    async fn cover_slowly(
        &mut self,
        need_unverified: u32,
        need_total: u32,
    ) -> Result<(), NoBudget> {
        let budget = self.budget;
        let deadline = Instant::now() + budget.wait;
        let except = self.arriving.as_ref().map(|(id, _)| *id);
        // Each wait keeps its place in the semaphore's queue (first come,
        // first served) while looking for slow bodies to shed now and then.
        let acquire = async {
            let waiting = budget.unverified.acquire_many(need_unverified);
            tokio::pin!(waiting);
            let unverified = loop {
                budget.shed_slow(need_unverified, except);
                match tokio::time::timeout(SHED_CHECK, waiting.as_mut()).await {
                    Ok(Ok(permit)) => break permit,
                    Ok(Err(_closed)) => return Err(NoBudget::Exhausted),
                    Err(_elapsed) => {}
                }
            };
            let waiting = budget.total.acquire_many(need_total);
            tokio::pin!(waiting);
            let total = loop {
                budget.shed_slow(need_total, except);
                match tokio::time::timeout(SHED_CHECK, waiting.as_mut()).await {
                    Ok(Ok(permit)) => break permit,
                    Ok(Err(_closed)) => return Err(NoBudget::Exhausted),
                    Err(_elapsed) => {}
                }
            };
            unverified.forget();
            total.forget();
            Ok(())
        };
        let own_shed = self.arriving.as_ref().map(|(_, token)| token.clone());
        let shed = async {
            match own_shed {
                Some(token) => token.cancelled_owned().await,
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            outcome = tokio::time::timeout_at(deadline, acquire) => outcome,
            () = shed => return Err(NoBudget::Shed),
        };
        match outcome {
            Ok(Ok(())) => {
                self.grew(need_unverified, need_total);
                Ok(())
            }
            Ok(Err(no)) => Err(no),
            Err(_elapsed) => Err(NoBudget::Exhausted),
        }
    }

    fn grew(&mut self, unverified: u32, total: u32) {
        self.unverified_kib += unverified;
        self.total_kib += total;
        if let Some((id, _)) = &self.arriving
            && let Ok(mut arriving) = self.budget.arriving.lock()
            && let Some(entry) = arriving.iter_mut().find(|e| e.id == *id)
        {
            entry.kib = self.unverified_kib;
        }
    }

    /// Registers the body as still arriving (it did not come in one read):
    /// from now on it may be shed. Returns the token cancelled on shedding.
    pub(crate) fn arriving(&mut self, since: Instant) -> CancellationToken {
        if let Some((_, token)) = &self.arriving {
            return token.clone();
        }
        let id = self
            .budget
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let token = CancellationToken::new();
        if let Ok(mut arriving) = self.budget.arriving.lock() {
            arriving.push(Arriving {
                id,
                since,
                kib: self.unverified_kib,
                shed: token.clone(),
            });
        }
        self.arriving = Some((id, token.clone()));
        token
    }

    /// The whole body is in: its bytes leave the unverified share (they
    /// stay in the total until the request is answered).
    pub(crate) fn body_complete(&mut self) {
        self.leave_arriving();
        self.budget
            .unverified
            .add_permits(std::mem::take(&mut self.unverified_kib) as usize);
    }

    fn leave_arriving(&mut self) {
        if let Some((id, _)) = self.arriving.take()
            && let Ok(mut arriving) = self.budget.arriving.lock()
        {
            arriving.retain(|e| e.id != id);
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.leave_arriving();
        self.budget
            .unverified
            .add_permits(self.unverified_kib as usize);
        self.budget.total.add_permits(self.total_kib as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_are_reserved_as_they_arrive_and_returned() {
        let budget = BodyBudget::new(8 * 1024, Duration::from_millis(50));
        let mut a = budget.reservation();
        a.cover(0).await.unwrap();
        assert_eq!(budget.unverified.available_permits(), 4);
        a.cover(3000).await.unwrap();
        assert_eq!(budget.unverified.available_permits(), 1);
        assert_eq!(budget.total.available_permits(), 5);
        // The unverified share is half the budget.
        let mut b = budget.reservation();
        assert_eq!(b.cover(2048).await, Err(NoBudget::Exhausted));
        a.body_complete();
        assert_eq!(budget.unverified.available_permits(), 4);
        b.cover(2048).await.unwrap();
        drop(a);
        drop(b);
        assert_eq!(budget.total.available_permits(), 8);
        assert_eq!(budget.unverified.available_permits(), 4);
    }

    #[tokio::test]
    async fn a_body_larger_than_the_pool_takes_all_of_it() {
        let budget = BodyBudget::new(4 * 1024, Duration::from_millis(50));
        let mut a = budget.reservation();
        a.cover(1 << 20).await.unwrap();
        assert_eq!(budget.unverified.available_permits(), 0);
        a.body_complete();
        assert_eq!(budget.total.available_permits(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_bodies_are_shed_for_newcomers() {
        let budget = BodyBudget::new(8 * 1024, Duration::from_secs(5));
        let mut slow = budget.reservation();
        slow.cover(4096).await.unwrap();
        let shed = slow.arriving(Instant::now());
        // Young: not shed, the newcomer waits and gives up.
        let mut young_wait = budget.reservation();
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(!budget.shed_slow(1, None));
        assert!(!shed.is_cancelled());
        // Old: shed as soon as a newcomer needs budget.
        tokio::time::advance(SLOW_BODY_AGE).await;
        let newcomer = async { young_wait.cover(1024).await };
        let release = async {
            shed.cancelled().await;
            drop(slow);
        };
        let (got, ()) = tokio::join!(newcomer, release);
        assert_eq!(got, Ok(()));
    }
}
