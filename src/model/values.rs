//! Checks and parsers for the value formats of the language: durations, memory sizes, cron
//! expressions, Google names (projects, buckets, labels, regions, zones), timestamps and
//! version constraints. Each returns a message that says what would be right.

/// `"90s"`, `"10m"`, `"1h30m"`, `"7d"` → seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let help = "a duration is one or more `<integer><unit>` groups with units `s`, `m`, `h`, `d`, e.g. \"90s\", \"10m\", \"1h30m\"";
    if s.is_empty() {
        return Err(format!("empty duration; {help}"));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(format!("`{s}` is not a duration; {help}")),
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("`{s}` is not a duration; {help}"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("`{s}` is too long a duration"))?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(format!("`{s}` has a number without a unit; {help}"));
    }
    Ok(total)
}

/// Kubernetes memory quantities (`"512Mi"`, `"4Gi"`, `"1G"`) → MiB.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let help = "write a memory size like \"512Mi\" or \"4Gi\"";
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a memory size; {help}"))?;
    let bytes = match unit {
        "Ki" => n * 1024.0,
        "Mi" => n * 1024.0 * 1024.0,
        "Gi" => n * 1024.0 * 1024.0 * 1024.0,
        "Ti" => n * 1024f64.powi(4),
        "k" | "K" => n * 1e3,
        "M" => n * 1e6,
        "G" => n * 1e9,
        "T" => n * 1e12,
        "" => n,
        _ if unit.starts_with(char::is_whitespace) => {
            return Err(format!(
                "`{s}` is not a memory size (no space between the number and the unit); {help}"
            ));
        }
        _ => {
            return Err(format!(
                "`{s}` is not a memory size: unknown unit `{unit}`; {help}"
            ));
        }
    };
    Ok((bytes / (1024.0 * 1024.0)).round() as u64)
}

/// Formats MiB back the way users write it.
pub fn format_memory(mib: u64) -> String {
    if mib.is_multiple_of(1024) {
        format!("{}Gi", mib / 1024)
    } else {
        format!("{mib}Mi")
    }
}

/// Cloud Run's CPU → allowed memory range (MiB); docs/language.md §10 has the table.
pub const CLOUD_RUN_LIMITS: &[(u32, u64, u64)] = &[
    (1, 512, 4 * 1024),
    (2, 512, 8 * 1024),
    (4, 2 * 1024, 16 * 1024),
    (6, 4 * 1024, 24 * 1024),
    (8, 4 * 1024, 32 * 1024),
];

/// Checks a CPU/memory pair against Cloud Run's table; the message names the smallest CPU that
/// allows the memory asked for.
pub fn check_cloud_run_pair(cpu: u32, memory_mib: u64) -> Result<(), String> {
    let Some(&(_, min, max)) = CLOUD_RUN_LIMITS.iter().find(|(c, _, _)| *c == cpu) else {
        return Err(format!(
            "Cloud Run does not offer {cpu} CPU; use 1, 2, 4, 6 or 8"
        ));
    };
    if memory_mib >= min && memory_mib <= max {
        return Ok(());
    }
    let mem = format_memory(memory_mib);
    if memory_mib > max {
        match CLOUD_RUN_LIMITS
            .iter()
            .find(|(_, lo, hi)| memory_mib >= *lo && memory_mib <= *hi)
        {
            Some((need, _, _)) => Err(format!(
                "memory {mem} needs at least {need} CPU on Cloud Run ({cpu} CPU allows {} to {})",
                format_memory(min),
                format_memory(max)
            )),
            None => Err(format!(
                "memory {mem} is more than Cloud Run allows (32Gi with 8 CPU)"
            )),
        }
    } else {
        Err(format!(
            "{cpu} CPU needs at least {} of memory on Cloud Run (it allows {} to {})",
            format_memory(min),
            format_memory(min),
            format_memory(max)
        ))
    }
}

