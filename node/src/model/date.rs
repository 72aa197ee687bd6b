//! Dates: exact (`YYYY-MM-DD`) and partial (`YYYY`, `YYYY-MM`), as case files
//! often know only the year or the month.

use std::fmt;

/// A calendar date known to the year, the month or the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartialDate {
    /// Year (1900 to 2100).
    pub year: i32,
    /// Month 1 to 12, if known.
    pub month: Option<u8>,
    /// Day of the month, if known (only with a month).
    pub day: Option<u8>,
}

const EXPECTED: &str = "expected YYYY, YYYY-MM or YYYY-MM-DD";

impl PartialDate {
    /// Parses `YYYY`, `YYYY-MM` or `YYYY-MM-DD`; the day must exist in that month.
    pub fn parse(s: &str) -> Result<PartialDate, String> {
        let bad = || format!("{s:?} is not a date; {EXPECTED}");
        let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
        let mut parts = s.split('-');
        let (y, m, d) = (parts.next(), parts.next(), parts.next());
        if parts.next().is_some() {
            return Err(bad());
        }
        let y = y.filter(|y| digits(y, 4)).ok_or_else(bad)?;
        let year: i32 = y.parse().map_err(|_| bad())?;
        if !(1900..=2100).contains(&year) {
            return Err(format!("{s:?}: the year must be between 1900 and 2100"));
        }
        let month = match m {
            None => None,
            Some(m) if digits(m, 2) => Some(m.parse::<u8>().map_err(|_| bad())?),
            Some(_) => return Err(bad()),
        };
        let day = match d {
            None => None,
            Some(d) if digits(d, 2) => Some(d.parse::<u8>().map_err(|_| bad())?),
            Some(_) => return Err(bad()),
        };
        if let Some(m) = month {
            let month =
                time::Month::try_from(m).map_err(|_| format!("{s:?}: there is no month {m:02}"))?;
            if let Some(d) = day {
                time::Date::from_calendar_date(year, month, d)
                    .map_err(|_| format!("{s:?}: there is no day {d:02} in that month"))?;
            }
        }
        Ok(PartialDate { year, month, day })
    }

    /// Whether the day is known.
    pub fn is_exact(&self) -> bool {
        self.day.is_some()
    }

    /// The earliest calendar day this date can mean.
    pub fn earliest(&self) -> Option<time::Date> {
        let month = time::Month::try_from(self.month.unwrap_or(1)).ok()?;
        time::Date::from_calendar_date(self.year, month, self.day.unwrap_or(1)).ok()
    }

    /// Whether every day this date can mean lies after `today` (a future date).
    pub fn is_after(&self, today: time::Date) -> bool {
        self.earliest().is_some_and(|d| d > today)
    }

    /// Completed years at `on` for a birth date (the youngest possible age when partial).
    pub fn age_on(&self, on: time::Date) -> Option<i32> {
        let born = self.earliest()?;
        let mut age = on.year() - born.year();
        if (on.month() as u8, on.day()) < (born.month() as u8, born.day()) {
            age -= 1;
        }
        // With only a year or a month known, the person may be up to a year older.
        Some(age.max(0))
    }
}

impl fmt::Display for PartialDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.year)?;
        if let Some(m) = self.month {
            write!(f, "-{m:02}")?;
        }
        if let Some(d) = self.day {
            write!(f, "-{d:02}")?;
        }
        Ok(())
    }
}

/// Today's date (UTC), the bound for "future" dates.
pub fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_dates_parse_and_print() {
        for s in ["1998", "1998-04", "1998-04-17", "2000-02-29"] {
            assert_eq!(PartialDate::parse(s).unwrap().to_string(), s);
        }
        let e = |s: &str| PartialDate::parse(s).unwrap_err();
        assert_eq!(
            e("17/04/1998"),
            "\"17/04/1998\" is not a date; expected YYYY, YYYY-MM or YYYY-MM-DD"
        );
        assert_eq!(e("1998-13"), "\"1998-13\": there is no month 13");
        assert_eq!(
            e("1999-02-29"),
            "\"1999-02-29\": there is no day 29 in that month"
        );
        assert_eq!(
            e("1850"),
            "\"1850\": the year must be between 1900 and 2100"
        );
        for s in [
            "",
            "98",
            "1998-4",
            "1998-04-1",
            "1998-04-17-",
            "+998",
            "1998--01",
            "１９９８",
        ] {
            assert!(PartialDate::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn future_and_age() {
        let today = time::macros::date!(2026 - 11 - 24);
        assert!(PartialDate::parse("2027").unwrap().is_after(today));
        assert!(PartialDate::parse("2026-12").unwrap().is_after(today));
        assert!(!PartialDate::parse("2026").unwrap().is_after(today));
        assert!(!PartialDate::parse("2026-11-24").unwrap().is_after(today));
        assert_eq!(
            PartialDate::parse("2000-11-25").unwrap().age_on(today),
            Some(25)
        );
        assert_eq!(
            PartialDate::parse("2000-11-24").unwrap().age_on(today),
            Some(26)
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,12}") {
            let _ = PartialDate::parse(&s);
        }

        #[test]
        fn valid_dates_round_trip(y in 1900i32..=2100, m in 1u8..=12, d in 1u8..=28) {
            for s in [format!("{y:04}"), format!("{y:04}-{m:02}"), format!("{y:04}-{m:02}-{d:02}")] {
                proptest::prop_assert_eq!(PartialDate::parse(&s).unwrap().to_string(), s);
            }
        }
    }
}
