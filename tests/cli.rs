//! The `wharf` command line, run as a real process: user accounts (passwords, keys,
//! permissions), the audit log of those changes, config errors that name file, line
//! and key, and `connector check` against the local default and a real S3 server
//! (moto). Every case asserts the exit code (0, 1 for errors, 2 for usage errors
//! from clap) and what is printed on stdout or stderr.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// No command of these tests may take longer than this (the S3 check included).
const DEADLINE: Duration = Duration::from_secs(120);

/// `wharf --data-dir DATA ...` with a clean environment: no config or data dir from
/// the caller's environment, a fixed log filter, and no terminal on stdin.
fn wharf_cmd(data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("WHARF_CONFIG")
        .env_remove("WHARF_DATA_DIR")
        .env_remove("WHARF_LOG")
        .env_remove("WHARF_TEST_S3_SECRET")
        .env_remove("SUDO_USER");
    cmd
}

/// Runs `cmd` with `stdin` as its standard input, killing it (and failing the test)
/// if it does not finish within [`DEADLINE`].
fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("starting wharf");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
    }
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            r.read_to_end(&mut buf).unwrap();
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn wharf(data: &Path, args: &[&str]) -> Output {
    run(wharf_cmd(data, args), None)
}

/// Like [`wharf`], with `input` on standard input.
fn wharf_stdin(data: &Path, args: &[&str], input: &str) -> Output {
    run(wharf_cmd(data, args), Some(input))
}

/// Like [`wharf`], with `--config CONFIG` and extra environment variables.
fn wharf_config(data: &Path, config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = wharf_cmd(data, &[]);
    cmd.arg("--config").arg(config).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd, None)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Asserts exit code 0 and returns stdout.
fn ok(out: Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    text(&out.stdout)
}

/// Asserts exit code `code` and that stderr contains every one of `needles`; returns
/// stderr.
fn fails(out: Output, code: i32, needles: &[&str]) -> String {
    assert_eq!(out.status.code(), Some(code), "{}", show(&out));
    let err = text(&out.stderr);
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{}", show(&out));
    }
    err
}

fn has_line(out: &str, line: &str) -> bool {
    out.lines().any(|l| l.trim_end() == line)
}

/// Parses JSON lines, failing on any line that is not a JSON object.
fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"));
            assert!(v.is_object(), "{l}");
            v
        })
        .collect()
}

fn user_names(data: &Path) -> Vec<String> {
    json_lines(&ok(wharf(data, &["user", "list", "--json"])))
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect()
}

/// The one `password: X` line of a command's output; checks X looks generated.
fn printed_password(out: &str) -> String {
    let pws: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("password: "))
        .collect();
    assert_eq!(pws.len(), 1, "expected one password line:\n{out}");
    let pw = pws[0];
    assert_eq!(pw.len(), 24, "{pw:?}");
    assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()), "{pw:?}");
    pw.to_string()
}

fn write(path: &Path, content: &str) {
    std::fs::write(path, content).unwrap();
}

