//! Sizes as people read them, in pages, mails and messages alike (a leaf: the
//! link service and the mailer use it without depending on the web pages).

/// Decimal units, one decimal place: `999 B`, `1.5 MB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
