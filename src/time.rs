//! Time syntax for time travel (VFS.md §10.4) and Go durations (VFS.md §2.1, §2.3).
//!
//! Parse order, as in the Go VFS: strict RFC 3339 (chrono; the given offset is kept for display),
//! then natural language. The natural part is split in two:
//!
//! * our own small, table-driven grammar for what go-dateparser accepts and GNU `date` does not
//!   (or reads differently): 10/13-digit Unix seconds/milliseconds, and quantity-unit phrases
//!   `[in] [+|-]N|a|an unit [N unit…] [ago|later]` with the short units of [`UNITS`] (`5m ago`,
//!   `-5m`, `in 2 days`, `2 days later`, `an hour ago`). A phrase without a direction word means
//!   the past (`5 minutes` = 5 minutes ago, as go-dateparser does; GNU would read it as future),
//!   which is why every quantity-unit phrase is ours rather than the crate's;
//! * everything else goes to `parse_datetime` (below) with "now" in UTC: RFC 2822 (`Sun, 22 Nov
//!   2026 05:38:13 GMT`), `22 Nov 2026 05:38:13`, `Nov 22 2026`, `2026-11-22[ T]05:38[:13[.5]]`,
//!   `+0000` offsets, `05:38:13` (today), `now`/`today`/`yesterday`/`tomorrow`, `last|next unit`.
//!
//! Natural results are UTC and displayed with `Z` (Go converts dateparser results to UTC).

use chrono::{DateTime, FixedOffset, Months, Offset, Utc};

use crate::error::{Error, Result};
use crate::storage::UnixNanos;

const NANOS_PER_SEC: i64 = 1_000_000_000;
const NANOS_PER_DAY: i64 = 86_400 * NANOS_PER_SEC;

/// A parsed time-travel target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeTarget {
    pub at: UnixNanos,
    /// What litestream_time() shows while travelling: RFC 3339 with nanoseconds, trailing zeros trimmed (Go's
    /// RFC3339Nano), in the offset the user gave (`2026-11-22T07:38:13.5+02:00`), `Z` for UTC and for inputs
    /// without a zone and for relative/natural inputs.
    pub display: String,
}

/// Why a parse did not give an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    /// Not a time at all: "invalid timestamp …".
    Invalid,
    /// A time, but not representable as i64 nanoseconds (Go's zero time, year 1, is among them):
    /// "could not parse time: …".
    Range,
}

/// Parse per VFS.md §10.4 relative to `now`. Order: RFC 3339 with fraction, RFC 3339, then natural language.
/// Errors: parse failure → "invalid timestamp (expected RFC3339 or relative time like '5 minutes ago'): <input>";
/// a zero result → "could not parse time: <input>". Empty string, "garbage in", "123", " LATEST " are rejected.
///
/// A result outside the i64-nanosecond range (before 1677-09-21 or after 2262-04-11, which
/// includes Go's zero time) counts as a zero result.
pub fn parse_time(input: &str, now: UnixNanos) -> Result<TimeTarget> {
    let result = match parse_rfc3339(input) {
        Some(dt) => {
            dt.timestamp_nanos_opt().map(|at| TimeTarget { at, display: format_rfc3339_nano(&dt) }).ok_or(Fail::Range)
        }
        None => parse_natural(input.trim(), now).map(|at| TimeTarget { at, display: format_rfc3339_nano_utc(at) }),
    };
    result.map_err(|fail| match fail {
        Fail::Invalid => Error::config(format!(
            "invalid timestamp (expected RFC3339 or relative time like '5 minutes ago'): {input}"
        )),
        Fail::Range => Error::config(format!("could not parse time: {input}")),
    })
}

/// True iff `input` equals "latest" ignoring ASCII case, with NO trimming.
pub fn is_latest(input: &str) -> bool {
    input.eq_ignore_ascii_case("latest")
}

/// Go RFC3339Nano in UTC: "2026-11-22T05:54:40.011Z" (fraction trimmed of trailing zeros, omitted if zero).
pub fn format_rfc3339_nano_utc(t: UnixNanos) -> String {
    format_rfc3339_nano(&DateTime::<Utc>::from_timestamp_nanos(t).fixed_offset())
}

