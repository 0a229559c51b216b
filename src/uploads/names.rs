//! File names from outside parties: what a browser sends as a file name is
//! reduced to one safe path segment, and a taken name gets a numbered suffix.

/// Longest name kept, in bytes (common file-system limit).
const MAX_NAME: usize = 255;

/// One safe segment: no directories (both separators), no control characters,
/// none of the characters Windows refuses, no leading or trailing dots and
/// spaces (so no hidden files, not `.`/`..`, never wharf's own `.wharf-partial`),
/// at most 255 bytes (the extension kept). Empty results become `upload`.
pub fn sanitise(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let mut name: String = base
        .chars()
        .map(|c| match c {
            c if c.is_control() => '_',
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            c => c,
        })
        .collect();
    name = name
        .trim_matches(|c: char| c == '.' || c.is_whitespace())
        .to_string();
    if name.is_empty() {
        name = "upload".into();
    }
    truncate(&name, MAX_NAME)
}

/// Cuts `name` to `max` bytes on a character boundary, keeping a short extension.
fn truncate(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let (stem, ext) = split_ext(name);
    let ext = if ext.len() <= 16 { ext } else { "" };
    let mut cut = max - ext.len();
    while !stem.is_char_boundary(cut.min(stem.len())) {
        cut -= 1;
    }
    format!("{}{ext}", &stem[..cut.min(stem.len())])
}

/// `report.tar.gz` → (`report.tar`, `.gz`); no extension → (`name`, ``).
fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// The `n`-th alternative to a taken name: `report (n).pdf`.
pub fn numbered(name: &str, n: u32) -> String {
    let (stem, ext) = split_ext(name);
    truncate(&format!("{stem} ({n}){ext}"), MAX_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_one_safe_segment() {
        assert_eq!(sanitise("report.pdf"), "report.pdf");
        assert_eq!(sanitise("../../etc/passwd"), "passwd");
        assert_eq!(sanitise("C:\\Users\\me\\a.txt"), "a.txt");
        assert_eq!(sanitise(".."), "upload");
        assert_eq!(sanitise(" . "), "upload");
        assert_eq!(sanitise(""), "upload");
        assert_eq!(sanitise("a\0b\nc.txt"), "a_b_c.txt");
        assert_eq!(sanitise("what?<x>.txt"), "what__x_.txt");
        assert_eq!(sanitise(".hidden"), "hidden");
        assert_eq!(sanitise("name. "), "name");
        assert_eq!(sanitise(".wharf-partial"), "wharf-partial");
        assert_eq!(sanitise("Überweisung März.pdf"), "Überweisung März.pdf");
        let long = format!("{}.pdf", "é".repeat(200));
        let s = sanitise(&long);
        assert!(s.len() <= 255 && s.ends_with(".pdf"), "{s}");
    }

    #[test]
    fn taken_names_get_numbers_before_the_extension() {
        assert_eq!(numbered("report.pdf", 1), "report (1).pdf");
        assert_eq!(numbered("archive.tar.gz", 2), "archive.tar (2).gz");
        assert_eq!(numbered("README", 3), "README (3)");
    }
}
