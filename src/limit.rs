//! [`RateLimit`] and [`Quota`]: how much a key may do. Plain data, kept by stores and
//! enforced by the limiters of `policy/`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::ConfigError;

/// The longest period, and the longest time a burst takes to refill: 100 years.
pub const MAX_WINDOW: Duration = Duration::from_secs(100 * 365 * 86_400);

/// A request rate: `count` requests per `period`, with bursts of up to `burst` requests
/// (by default `count`), enforced as a generic cell rate algorithm (GCRA): a request is
/// allowed when it comes no sooner than `period / count` after the previous one, give or
/// take the burst.
///
/// ```
/// use keygate::RateLimit;
///
/// let limit = RateLimit::per_second(5)?.with_burst(10)?;
/// assert_eq!(limit.count(), 5);
/// assert_eq!(limit.burst(), 10);
/// # Ok::<(), keygate::ConfigError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    count: u32,
    period: Duration,
    burst: u32,
}

impl RateLimit {
    /// `count` requests per `period`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidLimit`] for a zero count or a period under one millisecond.
    pub fn new(count: u32, period: Duration) -> Result<Self, ConfigError> {
        if count == 0 || period < Duration::from_millis(1) {
            return Err(ConfigError::InvalidLimit);
        }
        Self {
            count,
            period,
            burst: count,
        }
        .bounded()
    }

    /// Refuses windows longer than [`MAX_WINDOW`]: limiters count in nanoseconds, and a
    /// longer one would overflow them.
    fn bounded(self) -> Result<Self, ConfigError> {
        let window = self.interval().checked_mul(self.burst);
        if self.period > MAX_WINDOW || window.is_none_or(|window| window > MAX_WINDOW) {
            return Err(ConfigError::InvalidLimit);
        }
        Ok(self)
    }

    /// `count` requests per second.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidLimit`] for a zero count.
    pub fn per_second(count: u32) -> Result<Self, ConfigError> {
        Self::new(count, Duration::from_secs(1))
    }

    /// `count` requests per minute.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidLimit`] for a zero count.
    pub fn per_minute(count: u32) -> Result<Self, ConfigError> {
        Self::new(count, Duration::from_secs(60))
    }

    /// `count` requests per hour.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidLimit`] for a zero count.
    pub fn per_hour(count: u32) -> Result<Self, ConfigError> {
        Self::new(count, Duration::from_secs(3600))
    }

    /// Allows bursts of up to `burst` requests.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidLimit`] for a zero burst.
    pub fn with_burst(mut self, burst: u32) -> Result<Self, ConfigError> {
        if burst == 0 {
            return Err(ConfigError::InvalidLimit);
        }
        self.burst = burst;
        self.bounded()
    }

    /// Requests per period.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The largest burst.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The time one request takes to replenish: `period / count`, at least a nanosecond.
    pub fn interval(&self) -> Duration {
        (self.period / self.count).max(Duration::from_nanos(1))
    }

    /// Parts as SQL stores keep them: count, period in milliseconds, burst (keygate's
    /// columns `rate_count`, `rate_period_ms`, `rate_burst`).
    pub fn to_parts(self) -> (i64, i64, i64) {
        let millis = i64::try_from(self.period.as_millis()).unwrap_or(i64::MAX);
        (i64::from(self.count), millis, i64::from(self.burst))
    }

    /// A limit from the parts SQL stores keep; `None` when they do not make one.
    pub fn from_parts(count: i64, period_ms: i64, burst: i64) -> Option<Self> {
        let count = u32::try_from(count).ok()?;
        let period = Duration::from_millis(u64::try_from(period_ms).ok()?);
        Self::new(count, period)
            .ok()?
            .with_burst(u32::try_from(burst).ok()?)
            .ok()
    }
}

impl fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RateLimit({} per {:?}, burst {})",
            self.count, self.period, self.burst
        )
    }
}

