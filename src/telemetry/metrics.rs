//! Every metric the server exports, in one place: names, labels, help texts and
//! the functions that record them. Rooms call these functions, never the
//! `metrics` macros with a name of their own, so `GET /metrics` is described here.
//!
//! The recorder is the process-wide `metrics` facade, installed on first use
//! (a process that never records nor renders pays nothing). Labels take values
//! from fixed sets only (route templates, machine codes, stage names): no
//! appId, wxid, token or URL ever becomes a label, so the output carries no
//! tenant data.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::Duration;

use metrics::{
    Counter, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by route template, GeWe `ret` and HTTP status.
pub const HTTP_REQUESTS: &str = "gewe_http_requests_total";
/// Time from request to response head, by route template.
pub const HTTP_DURATION: &str = "gewe_http_request_duration_seconds";
/// Time each stage of an avatar update took: fetch, decode, encode, store, commit.
pub const AVATAR_STAGE: &str = "gewe_avatar_stage_duration_seconds";
/// Picture downloads that failed, by machine code (`fetch-…`).
pub const FETCH_REFUSALS: &str = "gewe_fetch_refusals_total";
/// How long decodes waited for a decode slot.
pub const DECODE_SLOT_WAIT: &str = "gewe_decode_slot_wait_seconds";
/// Pictures waiting for a decode slot now.
pub const DECODE_QUEUE_DEPTH: &str = "gewe_decode_queue_depth";
/// Variant reads from the in-memory cache, by result (`hit`, `miss`).
pub const VARIANT_CACHE: &str = "gewe_variant_cache_lookups_total";
/// Callback events in the outbox, by state (`pending`, `failed`), when scraped.
pub const OUTBOX_EVENTS: &str = "gewe_callback_outbox_events";
/// Age of the oldest pending callback event, when scraped (0 when none).
pub const OUTBOX_OLDEST_AGE: &str = "gewe_callback_outbox_oldest_pending_age_seconds";
/// Most attempts any pending callback event has had, when scraped.
pub const OUTBOX_MAX_ATTEMPTS: &str = "gewe_callback_outbox_max_pending_attempts";
/// Callback delivery attempts, by result (`delivered`, `retry`, `failed`).
pub const CALLBACK_ATTEMPTS: &str = "gewe_callback_attempts_total";
/// Blobs the garbage collector deleted.
pub const GC_DELETED: &str = "gewe_gc_deleted_blobs_total";
/// Garbage-collection sweeps, by result (`ok`, `error`).
pub const GC_SWEEPS: &str = "gewe_gc_sweeps_total";

/// Buckets for request and stage durations: 1 ms … 30 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often recorded durations are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's recorder, installed on first call.
fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was installed elsewhere; /metrics stays empty");
        }
        describe();
        // The recorder keeps every duration sample until upkeep folds it into
        // the buckets; only a scrape did that, so a server nobody scraped
        // kept ~24 bytes of every request, forever.
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
        }
        handle
    })
}

fn describe() {
    describe_histogram!(
        AVATAR_STAGE,
        metrics::Unit::Seconds,
        "Time each avatar update stage took: fetch, decode, encode, store, commit"
    );
    describe_counter!(
        FETCH_REFUSALS,
        "Picture downloads refused or failed, by machine code"
    );
    describe_histogram!(
        DECODE_SLOT_WAIT,
        metrics::Unit::Seconds,
        "Time a picture waited for a decode slot"
    );
    describe_gauge!(DECODE_QUEUE_DEPTH, "Pictures waiting for a decode slot");
    describe_counter!(
        VARIANT_CACHE,
        "Avatar variant lookups in the memory cache, by result"
    );
    describe_gauge!(OUTBOX_EVENTS, "Callback events in the outbox, by state");
    describe_gauge!(
        OUTBOX_OLDEST_AGE,
        metrics::Unit::Seconds,
        "Age of the oldest pending callback event"
    );
    describe_gauge!(
        OUTBOX_MAX_ATTEMPTS,
        "Most attempts any pending callback event has had"
    );
    describe_counter!(
        CALLBACK_ATTEMPTS,
        "Callback delivery attempts, by result: delivered, retry, failed"
    );
    describe_counter!(GC_DELETED, "Unreferenced avatar blobs deleted");
    describe_counter!(GC_SWEEPS, "Blob garbage-collection sweeps, by result");
}

/// The Prometheus text exposition of everything recorded so far.
pub fn render() -> String {
    let handle = handle();
    handle.run_upkeep();
    let mut text = handle.render();
    render_requests(&mut text);
    text
}

/// One answered request. `ret` is the envelope's (`None` for routes that answer
/// no envelope).
pub fn request(route: &str, ret: Option<i32>, status: u16, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    THIS_THREAD.with(|this_thread| {
        let mut routes = this_thread.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tally) = routes.get_mut(route) {
            tally.record(ret, status, seconds);
            return;
        }
        routes
            .entry(route.into())
            .or_default()
            .record(ret, status, seconds);
    });
}