#[test]
fn add_list_show_and_remove_a_user() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let password = "correct-horse-battery-staple-42";

    let out = ok(wharf_stdin(
        d,
        &[
            "user",
            "add",
            "alice",
            "--home",
            "/partners/acme",
            "--password-stdin",
            "--perms",
            "list,read",
            "--protocols",
            "sftp",
        ],
        &format!("{password}\n"),
    ));
    assert!(
        out.contains("created user alice (home /partners/acme)"),
        "{out}"
    );
    assert!(
        !out.contains(password),
        "a given password is not echoed: {out}"
    );

    let list = ok(wharf(d, &["user", "list"]));
    let row: Vec<&str> = list
        .lines()
        .find(|l| l.starts_with("alice "))
        .unwrap_or_else(|| panic!("alice not listed:\n{list}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        row,
        [
            "alice",
            "enabled",
            "/partners/acme",
            "list,read",
            "sftp",
            "0",
            "no"
        ]
    );

    let shown = ok(wharf(d, &["user", "show", "alice"]));
    for line in [
        "name:       alice",
        "status:     enabled",
        "home:       /partners/acme",
        "perms:      list,read",
        "protocols:  sftp",
        "password:   set",
        "keys:       0",
    ] {
        assert!(has_line(&shown, line), "missing {line:?} in:\n{shown}");
    }

    let json = ok(wharf(d, &["user", "list", "--json"]));
    assert!(!json.contains("$argon2"), "hash leaked: {json}");
    assert!(!json.contains(password), "password leaked: {json}");
    let users = json_lines(&json);
    assert_eq!(users.len(), 1, "{json}");
    let u = &users[0];
    assert_eq!(u["name"], "alice");
    assert_eq!(u["home"], "/partners/acme");
    assert_eq!(u["perms"], "list,read");
    assert_eq!(u["protocols"], "sftp");
    assert_eq!(u["has_password"], true);
    assert_eq!(u["enabled"], true);
    assert!(u.get("password_hash").is_none(), "{u}");
    let shown_json = ok(wharf(d, &["user", "show", "alice", "--json"]));
    assert!(!shown_json.contains("$argon2"), "{shown_json}");
    assert_eq!(json_lines(&shown_json)[0]["name"], "alice");

    let out = ok(wharf(d, &["user", "remove", "alice"]));
    assert!(out.contains("removed user alice"), "{out}");
    fails(
        wharf(d, &["user", "show", "alice"]),
        1,
        &["no user named \"alice\""],
    );
    fails(
        wharf(d, &["user", "remove", "alice"]),
        1,
        &["no user named \"alice\""],
    );
    assert!(user_names(d).is_empty());
}

#[test]
fn generated_passwords_are_printed_once_and_can_be_changed_or_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();

    let add = wharf(
        d,
        &["user", "add", "carol", "--home", "/", "--generate-password"],
    );
    let add_err = text(&add.stderr);
    let pw1 = printed_password(&ok(add));
    assert!(!add_err.contains(&pw1), "password in the log: {add_err}");
    assert!(has_line(
        &ok(wharf(d, &["user", "show", "carol"])),
        "password:   set"
    ));

    let out = ok(wharf(
        d,
        &["user", "passwd", "carol", "--generate-password"],
    ));
    let pw2 = printed_password(&out);
    assert_ne!(pw1, pw2);
    assert!(out.contains("changed the password of carol"), "{out}");

    // A password from stdin is set but never printed.
    let out = ok(wharf_stdin(
        d,
        &["user", "passwd", "carol", "--password-stdin"],
        "another-secret\n",
    ));
    assert!(!out.contains("password:"), "{out}");
    assert!(!out.contains("another-secret"), "{out}");

    fails(
        wharf(d, &["user", "passwd", "carol"]),
        1,
        &["--password-stdin", "--remove"],
    );
    fails(
        wharf(d, &["user", "passwd", "nobody", "--generate-password"]),
        1,
        &["no user named \"nobody\""],
    );

    // Removing the only credential would lock the user out: refused, nothing changes.
    fails(
        wharf(d, &["user", "passwd", "carol", "--remove"]),
        1,
        &["no SSH key"],
    );
    assert!(has_line(
        &ok(wharf(d, &["user", "show", "carol"])),
        "password:   set"
    ));

    // With a key, the password can go.
    let key = d.join("carol_key");
    let gen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "carol@test", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(gen.success());
    let pubkey = format!("{}.pub", key.display());
    ok(wharf(d, &["user", "key", "add", "carol", &pubkey]));
    let out = ok(wharf(d, &["user", "passwd", "carol", "--remove"]));
    assert!(out.contains("removed the password of carol"), "{out}");
    assert!(!out.contains("password: "), "{out}");
    let shown = ok(wharf(d, &["user", "show", "carol"]));
    assert!(has_line(&shown, "password:   none (key only)"), "{shown}");
    assert!(has_line(&shown, "keys:       1"), "{shown}");
    let users = json_lines(&ok(wharf(d, &["user", "list", "--json"])));
    assert_eq!(users[0]["has_password"], false);
}

