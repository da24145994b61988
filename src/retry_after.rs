//! What the edge accepts from an upstream `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an
//! HTTP-date, read into a number of seconds that never exceeds the configured bound.
//!
//! The value decides how long the shared request budget stays shut for every worker (and shared
//! data outlives a VM reload), so an upstream that answers `Retry-After: 99999999999`, a date in
//! the year 9999 or garbage must not lock provisioning: every form ends up in `0..=max`.

/// How long to wait when the upstream says nothing usable: Omni's rate-limit window.
pub const DEFAULT_RETRY_AFTER_S: u64 = 60;

/// The default bound on any wait the upstream asks for.
pub const DEFAULT_MAX_RETRY_AFTER_S: u64 = 3600;

/// Seconds to wait, from the upstream's `Retry-After` (`None` when it sent none), at most `max_s`.
/// `now_s` is the wall clock in seconds since the Unix epoch, needed for the HTTP-date form (a
/// date with no clock to compare it with counts as unusable).
pub fn retry_after_seconds(value: Option<&str>, now_s: Option<u64>, max_s: u64) -> u64 {
    let Some(value) = value.map(str::trim) else {
        return DEFAULT_RETRY_AFTER_S.min(max_s);
    };
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still "a very long time": the bound, not the default.
        return value.parse::<u64>().unwrap_or(u64::MAX).min(max_s);
    }
    match (http_date(value), now_s) {
        (Some(at), Some(now)) => at.saturating_sub(now).min(max_s),
        _ => DEFAULT_RETRY_AFTER_S.min(max_s),
    }
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// An HTTP-date in any of RFC 9110 §5.6.7's three forms, as seconds since the Unix epoch:
/// `Sun, 06 Nov 1994 08:49:37 GMT` (IMF-fixdate), `Sunday, 06-Nov-94 08:49:37 GMT` (RFC 850),
/// `Sun Nov  6 08:49:37 1994` (asctime).
fn http_date(text: &str) -> Option<u64> {
    if text.len() > 64 {
        return None;
    }
    let mut tokens = text.split([' ', ',', '-']).filter(|t| !t.is_empty());
    let weekday = tokens.next()?;
    if !weekday.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let rest: Vec<&str> = tokens.collect();
    let month_of = |t: &str| MONTHS.iter().position(|m| *m == t).map(|i| i as u64 + 1);
    let (day, month, year, time) = match rest.as_slice() {
        [day, month, year, time, "GMT"] => (*day, month_of(month)?, *year, *time),
        [month, day, time, year] => (*day, month_of(month)?, *year, *time),
        _ => return None,
    };
    let number = |t: &str, max_len: usize| {
        (!t.is_empty() && t.len() <= max_len && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse::<u64>().ok())?
    };
    let day = number(day, 2).filter(|d| (1..=31).contains(d))?;
    let year = match year.len() {
        // RFC 850's two-digit year (RFC 9110 §5.6.7: read it as the nearest past century's).
        2 => number(year, 2).map(|y| if y < 70 { 2000 + y } else { 1900 + y })?,
        4 => number(year, 4).filter(|y| *y >= 1970)?,
        _ => return None,
    };
    let mut clock = time.split(':');
    let hour = number(clock.next()?, 2).filter(|h| *h < 24)?;
    let minute = number(clock.next()?, 2).filter(|m| *m < 60)?;
    let second = number(clock.next()?, 2).filter(|s| *s <= 60)?;
    if clock.next().is_some() {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days from 1970-01-01 to a Gregorian date on or after it (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_index = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era).saturating_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// 1994-11-06T08:49:37Z, RFC 9110's example date.
    const EXAMPLE: u64 = 784_111_777;

    #[test]
    fn the_three_http_date_forms_read_the_same() {
        for form in ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            assert_eq!(http_date(form), Some(EXAMPLE), "{form}");
        }
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(http_date("Fri, 31 Dec 9999 23:59:59 GMT"), Some(253_402_300_799));
    }

    #[test]
    fn every_form_is_bounded() {
        let now = Some(EXAMPLE);
        let wait = |value: &str| retry_after_seconds(Some(value), now, 3600);
        assert_eq!(wait("120"), 120);
        assert_eq!(wait(" 0 "), 0);
        assert_eq!(wait("99999999999"), 3600);
        assert_eq!(wait("99999999999999999999999999999999"), 3600, "beyond u64 is still long");
        assert_eq!(wait("Sun, 06 Nov 1994 08:51:37 GMT"), 120, "a date two minutes ahead");
        assert_eq!(wait("Sun, 06 Nov 1994 08:00:00 GMT"), 0, "a date in the past");
        assert_eq!(wait("Fri, 31 Dec 9999 23:59:59 GMT"), 3600);
        for garbage in
            ["-5", "1.5", "soon", "", "0x10", "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:00:00 GMT"]
        {
            assert_eq!(wait(garbage), DEFAULT_RETRY_AFTER_S, "{garbage:?}");
        }
        assert_eq!(retry_after_seconds(None, now, 3600), 60);
        assert_eq!(retry_after_seconds(None, now, 5), 5, "the default is bounded too");
        assert_eq!(retry_after_seconds(Some("Sun, 06 Nov 1994 08:51:37 GMT"), None, 3600), 60, "no clock");
        assert_eq!(retry_after_seconds(Some(&"9".repeat(10_000)), now, 7), 7);
    }
}
