//! curl as the tests' HTTP client: status, headers and body of one request,
//! with a cookie jar standing for one visitor.

use std::path::Path;

/// What curl saw: status, headers (lower-case names), body.
pub struct Got {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `curl` with extra headers, a cookie jar (one visitor) if given, HEAD if
/// `head`.
pub async fn curl(url: &str, headers: &[String], jar: Option<&Path>, head: bool) -> Got {
    let dir = tempfile::tempdir().unwrap();
    let (h, b) = (dir.path().join("h"), dir.path().join("b"));
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-s", "--max-time", "30", "-D"])
        .arg(&h)
        .arg("-o")
        .arg(&b);
    if head {
        cmd.arg("-I");
    }
    for x in headers {
        cmd.args(["-H", x]);
    }
    if let Some(jar) = jar {
        cmd.arg("-b").arg(jar).arg("-c").arg(jar);
    }
    cmd.arg(url);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "curl {url}: {out:?}");
    let text = std::fs::read_to_string(&h).unwrap();
    let mut lines = text.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    Got {
        status,
        headers,
        body: std::fs::read(&b).unwrap_or_default(),
    }
}