#[test]
fn ssh_keys_are_added_shown_by_fingerprint_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let key = d.join("k");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice@test", "-f"])
        .arg(&key)
        .stdin(Stdio::null())
        .status()
        .expect("running ssh-keygen (openssh-client)");
    assert!(status.success());
    let pub_key = d.join("k.pub");
    let listed = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&pub_key)
        .output()
        .unwrap();
    assert!(listed.status.success());
    // "256 SHA256:... alice@test (ED25519)"
    let fp = text(&listed.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(fp.starts_with("SHA256:"), "{fp}");
    let pub_path = pub_key.to_str().unwrap();

    let out = ok(wharf(
        d,
        &["user", "add", "bob", "--home", "/", "--key", pub_path],
    ));
    assert!(out.contains("created user bob"), "{out}");
    assert!(
        !out.contains("password:"),
        "no password was asked for: {out}"
    );

    let shown = ok(wharf(d, &["user", "show", "bob"]));
    assert!(has_line(&shown, "keys:       1"), "{shown}");
    assert!(has_line(&shown, "password:   none (key only)"), "{shown}");
    assert!(
        has_line(&shown, &format!("  {fp} ssh-ed25519 alice@test")),
        "fingerprint {fp} not shown:\n{shown}"
    );
    let json = json_lines(&ok(wharf(d, &["user", "show", "bob", "--json"])));
    assert_eq!(json[0]["keys"][0]["fingerprint"], fp.as_str());

    fails(
        wharf(d, &["user", "key", "add", "bob", pub_path]),
        1,
        &["already has key", &fp],
    );

    let out = ok(wharf(d, &["user", "key", "remove", "bob", &fp]));
    assert!(out.contains(&format!("removed key {fp} from bob")), "{out}");
    let shown = ok(wharf(d, &["user", "show", "bob"]));
    assert!(has_line(&shown, "keys:       0"), "{shown}");
    assert!(!shown.contains(&fp), "{shown}");
    fails(
        wharf(d, &["user", "key", "remove", "bob", &fp]),
        1,
        &["has no key", &fp],
    );

    // `-` reads the key from standard input.
    let key_text = std::fs::read_to_string(&pub_key).unwrap();
    let out = ok(wharf_stdin(
        d,
        &["user", "key", "add", "bob", "-"],
        &key_text,
    ));
    assert!(out.contains(&format!("added key {fp}")), "{out}");
    assert!(ok(wharf(d, &["user", "show", "bob"])).contains(&fp));
}

#[test]
fn bad_input_is_refused_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();

    let err = fails(
        wharf(d, &["user", "add", "x", "--home", "/", "--frobnicate"]),
        2,
        &["--frobnicate"],
    );
    assert!(err.contains("unexpected argument"), "{err}");

    ok(wharf(
        d,
        &["user", "add", "dup", "--home", "/", "--generate-password"],
    ));
    fails(
        wharf(
            d,
            &["user", "add", "dup", "--home", "/", "--generate-password"],
        ),
        1,
        &["user \"dup\" already exists"],
    );

    let garbage = d.join("garbage.pub");
    write(&garbage, "this is not a key\n");
    fails(
        wharf(
            d,
            &[
                "user",
                "add",
                "x",
                "--home",
                "/",
                "--key",
                garbage.to_str().unwrap(),
            ],
        ),
        1,
        &["not an OpenSSH public key", "garbage.pub"],
    );
    fails(
        wharf(
            d,
            &[
                "user",
                "add",
                "x",
                "--home",
                "/",
                "--key",
                d.join("missing.pub").to_str().unwrap(),
            ],
        ),
        1,
        &["missing.pub"],
    );

    fails(
        wharf(d, &["user", "add", "x", "--home", "/"]),
        1,
        &["--password-stdin"],
    );
    fails(
        wharf(
            d,
            &[
                "user",
                "add",
                "../evil",
                "--home",
                "/",
                "--generate-password",
            ],
        ),
        1,
        &["invalid user name"],
    );
    let err = fails(
        wharf(
            d,
            &[
                "user",
                "add",
                "x",
                "--home",
                "/",
                "--generate-password",
                "--perms",
                "read,fly",
            ],
        ),
        2,
        &["\"fly\""],
    );
    assert!(err.contains("unknown permission"), "{err}");
    fails(
        wharf_stdin(
            d,
            &["user", "add", "x", "--home", "/", "--password-stdin"],
            "",
        ),
        1,
        &["no password on standard input"],
    );
    fails(
        wharf_stdin(
            d,
            &["user", "add", "x", "--home", "/", "--password-stdin"],
            "\n",
        ),
        1,
        &["no password on standard input"],
    );

    // Nothing above created a user, not even half of one.
    assert_eq!(user_names(d), ["dup"]);
}

