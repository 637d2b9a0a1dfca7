//! The simulated mailboxes that the EWS and Graph fakes both serve.
//!
//! Times are UTC seconds. The sim has its own small date arithmetic on purpose: it must not share
//! code with the product it tests, so a bug in one cannot hide in the other.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Exchange's show-as values, including the ones the product must drop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimShowAs {
    Free,
    Tentative,
    Busy,
    Oof,
    WorkingElsewhere,
    NoData,
}

impl SimShowAs {
    /// EWS `BusyType` / `LegacyFreeBusyStatus` text.
    pub fn ews(self) -> &'static str {
        match self {
            SimShowAs::Free => "Free",
            SimShowAs::Tentative => "Tentative",
            SimShowAs::Busy => "Busy",
            SimShowAs::Oof => "OOF",
            SimShowAs::WorkingElsewhere => "WorkingElsewhere",
            SimShowAs::NoData => "NoData",
        }
    }

    /// Graph `showAs` text.
    pub fn graph(self) -> &'static str {
        match self {
            SimShowAs::Free => "free",
            SimShowAs::Tentative => "tentative",
            SimShowAs::Busy => "busy",
            SimShowAs::Oof => "oof",
            SimShowAs::WorkingElsewhere => "workingElsewhere",
            SimShowAs::NoData => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<SimShowAs> {
        Some(match s.to_ascii_lowercase().as_str() {
            "free" => SimShowAs::Free,
            "tentative" => SimShowAs::Tentative,
            "busy" => SimShowAs::Busy,
            "oof" => SimShowAs::Oof,
            "workingelsewhere" => SimShowAs::WorkingElsewhere,
            "nodata" | "unknown" => SimShowAs::NoData,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimAppointment {
    pub start: i64,
    pub end: i64,
    pub show_as: SimShowAs,
    pub subject: String,
    pub private: bool,
    pub all_day: bool,
}

impl SimAppointment {
    pub fn new(start: i64, end: i64, show_as: SimShowAs, subject: &str) -> Self {
        SimAppointment {
            start,
            end,
            show_as,
            subject: subject.to_string(),
            private: false,
            all_day: false,
        }
    }

    pub fn private(mut self) -> Self {
        self.private = true;
        self
    }

    pub fn all_day(mut self) -> Self {
        self.all_day = true;
        self
    }

    /// Overlaps `[start, end)`, as Exchange's calendar view and free/busy select appointments.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        self.start < end && self.end > start
    }
}

/// The mailboxes, keyed by lower-case e-mail address. Cloning shares them.
#[derive(Clone, Debug, Default)]
pub struct Calendars {
    inner: Arc<Mutex<BTreeMap<String, Vec<SimAppointment>>>>,
}

impl Calendars {
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates the mailbox if missing (an empty calendar is still a mailbox).
    pub fn add_mailbox(&self, email: &str) {
        self.lock().entry(email.to_ascii_lowercase()).or_default();
    }

    pub fn add(&self, email: &str, appointment: SimAppointment) {
        self.lock()
            .entry(email.to_ascii_lowercase())
            .or_default()
            .push(appointment);
    }

    pub fn clear(&self, email: &str) {
        if let Some(v) = self.lock().get_mut(&email.to_ascii_lowercase()) {
            v.clear();
        }
    }

    pub fn remove_mailbox(&self, email: &str) {
        self.lock().remove(&email.to_ascii_lowercase());
    }

    /// `None` when the mailbox does not exist; else its appointments overlapping the window,
    /// ordered by start.
    pub fn view(&self, email: &str, start: i64, end: i64) -> Option<Vec<SimAppointment>> {
        let map = self.lock();
        let all = map.get(&email.to_ascii_lowercase())?;
        let mut v: Vec<SimAppointment> = all
            .iter()
            .filter(|a| a.overlaps(start, end))
            .cloned()
            .collect();
        v.sort_by_key(|a| (a.start, a.end));
        Some(v)
    }

    pub fn mailboxes(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<SimAppointment>>> {
        // A panicking test thread must not take every later request down with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

const DAYS_BEFORE_MONTH: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days from 1970-01-01, counted year by year (slow, obvious, independent of the product's).
fn days_since_epoch(y: i64, m: i64, d: i64) -> i64 {
    let mut days = 0;
    if y >= 1970 {
        for yy in 1970..y {
            days += if is_leap(yy) { 366 } else { 365 };
        }
    } else {
        for yy in y..1970 {
            days -= if is_leap(yy) { 366 } else { 365 };
        }
    }
    days += DAYS_BEFORE_MONTH[(m - 1) as usize] + d - 1;
    if m > 2 && is_leap(y) {
        days += 1;
    }
    days
}

/// Parses `YYYY-MM-DDTHH:MM:SS` with an optional `Z`; fractional seconds and offsets are not
/// accepted (scenarios are written in UTC). Returns UTC seconds.
pub fn parse_utc(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, dd) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&dd) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    Some(days_since_epoch(y, m, dd) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Formats UTC seconds as `YYYY-MM-DDTHH:MM:SS` (no zone designator, as EWS writes times in the
/// requested zone); append `Z` where a zone is wanted.
pub fn format_utc(t: i64) -> String {
    let mut days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let mut y = 1970;
    loop {
        let len = if is_leap(y) { 366 } else { 365 };
        if days < 0 {
            y -= 1;
            days += if is_leap(y) { 366 } else { 365 };
        } else if days >= len {
            days -= len;
            y += 1;
        } else {
            break;
        }
    }
    let mut m = 12;
    while m > 1 {
        let before = DAYS_BEFORE_MONTH[m - 1] + i64::from(m > 2 && is_leap(y));
        if days >= before {
            break;
        }
        m -= 1;
    }
    let before = DAYS_BEFORE_MONTH[m - 1] + i64::from(m > 2 && is_leap(y));
    format!(
        "{y:04}-{m:02}-{:02}T{:02}:{:02}:{:02}",
        days - before + 1,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trip() {
        for s in [
            "1970-01-01T00:00:00",
            "2024-02-29T12:34:56",
            "2026-12-31T23:59:59",
            "2027-03-01T00:00:00",
            "1969-12-31T23:59:59",
        ] {
            assert_eq!(format_utc(parse_utc(s).unwrap()), s);
        }
        assert_eq!(parse_utc("2026-12-01T09:30:00Z"), Some(1_796_117_400));
        assert_eq!(parse_utc("2026-13-01T09:30:00Z"), None);
    }

    #[test]
    fn view_filters_and_sorts() {
        let c = Calendars::new();
        c.add("A@x", SimAppointment::new(200, 300, SimShowAs::Busy, "b"));
        c.add("a@x", SimAppointment::new(100, 200, SimShowAs::Free, "a"));
        c.add("a@x", SimAppointment::new(400, 500, SimShowAs::Free, "c"));
        let v = c.view("a@X", 150, 400).unwrap();
        assert_eq!(
            v.iter().map(|a| a.subject.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(c.view("b@x", 0, 1).is_none());
    }
}
