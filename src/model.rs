//! The data the whole program talks about: appointments as read from a calendar.
//!
//! Calendar backends (EWS, Graph) produce these; `rules` consumes them. Times are UTC seconds since
//! the Unix epoch so that the core never needs a clock or a time zone.

/// Seconds since 1970-01-01T00:00:00Z.
pub type Timestamp = i64;

/// Exchange's "show as" of an appointment. NoData and unknown values never get this far: the
/// parsers drop such appointments.
///
/// The declaration order is the dominance order of `docs/contract.md`, section 5.5 (lowest first),
/// so `Ord` picks the dominant appointment directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ShowAs {
    Free,
    WorkingElsewhere,
    Tentative,
    Busy,
    Oof,
}

impl ShowAs {
    /// The name an admin sees in logs and `--dry-run` output.
    pub fn name(self) -> &'static str {
        match self {
            ShowAs::Free => "Free",
            ShowAs::WorkingElsewhere => "WorkingElsewhere",
            ShowAs::Tentative => "Tentative",
            ShowAs::Busy => "Busy",
            ShowAs::Oof => "OOF",
        }
    }
}

/// One appointment of one mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appointment {
    pub start: Timestamp,
    pub end: Timestamp,
    pub show_as: ShowAs,
    /// `None` when the server did not tell (free/busy only, no details).
    pub subject: Option<String>,
    /// Private or confidential: the subject never reaches a status text.
    pub private: bool,
    pub all_day: bool,
}

/// The time window calendars are read for: `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// A STARFACE chat presence we set (`docs/contract.md`, section 5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Presence {
    Available,
    DoNotDisturb,
    ExtendedAway,
}

impl Presence {
    /// The value STARFACE's `ChangeUserPresence` block takes, and the state file stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Available => "AVAILABLE",
            Presence::DoNotDisturb => "DO_NOT_DISTURB",
            Presence::ExtendedAway => "EXTENDED_AWAY",
        }
    }

    pub fn parse(s: &str) -> Option<Presence> {
        match s {
            "AVAILABLE" => Some(Presence::Available),
            "DO_NOT_DISTURB" => Some(Presence::DoNotDisturb),
            "EXTENDED_AWAY" => Some(Presence::ExtendedAway),
            _ => None,
        }
    }
}

/// The STARFACE user id.
pub type UserId = i64;

/// One ALWAYS redirect on one of a user's own numbers, as the core sees it: what a pass reads
/// from the PBX and what the reconcile decides over. (The PBX object itself, which is written
/// back whole, is `starface::Forwarding`.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    pub id: String,
    /// The number whose calls are redirected, as the PBX wrote it.
    pub number: String,
    /// Whether that number is one of the user's internal numbers.
    pub internal: bool,
    pub enabled: bool,
    pub has_destination: bool,
}

/// `on` or `off`, as log lines and messages write a switch.
pub fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}
