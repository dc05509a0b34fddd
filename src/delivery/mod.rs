//! Callback delivery: the dispatcher that empties the outbox.
//!
//! A background task (started by `startup` with the server, stopped with it)
//! that, every `poll_interval`, whenever a delivery finishes and whenever this
//! process commits an event ([`OutboxSignal`]):
//!
//! 1. claims due events with a lease (`OutboxStore::settle_and_claim`): the
//!    oldest pending event of each appId, with the events queued behind it (up
//!    to `queue_per_device`), so per-device order holds and only one task per
//!    device sends, across every instance sharing the database. A lease runs
//!    out after `lease_secs` (by the domain clock), so the events of an
//!    instance that died are taken over;
//! 2. POSTs each device's events, in order, as stored, to its token's callback
//!    URL as it is NOW (read at the claim, once per token), through the
//!    callback fetcher (the guarded connector with the callback allow list; no
//!    redirects; a small body cap; a time limit; connections kept alive for the
//!    next event), one task per device, at most `max_in_flight` at once, so a
//!    slow or dead receiver holds one slot and never the others' events. The
//!    first failure ends the device's turn: the events behind it are handed
//!    back untried, and so are those a turn could not start with a quarter of
//!    the lease left;
//! 3. 2xx: delivered; the deliveries that finished while the last outcomes were
//!    being written are marked together, in one commit, just before the next
//!    claim and in the same visit to the writer, so a busy outbox costs about
//!    one commit per event (its insert) and not three. Otherwise the next
//!    attempt is due after an exponential backoff with jitter
//!    (`retry_base_secs` doubling up to `retry_cap_secs`), until the event is
//!    `max_age_secs` old: then it is kept as failed, visible to
//!    `gewe callbacks list --failed`, until `gewe callbacks retry`.
//!
//! Delivered events are pruned after `prune_after_days`. Every "when" comes from
//! the domain [`Clock`]; only the polling rhythm is tokio time, so tests move a
//! manual clock instead of waiting.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::domain::{
    AppId, Clock, Lease, OutboxEvent, OutboxSignal, Repository, TokenId, callback_failure,
};
use crate::fetch::Fetcher;
use crate::telemetry::metrics::{self, Attempt};

/// How the dispatcher paces itself.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// How often the outbox is looked at when nothing finishes (tokio time).
    pub poll_interval: Duration,
    /// How long a claim holds an event (domain clock); longer than one attempt.
    pub lease_secs: i64,
    /// Devices whose events are being sent at once.
    pub max_in_flight: usize,
    /// Events of one device a claim takes at most: a backlog (after a pause
    /// of the receiver or of the database) drains this many per turn.
    pub queue_per_device: usize,
    /// First retry delay; doubles per attempt (`GEWE_CALLBACK_RETRY_BASE_SECS`).
    pub retry_base_secs: i64,
    /// Longest retry delay (`GEWE_CALLBACK_RETRY_CAP_SECS`).
    pub retry_cap_secs: i64,
    /// Age after which an undelivered event is failed (`GEWE_CALLBACK_MAX_AGE_SECS`).
    pub max_age_secs: i64,
    /// Delivered events are deleted this many days after delivery (`GEWE_CALLBACK_PRUNE_DAYS`).
    pub prune_after_days: i64,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            poll_interval: Duration::from_millis(200),
            lease_secs: 30,
            max_in_flight: 32,
            queue_per_device: 16,
            retry_base_secs: 2,
            retry_cap_secs: 600,
            max_age_secs: 24 * 60 * 60,
            prune_after_days: 7,
        }
    }
}

/// How often delivered events are pruned (tokio time).
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// On shutdown, deliveries in flight get this long to finish; the rest are
/// abandoned (their leases run out and another run sends them).
const DRAIN_ON_STOP: Duration = Duration::from_secs(5);

/// The delay before attempt `attempts + 1`: `base · 2^(attempts-1)` capped at
/// `cap`, then "equal jitter" (a random point in its upper half), at least 1 s.
pub fn backoff_secs(base: i64, cap: i64, attempts: i64, rng: &mut impl Rng) -> i64 {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 62)).unwrap_or(62);
    let delay = base
        .max(1)
        .saturating_mul(1i64.checked_shl(exponent).unwrap_or(i64::MAX))
        .min(cap.max(1));
    let half = delay / 2;
    (delay - half + rng.random_range(0..=half)).max(1)
}

pub struct Dispatcher {
    repo: Arc<dyn Repository>,
    signal: OutboxSignal,
    fetcher: Fetcher,
    clock: Clock,
    config: DispatcherConfig,
    /// This dispatcher's name on its leases: unique per run.
    holder: String,
}

/// A running dispatcher; [`DispatcherHandle::stop`] ends it.
pub struct DispatcherHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl DispatcherHandle {
    /// Stops claiming, lets deliveries in flight finish (bounded), then returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "callback dispatcher ended abnormally");
        }
    }
}