/// Go RFC3339Nano in the value's own offset: `Z` for a zero offset, else `±hh:mm`.
fn format_rfc3339_nano(dt: &DateTime<FixedOffset>) -> String {
    let mut out = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = dt.timestamp_subsec_nanos();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    let offset = dt.offset().fix().local_minus_utc();
    if offset == 0 {
        out.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let minutes = offset.unsigned_abs() / 60;
        out.push_str(&format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60));
    }
    out
}

/// Strict RFC 3339 (`T`/`t` separator, `Z`/`z` or `±hh:mm`, any fraction), as Go's
/// `time.Parse(time.RFC3339Nano)` / `time.RFC3339`. Other shapes go to the natural parser.
fn parse_rfc3339(input: &str) -> Option<DateTime<FixedOffset>> {
    if !matches!(input.as_bytes().get(10), Some(b'T' | b't')) {
        return None;
    }
    DateTime::parse_from_rfc3339(input).ok()
}

/// Natural-language and numeric forms; `s` is already trimmed.
fn parse_natural(s: &str, now: UnixNanos) -> std::result::Result<UnixNanos, Fail> {
    if s.is_empty() {
        return Err(Fail::Invalid);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return parse_unix_digits(s);
    }
    if let Some(result) = parse_relative(&s.to_ascii_lowercase(), now) {
        return result;
    }
    parse_with_crate(s, now)
}

/// 10 digits are Unix seconds, 13 digits Unix milliseconds; other all-digit inputs are rejected
/// (GNU would read `123` as 01:23 today, go-dateparser rejects it).
fn parse_unix_digits(s: &str) -> std::result::Result<UnixNanos, Fail> {
    let scale = match s.len() {
        10 => NANOS_PER_SEC,
        13 => 1_000_000,
        _ => return Err(Fail::Invalid),
    };
    let n: i64 = s.parse().map_err(|_| Fail::Invalid)?;
    n.checked_mul(scale).ok_or(Fail::Range)
}

/// How far one unit moves: a fixed number of nanoseconds, or calendar months.
#[derive(Debug, Clone, Copy)]
enum Step {
    Nanos(i64),
    Months(i64),
}

/// Unit names (lower case) of the quantity-unit grammar.
const UNITS: &[(&[&str], Step)] = &[
    (&["s", "sec", "secs", "second", "seconds"], Step::Nanos(NANOS_PER_SEC)),
    (&["m", "min", "mins", "minute", "minutes"], Step::Nanos(60 * NANOS_PER_SEC)),
    (&["h", "hr", "hrs", "hour", "hours"], Step::Nanos(3_600 * NANOS_PER_SEC)),
    (&["d", "day", "days"], Step::Nanos(NANOS_PER_DAY)),
    (&["w", "wk", "wks", "week", "weeks"], Step::Nanos(7 * NANOS_PER_DAY)),
    (&["mo", "mon", "mons", "month", "months"], Step::Months(1)),
    (&["y", "yr", "yrs", "year", "years"], Step::Months(12)),
];

fn unit(name: &str) -> Option<Step> {
    UNITS.iter().find(|(names, _)| names.contains(&name)).map(|&(_, step)| step)
}

