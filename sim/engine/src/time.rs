//! Calendar arithmetic without a clock: the caller's `now_ms` becomes a UTC datetime, and
//! temporal literals are parsed/normalised into MySQL's canonical text.

use crate::types::Val;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micro: u32,
}

impl DateTime {
    pub fn date_string(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
    pub fn datetime_string(&self, fsp: u8) -> String {
        let mut s = format!(
            "{} {:02}:{:02}:{:02}",
            self.date_string(),
            self.hour,
            self.minute,
            self.second
        );
        if fsp > 0 {
            let frac = format!("{:06}", self.micro);
            s.push('.');
            s.push_str(&frac[..fsp.min(6) as usize]);
        }
        s
    }
    pub fn from_unix_ms(ms: u64) -> DateTime {
        let secs = (ms / 1000) as i64;
        let days = secs.div_euclid(86400);
        let rem = secs.rem_euclid(86400);
        let (y, m, d) = civil_from_days(days);
        DateTime {
            year: y,
            month: m,
            day: d,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
            micro: (ms % 1000) as u32 * 1000,
        }
    }
    pub fn days(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }
    pub fn unix_seconds(&self) -> i64 {
        self.days() * 86400 + (self.hour * 3600 + self.minute * 60 + self.second) as i64
    }
}

/// Howard Hinnant's algorithm.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// Parses 'YYYY-MM-DD[ HH:MM:SS[.ffffff]]' (also 'T' separator, YYYYMMDD[HHMMSS] numbers).
/// Zero dates ('0000-00-00') are accepted as MySQL does without NO_ZERO_DATE.
pub fn parse_datetime(v: &Val) -> Option<DateTime> {
    let text = match v {
        Val::Str(b) => String::from_utf8_lossy(b).trim().to_string(),
        Val::Int(_) | Val::UInt(_) => {
            let s = v.to_text()?;
            return parse_numeric_datetime(&s);
        }
        Val::Dec(d) => return parse_numeric_datetime(&d.trunc_i128().to_string()),
        _ => return None,
    };
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return parse_numeric_datetime(&text);
    }
    let (date, time) = match text.find([' ', 'T']) {
        Some(i) => (&text[..i], text[i + 1..].trim()),
        None => (text.as_str(), ""),
    };
    let parts: Vec<&str> = date.split(['-', '/', '.']).collect();
    if parts.len() != 3 {
        return None;
    }
    let y: i64 = parts[0].parse().ok()?;
    let y = if parts[0].len() <= 2 {
        if y < 70 {
            y + 2000
        } else {
            y + 1900
        }
    } else {
        y
    };
    let m: u32 = parts[1].parse().ok()?;
    let d: u32 = parts[2].parse().ok()?;
    let mut dt = DateTime {
        year: y,
        month: m,
        day: d,
        hour: 0,
        minute: 0,
        second: 0,
        micro: 0,
    };
    if !valid_date(&dt) {
        return None;
    }
    if !time.is_empty() {
        let (secs, micro) = parse_hms(time)?;
        if !(0..86400).contains(&secs) {
            return None;
        }
        dt.hour = (secs / 3600) as u32;
        dt.minute = (secs % 3600 / 60) as u32;
        dt.second = (secs % 60) as u32;
        dt.micro = micro;
    }
    Some(dt)
}

fn valid_date(dt: &DateTime) -> bool {
    if dt.year == 0 && dt.month == 0 && dt.day == 0 {
        return true;
    }
    (0..=9999).contains(&dt.year)
        && (1..=12).contains(&dt.month)
        && dt.day >= 1
        && dt.day <= days_in_month(dt.year, dt.month)
}

fn parse_numeric_datetime(s: &str) -> Option<DateTime> {
    let (date, time) = match s.len() {
        8 => (s, ""),
        6 => return parse_datetime(&Val::str(&format!("{}-{}-{}", &s[..2], &s[2..4], &s[4..]))),
        14 => (&s[..8], &s[8..]),
        _ => return None,
    };
    let mut t = format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..8]);
    if !time.is_empty() {
        t.push_str(&format!(" {}:{}:{}", &time[..2], &time[2..4], &time[4..6]));
    }
    parse_datetime(&Val::str(&t))
}

/// Parses 'HH:MM:SS[.ffffff]' into (seconds, micros); negative allowed.
fn parse_hms(t: &str) -> Option<(i64, u32)> {
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let (main, frac) = match t.find('.') {
        Some(i) => (&t[..i], &t[i + 1..]),
        None => (t, ""),
    };
    let parts: Vec<&str> = main.split(':').collect();
    let (h, m, s): (i64, i64, i64) = match parts.len() {
        3 => (
            parts[0].parse().ok()?,
            parts[1].parse().ok()?,
            parts[2].parse().ok()?,
        ),
        2 => (parts[0].parse().ok()?, parts[1].parse().ok()?, 0),
        1 => {
            let n: i64 = parts[0].parse().ok()?;
            (n / 10000, n / 100 % 100, n % 100)
        }
        _ => return None,
    };
    if m >= 60 || s >= 60 {
        return None;
    }
    let micro = if frac.is_empty() {
        0
    } else {
        let f: String = frac.chars().chain("000000".chars()).take(6).collect();
        f.parse().ok()?
    };
    let secs = h * 3600 + m * 60 + s;
    Some((if neg { -secs } else { secs }, micro))
}

/// TIME values as seconds (signed), micros.
pub fn parse_time(v: &Val) -> Option<(i64, u32)> {
    match v {
        Val::Str(b) => {
            let s = String::from_utf8_lossy(b).trim().to_string();
            if let Some(i) = s.find(' ') {
                // A datetime: keep the time part.
                if s[..i].contains('-') {
                    return parse_hms(s[i + 1..].trim());
                }
            }
            let r = parse_hms(&s)?;
            if r.0.abs() > 838 * 3600 + 59 * 60 + 59 {
                return None;
            }
            Some(r)
        }
        Val::Int(_) | Val::UInt(_) => parse_hms(&v.to_text()?),
        _ => None,
    }
}

pub fn time_string((secs, micro): (i64, u32), fsp: u8) -> String {
    let neg = secs < 0;
    let a = secs.abs();
    let mut s = format!(
        "{}{:02}:{:02}:{:02}",
        if neg { "-" } else { "" },
        a / 3600,
        a % 3600 / 60,
        a % 60
    );
    if fsp > 0 {
        let f = format!("{:06}", micro);
        s.push('.');
        s.push_str(&f[..fsp.min(6) as usize]);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_to_datetime() {
        assert_eq!(
            DateTime::from_unix_ms(0).datetime_string(0),
            "1970-01-01 00:00:00"
        );
        assert_eq!(
            DateTime::from_unix_ms(1_700_000_000_123).datetime_string(3),
            "2023-11-14 22:13:20.123"
        );
    }

    #[test]
    fn parsing() {
        let p = |s: &str| parse_datetime(&Val::str(s)).map(|d| d.datetime_string(0));
        assert_eq!(p("2024-02-29").unwrap(), "2024-02-29 00:00:00");
        assert_eq!(p("2024-2-3 4:05:06").unwrap(), "2024-02-03 04:05:06");
        assert_eq!(p("2023-02-29"), None);
        assert_eq!(p("20240102").unwrap(), "2024-01-02 00:00:00");
        assert_eq!(p("garbage"), None);
        assert_eq!(
            time_string(parse_time(&Val::str("-1:02:03")).unwrap(), 0),
            "-01:02:03"
        );
    }
}
