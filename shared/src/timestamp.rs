//! Dates and RFC 3339 timestamps from the system clock, through jiff (already in the tree by way
//! of k8s-openapi): the inventory's sync time, certificate validity and the test API server's
//! creation times.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// Today's date in UTC.
pub fn today() -> Date {
    Timestamp::now().to_zoned(TimeZone::UTC).date()
}

/// Now as RFC 3339 UTC with second precision (`2026-11-26T17:00:00Z`), as Kubernetes writes it:
/// `metav1.Time` drops fractions, and a stamp we write must compare equal to one read back.
pub fn now_rfc3339() -> String {
    rfc3339_seconds(Timestamp::now())
}

/// `at` as RFC 3339 UTC, truncated to whole seconds.
pub fn rfc3339_seconds(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rfc3339_has_whole_seconds_in_utc() {
        let at: Timestamp = "2000-02-29T23:59:59.987654321+02:00".parse().unwrap();
        assert_eq!(rfc3339_seconds(at), "2000-02-29T21:59:59Z");
        let epoch = Timestamp::UNIX_EPOCH;
        assert_eq!(rfc3339_seconds(epoch), "1970-01-01T00:00:00Z");
        let before: Timestamp = "1969-12-31T23:59:59.5Z".parse().unwrap();
        assert_eq!(rfc3339_seconds(before), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn now_is_today() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        let date = today();
        // Around midnight the two reads may straddle a day; the later one wins.
        let (now_date, today_now) = (now[..10].to_owned(), today().to_string());
        assert!(
            now_date == date.to_string() || now_date == today_now,
            "{now} is not {date}"
        );
    }
}