impl Dispatcher {
    /// `fetcher` is the callback sender: the callback allow list and limits.
    pub fn new(
        repo: Arc<dyn Repository>,
        signal: OutboxSignal,
        fetcher: Fetcher,
        clock: Clock,
        config: DispatcherConfig,
    ) -> Self {
        let mut raw = [0u8; 8];
        rand::rng().fill(&mut raw);
        Dispatcher {
            repo,
            signal,
            fetcher,
            clock,
            config,
            holder: format!("{}-{}", std::process::id(), hex::encode(raw)),
        }
    }

    pub fn start(self) -> DispatcherHandle {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(Arc::new(self).run(stopped));
        DispatcherHandle { stop, task }
    }

    async fn run(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        tracing::info!(holder = %self.holder, "callback dispatcher started");
        let mut in_flight = JoinSet::new();
        let mut delivered = Vec::new();
        let mut last_prune: Option<tokio::time::Instant> = None;
        loop {
            while let Some(finished) = in_flight.try_join_next() {
                delivered.extend(finished.unwrap_or_default());
            }
            let free = self.config.max_in_flight.saturating_sub(in_flight.len());
            if free == 0 {
                self.record_delivered(&mut delivered).await;
            } else {
                let (events, lease) = self.settle_and_claim(&mut delivered, free).await;
                let urls = self.callback_urls(&events).await;
                for queue in by_device(events) {
                    let Some(url) = urls.get(&queue[0].owner).cloned() else {
                        // The store failed: the leases run out and they are tried again.
                        continue;
                    };
                    let last_start = lease.until - self.config.lease_secs / 4;
                    in_flight.spawn(Arc::clone(&self).deliver_queue(queue, url, last_start));
                }
            }
            if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                last_prune = Some(tokio::time::Instant::now());
                self.prune().await;
            }
            tokio::select! {
                _ = stopped.changed() => break,
                () = tokio::time::sleep(self.config.poll_interval) => {}
                () = self.signal.rung() => {}
                Some(finished) = in_flight.join_next(), if !in_flight.is_empty() => {
                    delivered.extend(finished.unwrap_or_default());
                }
            }
        }
        let drain = async {
            while let Some(finished) = in_flight.join_next().await {
                delivered.extend(finished.unwrap_or_default());
            }
        };
        if tokio::time::timeout(DRAIN_ON_STOP, drain).await.is_err() {
            in_flight.abort_all();
        }
        self.record_delivered(&mut delivered).await;
        tracing::info!(holder = %self.holder, "callback dispatcher stopped");
    }

    /// Marks `delivered` (and empties it), then claims the queues of up to
    /// `free` devices, in one visit to the writer; answers the claim with its
    /// lease. On a store error the deliveries stay pending (their leases run
    /// out and they are sent again: at least once, never lost).
    async fn settle_and_claim(
        &self,
        delivered: &mut Vec<i64>,
        free: usize,
    ) -> (Vec<OutboxEvent>, Lease) {
        let now = self.clock.unix_now();
        let lease = Lease {
            holder: self.holder.clone(),
            until: now + self.config.lease_secs,
        };
        let devices = i64::try_from(free).unwrap_or(i64::MAX);
        let per_device = i64::try_from(self.config.queue_per_device.max(1)).unwrap_or(i64::MAX);
        let settled = self
            .repo
            .settle_and_claim(delivered, now, &lease, devices, per_device)
            .await;
        let events = match settled {
            Ok((held, events)) => {
                report_lost_leases(delivered.len(), held);
                events
            }
            Err(e) => {
                tracing::warn!(error = %e, delivered = delivered.len(),
                    "callback dispatcher: cannot record deliveries and claim events");
                Vec::new()
            }
        };
        delivered.clear();
        (events, lease)
    }

    /// Each claimed event's callback URL as it is now, read once per token
    /// of the claim rather than once per event. A token whose read failed is
    /// left out (its events' leases run out and they are sent later).
    async fn callback_urls(&self, events: &[OutboxEvent]) -> HashMap<TokenId, Option<Arc<str>>> {
        let mut urls = HashMap::new();
        for event in events {
            if urls.contains_key(&event.owner) {
                continue;
            }
            match self.repo.callback_url(event.owner).await {
                Ok(url) => {
                    urls.insert(event.owner, url.map(Arc::from));
                }
                Err(e) => {
                    tracing::warn!(id = event.id, error = %e, "callback dispatcher: store failed");
                }
            }
        }
        urls
    }

    async fn prune(&self) {
        let before = self.clock.unix_now() - self.config.prune_after_days * 24 * 60 * 60;
        match self.repo.prune_delivered(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "callback dispatcher: pruned delivered events"),
            Err(e) => tracing::warn!(error = %e, "callback dispatcher: cannot prune"),
        }
    }

    /// Marks the events in `ids` delivered in one commit and empties it. On a
    /// store error they stay pending: their leases run out and they are sent
    /// again (at least once, never lost).
    async fn record_delivered(&self, ids: &mut Vec<i64>) {
        if ids.is_empty() {
            return;
        }
        match self
            .repo
            .mark_delivered(ids, &self.holder, self.clock.unix_now())
            .await
        {
            Ok(held) => report_lost_leases(ids.len(), held),
            Err(e) => {
                tracing::warn!(error = %e, events = ids.len(), "callback dispatcher: cannot record deliveries")
            }
        }
        ids.clear();
    }

    /// One device's claimed events, sent in order until one fails or the lease
    /// is too short to start another (after `last_start`); what is left is
    /// handed back untried. Answers the ids delivered, for the loop to mark in
    /// its next batch.
    async fn deliver_queue(
        self: Arc<Self>,
        queue: Vec<OutboxEvent>,
        url: Option<Arc<str>>,
        last_start: i64,
    ) -> Vec<i64> {
        let mut delivered = Vec::with_capacity(queue.len());
        let mut events = queue.into_iter();
        for event in events.by_ref() {
            let id = event.id;
            if !self.deliver(event, url.clone()).await {
                break;
            }
            delivered.push(id);
            if self.clock.unix_now() > last_start {
                break;
            }
        }
        let untried: Vec<i64> = events.map(|e| e.id).collect();
        if !untried.is_empty()
            && let Err(e) = self.repo.release_events(&untried, &self.holder).await
        {
            // Their leases run out and they are sent then.
            tracing::warn!(error = %e, events = untried.len(), "callback dispatcher: cannot hand events back");
        }
        delivered
    }

    /// One attempt at one claimed event: true when it was delivered (for the
    /// loop to mark). A failure's bookkeeping is done here.
    async fn deliver(&self, event: OutboxEvent, url: Option<Arc<str>>) -> bool {
        let outcome = match url.as_deref().map(::url::Url::parse) {
            Some(Ok(url)) => self
                .fetcher
                .post_json(&url, Bytes::from(event.payload.clone()))
                .await
                .map_err(|e| {
                    let (code, reason) = callback_failure(&e);
                    format!("{code}: {reason}")
                }),
            Some(Err(_)) => Err("callback-bad-url: 回调地址不是合法的URL".to_owned()),
            None => Err("callback-no-url: 该token未设置回调地址".to_owned()),
        };
        let now = self.clock.unix_now();
        let recorded = match outcome {
            Ok(_) => {
                metrics::callback_attempt(Attempt::Delivered);
                return true;
            }
            Err(error) => {
                let give_up_at = event.age_from.saturating_add(self.config.max_age_secs);
                if now >= give_up_at {
                    metrics::callback_attempt(Attempt::Failed);
                    tracing::warn!(id = event.id, app_id = %event.app_id, %error,
                        "callback event failed: past its maximum age");
                    self.repo
                        .mark_failed(event.id, &self.holder, now, &error)
                        .await
                } else {
                    metrics::callback_attempt(Attempt::Retry);
                    let delay = backoff_secs(
                        self.config.retry_base_secs,
                        self.config.retry_cap_secs,
                        event.attempts,
                        &mut rand::rng(),
                    );
                    let next = now.saturating_add(delay).min(give_up_at);
                    tracing::debug!(id = event.id, app_id = %event.app_id, %error, next,
                        "callback delivery failed; will retry");
                    self.repo
                        .schedule_retry(event.id, &self.holder, next, &error)
                        .await
                }
            }
        };
        match recorded {
            Ok(true) => {}
            Ok(false) => tracing::info!(
                id = event.id,
                "callback dispatcher: lease lost before the outcome was recorded"
            ),
            Err(e) => {
                tracing::warn!(id = event.id, error = %e, "callback dispatcher: cannot record outcome")
            }
        }
        false
    }
}