/// The `@` forms Mage accepts.
pub const CRON_SHORTHANDS: &[&str] = &["@once", "@hourly", "@daily", "@weekly", "@monthly"];

/// Checks a cron expression: five fields (minute hour day-of-month month day-of-week, UTC) or
/// one of the `@` forms. The error names the field that is wrong.
pub fn check_cron(expr: &str) -> Result<(), String> {
    let trimmed = expr.trim();
    if trimmed.starts_with('@') {
        if CRON_SHORTHANDS.contains(&trimmed) {
            return Ok(());
        }
        return Err(format!(
            "`{trimmed}` is not a schedule Mage knows; use one of {}, or a 5-field cron expression",
            CRON_SHORTHANDS
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let fields: Vec<&str> = trimmed.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "a cron expression has 5 fields (minute hour day-of-month month day-of-week), this one has {}",
            fields.len()
        ));
    }
    const NAMES: [(&str, u32, u32, &[&str]); 5] = [
        ("minute", 0, 59, &[]),
        ("hour", 0, 23, &[]),
        ("day-of-month", 1, 31, &[]),
        (
            "month",
            1,
            12,
            &[
                "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
            ],
        ),
        (
            "day-of-week",
            0,
            7,
            &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
        ),
    ];
    let mut values = [0u64; 5];
    for (i, (field, (name, min, max, words))) in fields.iter().zip(NAMES).enumerate() {
        values[i] = cron_field_values(field, min, max, words).map_err(|why| {
            format!(
                "field {} ({name}) `{field}` is invalid: {why}; allowed: {min}-{max}, `*`, lists `a,b`, ranges `a-b` and steps `*/n`",
                i + 1
            )
        })?;
    }
    check_cron_fires(fields[4], values[2], values[3])
}

/// A cron expression whose days of the month exist in none of its months (`0 0 31 2 *`) is
/// valid for Mage and never starts a run. Mage's croniter, like cron, runs on the days of the
/// month *or* the days of the week when both are restricted, so only a `*` day of the week
/// leaves the days of the month alone to decide.
fn check_cron_fires(day_of_week: &str, days: u64, months: u64) -> Result<(), String> {
    const MONTHS: [(&str, u32); 12] = [
        ("January", 31),
        ("February", 29),
        ("March", 31),
        ("April", 30),
        ("May", 31),
        ("June", 30),
        ("July", 31),
        ("August", 31),
        ("September", 30),
        ("October", 31),
        ("November", 30),
        ("December", 31),
    ];
    if day_of_week != "*" {
        return Ok(());
    }
    let chosen: Vec<(&str, u32)> = (1..=12)
        .filter(|m| months & (1 << m) != 0)
        .map(|m| MONTHS[m as usize - 1])
        .collect();
    let fires = chosen
        .iter()
        .any(|(_, length)| (1..=*length).any(|d| days & (1 << d) != 0));
    if fires {
        return Ok(());
    }
    let first_day = (1..=31).find(|d| days & (1 << d) != 0).unwrap_or(31);
    let names: Vec<&str> = chosen.iter().map(|(name, _)| *name).collect();
    Err(format!(
        "this cron never fires: {} {} no day {first_day}",
        names.join(", "),
        if names.len() == 1 { "has" } else { "have" }
    ))
}