#[test]
fn config_errors_name_the_file_the_line_and_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    // Config errors come before anything is touched: the data dir is never created.
    let data = tmp.path().join("data");

    let bad_mount = tmp.path().join("bad-mount.toml");
    write(
        &bad_mount,
        "[[connector]]\nname = \"a\"\nscheme = \"memory\"\n\n[[mount]]\npath = \"/\"\nconnector = \"b\"\n",
    );
    let err = fails(
        wharf_config(&data, &bad_mount, &["user", "list"], &[]),
        1,
        &[
            bad_mount.to_str().unwrap(),
            "line 7",
            "mount[0].connector",
            "no connector named \"b\"",
        ],
    );
    assert!(
        err.contains("connector = \"b\""),
        "the line is quoted: {err}"
    );

    let typo = tmp.path().join("typo.toml");
    write(&typo, "[storage]\nbuffer_sise = 1\n");
    fails(
        wharf_config(&data, &typo, &["user", "list"], &[]),
        1,
        &[typo.to_str().unwrap(), "line 2", "buffer_sise"],
    );

    let env = tmp.path().join("env.toml");
    write(
        &env,
        "[[connector]]\nname = \"s3\"\nscheme = \"s3\"\n[connector.options]\nbucket = \"b\"\nsecret_access_key = \"${WHARF_TEST_UNSET_VAR_XYZ}\"\n\n[[mount]]\npath = \"/\"\nconnector = \"s3\"\n",
    );
    let mut cmd = wharf_cmd(&data, &["--config", env.to_str().unwrap(), "user", "list"]);
    cmd.env_remove("WHARF_TEST_UNSET_VAR_XYZ");
    fails(
        run(cmd, None),
        1,
        &[
            "WHARF_TEST_UNSET_VAR_XYZ is not set",
            "line 6",
            "secret_access_key",
        ],
    );

    let nowhere = tmp.path().join("no-such-file.toml");
    fails(
        wharf_config(&data, &nowhere, &["user", "list"], &[]),
        1,
        &["no-such-file.toml", "cannot read"],
    );

    assert!(!data.exists(), "a bad config must not create the data dir");
}