/// Says so when fewer of `recorded` deliveries were still held than recorded.
fn report_lost_leases(recorded: usize, held: u64) {
    let lost = (recorded as u64).saturating_sub(held);
    if lost > 0 {
        tracing::info!(
            lost,
            "callback dispatcher: leases lost before deliveries were recorded"
        );
    }
}

/// Claimed events (in id order) grouped into each device's queue, each in id
/// order, the queue with the oldest head first.
fn by_device(events: Vec<OutboxEvent>) -> Vec<Vec<OutboxEvent>> {
    let mut queues: Vec<Vec<OutboxEvent>> = Vec::new();
    let mut index: HashMap<AppId, usize> = HashMap::new();
    for event in events {
        match index.get(&event.app_id) {
            Some(&at) => queues[at].push(event),
            None => {
                index.insert(event.app_id.clone(), queues.len());
                queues.push(vec![event]);
            }
        }
    }
    queues
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let mut rng = rand::rng();
        for _ in 0..200 {
            let first = backoff_secs(2, 600, 1, &mut rng);
            assert!((1..=2).contains(&first), "{first}");
            let fourth = backoff_secs(2, 600, 4, &mut rng);
            assert!((8..=16).contains(&fourth), "{fourth}");
            let late = backoff_secs(2, 600, 40, &mut rng);
            assert!((300..=600).contains(&late), "{late}");
            let huge = backoff_secs(2, 600, i64::MAX, &mut rng);
            assert!((300..=600).contains(&huge), "{huge}");
        }
    }
}