/// `[in] term… [ago|later]` with term = `[+|-]N unit`, `[+|-]Nunit` or `a|an unit`; `s` is
/// lower case. `None` when `s` is not of this shape (the crate gets it); a shape with two
/// directions (`in 5m ago`, `-5m ago`) is invalid. Months and years are calendar arithmetic
/// (chrono clamps to the month's last day: Mar 31 − 1 month = Feb 28/29).
fn parse_relative(s: &str, now: UnixNanos) -> Option<std::result::Result<UnixNanos, Fail>> {
    let mut toks: Vec<&str> = s.split_whitespace().collect();
    let mut directions = 0;
    let mut dir = -1; // no direction word: the past
    if toks.first() == Some(&"in") {
        toks.remove(0);
        directions += 1;
        dir = 1;
    }
    if let Some(&word @ ("ago" | "later")) = toks.last() {
        toks.pop();
        directions += 1;
        dir = if word == "ago" { -1 } else { 1 };
    }

    // (sign, quantity, step) per term; sign 0 = none given.
    let mut terms = Vec::new();
    let mut rest = toks.into_iter();
    while let Some(tok) = rest.next() {
        let (sign, body) = match tok.as_bytes().first() {
            Some(b'-') => (-1, &tok[1..]),
            Some(b'+') => (1, &tok[1..]),
            _ => (0, tok),
        };
        let (qty, name) = if sign == 0 && (body == "a" || body == "an") {
            (1, rest.next()?)
        } else {
            let digits = body.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            // Too many digits: a quantity that cannot fit, reported as out of range below.
            let qty = body[..digits].parse::<i64>().unwrap_or(i64::MAX);
            let attached = &body[digits..];
            (qty, if attached.is_empty() { rest.next()? } else { attached })
        };
        terms.push((sign, qty, unit(name)?));
    }
    if terms.is_empty() {
        return None;
    }
    if directions > 1 || (directions == 1 && terms.iter().any(|&(sign, _, _)| sign != 0)) {
        return Some(Err(Fail::Invalid));
    }
    Some(apply_terms(&terms, dir, now).ok_or(Fail::Range))
}

fn apply_terms(terms: &[(i64, i64, Step)], dir: i64, now: UnixNanos) -> Option<UnixNanos> {
    let (mut months, mut nanos) = (0i64, 0i128);
    for &(sign, qty, step) in terms {
        let signed = qty.checked_mul(if sign == 0 { dir } else { sign })?;
        match step {
            Step::Nanos(n) => nanos = nanos.checked_add(i128::from(signed) * i128::from(n))?,
            Step::Months(k) => months = months.checked_add(signed.checked_mul(k)?)?,
        }
    }
    let mut dt = DateTime::<Utc>::from_timestamp_nanos(now);
    let span = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
    dt = if months < 0 { dt.checked_sub_months(span)? } else { dt.checked_add_months(span)? };
    i64::try_from(i128::from(dt.timestamp_nanos_opt()?) + nanos).ok()
}

// parse_datetime (uutils' GNU `date -d` parser): maintained, pure Rust (jiff + winnow), builds
// for wasm32-wasip2, and covers the absolute and word forms; humantime has no date grammar.
fn parse_with_crate(s: &str, now: UnixNanos) -> std::result::Result<UnixNanos, Fail> {
    let now =
        jiff::Timestamp::from_nanosecond(i128::from(now)).map_err(|_| Fail::Range)?.to_zoned(jiff::tz::TimeZone::UTC);
    match parse_datetime::parse_datetime_at_date(now, s) {
        Ok(parse_datetime::ParsedDateTime::InRange(z)) => {
            i64::try_from(z.timestamp().as_nanosecond()).map_err(|_| Fail::Range)
        }
        Ok(parse_datetime::ParsedDateTime::Extended(_)) => Err(Fail::Range),
        Err(_) => Err(Fail::Invalid),
    }
}