#[test]
fn user_changes_are_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let step = |args: &[&str]| {
        let mut cmd = wharf_cmd(d, args);
        cmd.env("USER", "auditor");
        ok(run(cmd, None))
    };
    step(&["user", "add", "dave", "--home", "/", "--generate-password"]);
    step(&["user", "disable", "dave"]);
    assert!(has_line(
        &step(&["user", "show", "dave"]),
        "status:     disabled"
    ));
    step(&["user", "enable", "dave"]);
    step(&["user", "remove", "dave"]);

    let table = ok(wharf(d, &["audit"]));
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("TIME") && header.contains("ACTION"),
        "{table}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    let actions: Vec<&str> = rows.iter().map(|r| r[4]).collect();
    assert_eq!(
        actions,
        ["user_remove", "user_enable", "user_disable", "user_add"],
        "newest first:\n{table}"
    );
    for r in &rows {
        assert_eq!(&r[1..4], ["cli", "-", "cli:auditor"], "{table}");
        assert_eq!(r[5], "ok", "{table}");
        assert_eq!(r[7], "user:dave", "{table}");
    }

    let json = ok(wharf(d, &["audit", "--json", "--action", "user_add"]));
    let events = json_lines(&json);
    assert_eq!(events.len(), 1, "{json}");
    for e in &events {
        assert_eq!(e["action"], "user_add");
        assert_eq!(e["outcome"], "ok");
        assert_eq!(e["protocol"], "cli");
        assert_eq!(e["actor"], "cli:auditor");
        assert_eq!(e["path"], "user:dave");
        let time = e["time"].as_str().expect("a time field");
        assert!(
            humantime::parse_rfc3339(time).is_ok(),
            "time is RFC 3339: {time}"
        );
    }

    let recent = json_lines(&ok(wharf(d, &["audit", "--json", "--since", "1h"])));
    assert_eq!(recent.len(), 4);
    let mine = json_lines(&ok(wharf(d, &["audit", "--json", "--user", "cli:auditor"])));
    assert_eq!(mine.len(), 4);
    let limited = json_lines(&ok(wharf(d, &["audit", "--json", "--limit", "2"])));
    assert_eq!(limited.len(), 2);
    assert_eq!(limited[0]["action"], "user_remove");

    let since = ok(wharf(d, &["audit", "--since", "2026-01-01T00:00:00Z"]));
    assert!(since.starts_with("TIME"), "{since}");
    let future = ok(wharf(
        d,
        &["audit", "--json", "--since", "2999-01-01T00:00:00Z"],
    ));
    assert_eq!(future, "", "nothing happened after 2999");

    fails(
        wharf(d, &["audit", "--since", "yesterdayish"]),
        1,
        &["--since \"yesterdayish\""],
    );

    let nobody = ok(wharf(d, &["audit", "--user", "nobody"]));
    assert_eq!(nobody.lines().count(), 1, "only the header:\n{nobody}");
    assert!(nobody.starts_with("TIME"), "{nobody}");
    assert_eq!(ok(wharf(d, &["audit", "--json", "--user", "nobody"])), "");
}

#[test]
fn connectors_and_config_of_the_embedded_default() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();

    let out = ok(wharf(d, &["connector", "check", "files"]));
    assert!(out.contains("connector files (scheme fs)"), "{out}");
    assert!(out.contains("root listed:"), "{out}");
    assert!(has_line(&out, "capabilities:"), "{out}");
    let rename = out
        .lines()
        .find(|l| l.trim_start().starts_with("rename "))
        .unwrap_or_else(|| panic!("no rename capability:\n{out}"));
    assert!(rename.ends_with("yes"), "fs can rename: {rename}");

    fails(
        wharf(d, &["connector", "check", "nope"]),
        1,
        &["no connector named \"nope\"", "files", "transfers"],
    );

    let list = ok(wharf(d, &["connector", "list"]));
    let rows: Vec<Vec<&str>> = list
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["files", "fs", "mounted", "at:", "/"],
            vec!["transfers", "fs", "mounted", "at:", "-"],
        ],
        "{list}"
    );

    let out = ok(wharf(d, &["config", "check"]));
    assert!(out.contains("embedded default"), "{out}");
    assert!(has_line(&out, "config OK"), "{out}");
    assert!(
        out.contains(&format!("data directory: {}", d.display())),
        "{out}"
    );
}

/// A config with one S3 connector on the moto server, its secret taken from
/// `${WHARF_TEST_S3_SECRET}`.
fn s3_config(bucket: &str) -> String {
    r#"[[connector]]
name = "s3"
scheme = "s3"

[connector.options]
bucket = "BUCKET"
endpoint = "ENDPOINT"
region = "us-east-1"
access_key_id = "wharf-test"
secret_access_key = "${WHARF_TEST_S3_SECRET}"
disable_config_load = "true"

[[mount]]
path = "/"
connector = "s3"
"#
    .replace("BUCKET", bucket)
    .replace("ENDPOINT", common::s3_endpoint())
}

