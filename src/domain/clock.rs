//! The one source of "now" in the domain. Production reads the system clock;
//! tests hold a manual clock and move it, so time-based rules (the change-limit
//! window, and later expiry and backoff) are tested without waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

trait TimeSource: Send + Sync + 'static {
    fn unix_millis(&self) -> i64;
}

struct SystemTimeSource;

impl TimeSource for SystemTimeSource {
    fn unix_millis(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or_default()
    }
}

/// A clock that only moves when told to.
#[derive(Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl TimeSource for AtomicI64 {
    fn unix_millis(&self) -> i64 {
        self.load(Ordering::SeqCst)
    }
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

/// Cheap to clone; every clone reads the same source.
#[derive(Clone)]
pub struct Clock(Arc<dyn TimeSource>);

impl Clock {
    pub fn system() -> Self {
        Clock(Arc::new(SystemTimeSource))
    }

    /// A clock starting at the current system time, and the handle that moves it.
    pub fn manual() -> (Self, ManualClock) {
        let millis = Arc::new(AtomicI64::new(SystemTimeSource.unix_millis()));
        (Clock(millis.clone()), ManualClock(millis))
    }

    /// Seconds since the Unix epoch, the time unit GeWe uses on the wire.
    pub fn unix_now(&self) -> i64 {
        self.0.unix_millis().div_euclid(1000)
    }

    pub fn unix_millis(&self) -> i64 {
        self.0.unix_millis()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.unix_millis())
    }
}

/// A Unix time in UTC as its calendar parts: year, month, day, hour, minute,
/// second (proleptic Gregorian), for the places that show times to people.
pub fn utc_parts(unix: i64) -> (i64, i64, i64, i64, i64, i64) {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let (clock, hand) = Clock::manual();
        let start = clock.unix_millis();
        assert_eq!(clock.clone().unix_millis(), start);
        hand.advance(Duration::from_millis(2500));
        assert_eq!(clock.unix_millis(), start + 2500);
        assert_eq!(clock.unix_now(), (start + 2500).div_euclid(1000));
    }

    #[test]
    fn the_system_clock_is_after_2020() {
        assert!(Clock::system().unix_now() > 1_577_836_800);
    }
}
