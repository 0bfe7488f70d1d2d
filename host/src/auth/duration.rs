//! Durations as operators write them: `90s`, `30m`, `1h`, `7d`.

use std::time::Duration;

/// Parses `<n>s|m|h|d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration like 90s, 30m, 1h or 7d"))?;
    let seconds = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("`{text}` is not a duration like 90s, 30m, 1h or 7d")),
    };
    if seconds == 0 {
        return Err("the duration must be more than zero".to_owned());
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_and_nonsense_does_not() {
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "h", "1y", "0s", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