/// Requests answered and how long they took, tallied by each thread in a table
/// of its own that only a scrape also locks; a scrape adds the tables up.
/// The `metrics` recorder's counters and histograms are shared by all threads
/// (its histogram appends every sample to a shared list): on an avatar read of
/// a few microseconds that was 80 ns and cache lines passed between cores on
/// every request.
type ThreadTallies = Mutex<HashMap<Box<str>, RouteTally, foldhash::fast::RandomState>>;

/// The tables of the threads alive, and what the threads that ended had
/// counted (counters never go back).
static ALL_THREADS: Mutex<AllThreads> = Mutex::new(AllThreads {
    alive: Vec::new(),
    ended: BTreeMap::new(),
});

struct AllThreads {
    alive: Vec<Arc<ThreadTallies>>,
    ended: BTreeMap<Box<str>, RouteTally>,
}

/// This thread's table, registered while the thread lives.
struct ThisThread(Arc<ThreadTallies>);

impl Drop for ThisThread {
    fn drop(&mut self) {
        let mut all = ALL_THREADS.lock().unwrap_or_else(|e| e.into_inner());
        all.alive.retain(|tallies| !Arc::ptr_eq(tallies, &self.0));
        let routes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for (route, tally) in routes.iter() {
            all.ended.entry(route.clone()).or_default().add(tally);
        }
    }
}

thread_local! {
    static THIS_THREAD: ThisThread = {
        let tallies = Arc::<ThreadTallies>::default();
        ALL_THREADS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .alive
            .push(tallies.clone());
        ThisThread(tallies)
    };
}

