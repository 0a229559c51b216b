//! `wharf connector cors NAME`: the real binary prints the CORS rule a bucket
//! needs for browsers on wharf's origin (`[links] base_url`, or `--origin`):
//! S3's PutBucketCors JSON parses and allows that origin, GET and PUT, and
//! exposes ETag; services browsers never reach are refused.

mod common;

use std::process::Output;

fn run(config: &str, args: &[&str]) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wharf.toml");
    std::fs::write(&file, config).unwrap();
    let out = common::wharf_cmd(&dir.path().join("data"), Some(&file))
        .args(args)
        .output()
        .unwrap();
    (dir, out)
}

const S3: &str = "[[connector]]\nname = \"bucket\"\nscheme = \"s3\"\n[connector.options]\nbucket = \"wharf-files\"\nregion = \"us-east-1\"\n\n[[connector]]\nname = \"disk\"\nscheme = \"fs\"\n[connector.options]\nroot = \"files\"\n\n[[mount]]\npath = \"/\"\nconnector = \"bucket\"\n\n[links]\nbase_url = \"https://files.example.com/base\"\n";

fn s3_rule(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is the JSON alone")
}

#[test]
fn s3_rule_allows_the_base_url_origin() {
    let (_dir, out) = run(S3, &["connector", "cors", "bucket"]);
    let v = s3_rule(&out);
    let rule = &v["CORSRules"][0];
    assert_eq!(
        rule["AllowedOrigins"],
        serde_json::json!(["https://files.example.com"])
    );
    let methods: Vec<&str> = rule["AllowedMethods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(
        methods.contains(&"GET") && methods.contains(&"PUT"),
        "{methods:?}"
    );
    assert!(rule["ExposeHeaders"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h == "ETag"));
    let how = String::from_utf8_lossy(&out.stderr);
    assert!(
        how.contains("put-bucket-cors --bucket wharf-files"),
        "{how}"
    );
}

#[test]
fn origin_option_wins_and_fs_is_refused() {
    let (_dir, out) = run(
        S3,
        &[
            "connector",
            "cors",
            "bucket",
            "--origin",
            "http://127.0.0.1:8443/x",
        ],
    );
    assert_eq!(
        s3_rule(&out)["CORSRules"][0]["AllowedOrigins"][0],
        "http://127.0.0.1:8443"
    );
    let (_dir, out) = run(S3, &["connector", "cors", "disk"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no CORS rule"));
}
