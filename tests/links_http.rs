//! The link server with a real HTTP client: landing pages, the 404/410 answers,
//! escaping of what staff typed, and the protective headers.

mod common;

use common::gateway::Gateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landing_pages_answers_and_headers() {
    let gw = Gateway::start("fs", "").await;
    std::fs::write(gw.path("report.pdf"), b"%PDF-1.7 quarterly").unwrap();
    let file = gw.path("report.pdf");
    let (id, token) = gw.link(&[
        "send",
        file.to_str().unwrap(),
        "--title",
        "<script>alert(1)</script>",
        "--message",
        "a & b <img src=x>",
    ]);
    let base = format!("http://{}", gw.http_addr());
    let client = reqwest::Client::new();

    let resp = client
        .get(format!("{base}/l/{token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let body = resp.text().await.unwrap();
    assert!(!body.contains("<script>alert(1)"), "title must be escaped");
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!body.contains("<img src=x>") && body.contains("a &amp; b &lt;img src=x&gt;"));
    assert!(body.contains("report.pdf") && body.contains(&common::sha256(b"%PDF-1.7 quarterly")));

    // Unknown and malformed tokens: 404, whatever their shape.
    for bad in [
        "0".repeat(64),
        "short".into(),
        format!("{token}x"),
        "../../etc/passwd".into(),
    ] {
        let r = client.get(format!("{base}/l/{bad}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{bad}");
    }
    // Regenerated: the old URL is gone, the new one works.
    let out = gw
        .wharf()
        .args(["link", "regenerate", &id])
        .output()
        .unwrap();
    let new_token = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        client
            .get(format!("{base}/l/{token}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        client
            .get(format!("{base}/l/{new_token}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Revoked: 410 with a page saying so.
    gw.cli(&["link", "revoke", &id]);
    let r = client
        .get(format!("{base}/l/{new_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    assert!(r.text().await.unwrap().contains("withdrawn"));
    // Its downloads are refused the same way.
    let r = client
        .get(format!("{base}/l/{new_token}/f/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);

    // Deleted: the record is gone, the URL is unknown.
    gw.cli(&["link", "delete", &id]);
    let r = client
        .get(format!("{base}/l/{new_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Expired: 410 too.
    let (_, short) = gw.link(&["send", file.to_str().unwrap(), "--expires", "1s"]);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let r = client
        .get(format!("{base}/l/{short}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    assert!(r.text().await.unwrap().contains("expired"));
}
