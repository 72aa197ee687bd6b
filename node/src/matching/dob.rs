//! Dates of birth known to the year, the month or the day, and their
//! tolerant comparison: day/month swaps, one-digit slips, a year off by one
//! and partial dates.

/// A date of birth known to the year, the month or the day. Kept separate
/// from the data model's date so the matcher stays a leaf module; build one
/// with [`Dob::new`] or [`Dob::parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dob {
    year: u16,
    month: Option<u8>,
    day: Option<u8>,
}

impl Dob {
    /// A date from its parts: year 1800 to 2200, month 1 to 12, day 1 to 31
    /// (only with a month). Calendar validity is the data model's job; here
    /// only the ranges matter.
    pub fn new(year: u16, month: Option<u8>, day: Option<u8>) -> Option<Dob> {
        let ok = (1800..=2200).contains(&year)
            && month.is_none_or(|m| (1..=12).contains(&m))
            && day.is_none_or(|d| (1..=31).contains(&d) && month.is_some());
        ok.then_some(Dob { year, month, day })
    }

    /// Parses `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (also `YYYYMMDD`).
    pub fn parse(s: &str) -> Option<Dob> {
        let s = s.trim();
        let num = |p: &str, n: usize| {
            (p.len() == n && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse::<u16>().ok())
                .flatten()
        };
        if s.len() == 8 && !s.contains('-') {
            let (y, md) = s.split_at(4);
            let (m, d) = md.split_at(2);
            return Dob::new(num(y, 4)?, Some(num(m, 2)? as u8), Some(num(d, 2)? as u8));
        }
        let mut parts = s.split('-');
        let year = num(parts.next()?, 4)?;
        let month = match parts.next() {
            Some(m) => Some(u8::try_from(num(m, 2)?).ok()?),
            None => None,
        };
        let day = match parts.next() {
            Some(d) => Some(u8::try_from(num(d, 2)?).ok()?),
            None => None,
        };
        if parts.next().is_some() {
            return None;
        }
        Dob::new(year, month, day)
    }

    /// The year.
    pub fn year(&self) -> u16 {
        self.year
    }

    /// The month, if known.
    pub fn month(&self) -> Option<u8> {
        self.month
    }

    /// The day, if known.
    pub fn day(&self) -> Option<u8> {
        self.day
    }

    /// Whether the day is known.
    pub fn is_full(&self) -> bool {
        self.day.is_some()
    }
}

/// How two dates of birth agree, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DobAgreement {
    /// Both full and equal.
    Exact,
    /// Equal as far as the less precise one goes, to the month.
    SameMonth,
    /// Day and month swapped (`03-07` / `07-03`).
    DayMonthSwapped,
    /// Same year and month, days one keystroke apart (`12`/`13`, `12`/`21`),
    /// or same year and day with months one keystroke apart.
    DigitSlip,
    /// Equal as far as the less precise one goes, to the year only.
    SameYear,
    /// Month and day equal (or unknown), years one apart.
    YearOffByOne,
    /// At least one date unknown.
    Missing,
    /// Incompatible.
    Conflict,
}

impl DobAgreement {
    /// A reason code for [`Match::reasons`](super::Match::reasons).
    pub fn reason(self) -> &'static str {
        match self {
            DobAgreement::Exact => "dob_exact",
            DobAgreement::SameMonth => "dob_partial_same_month",
            DobAgreement::DayMonthSwapped => "dob_day_month_swapped",
            DobAgreement::DigitSlip => "dob_digit_slip",
            DobAgreement::SameYear => "dob_partial_same_year",
            DobAgreement::YearOffByOne => "dob_year_off_by_one",
            DobAgreement::Missing => "dob_missing",
            DobAgreement::Conflict => "dob_conflict",
        }
    }
}

/// Whether two one- or two-digit numbers are one keystroke apart as written
/// with two digits: one digit different, or the two digits transposed.
fn one_slip(a: u8, b: u8) -> bool {
    let (a1, a2, b1, b2) = (a / 10, a % 10, b / 10, b % 10);
    (a1 == b1) != (a2 == b2) || (a1 == b2 && a2 == b1 && a != b)
}

/// Compares two dates of birth.
pub fn compare(a: Option<Dob>, b: Option<Dob>) -> DobAgreement {
    let (Some(a), Some(b)) = (a, b) else {
        return DobAgreement::Missing;
    };
    let months_agree = match (a.month, b.month) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    let days_agree = match (a.day, b.day) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    if a.year == b.year {
        if months_agree && days_agree {
            return match (a.day, b.day, a.month, b.month) {
                (Some(_), Some(_), _, _) => DobAgreement::Exact,
                (_, _, Some(_), Some(_)) => DobAgreement::SameMonth,
                _ => DobAgreement::SameYear,
            };
        }
        if let (Some(am), Some(ad), Some(bm), Some(bd)) = (a.month, a.day, b.month, b.day) {
            if am == bd && ad == bm {
                return DobAgreement::DayMonthSwapped;
            }
            if (am == bm && one_slip(ad, bd)) || (ad == bd && one_slip(am, bm)) {
                return DobAgreement::DigitSlip;
            }
        }
        return DobAgreement::Conflict;
    }
    if a.year.abs_diff(b.year) == 1 && months_agree && days_agree {
        return DobAgreement::YearOffByOne;
    }
    DobAgreement::Conflict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Option<Dob> {
        let v = Dob::parse(s);
        assert!(v.is_some(), "{s}");
        v
    }

    #[test]
    fn parses() {
        assert_eq!(Dob::parse("1994-03-07"), Dob::new(1994, Some(3), Some(7)));
        assert_eq!(Dob::parse("19940307"), Dob::new(1994, Some(3), Some(7)));
        assert_eq!(Dob::parse("1994-03"), Dob::new(1994, Some(3), None));
        assert_eq!(Dob::parse("1994"), Dob::new(1994, None, None));
        for bad in [
            "",
            "94",
            "1994-13",
            "1994-3-07",
            "1994-03-32",
            "1994-03-07-1",
            "abcd",
        ] {
            assert_eq!(Dob::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn compares() {
        use DobAgreement::*;
        for (a, b, want) in [
            ("1994-03-07", "1994-03-07", Exact),
            ("1994-03-07", "1994-07-03", DayMonthSwapped),
            ("1994-03-12", "1994-03-21", DigitSlip),
            ("1994-03-12", "1994-03-13", DigitSlip),
            ("1994-03-12", "1994-08-12", DigitSlip),
            ("1994-03-12", "1994-03-25", Conflict),
            ("1994-03-07", "1994-03", SameMonth),
            ("1994-03-07", "1994", SameYear),
            ("1994-03-07", "1995-03-07", YearOffByOne),
            ("1994", "1995", YearOffByOne),
            ("1994-03-07", "1996-03-07", Conflict),
            ("1994-03", "1994-04", Conflict),
            ("1994-05-06", "1994-11-23", Conflict),
        ] {
            assert_eq!(compare(d(a), d(b)), want, "{a} {b}");
            assert_eq!(compare(d(b), d(a)), want, "{b} {a}");
        }
        assert_eq!(compare(None, d("1994")), Missing);
    }
}