/// The values a cron field selects, as bits of a mask (bit `n` for value `n`); an error says
/// what is wrong with the field.
fn cron_field_values(field: &str, min: u32, max: u32, words: &[&str]) -> Result<u64, String> {
    let mut selected = 0u64;
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        let step = match step {
            Some(step) => match step.parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => return Err(format!("step `{step}` must be a positive number")),
            },
            None => 1,
        };
        let mut select = |from: u32, to: u32| {
            for v in (from..=to).step_by(step as usize) {
                selected |= 1 << v;
            }
        };
        if range == "*" {
            select(min, max);
            continue;
        }
        let value = |v: &str| -> Result<u32, String> {
            if let Some(i) = words.iter().position(|w| w.eq_ignore_ascii_case(v)) {
                return Ok(i as u32 + if min == 1 { 1 } else { 0 });
            }
            let n: u32 = v.parse().map_err(|_| format!("`{v}` is not a number"))?;
            if n < min || n > max {
                return Err(format!("{n} is out of range"));
            }
            Ok(n)
        };
        match range.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (value(a)?, value(b)?);
                if a > b {
                    return Err(format!("range {a}-{b} goes backwards"));
                }
                select(a, b);
            }
            None => {
                if range.is_empty() {
                    return Err("empty value".into());
                }
                // `5/15` is cron for `5-max/15`.
                let a = value(range)?;
                select(a, if step > 1 { max } else { a });
            }
        }
    }
    Ok(selected)
}

/// The next `n` run times of a cron expression after `from` (UTC), for the plan.
pub fn next_runs(expr: &str, from: chrono::DateTime<chrono::Utc>, n: usize) -> Vec<String> {
    let expr = match expr.trim() {
        "@hourly" => "0 * * * *",
        "@daily" => "0 0 * * *",
        "@weekly" => "0 0 * * 0",
        "@monthly" => "0 0 1 * *",
        other => other,
    };
    let Ok(cron) = expr.parse::<croner::Cron>() else {
        return Vec::new();
    };
    cron.iter_after(from)
        .take(n)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .collect()
}

/// GCP project ids: 6–30 characters, `[a-z][a-z0-9-]*[a-z0-9]`.
pub fn check_project_id(s: &str) -> Result<(), String> {
    let ok_len = (6..=30).contains(&s.len());
    let ok_chars = s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.ends_with('-');
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a valid GCP project id: it must be 6 to 30 characters, start with a lowercase letter, hold only lowercase letters, digits and `-`, and not end with `-`"
        ))
    }
}

/// GCS bucket names: 3–63 characters of lowercase letters, digits, `-`, `_`, `.`, starting and
/// ending with a letter or digit.
pub fn check_bucket_name(s: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && !s.starts_with("goog");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a valid bucket name: use 3 to 63 lowercase letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit (and not starting with `goog`)"
        ))
    }
}

/// The `prefix` of a `backend "gcs"` block: the folder of the state and lock objects. Cloud
/// Storage takes almost any name; these are the ones that would name another object than meant,
/// or none at all.
pub fn check_state_prefix(s: &str) -> Result<(), String> {
    let trimmed = s.trim_matches('/');
    let why = if s.len() > 1000 {
        Some("it is longer than 1000 bytes (an object name has at most 1024)")
    } else if s.chars().any(char::is_control) {
        Some("it holds a control character")
    } else if trimmed.split('/').any(|seg| seg == "." || seg == "..") {
        Some("a `.` or `..` segment does not name a folder in a bucket")
    } else if !trimmed.is_empty() && trimmed.split('/').any(str::is_empty) {
        Some("it has an empty segment (`//`)")
    } else if trimmed.starts_with(".well-known/acme-challenge") {
        Some("Cloud Storage reserves `.well-known/acme-challenge/`")
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(format!(
            "`{s}` is not a usable state prefix: {why}; use a path such as `mage/prod`"
        )),
    }
}

/// GCP label keys and values.
pub fn check_label(key: &str, value: &str) -> Result<(), String> {
    let chars_ok = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    };
    if key.is_empty()
        || key.len() > 63
        || !key.starts_with(|c: char| c.is_ascii_lowercase())
        || !chars_ok(key)
    {
        return Err(format!(
            "label key `{key}` is invalid: keys are 1 to 63 lowercase letters, digits, `_` and `-`, starting with a letter"
        ));
    }
    if value.len() > 63 || !chars_ok(value) {
        return Err(format!(
            "the value of label `{key}` is invalid: values are at most 63 lowercase letters, digits, `_` and `-`"
        ));
    }
    Ok(())
}