#[test]
fn connector_check_on_a_real_s3_server() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let secret = "s3-secret-from-env-9f8e7d";
    let env = [("WHARF_TEST_S3_SECRET", secret)];

    let good = d.join("s3.toml");
    write(&good, &s3_config(&common::new_bucket()));
    let out = wharf_config(d, &good, &["connector", "check", "s3"], &env);
    let err = text(&out.stderr);
    let stdout = ok(out);
    assert!(stdout.contains("connector s3 (scheme s3)"), "{stdout}");
    assert!(has_line(&stdout, "root listed: 0 entries"), "{stdout}");
    assert!(has_line(&stdout, "capabilities:"), "{stdout}");
    assert!(!stdout.contains(secret) && !err.contains(secret));

    // The secret comes from the environment: without the variable the config fails.
    fails(
        wharf_config(d, &good, &["connector", "check", "s3"], &[]),
        1,
        &["WHARF_TEST_S3_SECRET is not set"],
    );

    let wrong = d.join("wrong-bucket.toml");
    write(&wrong, &s3_config("wharf-test-never-created"));
    let err = fails(
        wharf_config(d, &wrong, &["connector", "check", "s3"], &env),
        1,
        &["connector s3: listing the root failed"],
    );
    assert!(!err.contains(secret), "{err}");
}

#[test]
fn key_and_password_can_be_required() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let key = d.join("k");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "k", "-f"])
        .arg(&key)
        .status()
        .unwrap()
        .success());
    let pubkey = format!("{}.pub", key.display());

    // Both factors need both credentials.
    fails(
        wharf(
            d,
            &["user", "add", "a", "--home", "/", "--key-and-password"],
        ),
        2,
        &["--key"],
    );
    fails(
        wharf(
            d,
            &[
                "user",
                "add",
                "a",
                "--home",
                "/",
                "--key",
                &pubkey,
                "--key-and-password",
            ],
        ),
        1,
        &["needs a password too"],
    );
    ok(wharf_stdin(
        d,
        &[
            "user",
            "add",
            "a",
            "--home",
            "/",
            "--key",
            &pubkey,
            "--key-and-password",
            "--password-stdin",
        ],
        "pw\n",
    ));
    let shown = ok(wharf(d, &["user", "show", "a"]));
    assert!(has_line(&shown, "login:      key and password"), "{shown}");

    ok(wharf(d, &["user", "auth", "a", "--require", "either"]));
    let shown = ok(wharf(d, &["user", "show", "a"]));
    assert!(has_line(&shown, "login:      key or password"), "{shown}");

    // A key-only user cannot be switched to both.
    ok(wharf(
        d,
        &["user", "add", "b", "--home", "/", "--key", &pubkey],
    ));
    fails(
        wharf(d, &["user", "auth", "b", "--require", "both"]),
        1,
        &["needs both an SSH key and a password"],
    );
    fails(
        wharf(d, &["user", "auth", "b", "--require", "sometimes"]),
        2,
        &["sometimes"],
    );
}

