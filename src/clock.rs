//! The one clock every written timestamp comes from (SPEC §1, "Time and determinism").
//!
//! With `SOURCE_DATE_EPOCH` set, the clock is frozen at that instant and measured
//! durations are left out of the outputs, so two builds of the same inputs are
//! byte-identical.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    fixed: Option<OffsetDateTime>,
}

impl Clock {
    /// Reads `SOURCE_DATE_EPOCH` from the environment. An unparsable value is an error
    /// so that a typo never silently turns determinism off.
    pub fn from_env() -> Result<Clock, String> {
        match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) if !v.trim().is_empty() => {
                let secs: i64 = v.trim().parse().map_err(|_| {
                    format!("SOURCE_DATE_EPOCH={v:?} is not a whole number of seconds since 1970")
                })?;
                let t = OffsetDateTime::from_unix_timestamp(secs)
                    .map_err(|_| format!("SOURCE_DATE_EPOCH={v:?} is out of range"))?;
                Ok(Clock { fixed: Some(t) })
            }
            _ => Ok(Clock { fixed: None }),
        }
    }

    pub fn fixed_at(t: OffsetDateTime) -> Clock {
        Clock { fixed: Some(t) }
    }

    /// True when `SOURCE_DATE_EPOCH` froze the clock: durations must not be written.
    pub fn is_fixed(&self) -> bool {
        self.fixed.is_some()
    }

    pub fn now(&self) -> OffsetDateTime {
        self.fixed.unwrap_or_else(OffsetDateTime::now_utc)
    }

    /// `now()` as RFC 3339 in UTC, whole seconds.
    pub fn now_rfc3339(&self) -> String {
        rfc3339(self.now())
    }
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t
        .replace_nanosecond(0)
        .unwrap_or(t)
        .to_offset(time::UtcOffset::UTC);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}
