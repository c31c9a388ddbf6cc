//! What the settings page shows: the askama templates under `templates/keygate/` and the
//! rows they list. A row holds a key's record, never its secret; the one view that holds
//! a plaintext key, [`Shown`], is rendered once, straight from the created key.

use std::time::{SystemTime, UNIX_EPOCH};

use askama::Template;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::record::KeyRecord;

/// The keys of a person, or the tokens of a space, with the form that adds one.
#[derive(Template)]
#[template(path = "keygate/keys.html")]
pub(super) struct Keys<'a> {
    pub(super) base: &'a str,
    pub(super) heading: &'a str,
    pub(super) intro: &'a str,
    pub(super) add_label: &'a str,
    pub(super) list_heading: &'a str,
    pub(super) empty: &'a str,
    pub(super) notice: Option<&'a str>,
    pub(super) open_form: bool,
    pub(super) create_action: String,
    pub(super) csrf: &'a str,
    /// The space every key made here is bound to (the space variant).
    pub(super) fixed_space: Option<&'a str>,
    /// Spaces the form offers to bind a key to.
    pub(super) spaces: Vec<&'a str>,
    /// Scopes the form offers.
    pub(super) scopes: Vec<&'a str>,
    pub(super) rows: Vec<Row>,
    /// Links to the token pages of the spaces the actor administers.
    pub(super) admin_spaces: Vec<SpaceLink>,
    pub(super) back: Option<String>,
}

/// A key shown once, after it was created or regenerated.
#[derive(Template)]
#[template(path = "keygate/shown.html")]
pub(super) struct Shown<'a> {
    pub(super) base: &'a str,
    pub(super) heading: &'a str,
    pub(super) name: &'a str,
    pub(super) key: &'a str,
    pub(super) note: Option<&'a str>,
    pub(super) back: String,
}

/// "Are you sure?" before regenerating or revoking.
#[derive(Template)]
#[template(path = "keygate/confirm.html")]
pub(super) struct Confirm<'a> {
    pub(super) base: &'a str,
    pub(super) question: String,
    pub(super) consequence: &'a str,
    pub(super) verb: &'a str,
    pub(super) action: String,
    pub(super) csrf: &'a str,
    pub(super) back: String,
}

/// A refusal or failure, as a page.
#[derive(Template)]
#[template(path = "keygate/error.html")]
pub(super) struct ErrorPage<'a> {
    pub(super) base: &'a str,
    pub(super) title: &'a str,
    pub(super) detail: &'a str,
    pub(super) back: String,
}

/// One key in the table.
pub(super) struct Row {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) preview: String,
    pub(super) space: Option<String>,
    pub(super) scopes: Vec<String>,
    pub(super) created: String,
    pub(super) last_used: String,
    pub(super) uses: u64,
    pub(super) state: &'static str,
    pub(super) expires: Option<String>,
    pub(super) can_regenerate: bool,
    pub(super) can_revoke: bool,
}

impl Row {
    /// The row of `record`, its state judged at `now`; only an `owned` key can be
    /// regenerated (a new secret for someone else's key would let its admin act as them).
    pub(super) fn new(record: &KeyRecord, now: SystemTime, owned: bool) -> Self {
        let identity = &record.identity;
        let state = state_of(record, now);
        Self {
            id: identity.key_id().as_str().to_owned(),
            name: identity.name().to_owned(),
            preview: record.preview.clone(),
            space: identity.space().map(str::to_owned),
            scopes: identity.scopes().iter().map(str::to_owned).collect(),
            created: when(record.created_at),
            last_used: record.last_used_at.map_or_else(|| "never".to_owned(), when),
            uses: record.use_count,
            state,
            expires: match (record.revoked_at, record.expires_at) {
                (None, Some(at)) if at > now => Some(format!("expires {}", when(at))),
                _ => None,
            },
            can_regenerate: owned && matches!(state, "active" | "paused"),
            can_revoke: state != "revoked",
        }
    }
}

/// A key's state, in the words of the page.
pub(super) fn state_of(record: &KeyRecord, now: SystemTime) -> &'static str {
    if record.revoked_at.is_some() {
        "revoked"
    } else if record.expires_at.is_some_and(|at| at <= now) {
        "expired"
    } else if record.disabled {
        "paused"
    } else {
        "active"
    }
}

/// A link to a space's token page.
pub(super) struct SpaceLink {
    pub(super) name: String,
    /// The name as one path segment.
    pub(super) path: String,
}

impl SpaceLink {
    pub(super) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            path: segment(name),
        }
    }
}

/// `text` as one URL path segment.
pub(super) fn segment(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

/// `at` as `2026-12-01 10:52 UTC`: one format for every reader, not the server's locale.
pub(super) fn when(at: SystemTime) -> String {
    let seconds = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3_600,
        rest % 3_600 / 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01: counted in 400-year eras, which
/// repeat exactly, with the year starting in March so that leap days fall at its end.
fn civil(days: u64) -> (u64, u64, u64) {
    let days = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = days / 146_097;
    let of_era = days % 146_097;
    let year_of_era = (of_era - of_era / 1_460 + of_era / 36_524 - of_era / 146_096) / 365;
    let day_of_year = of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(when(at(0)), "1970-01-01 00:00 UTC");
        assert_eq!(when(at(951_782_400)), "2000-02-29 00:00 UTC");
        assert_eq!(when(at(1_796_122_320)), "2026-12-01 10:52 UTC");
        assert_eq!(when(at(4_107_542_399)), "2100-02-28 23:59 UTC");
    }

    #[test]
    fn space_names_become_one_path_segment() {
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}
