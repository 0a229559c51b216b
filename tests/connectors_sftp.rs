//! One SFTP round trip and one link download through a gateway mounted on each
//! network connector that `tests/vfs_behaviour.rs` covers only below the
//! gateway: OpenSSH `sftp` puts a file (several writes) and gets it back with
//! the same SHA-256, and a share link of it serves it whole and in a range, on GCS
//! (fake-gcs-server), Azure Blob (Azurite), WebDAV (wsgidav) and S3 on s3s-fs
//! (a second S3 implementation beside moto), each started on 127.0.0.1 by the
//! test and stopped with it.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::gateway::{Gateway, SSH_OPTS};
use common::{pattern, sha256, Emulator};
use tokio::process::Command;

/// A connector named `remote` mounted at `/`, as config lines for the gateway.
fn mount_toml(scheme: &str, options: &BTreeMap<String, String>) -> String {
    let opts: Vec<String> = options
        .iter()
        .map(|(k, v)| format!("{k} = \"{v}\""))
        .collect();
    format!(
        "[[connector]]\nname = \"remote\"\nscheme = \"{scheme}\"\n[connector.options]\n{}\n\n[[mount]]\npath = \"/\"\nconnector = \"remote\"\n",
        opts.join("\n")
    )
}

async fn round_trip(scheme: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, options): (Emulator, _) = match scheme {
        "gcs" => common::gcs_server(tmp.path()),
        "azblob" => common::azurite_server(tmp.path()),
        "webdav" => common::webdav_server(tmp.path()),
        "s3s" => common::s3s_server(tmp.path()),
        other => panic!("unknown scheme {other}"),
    };
    let (scheme, dir) = match scheme {
        // s3s-fs answers 500 to HEAD of a key that is a folder on its disk
        // (see `Caps` in tests/vfs_behaviour.rs): the file goes in the root.
        "s3s" => ("s3", ""),
        other => (other, "in/"),
    };
    let gw = Gateway::start("fs", &mount_toml(scheme, &options)).await;
    let key = gw.keygen("k");
    gw.add_user("acme", "/", "all", None, Some(&key));
    // Several SFTP writes and several storage chunks.
    let data = pattern(2 * 1024 * 1024 + 77, 3);
    std::fs::write(gw.path("up.bin"), &data).unwrap();
    let batch = gw.path("batch.txt");
    let mkdir = if dir.is_empty() { "" } else { "mkdir in\n" };
    std::fs::write(
        &batch,
        format!("{mkdir}put up.bin {dir}up.bin\nget {dir}up.bin down.bin\n"),
    )
    .unwrap();
    let mut cmd = Command::new("sftp");
    cmd.current_dir(gw.dir.path())
        .args(SSH_OPTS)
        .arg("-P")
        .arg(gw.sftp_addr().port().to_string())
        .arg("-i")
        .arg(&key)
        .arg("-b")
        .arg(&batch)
        .arg("acme@127.0.0.1")
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("sftp finished in time")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{scheme}: {text}");
    let back = std::fs::read(gw.path("down.bin")).unwrap();
    assert_eq!(sha256(&back), sha256(&data), "{scheme}");
    assert_eq!(
        gw.stored_sha(&format!("/{dir}up.bin")).await.as_deref(),
        Some(sha256(&data).as_str()),
        "{scheme}: the stored object"
    );

    // The same file through a share link: whole, and a range.
    let path = format!("/{dir}up.bin");
    let (_, token) = gw.link(&["share", &path, "--as", "acme"]);
    let url = gw.url(&token);
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    let file = format!("{url}{}", common::file_path(&page));
    let r = c.get(&file).send().await.unwrap();
    assert_eq!(r.status(), 200, "{scheme}: link download");
    let body = r.bytes().await.unwrap();
    assert_eq!(sha256(&body), sha256(&data), "{scheme}: link download");
    let r = c
        .get(&file)
        .header("Range", "bytes=1000000-1099999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206, "{scheme}: ranged link download");
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        &data[1_000_000..1_100_000],
        "{scheme}: ranged link download"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_round_trip_on_gcs() {
    round_trip("gcs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_round_trip_on_azblob() {
    round_trip("azblob").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_round_trip_on_webdav() {
    round_trip("webdav").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_round_trip_on_s3s() {
    round_trip("s3s").await;
}