/// When a [`Quota`]'s uses come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refill {
    /// Never: the quota is a number of uses for the key's whole life.
    Never,
    /// At the start of every day (UTC).
    Daily,
    /// At the start of every calendar month (UTC).
    Monthly,
}

/// A number of uses a key has, refilled each day or month or never.
///
/// Unlike a [`RateLimit`], which paces requests, a quota counts them: once `limit`
/// requests were allowed in the current period, the key gets 429 `quota_exhausted` until
/// the next one.
///
/// ```
/// use keygate::{Quota, Refill};
///
/// let monthly = Quota::new(10_000, Refill::Monthly)?;
/// assert_eq!(monthly.limit(), 10_000);
/// # Ok::<(), keygate::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    limit: u64,
    refill: Refill,
}

impl Quota {
    /// `limit` uses per period of `refill`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidLimit`] for a zero limit or one past `i64::MAX` (what SQL
    /// stores keep).
    pub fn new(limit: u64, refill: Refill) -> Result<Self, ConfigError> {
        if limit == 0 || i64::try_from(limit).is_err() {
            return Err(ConfigError::InvalidLimit);
        }
        Ok(Self { limit, refill })
    }

    /// Uses per period.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// When uses come back.
    pub fn refill(&self) -> Refill {
        self.refill
    }

    /// The period `at` falls in: days or months since the Unix epoch, or 0 for a quota
    /// that never refills. Two instants share a period exactly when their uses are counted
    /// together.
    pub fn period_of(&self, at: SystemTime) -> i64 {
        let days = days_since_epoch(at);
        match self.refill {
            Refill::Never => 0,
            Refill::Daily => days,
            Refill::Monthly => {
                let (year, month, _) = civil_from_days(days);
                (year - 1970) * 12 + i64::from(month) - 1
            }
        }
    }

    /// When the period `at` falls in ends: the next refill, or `None` for a quota that
    /// never refills.
    pub fn next_refill(&self, at: SystemTime) -> Option<SystemTime> {
        let days = days_since_epoch(at);
        let next_day = match self.refill {
            Refill::Never => return None,
            Refill::Daily => days + 1,
            Refill::Monthly => {
                let (year, month, _) = civil_from_days(days);
                let (year, month) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                days_from_civil(year, month, 1)
            }
        };
        let seconds = u64::try_from(next_day).ok()?.checked_mul(86_400)?;
        UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
    }

    /// How long the period `at` falls in lasts: a day, the month's length, or
    /// `Duration::MAX` for a quota that never refills.
    pub fn period_length(&self, at: SystemTime) -> Duration {
        let days = days_since_epoch(at);
        let start = match self.refill {
            Refill::Never => return Duration::MAX,
            Refill::Daily => days,
            Refill::Monthly => {
                let (year, month, _) = civil_from_days(days);
                days_from_civil(year, month, 1)
            }
        };
        let start = UNIX_EPOCH + Duration::from_secs(u64::try_from(start).unwrap_or(0) * 86_400);
        self.next_refill(at)
            .and_then(|next| next.duration_since(start).ok())
            .unwrap_or(Duration::MAX)
    }

    /// Parts as SQL stores keep them: the limit and the refill's name, `never`, `day` or
    /// `month` (keygate's columns `quota_limit`, `quota_refill`).
    pub fn to_parts(self) -> (i64, &'static str) {
        let refill = match self.refill {
            Refill::Never => "never",
            Refill::Daily => "day",
            Refill::Monthly => "month",
        };
        (i64::try_from(self.limit).unwrap_or(i64::MAX), refill)
    }

    /// A quota from the parts SQL stores keep; `None` when they do not make one.
    pub fn from_parts(limit: i64, refill: &str) -> Option<Self> {
        let refill = match refill {
            "never" => Refill::Never,
            "day" => Refill::Daily,
            "month" => Refill::Monthly,
            _ => return None,
        };
        Self::new(u64::try_from(limit).ok()?, refill).ok()
    }
}