/// Go duration syntax ("500ms", "2s", "1m30s", "1h", "1.5s", "-1s", "0"): units ns, us/µs, ms, s, m, h; a unit is
/// required except for "0". Returns signed nanoseconds. Error message like Go: `time: invalid duration "<s>"`.
///
/// A port of Go's `time.ParseDuration`, including its other two messages (`time: missing unit in
/// duration "…"`, `time: unknown unit "…" in duration "…"`) and its overflow rules.
pub fn parse_go_duration(s: &str) -> Result<i64> {
    const UNIT_NANOS: &[(&str, u64)] = &[
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000), // U+00B5 micro sign
        ("μs", 1_000), // U+03BC Greek small mu
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    const LIMIT: u64 = 1 << 63;
    let invalid = || Error::config(format!("time: invalid duration {}", go_quote(s)));

    let mut rest = s;
    let mut neg = false;
    if let Some(r) = rest.strip_prefix('-') {
        neg = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        if !matches!(rest.as_bytes()[0], b'.' | b'0'..=b'9') {
            return Err(invalid());
        }
        // Integer part.
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let mut v: u64 = 0;
        for b in rest[..int_len].bytes() {
            if v > LIMIT / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(b - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
        }
        rest = &rest[int_len..];
        // Fraction: digits past u63 precision are ignored, as Go does.
        let (mut frac, mut scale, mut frac_len) = (0u64, 1f64, 0);
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
            frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for b in rest[..frac_len].bytes() {
                if overflow || frac > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = frac * 10 + u64::from(b - b'0');
                if y > LIMIT {
                    overflow = true;
                    continue;
                }
                frac = y;
                scale *= 10.0;
            }
            rest = &rest[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid()); // "." or ".s"
        }
        // Unit.
        let unit_len = rest.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(Error::config(format!("time: missing unit in duration {}", go_quote(s))));
        }
        let name = &rest[..unit_len];
        rest = &rest[unit_len..];
        let Some(&(_, unit)) = UNIT_NANOS.iter().find(|(n, _)| *n == name) else {
            return Err(Error::config(format!("time: unknown unit {} in duration {}", go_quote(name), go_quote(s))));
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if frac > 0 {
            // Same float arithmetic as Go, so "1.1s" rounds the same way.
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total += v;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((total as i64).wrapping_neg()); // total == 2^63 gives i64::MIN, as in Go
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// Go's `time.quote`: double quotes, `"` and `\` escaped, bytes of control and non-ASCII
/// characters as `\xNN`.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c < ' ' || !c.is_ascii() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    /// The injected "now": 2026-11-22T05:38:13Z.
    const NOW: UnixNanos = 1_795_325_893 * NANOS_PER_SEC;

    fn instant(rfc3339: &str) -> UnixNanos {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_nanos_opt().unwrap()
    }

    /// `input` parses (at NOW) to the instant written in `display`, and displays as `display`.
    fn accepts(input: &str, display: &str) {
        let got = parse_time(input, NOW).unwrap_or_else(|e| panic!("{input:?}: {e:?}"));
        assert_eq!(got, TimeTarget { at: instant(display), display: display.to_string() }, "{input:?}");
    }

    fn rejects(input: &str, message: &str) {
        let err = parse_time(input, NOW).expect_err(input);
        assert_eq!(err.kind, ErrorKind::Config, "{input:?}");
        assert_eq!(err.message, message, "{input:?}");
    }

    fn rejects_invalid(input: &str) {
        rejects(input, &format!("invalid timestamp (expected RFC3339 or relative time like '5 minutes ago'): {input}"));
    }

    fn rejects_zero(input: &str) {
        rejects(input, &format!("could not parse time: {input}"));
    }

    /// One `#[test]` per accepted form: name, input, expected display (and so instant).
    macro_rules! accept {
        ($($name:ident: $input:expr => $display:expr;)*) => {
            $( #[test] fn $name() { accepts($input, $display); } )*
        };
    }

    macro_rules! reject {
        ($($name:ident: $check:ident($input:expr);)*) => {
            $( #[test] fn $name() { $check($input); } )*
        };
    }

    #[test]
    fn now_constant_is_the_spec_example() {
        assert_eq!(format_rfc3339_nano_utc(NOW), "2026-11-22T05:38:13Z");
    }

    accept! {
        // Strict RFC 3339: the offset given is kept for display.
        rfc3339_z: "2026-11-22T05:38:13Z" => "2026-11-22T05:38:13Z";
        rfc3339_nanos: "2026-11-22T05:38:13.123456789Z" => "2026-11-22T05:38:13.123456789Z";
        rfc3339_fraction_trimmed: "2026-11-22T05:38:13.500Z" => "2026-11-22T05:38:13.5Z";
        rfc3339_lower_case_t_z: "2026-11-22t05:38:13z" => "2026-11-22T05:38:13Z";
        rfc3339_offset_kept: "2026-11-22T07:38:13.5+02:00" => "2026-11-22T07:38:13.5+02:00";
        rfc3339_negative_offset_kept: "2026-11-22T01:08:13-04:30" => "2026-11-22T01:08:13-04:30";
        rfc3339_zero_offset_is_z: "2026-11-22T05:38:13+00:00" => "2026-11-22T05:38:13Z";
        rfc3339_epoch: "1970-01-01T00:00:00Z" => "1970-01-01T00:00:00Z";
        // Not strict RFC 3339: natural parser, converted to UTC.
        offset_without_colon: "2026-11-22T05:38:13+0000" => "2026-11-22T05:38:13Z";
        offset_without_colon_to_utc: "2026-11-22T07:38:13+0200" => "2026-11-22T05:38:13Z";
        space_separator_z: "2026-11-22 05:38:13Z" => "2026-11-22T05:38:13Z";
        space_separator_offset_to_utc: "2026-11-22 07:38:13+02:00" => "2026-11-22T05:38:13Z";
        space_separator_no_zone: "2026-11-22 05:38:13.5" => "2026-11-22T05:38:13.5Z";
        t_separator_no_zone: "2026-11-22T05:38:13.5" => "2026-11-22T05:38:13.5Z";
        minutes_only: "2026-11-22 05:38" => "2026-11-22T05:38:00Z";
        date_only_is_midnight_utc: "2026-11-22" => "2026-11-22T00:00:00Z";
        day_month_year_time: "22 Nov 2026 05:38:13" => "2026-11-22T05:38:13Z";
        month_day_year: "Nov 22 2026" => "2026-11-22T00:00:00Z";
        rfc2822: "Sun, 22 Nov 2026 05:38:13 GMT" => "2026-11-22T05:38:13Z";
        time_only_is_today: "01:02:03" => "2026-11-22T01:02:03Z";
        utc_word_zone: "2026-11-22 05:38:13 UTC" => "2026-11-22T05:38:13Z";
        at_unix_seconds: "@1795325893" => "2026-11-22T05:38:13Z";
        // Words.
        now: "now" => "2026-11-22T05:38:13Z";
        now_upper: "NOW" => "2026-11-22T05:38:13Z";
        now_trailing_space: "now " => "2026-11-22T05:38:13Z";
        today_is_now: "today" => "2026-11-22T05:38:13Z";
        tomorrow: "tomorrow" => "2026-11-23T05:38:13Z";
        yesterday: "yesterday" => "2026-11-21T05:38:13Z";
        last_week: "last week" => "2026-11-15T05:38:13Z";
        next_week: "next week" => "2026-11-29T05:38:13Z";
        // Unix seconds and milliseconds.
        unix_seconds: "1795325893" => "2026-11-22T05:38:13Z";
        unix_millis: "1795325893123" => "2026-11-22T05:38:13.123Z";
        unix_seconds_zero: "0000000000" => "1970-01-01T00:00:00Z";
        // Quantity-unit phrases, every unit name.
        seconds_ago: "30 seconds ago" => "2026-11-22T05:37:43Z";
        second_ago: "1 second ago" => "2026-11-22T05:38:12Z";
        sec_ago: "10 sec ago" => "2026-11-22T05:38:03Z";
        secs_ago: "10 secs ago" => "2026-11-22T05:38:03Z";
        s_ago: "10 s ago" => "2026-11-22T05:38:03Z";
        s_attached_ago: "10s ago" => "2026-11-22T05:38:03Z";
        minutes_ago: "5 minutes ago" => "2026-11-22T05:33:13Z";
        minute_ago: "1 minute ago" => "2026-11-22T05:37:13Z";
        min_ago: "2 min ago" => "2026-11-22T05:36:13Z";
        mins_ago: "2 mins ago" => "2026-11-22T05:36:13Z";
        m_attached_ago: "5m ago" => "2026-11-22T05:33:13Z";
        m_ago: "5 m ago" => "2026-11-22T05:33:13Z";
        hours_ago: "3 hours ago" => "2026-11-22T02:38:13Z";
        hour_ago: "1 hour ago" => "2026-11-22T04:38:13Z";
        h_attached_ago: "1h ago" => "2026-11-22T04:38:13Z";
        hr_ago: "2 hr ago" => "2026-11-22T03:38:13Z";
        hrs_ago: "2 hrs ago" => "2026-11-22T03:38:13Z";
        days_ago: "2 days ago" => "2026-11-20T05:38:13Z";
        day_ago: "1 day ago" => "2026-11-21T05:38:13Z";
        d_attached_ago: "2d ago" => "2026-11-20T05:38:13Z";
        weeks_ago: "2 weeks ago" => "2026-11-08T05:38:13Z";
        week_ago: "1 week ago" => "2026-11-15T05:38:13Z";
        w_attached_ago: "1w ago" => "2026-11-15T05:38:13Z";
        months_ago: "2 months ago" => "2026-09-22T05:38:13Z";
        month_ago: "1 month ago" => "2026-10-22T05:38:13Z";
        mo_ago: "1 mo ago" => "2026-10-22T05:38:13Z";
        years_ago: "2 years ago" => "2024-11-22T05:38:13Z";
        year_ago: "1 year ago" => "2025-11-22T05:38:13Z";
        y_ago: "1 y ago" => "2025-11-22T05:38:13Z";
        zero_seconds_ago: "0 seconds ago" => "2026-11-22T05:38:13Z";
        upper_case_phrase: "5 MINUTES AGO" => "2026-11-22T05:33:13Z";
        surrounding_spaces: "  5 minutes ago  " => "2026-11-22T05:33:13Z";
        two_terms_ago: "1 hour 30 minutes ago" => "2026-11-22T04:08:13Z";
        // Signs and direction words.
        minus_attached: "-5m" => "2026-11-22T05:33:13Z";
        minus_spaced: "-5 minutes" => "2026-11-22T05:33:13Z";
        plus_is_future: "+5m" => "2026-11-22T05:43:13Z";
        no_direction_is_past: "5 minutes" => "2026-11-22T05:33:13Z";
        an_hour_ago: "an hour ago" => "2026-11-22T04:38:13Z";
        a_day_ago: "a day ago" => "2026-11-21T05:38:13Z";
        in_days: "in 2 days" => "2026-11-24T05:38:13Z";
        in_an_hour: "in an hour" => "2026-11-22T06:38:13Z";
        days_later: "2 days later" => "2026-11-24T05:38:13Z";
        months_later: "3 months later" => "2027-02-22T05:38:13Z";
    }

    #[test]
    fn months_clamp_to_month_end() {
        let mar31 = instant("2026-03-31T12:00:00Z");
        let got = parse_time("1 month ago", mar31).unwrap();
        assert_eq!(got.at, instant("2026-02-28T12:00:00Z"));
        assert_eq!(got.display, "2026-02-28T12:00:00Z");
    }

    #[test]
    fn relative_keeps_now_fraction() {
        let got = parse_time("1 s ago", NOW + 250_000_000).unwrap();
        assert_eq!(got.at, NOW - 750_000_000);
        assert_eq!(got.display, "2026-11-22T05:38:12.25Z");
    }

    reject! {
        empty: rejects_invalid("");
        blank: rejects_invalid("   ");
        garbage: rejects_invalid("garbage in");
        three_digits: rejects_invalid("123");
        eleven_digits: rejects_invalid("17953258930");
        latest_with_spaces: rejects_invalid(" LATEST ");
        latest_word: rejects_invalid("latest");
        unknown_unit: rejects_invalid("5 parsecs ago");
        in_and_ago: rejects_invalid("in 5 minutes ago");
        sign_and_ago: rejects_invalid("-5 minutes ago");
        sign_and_in: rejects_invalid("in +5 minutes");
        quantity_without_unit: rejects_invalid("in 2");
        bad_month: rejects_invalid("2026-13-01");
        bad_hour: rejects_invalid("2026-11-22T25:00:00Z");
        go_zero_time: rejects_zero("0001-01-01T00:00:00Z");
        before_i64_nanos: rejects_zero("1000-01-01T00:00:00Z");
        after_i64_nanos: rejects_zero("9999-12-31T23:59:59Z");
        natural_after_i64_nanos: rejects_zero("2300-01-01");
        extended_year: rejects_zero("12000-01-01");
        relative_out_of_range: rejects_zero("400 years ago");
        quantity_overflow: rejects_zero("99999999999999999999 days ago");
    }

    #[test]
    fn latest_is_exact_word_any_case() {
        for yes in ["latest", "LATEST", "LaTeSt"] {
            assert!(is_latest(yes), "{yes:?}");
        }
        for no in [" LATEST ", "latest ", " latest", "", "lates", "latest1"] {
            assert!(!is_latest(no), "{no:?}");
        }
    }

    #[test]
    fn formats_go_rfc3339_nano_utc() {
        let cases = [
            (1_795_326_880_011_000_000, "2026-11-22T05:54:40.011Z"),
            (NOW, "2026-11-22T05:38:13Z"),
            (NOW + 123_456_789, "2026-11-22T05:38:13.123456789Z"),
            (NOW + 100_000_000, "2026-11-22T05:38:13.1Z"),
            (NOW + 1, "2026-11-22T05:38:13.000000001Z"),
            (0, "1970-01-01T00:00:00Z"),
            (-1, "1969-12-31T23:59:59.999999999Z"),
            (i64::MAX, "2262-04-11T23:47:16.854775807Z"),
            (i64::MIN, "1677-09-21T00:12:43.145224192Z"),
        ];
        for (t, want) in cases {
            assert_eq!(format_rfc3339_nano_utc(t), want, "{t}");
        }
    }

    #[test]
    fn parses_go_durations() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("0s", 0),
            ("500ms", 500_000_000),
            ("2s", 2_000_000_000),
            ("1m30s", 90_000_000_000),
            ("1h", 3_600_000_000_000),
            ("1.5s", 1_500_000_000),
            ("1.1s", 1_100_000_000),
            (".5s", 500_000_000),
            ("5.s", 5_000_000_000),
            ("-1s", -1_000_000_000),
            ("+1s", 1_000_000_000),
            ("1ns", 1),
            ("1us", 1_000),
            ("1µs", 1_000),
            ("1μs", 1_000),
            ("1h2m3s4ms5us6ns", 3_723_004_005_006),
            ("1.000000001s", 1_000_000_001),
            ("0.3333333333333333333h", 1_200_000_000_000),
            ("2562047h47m16.854775807s", i64::MAX),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("9223372036854775807ns", i64::MAX),
        ];
        for &(s, want) in cases {
            assert_eq!(parse_go_duration(s).unwrap_or_else(|e| panic!("{s:?}: {e:?}")), want, "{s:?}");
        }
    }

    #[test]
    fn rejects_go_durations_with_go_messages() {
        let cases = [
            ("", r#"time: invalid duration """#),
            ("-", r#"time: invalid duration "-""#),
            (".", r#"time: invalid duration ".""#),
            (".s", r#"time: invalid duration ".s""#),
            ("s", r#"time: invalid duration "s""#),
            ("1s ", r#"time: unknown unit "s " in duration "1s ""#),
            (" 1s", r#"time: invalid duration " 1s""#),
            ("1", r#"time: missing unit in duration "1""#),
            ("1s2", r#"time: missing unit in duration "1s2""#),
            ("1x", r#"time: unknown unit "x" in duration "1x""#),
            ("1d", r#"time: unknown unit "d" in duration "1d""#),
            ("1\"x", r#"time: unknown unit "\"x" in duration "1\"x""#),
            ("1é", r#"time: unknown unit "\xc3\xa9" in duration "1\xc3\xa9""#),
            ("2562047h47m16.854775808s", r#"time: invalid duration "2562047h47m16.854775808s""#),
            ("9223372036854775808ns", r#"time: invalid duration "9223372036854775808ns""#),
            ("99999999999999999999s", r#"time: invalid duration "99999999999999999999s""#),
            ("3000000h", r#"time: invalid duration "3000000h""#),
        ];
        for (s, want) in cases {
            let err = parse_go_duration(s).expect_err(s);
            assert_eq!(err.kind, ErrorKind::Config, "{s:?}");
            assert_eq!(err.message, want, "{s:?}");
        }
    }
}