#[test]
fn clients_contacts_and_references_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for (name, perms) in [("alice", "all"), ("bob", "all"), ("viewer", "list,read")] {
        ok(wharf(
            d,
            &[
                "user",
                "add",
                name,
                "--home",
                &format!("/{name}"),
                "--generate-password",
                "--perms",
                perms,
            ],
        ));
    }
    let out = ok(wharf(
        d,
        &[
            "client",
            "add",
            "Acme Corp",
            "--as",
            "alice",
            "--notes",
            "big one",
        ],
    ));
    assert!(out.contains("added client Acme Corp (1)"), "{out}");
    fails(
        wharf(d, &["client", "add", "Acme Corp", "--as", "alice"]),
        1,
        &["already a client named \"Acme Corp\""],
    );
    let out = ok(wharf(
        d,
        &[
            "contact",
            "add",
            "acme corp",
            "Wile@Acme.example",
            "--name",
            "Wile",
            "--as",
            "alice",
        ],
    ));
    assert!(out.contains("added contact wile@acme.example"), "{out}");
    fails(
        wharf(d, &["contact", "add", "1", "nope", "--as", "alice"]),
        1,
        &["not an e-mail address"],
    );
    // Bob does not see alice's private client; shared, he sees but cannot change it.
    fails(
        wharf(d, &["client", "show", "1", "--as", "bob"]),
        1,
        &["no client with id 1"],
    );
    ok(wharf(
        d,
        &[
            "client",
            "edit",
            "Acme Corp",
            "--shared",
            "on",
            "--as",
            "alice",
        ],
    ));
    let listed = ok(wharf(d, &["client", "list", "--as", "bob", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(v[0]["name"], "Acme Corp");
    assert_eq!(v[0]["contacts"][0]["email"], "wile@acme.example");
    fails(
        wharf(d, &["client", "edit", "1", "--name", "Mine", "--as", "bob"]),
        1,
        &["belongs to alice"],
    );
    // A link filed under the client with a reference; show prints both; edit
    // changes them.
    std::fs::create_dir_all(d.join("files/alice")).unwrap();
    std::fs::write(d.join("files/alice/plan.txt"), b"plan").unwrap();
    let out = ok(wharf(
        d,
        &[
            "link",
            "share",
            "/plan.txt",
            "--as",
            "alice",
            "--client",
            "Acme Corp",
            "--reference",
            "ticket:OPS-42",
        ],
    ));
    let id = out.split_whitespace().nth(3).unwrap().to_string();
    ok(wharf(
        d,
        &[
            "link",
            "share",
            "/plan.txt",
            "--as",
            "alice",
            "--title",
            "Unfiled",
        ],
    ));
    for filter in [
        &["--client", "Acme Corp"][..],
        &["--reference", "ticket:OPS"],
        &["--search", "ops-42", "--as", "alice"],
    ] {
        let mut args = vec!["link", "list"];
        args.extend_from_slice(filter);
        let list = ok(wharf(d, &args));
        let rows: Vec<&str> = list.lines().skip(1).collect();
        assert_eq!(rows.len(), 1, "{filter:?}: {list}");
        assert!(rows[0].starts_with(&id), "{list}");
    }
    assert_eq!(ok(wharf(d, &["link", "list"])).lines().count(), 3);
    fails(
        wharf(d, &["link", "list", "--status", "lost"]),
        1,
        &["unknown status"],
    );
    let shown = ok(wharf(d, &["link", "show", &id]));
    assert!(has_line(&shown, "client:      Acme Corp (1)"), "{shown}");
    assert!(has_line(&shown, "reference:   ticket OPS-42"), "{shown}");
    ok(wharf(
        d,
        &[
            "link",
            "edit",
            &id,
            "--reference",
            "https://pm.example/7",
            "--client",
            "",
        ],
    ));
    let shown = ok(wharf(d, &["link", "show", &id]));
    assert!(
        has_line(&shown, "reference:   other https://pm.example/7"),
        "{shown}"
    );
    assert!(!shown.contains("client:"), "{shown}");
    // Without the share permission, --as is refused; `user share` grants it.
    fails(
        wharf(d, &["link", "share", "/plan.txt", "--as", "viewer"]),
        1,
        &["viewer may not create links"],
    );
    let out = ok(wharf(d, &["user", "share", "viewer", "on"]));
    assert!(out.contains("viewer may now create links"), "{out}");
    let shown = ok(wharf(d, &["user", "show", "viewer", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["perms"], "list,read,share");
    assert_eq!(v["share"], true);
    // The audit rows name the administrator running the command as the user.
    let audit = ok(wharf(d, &["audit", "--json"]));
    let rows = json_lines(&audit);
    let created = rows
        .iter()
        .find(|r| r["action"] == "link_create" && r["outcome"] == "ok")
        .expect("a link_create row");
    assert!(
        created["detail"]
            .as_str()
            .unwrap()
            .contains("acting as alice"),
        "{created}"
    );
    assert!(
        created["actor"].as_str().unwrap().starts_with("cli:"),
        "{created}"
    );
    assert!(rows
        .iter()
        .any(|r| r["action"] == "link_create" && r["outcome"] == "denied"));
    assert!(rows
        .iter()
        .any(|r| r["action"] == "client_create" && r["path"] == "client:1"));
    ok(wharf(d, &["contact", "remove", "1", "--as", "alice"]));
    ok(wharf(d, &["client", "remove", "1", "--as", "alice"]));
    assert!(
        ok(wharf(d, &["client", "list", "--as", "alice"]))
            .lines()
            .count()
            == 1
    );
}
