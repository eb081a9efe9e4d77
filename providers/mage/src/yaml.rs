//! YAML in and out (serde-saphyr), and the datetimes Mage's triggers carry.
//!
//! Mage reads its files with PyYAML (YAML 1.1). serde-saphyr's default output quotes every
//! string that a YAML 1.1 reader could take for something else (`yes`, `0123`, `1e3`,
//! `2026-01-01`, `null`, …), so strings stay strings. Block scalars (`|`, `>`) are turned off:
//! multi-line strings are written double-quoted with escapes, which every reader agrees on.
//!
//! Datetimes are the one place where Mage needs a YAML *timestamp* rather than a string
//! (`start_time`, `last_enabled_at` end up in `DateTime` columns). serde has no timestamp type,
//! so the renderer writes a unique placeholder token and swaps it for the plain timestamp
//! (`2026-11-29 05:00:00+00:00`, the way `yaml.safe_dump` writes an aware datetime) afterwards;
//! see [`Timestamps`].

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, SecondsFormat, TimeZone, Utc};
use serde::Serialize;
use serde_json::Value;

/// Renders `value` as YAML the way every file of this provider is rendered.
pub(crate) fn to_yaml<T: Serialize>(value: &T) -> Result<String, String> {
    let options = serde_saphyr::ser_options! {
        prefer_block_scalars: false,
    };
    serde_saphyr::to_string_with_options(value, options).map_err(|e| e.to_string())
}

/// Parses YAML text into JSON. An empty document is `null`.
pub(crate) fn from_yaml(text: &str) -> Result<Value, String> {
    serde_saphyr::from_str::<Value>(text).map_err(|e| first_line(&e.to_string()))
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim().to_string()
}

/// Placeholders for timestamps in a document being rendered.
pub(crate) struct Timestamps {
    nonce: String,
    values: Vec<String>,
}

impl Timestamps {
    pub(crate) fn new() -> Timestamps {
        Timestamps {
            nonce: uuid::Uuid::new_v4().simple().to_string(),
            values: Vec::new(),
        }
    }

    /// A token to serialize in place of `at`; [`Timestamps::fill`] replaces it.
    pub(crate) fn slot(&mut self, at: &DateTime<Utc>) -> String {
        let token = self.token(self.values.len());
        self.values.push(yaml_timestamp(at));
        token
    }

    fn token(&self, index: usize) -> String {
        format!("weirts{}x{index}", self.nonce)
    }

    /// Replaces every token in `rendered` by its timestamp, checking that each token was
    /// written exactly once and as a plain scalar.
    pub(crate) fn fill(self, rendered: String) -> Result<String, String> {
        let mut out = rendered;
        for (index, value) in self.values.iter().enumerate() {
            let token = self.token(index);
            // The tokens are a prefix of one another (x1, x10): match the whole scalar.
            let needle = format!(" {token}\n");
            if out.matches(&needle).count() != 1 {
                return Err(format!(
                    "internal error: the timestamp placeholder {index} was not rendered as a plain scalar"
                ));
            }
            out = out.replacen(&needle, &format!(" {value}\n"), 1);
        }
        if out.contains(&format!("weirts{}", self.nonce)) {
            return Err("internal error: a timestamp placeholder was left in the YAML".to_string());
        }
        Ok(out)
    }
}

/// `2026-11-29 05:00:00+00:00` (fractional seconds only when there are some).
pub(crate) fn yaml_timestamp(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.f+00:00").to_string()
}

/// The canonical attribute form: RFC 3339 in UTC, `2026-11-29T05:00:00Z`.
pub(crate) fn canonical_timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses the datetimes found in attributes and in Mage's files: RFC 3339 / ISO 8601 with `T`
/// or a space, with `Z`, `±HH:MM`, `±HHMM`, `±HH` or no offset (naive means UTC, as in
/// Mage), optional fractional seconds, or a bare date (midnight UTC). This is the set PyYAML's
/// timestamp resolver accepts.
pub(crate) fn parse_timestamp(raw: &str) -> Option<DateTime<Utc>> {
    let s = raw.trim();
    let date_len = s
        .char_indices()
        .find(|(_, c)| matches!(c, 'T' | 't' | ' ' | '\t'))
        .map_or(s.len(), |(i, _)| i);
    let (date, rest) = s.split_at_checked(date_len)?;
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let rest = rest.trim_start_matches(['T', 't', ' ', '\t']);
    if rest.is_empty() {
        return Some(Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0)?));
    }
    let tz_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (time, tz) = rest.split_at_checked(tz_at)?;
    let time = NaiveTime::parse_from_str(time.trim(), "%H:%M:%S%.f").ok()?;
    let local = date.and_time(time);
    let offset = parse_offset(tz.trim())?;
    let at = offset.from_local_datetime(&local).single()?;
    Some(at.with_timezone(&Utc))
}

