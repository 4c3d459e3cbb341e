//! Sizes as people read them.

/// `3.1 TB`, `21.3 GB`, `512 B`: decimal units, three significant digits.
pub fn bytes(n: u128) -> String {
    if n == u128::MAX {
        return "more than 10^38 bytes".into();
    }
    const UNITS: [&str; 7] = ["KB", "MB", "GB", "TB", "PB", "EB", "ZB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    if v >= 1000.0 {
        return format!("{:.1e} bytes", n as f64);
    }
    let digits = if v < 10.0 {
        2
    } else if v < 100.0 {
        1
    } else {
        0
    };
    format!("{v:.digits$} {unit}")
}

/// `1,000,000,000`: a count with thousands separated.
pub fn count(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3_136_000_000_000), "3.14 TB");
        assert_eq!(bytes(21_300_000_000), "21.3 GB");
        assert_eq!(bytes(250_000_000), "250 MB");
        assert_eq!(bytes(u128::MAX), "more than 10^38 bytes");
        assert!(bytes(u128::MAX - 1).ends_with("bytes"));
        assert_eq!(count(1_000_000_000), "1,000,000,000");
        assert_eq!(count(784), "784");
        assert_eq!(count(0), "0");
    }
}