fn days_since_epoch(at: SystemTime) -> i64 {
    let seconds = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    i64::try_from(seconds / 86_400).unwrap_or(i64::MAX)
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are within 1..=12 and 1..=31 by construction.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn a_zero_rate_or_burst_is_refused() {
        assert_eq!(RateLimit::per_second(0), Err(ConfigError::InvalidLimit));
        let limit = RateLimit::per_second(1).unwrap();
        assert_eq!(limit.with_burst(0), Err(ConfigError::InvalidLimit));
        assert_eq!(
            RateLimit::new(1, Duration::ZERO),
            Err(ConfigError::InvalidLimit)
        );
    }

    #[test]
    fn windows_past_a_hundred_years_are_refused() {
        let yearly = RateLimit::new(1, Duration::from_secs(365 * 86_400)).unwrap();
        assert_eq!(yearly.with_burst(1_000), Err(ConfigError::InvalidLimit));
        assert_eq!(
            RateLimit::new(1, Duration::from_secs(u64::MAX / 2)),
            Err(ConfigError::InvalidLimit)
        );
        assert_eq!(RateLimit::from_parts(1, i64::MAX, 1), None);
    }

    #[test]
    fn a_zero_quota_is_refused() {
        assert_eq!(Quota::new(0, Refill::Daily), Err(ConfigError::InvalidLimit));
    }

    #[test]
    fn limits_round_trip_through_their_stored_parts() {
        let limit = RateLimit::per_minute(90).unwrap().with_burst(7).unwrap();
        let (count, period, burst) = limit.to_parts();
        assert_eq!(RateLimit::from_parts(count, period, burst), Some(limit));
        let quota = Quota::new(500, Refill::Monthly).unwrap();
        let (limit, refill) = quota.to_parts();
        assert_eq!(Quota::from_parts(limit, refill), Some(quota));
    }

    #[test]
    fn dates_convert_both_ways() {
        for days in [-800_000, -1, 0, 59, 365, 11_016, 20_454, 2_932_896] {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days, "{days}");
        }
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }

    #[test]
    fn a_period_lasts_a_day_or_its_months_length() {
        let daily = Quota::new(1, Refill::Daily).unwrap();
        assert_eq!(
            daily.period_length(at(1_771_156_800)),
            Duration::from_secs(86_400)
        );
        let monthly = Quota::new(1, Refill::Monthly).unwrap();
        // February 2026 has 28 days.
        let february = monthly.period_length(at(1_771_156_800));
        assert_eq!(february, Duration::from_secs(28 * 86_400));
    }

    #[test]
    fn a_monthly_quota_refills_on_the_first_of_the_next_month() {
        let quota = Quota::new(1, Refill::Monthly).unwrap();
        // 2026-02-15 12:00 UTC
        let mid_february = at(1_771_156_800);
        assert_eq!(quota.next_refill(mid_february), Some(at(1_772_323_200))); // 2026-03-01
        let december = at(1_797_768_000); // 2026-12-20
        assert_eq!(quota.next_refill(december), Some(at(1_798_761_600))); // 2027-01-01
    }

    #[test]
    fn instants_share_a_period_exactly_when_they_fall_in_the_same_day_or_month() {
        let daily = Quota::new(1, Refill::Daily).unwrap();
        assert_eq!(daily.period_of(at(86_399)), daily.period_of(at(0)));
        assert_ne!(daily.period_of(at(86_400)), daily.period_of(at(0)));
        let monthly = Quota::new(1, Refill::Monthly).unwrap();
        assert_eq!(monthly.period_of(at(0)), 0);
        assert_eq!(monthly.period_of(at(31 * 86_400)), 1); // 1970-02-01
        let never = Quota::new(1, Refill::Never).unwrap();
        assert_eq!(never.period_of(at(1_800_000_000)), 0);
        assert_eq!(never.next_refill(at(0)), None);
    }
}