fn parse_offset(tz: &str) -> Option<FixedOffset> {
    if tz.is_empty() || tz == "Z" || tz == "z" {
        return FixedOffset::east_opt(0);
    }
    let (sign, digits) = if let Some(digits) = tz.strip_prefix('+') {
        (1, digits)
    } else if let Some(digits) = tz.strip_prefix('-') {
        (-1, digits)
    } else {
        return None;
    };
    // Only ASCII from here on, so byte positions are character boundaries.
    if !digits.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        return None;
    }
    let (hours, minutes) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() > 2 => digits.split_at(2),
        None => (digits, "0"),
    };
    if hours.is_empty() || hours.len() > 2 || minutes.is_empty() || minutes.len() > 2 {
        return None;
    }
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    if minutes >= 60 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// Canonicalizes a datetime value read from a file or given in attributes: a string that
/// parses becomes the canonical RFC 3339 form; anything else is kept as it is (so that a
/// difference shows up in the plan).
pub(crate) fn canonical_timestamp_value(value: &Value) -> Value {
    match value {
        Value::String(s) => match parse_timestamp(s) {
            Some(at) => Value::String(canonical_timestamp(&at)),
            None => value.clone(),
        },
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> Option<String> {
        parse_timestamp(s).map(|at| canonical_timestamp(&at))
    }

    #[test]
    fn parses_the_forms_mage_and_pyyaml_write() {
        let want = Some("2026-11-29T05:00:00Z".to_string());
        assert_eq!(canon("2026-11-29T05:00:00Z"), want);
        assert_eq!(canon("2026-11-29 05:00:00+00:00"), want);
        assert_eq!(canon("2026-11-29 05:00:00"), want);
        assert_eq!(canon("2026-11-29t05:00:00z"), want);
        assert_eq!(canon("2026-11-29 06:00:00+01:00"), want);
        assert_eq!(canon("2026-11-29 00:00:00 -5"), want);
        assert_eq!(canon("2026-11-29T07:30:00+0230"), want);
        assert_eq!(
            canon("2026-11-29 05:00:01.123456+00:00"),
            Some("2026-11-29T05:00:01.123456Z".to_string())
        );
        assert_eq!(
            canon("2026-11-29"),
            Some("2026-11-29T00:00:00Z".to_string())
        );
        assert_eq!(
            canon("2026-1-2 3:04:05"),
            Some("2026-01-02T03:04:05Z".to_string())
        );
        assert_eq!(canon("tomorrow"), None);
        assert_eq!(canon("2026-11-29 25:00:00"), None);
        assert_eq!(canon("2026-11-29 05:00:00+0x"), None);
        assert_eq!(canon(""), None);
        assert_eq!(canon("2026-11-29 05:00:00+1é"), None);
        assert_eq!(canon("2026-11-29 05:00:00+é1"), None);
        assert_eq!(canon("é"), None);
        assert_eq!(canon("2026-11-29é05:00:00"), None);
        assert_eq!(
            canon("2026-11-29 05:00:00 +05:00"),
            Some("2026-11-29T00:00:00Z".to_string())
        );
    }

    #[test]
    fn renders_like_safe_dump() {
        let at = parse_timestamp("2026-11-29T05:00:00Z");
        assert_eq!(
            at.map(|a| yaml_timestamp(&a)),
            Some("2026-11-29 05:00:00+00:00".to_string())
        );
        let at = parse_timestamp("2026-11-29T05:00:00.5Z");
        assert_eq!(
            at.map(|a| yaml_timestamp(&a)),
            Some("2026-11-29 05:00:00.500+00:00".to_string())
        );
    }

    #[test]
    fn placeholders_become_plain_timestamps() {
        #[derive(Serialize)]
        struct Doc {
            a: String,
            b: Vec<String>,
        }
        let mut ts = Timestamps::new();
        let at = parse_timestamp("2026-11-29T05:00:00Z");
        let Some(at) = at else {
            panic!("test timestamp did not parse");
        };
        let doc = Doc {
            a: ts.slot(&at),
            b: vec![ts.slot(&at)],
        };
        let yaml = to_yaml(&doc).and_then(|text| ts.fill(text));
        assert_eq!(
            yaml,
            Ok("a: 2026-11-29 05:00:00+00:00\nb:\n- 2026-11-29 05:00:00+00:00\n".to_string())
        );
    }
}
