//! A browser-like visitor of a direct-upload request, without a browser: it
//! speaks the upload page's JSON endpoints (`/l/<token>/direct`) and PUTs the
//! parts to the URLs wharf hands out, as upload.js does, on any storage (S3,
//! Azure Blob, GCS). Shared by the `links_direct_upload*` tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A browser-like visitor of an upload request; counts the bytes it sends to wharf.
pub struct Visitor {
    client: reqwest::Client,
    page: String,
    /// Bytes of JSON sent to wharf.
    pub to_wharf: Arc<AtomicU64>,
    /// Where every part URL must point (the bucket's endpoint), when set.
    parts_at: Option<String>,
    /// The storage's status for a part PUT that it took.
    part_ok: u16,
}

impl Visitor {
    pub fn new(page: &str) -> Visitor {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Visitor {
            client,
            page: page.to_string(),
            to_wharf: Arc::default(),
            parts_at: None,
            part_ok: 200,
        }
    }

    /// Checks that every part URL handed out starts with `endpoint`.
    pub fn parts_at(mut self, endpoint: &str) -> Visitor {
        self.parts_at = Some(endpoint.to_string());
        self
    }

    /// The status the storage answers a part PUT with (201 on Azure Blob).
    pub fn part_status(mut self, status: u16) -> Visitor {
        self.part_ok = status;
        self
    }

    pub async fn open(&self) -> (u16, String) {
        let r = self.client.get(&self.page).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// A JSON request to wharf under `/direct`: (status, body).
    pub async fn call(
        &self,
        method: reqwest::Method,
        rest: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}/direct{rest}", self.page);
        let mut req = self.client.request(method, url).header("Wharf-Direct", "1");
        if let Some(b) = body {
            let text = b.to_string();
            self.to_wharf
                .fetch_add(text.len() as u64, Ordering::Relaxed);
            req = req.header("Content-Type", "application/json").body(text);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(json!({ "text": text })),
        )
    }

    pub async fn begin(&self, name: &str, size: usize) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            "",
            Some(json!({ "name": name, "size": size })),
        )
        .await
    }

    /// Part URLs for `parts` (each checked against `parts_at`).
    pub async fn urls(&self, key: &str, parts: &[u64]) -> Vec<(u64, String)> {
        let (status, v) = self
            .call(
                reqwest::Method::POST,
                &format!("/{key}/urls"),
                Some(json!({ "parts": parts })),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        parts
            .iter()
            .map(|n| {
                let url = v["urls"][n.to_string()].as_str().unwrap().to_string();
                if let Some(at) = &self.parts_at {
                    assert!(url.starts_with(at.as_str()), "{url}");
                }
                (*n, url)
            })
            .collect()
    }

    /// PUTs `body` to a part URL: the storage's status and answer.
    pub async fn put(&self, url: &str, body: &[u8]) -> (u16, String) {
        let r = self
            .client
            .put(url)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// PUTs the parts of `data` (cut into `part_size` pieces) to their URLs.
    pub async fn put_parts(&self, key: &str, data: &[u8], part_size: usize, parts: &[u64]) {
        for (n, url) in self.urls(key, parts).await {
            let start = (n as usize - 1) * part_size;
            let end = (start + part_size).min(data.len());
            let (status, text) = self.put(&url, &data[start..end]).await;
            assert_eq!(status, self.part_ok, "part {n}: {text}");
        }
    }

    pub async fn complete(&self, key: &str, sha: &str) -> (u16, Value) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut status, mut v) = self
            .call(
                reqwest::Method::POST,
                &format!("/{key}/complete"),
                Some(json!({ "sha256": sha })),
            )
            .await;
        // 202: still being checked; the state endpoint tells the end.
        while status == 202 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            (status, v) = self
                .call(reqwest::Method::GET, &format!("/{key}"), None)
                .await;
            if v["state"] == "verifying" {
                status = 202;
            }
        }
        (status, v)
    }
}