/// One route's requests: how many by (ret, status), and their durations in
/// `SECONDS_BUCKETS` (not cumulative; beyond the last bucket only in `count`).
#[derive(Default, Clone)]
struct RouteTally {
    answers: Vec<(Option<i32>, u16, u64)>,
    buckets: [u64; SECONDS_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl RouteTally {
    fn record(&mut self, ret: Option<i32>, status: u16, seconds: f64) {
        match self
            .answers
            .iter_mut()
            .find(|(r, s, _)| *r == ret && *s == status)
        {
            Some((_, _, answered)) => *answered += 1,
            None => self.answers.push((ret, status, 1)),
        }
        if let Some(bucket) = SECONDS_BUCKETS.iter().position(|&le| seconds <= le) {
            self.buckets[bucket] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn add(&mut self, other: &RouteTally) {
        for &(ret, status, answered) in &other.answers {
            match self
                .answers
                .iter_mut()
                .find(|(r, s, _)| *r == ret && *s == status)
            {
                Some((_, _, total)) => *total += answered,
                None => self.answers.push((ret, status, answered)),
            }
        }
        for (total, count) in self.buckets.iter_mut().zip(other.buckets) {
            *total += count;
        }
        self.count += other.count;
        self.sum += other.sum;
    }
}

/// The request counter and duration histogram in the text exposition format.
fn render_requests(out: &mut String) {
    let routes = {
        let all = ALL_THREADS.lock().unwrap_or_else(|e| e.into_inner());
        let mut routes = all.ended.clone();
        for tallies in &all.alive {
            for (route, tally) in tallies.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                routes.entry(route.clone()).or_default().add(tally);
            }
        }
        routes
    };
    if routes.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "# HELP {HTTP_REQUESTS} Requests answered, by route template, GeWe ret (none: not an \
         envelope) and HTTP status\n# TYPE {HTTP_REQUESTS} counter"
    );
    for (route, tally) in &routes {
        let route = label_value(route);
        for (ret, status, answered) in &tally.answers {
            let ret = ret.map_or_else(|| "none".to_owned(), |r| r.to_string());
            let _ = writeln!(
                out,
                "{HTTP_REQUESTS}{{route=\"{route}\",ret=\"{ret}\",status=\"{status}\"}} {answered}"
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP {HTTP_DURATION} Time to answer a request, by route template\n\
         # TYPE {HTTP_DURATION} histogram"
    );
    for (route, tally) in &routes {
        let route = label_value(route);
        let mut cumulative = 0;
        for (le, count) in SECONDS_BUCKETS.iter().zip(tally.buckets) {
            cumulative += count;
            let _ = writeln!(
                out,
                "{HTTP_DURATION}_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{HTTP_DURATION}_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}\n\
             {HTTP_DURATION}_sum{{route=\"{route}\"}} {sum}\n\
             {HTTP_DURATION}_count{{route=\"{route}\"}} {count}",
            count = tally.count,
            sum = tally.sum,
        );
    }
}

/// A label value as the text format spells it: backslash, quote and newline escaped.
fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A stage of the avatar pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Fetch,
    Decode,
    Encode,
    Store,
    Commit,
}

impl Stage {
    fn label(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::Decode => "decode",
            Stage::Encode => "encode",
            Stage::Store => "store",
            Stage::Commit => "commit",
        }
    }
}

pub fn avatar_stage(stage: Stage, took: Duration) {
    handle();
    histogram!(AVATAR_STAGE, "stage" => stage.label()).record(took.as_secs_f64());
}

/// A picture download that failed with machine code `code`.
pub fn fetch_refused(code: &'static str) {
    handle();
    counter!(FETCH_REFUSALS, "code" => code).increment(1);
}

/// Counts a picture in the decode queue for as long as it lives.
pub struct DecodeQueued(());

impl DecodeQueued {
    pub fn enter() -> Self {
        handle();
        gauge!(DECODE_QUEUE_DEPTH).increment(1.0);
        DecodeQueued(())
    }
}

impl Drop for DecodeQueued {
    fn drop(&mut self) {
        gauge!(DECODE_QUEUE_DEPTH).decrement(1.0);
    }
}

pub fn decode_slot_waited(took: Duration) {
    handle();
    histogram!(DECODE_SLOT_WAIT).record(took.as_secs_f64());
}

pub fn variant_cache(hit: bool) {
    static LOOKUPS: LazyLock<[Counter; 2]> = LazyLock::new(|| {
        handle();
        [
            counter!(VARIANT_CACHE, "result" => "miss"),
            counter!(VARIANT_CACHE, "result" => "hit"),
        ]
    });
    LOOKUPS[usize::from(hit)].increment(1);
}

/// The outbox as the database sees it now.
pub fn outbox(pending: u64, failed: u64, oldest_pending_age_secs: i64, max_attempts: i64) {
    handle();
    gauge!(OUTBOX_EVENTS, "state" => "pending").set(pending as f64);
    gauge!(OUTBOX_EVENTS, "state" => "failed").set(failed as f64);
    gauge!(OUTBOX_OLDEST_AGE).set(oldest_pending_age_secs.max(0) as f64);
    gauge!(OUTBOX_MAX_ATTEMPTS).set(max_attempts.max(0) as f64);
}

/// The result of one callback delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    Retry,
    Failed,
}

pub fn callback_attempt(attempt: Attempt) {
    handle();
    let result = match attempt {
        Attempt::Delivered => "delivered",
        Attempt::Retry => "retry",
        Attempt::Failed => "failed",
    };
    counter!(CALLBACK_ATTEMPTS, "result" => result).increment(1);
}

/// One garbage-collection sweep: `deleted` blobs removed, or failed.
pub fn gc_sweep(deleted: Option<u64>) {
    handle();
    match deleted {
        Some(n) => {
            counter!(GC_SWEEPS, "result" => "ok").increment(1);
            counter!(GC_DELETED).increment(n);
        }
        None => counter!(GC_SWEEPS, "result" => "error").increment(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
    }

    #[test]
    fn requests_tallied_on_threads_alive_and_ended_add_up_in_one_series() {
        let route = "/test/tallies/{x}";
        let record = |ret, millis| request(route, ret, 200, Duration::from_millis(millis));
        std::thread::scope(|threads| {
            threads.spawn(|| (0..3).for_each(|_| record(Some(200), 2)));
            threads.spawn(|| (0..2).for_each(|_| record(Some(200), 40)));
            threads.spawn(|| record(Some(500), 60_000));
        });
        // Those threads have ended; this one is alive.
        record(Some(200), 2);
        let mut text = String::new();
        render_requests(&mut text);
        let counted = |ret: &str| {
            sample(
                &text,
                &format!("{HTTP_REQUESTS}{{route=\"{route}\",ret=\"{ret}\",status=\"200\"}}"),
            )
        };
        assert_eq!(counted("200"), Some("6"), "{text}");
        assert_eq!(counted("500"), Some("1"), "{text}");
        let bucket = |le: &str| {
            sample(
                &text,
                &format!("{HTTP_DURATION}_bucket{{route=\"{route}\",le=\"{le}\"}}"),
            )
        };
        assert_eq!(bucket("0.001"), Some("0"));
        assert_eq!(bucket("0.0025"), Some("4"));
        assert_eq!(bucket("0.05"), Some("6"), "cumulative");
        assert_eq!(
            bucket("30"),
            Some("6"),
            "a minute is beyond the last bucket"
        );
        assert_eq!(bucket("+Inf"), Some("7"));
        let count = format!("{HTTP_DURATION}_count{{route=\"{route}\"}}");
        assert_eq!(sample(&text, &count), Some("7"));
        let sum = format!("{HTTP_DURATION}_sum{{route=\"{route}\"}}");
        let sum: f64 = sample(&text, &sum).unwrap().parse().unwrap();
        assert!((sum - 60.088).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