/// Regions where Cloud Run runs (a warning only: new regions appear).
pub const CLOUD_RUN_REGIONS: &[&str] = &[
    "africa-south1",
    "asia-east1",
    "asia-east2",
    "asia-northeast1",
    "asia-northeast2",
    "asia-northeast3",
    "asia-south1",
    "asia-south2",
    "asia-southeast1",
    "asia-southeast2",
    "australia-southeast1",
    "australia-southeast2",
    "europe-central2",
    "europe-north1",
    "europe-north2",
    "europe-southwest1",
    "europe-west1",
    "europe-west2",
    "europe-west3",
    "europe-west4",
    "europe-west6",
    "europe-west8",
    "europe-west9",
    "europe-west10",
    "europe-west12",
    "me-central1",
    "me-central2",
    "me-west1",
    "northamerica-northeast1",
    "northamerica-northeast2",
    "northamerica-south1",
    "southamerica-east1",
    "southamerica-west1",
    "us-central1",
    "us-east1",
    "us-east4",
    "us-east5",
    "us-south1",
    "us-west1",
    "us-west2",
    "us-west3",
    "us-west4",
];

/// Regions where an e2-micro VM is in the free tier.
pub const FREE_TIER_REGIONS: &[&str] = &["us-west1", "us-central1", "us-east1"];

/// `us-central1`: letters, a dash, letters and a final number.
pub fn looks_like_region(s: &str) -> bool {
    let Some((area, rest)) = s.split_once('-') else {
        return false;
    };
    let digits = rest.trim_start_matches(|c: char| c.is_ascii_lowercase());
    !area.is_empty()
        && area.chars().all(|c| c.is_ascii_lowercase())
        && rest.len() > digits.len()
        && !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
}

/// The region of a zone (`us-central1-a` → `us-central1`).
pub fn zone_region(zone: &str) -> Option<&str> {
    let (region, suffix) = zone.rsplit_once('-')?;
    (suffix.len() == 1
        && suffix.chars().all(|c| c.is_ascii_lowercase())
        && looks_like_region(region))
    .then_some(region)
}

/// RFC 3339 timestamps (`2026-01-01T00:00:00Z`).
pub fn check_rfc3339(s: &str) -> Result<(), String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|_| ())
        .map_err(|e| {
            format!("`{s}` is not an RFC 3339 timestamp ({e}); write e.g. \"2026-01-01T00:00:00Z\"")
        })
}

/// Checks `version` against a constraint like `">= 0.1, < 0.3"` or `"~> 0.2"`.
pub fn version_satisfies(constraint: &str, version: &str) -> Result<bool, String> {
    let parse = |v: &str| -> Result<Vec<u64>, String> {
        v.trim()
            .trim_start_matches('v')
            .split('.')
            .map(|p| {
                p.parse::<u64>()
                    .map_err(|_| format!("`{v}` is not a version number"))
            })
            .collect()
    };
    let have = parse(version)?;
    let cmp = |a: &[u64], b: &[u64]| {
        let n = a.len().max(b.len());
        let get = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
        (0..n)
            .map(|i| get(a, i).cmp(&get(b, i)))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    };
    for part in constraint.split(',') {
        let part = part.trim();
        let (op, v) = ["~>", ">=", "<=", "!=", ">", "<", "="]
            .iter()
            .find_map(|op| part.strip_prefix(op).map(|rest| (*op, rest)))
            .unwrap_or(("=", part));
        let want = parse(v).map_err(|_| {
            format!("`{part}` is not a version constraint; write e.g. \">= 0.1\", \"~> 0.2\" or \">= 0.1, < 1.0\"")
        })?;
        let ord = cmp(&have, &want);
        let ok = match op {
            ">=" => ord.is_ge(),
            "<=" => ord.is_le(),
            ">" => ord.is_gt(),
            "<" => ord.is_lt(),
            "!=" => ord.is_ne(),
            "=" => ord.is_eq(),
            _ => {
                // `~> 0.2` allows >= 0.2 and < 1.0; `~> 0.2.1` allows >= 0.2.1 and < 0.3.
                let mut upper: Vec<u64> = want[..want.len().saturating_sub(1).max(1)].to_vec();
                if want.len() == 1 {
                    upper = vec![want[0] + 1];
                } else if let Some(last) = upper.last_mut() {
                    *last += 1;
                }
                ord.is_ge() && cmp(&have, &upper).is_lt()
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_prefixes() {
        for ok in ["", "mage/prod", "/mage/prod/", "env-1/state.d", "été"] {
            assert_eq!(check_state_prefix(ok), Ok(()), "{ok}");
        }
        for bad in [
            "a/../b",
            "..",
            "./x",
            "a//b",
            "a\nb",
            ".well-known/acme-challenge/x",
        ] {
            assert!(check_state_prefix(bad).is_err(), "{bad}");
        }
        assert!(check_state_prefix(&"a".repeat(1001)).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("7d"), Ok(604800));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn memory_pairs() {
        assert_eq!(parse_memory("512Mi"), Ok(512));
        assert_eq!(parse_memory("4Gi"), Ok(4096));
        assert!(check_cloud_run_pair(1, 4096).is_ok());
        let err = check_cloud_run_pair(1, 16384).unwrap_err();
        assert!(err.contains("at least 4 CPU"), "{err}");
        assert!(
            check_cloud_run_pair(4, 1024)
                .unwrap_err()
                .contains("at least 2Gi")
        );
        assert!(check_cloud_run_pair(3, 1024).is_err());
    }

    #[test]
    fn cron() {
        assert!(check_cron("0 3 * * *").is_ok());
        assert!(check_cron("*/15 9-17 * * MON-FRI").is_ok());
        assert!(check_cron("@daily").is_ok());
        let err = check_cron("0 25 * * *").unwrap_err();
        assert!(err.contains("field 2 (hour)"), "{err}");
        assert!(check_cron("0 3 * *").unwrap_err().contains("5 fields"));
        assert!(check_cron("@yearly").is_err());
        // Valid fields whose days never occur in their months.
        assert!(
            check_cron("0 0 31 2 *")
                .unwrap_err()
                .contains("never fires")
        );
        assert!(
            check_cron("0 0 30 FEB *")
                .unwrap_err()
                .contains("February has no day 30")
        );
        let err = check_cron("0 0 31 4,6,9,11 *").unwrap_err();
        assert!(
            err.contains("April, June, September, November have no day 31"),
            "{err}"
        );
        assert!(check_cron("0 0 29 2 *").is_ok(), "fires in leap years");
        assert!(check_cron("0 0 31 1-2 *").is_ok());
        assert!(check_cron("0 0 30,31 */2 *").is_ok());
        // Restricted days of the week fire on their own (cron's "or").
        assert!(check_cron("0 0 31 2 MON").is_ok());
    }

    #[test]
    fn names() {
        assert!(check_project_id("acme-data-prod").is_ok());
        assert!(check_project_id("Acme").is_err());
        assert!(check_bucket_name("acme-mage").is_ok());
        assert!(check_bucket_name("Acme_Bucket").is_err());
        assert_eq!(zone_region("us-central1-a"), Some("us-central1"));
        assert!(looks_like_region("europe-west1"));
        assert!(!looks_like_region("europe"));
    }

    #[test]
    fn versions() {
        assert_eq!(version_satisfies(">= 0.1", "0.1.0"), Ok(true));
        assert_eq!(version_satisfies("~> 0.2", "0.1.0"), Ok(false));
        assert_eq!(version_satisfies("~> 0.1", "0.9.0"), Ok(true));
        assert_eq!(version_satisfies("~> 0.1.0", "0.2.0"), Ok(false));
        assert_eq!(version_satisfies(">= 0.1, < 0.2", "0.1.5"), Ok(true));
        assert!(version_satisfies("banana", "0.1.0").is_err());
    }
}
