//! Shared links managed with the real `wharf link` binary: send copies (local files
//! and stored paths) with their SHA-256, shares that copy nothing, revoke,
//! regenerate, extend, delete, retention, the admin policy, and bad input that
//! leaves nothing half-made.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{pattern, sha256};

fn wharf(data: &Path, config: Option<&Path>, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.arg("--data-dir").arg(data);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.args(args)
        .env_remove("WHARF_CONFIG")
        .env_remove("WHARF_DATA_DIR")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(out: Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn fails(out: Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
}

/// The public id and URL from `link send|share` output.
fn created(out: &str) -> (String, String) {
    let id = out.split_whitespace().nth(3).unwrap().to_string();
    let url = out.lines().nth(1).unwrap().to_string();
    (id, url)
}

fn field(show: &str, name: &str) -> String {
    show.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {show}"))
        .trim()
        .to_string()
}

fn setup() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    ok(wharf(
        &d,
        None,
        &["user", "add", "admin", "--home", "/", "--password-stdin"],
        Some("pw\n"),
    ));
    ok(wharf(&d, None, &["user", "admin", "admin", "on"], None));
    ok(wharf(
        &d,
        None,
        &[
            "user",
            "add",
            "carol",
            "--home",
            "/carol",
            "--password-stdin",
        ],
        Some("pw\n"),
    ));
    tmp
}

#[test]
fn send_copies_files_with_their_sha256() {
    let tmp = setup();
    let d = tmp.path().join("data");
    let data = pattern(2_500_000, 4);
    let local = tmp.path().join("report.pdf");
    std::fs::write(&local, &data).unwrap();
    let out = ok(wharf(
        &d,
        None,
        &[
            "link",
            "send",
            local.to_str().unwrap(),
            "--to",
            "bob@example.com",
            "--title",
            "Q3",
            "--one-time",
        ],
        None,
    ));
    let (id, url) = created(&out);
    assert!(
        url.starts_with("http://127.0.0.1:8080/l/")
            && url.len() == "http://127.0.0.1:8080/l/".len() + 64,
        "{url}"
    );
    let copy = d.join("transfers").join(&id).join("report.pdf");
    assert_eq!(
        sha256(&std::fs::read(&copy).unwrap()),
        sha256(&data),
        "the copy is byte-equal"
    );
    let show = ok(wharf(&d, None, &["link", "show", &id], None));
    assert_eq!(field(&show, "status"), "active");
    assert_eq!(field(&show, "uses"), "0/1");
    assert!(show.contains(&sha256(&data)), "{show}");
    assert_eq!(field(&show, "url"), url, "the URL can be shown again");
    let db = std::fs::read(d.join("wharf.db")).unwrap();
    assert!(
        !db.windows(64)
            .any(|w| w == url.rsplit('/').next().unwrap().as_bytes()),
        "only the token's hash is stored"
    );

    // From a stored path (any connector), as the creating user sees it.
    std::fs::create_dir_all(d.join("files/carol")).unwrap();
    std::fs::write(d.join("files/carol/notes.txt"), b"notes").unwrap();
    let out = ok(wharf(
        &d,
        None,
        &[
            "link",
            "send",
            "/notes.txt",
            "--from-connector",
            "--as",
            "carol",
        ],
        None,
    ));
    let (id2, _) = created(&out);
    assert_eq!(
        std::fs::read(d.join("transfers").join(&id2).join("notes.txt")).unwrap(),
        b"notes"
    );

    // Deleting the link deletes its copies.
    ok(wharf(&d, None, &["link", "delete", &id], None));
    assert!(!copy.exists());
    fails(
        wharf(&d, None, &["link", "show", &id], None),
        "no link with id",
    );
}

#[test]
fn bad_input_leaves_nothing_behind() {
    let tmp = setup();
    let d = tmp.path().join("data");
    let good = tmp.path().join("a.txt");
    std::fs::write(&good, b"a").unwrap();
    fails(
        wharf(
            &d,
            None,
            &["link", "send", good.to_str().unwrap(), "/no/such/file"],
            None,
        ),
        "No such file",
    );
    fails(
        wharf(
            &d,
            None,
            &[
                "link",
                "send",
                good.to_str().unwrap(),
                "--to",
                "not-an-address",
            ],
            None,
        ),
        "not an e-mail address",
    );
    fails(
        wharf(
            &d,
            None,
            &[
                "link",
                "send",
                good.to_str().unwrap(),
                "--expires",
                "2001-01-01",
            ],
            None,
        ),
        "past",
    );
    fails(
        wharf(
            &d,
            None,
            &["link", "send", good.to_str().unwrap(), "--as", "nobody"],
            None,
        ),
        "no user named",
    );
    fails(
        wharf(&d, None, &["link", "share", "/carol/missing"], None),
        "no such file",
    );
    let list = ok(wharf(&d, None, &["link", "list"], None));
    assert_eq!(list.lines().count(), 1, "no link was created: {list}");
    if let Ok(entries) = std::fs::read_dir(d.join("transfers")) {
        for e in entries {
            let name = e.unwrap().file_name();
            assert_eq!(name, ".wharf-partial", "only the staging dir may exist");
        }
    }
}

#[test]
fn share_revoke_regenerate_extend_and_retention() {
    let tmp = setup();
    let d = tmp.path().join("data");
    std::fs::create_dir_all(d.join("files/carol/q3")).unwrap();
    std::fs::write(d.join("files/carol/q3/sum.txt"), b"sum").unwrap();
    let config = tmp.path().join("wharf.toml");
    std::fs::write(
        &config,
        "[links]\nretention_days = 0\nbase_url = \"https://files.example.com/\"\n",
    )
    .unwrap();
    let c = Some(config.as_path());

    let out = ok(wharf(
        &d,
        c,
        &[
            "link",
            "share",
            "/q3",
            "--as",
            "carol",
            "--allow-email",
            "Bob@Example.com",
            "--expires",
            "3d",
        ],
        None,
    ));
    let (share, url) = created(&out);
    assert!(url.starts_with("https://files.example.com/l/"), "{url}");
    let show = ok(wharf(&d, c, &["link", "show", &share], None));
    assert_eq!(field(&show, "allowed"), "bob@example.com");
    assert!(show.contains("folder"), "{show}");

    let new_url = ok(wharf(&d, c, &["link", "regenerate", &share], None));
    assert!(!new_url.contains(&url), "a new token");
    ok(wharf(
        &d,
        c,
        &["link", "extend", &share, "--expires", "2w"],
        None,
    ));
    ok(wharf(&d, c, &["link", "revoke", &share], None));
    assert_eq!(
        field(&ok(wharf(&d, c, &["link", "show", &share], None)), "status"),
        "revoked"
    );
    fails(
        wharf(&d, c, &["link", "extend", &share, "--expires", "1d"], None),
        "revoked",
    );

    // A revoked send link past retention loses its copies; a share target stays.
    let f = tmp.path().join("x.bin");
    std::fs::write(&f, b"x").unwrap();
    let (send, _) = created(&ok(wharf(
        &d,
        c,
        &["link", "send", f.to_str().unwrap()],
        None,
    )));
    ok(wharf(&d, c, &["link", "revoke", &send], None));
    let purged = ok(wharf(&d, c, &["link", "purge"], None));
    assert!(purged.contains("purged the copies of 1 "), "{purged}");
    assert!(!d.join("transfers").join(&send).join("x.bin").exists());
    assert!(
        d.join("files/carol/q3/sum.txt").exists(),
        "share targets are never deleted"
    );
    let revoked = ok(wharf(&d, c, &["link", "list", "--status", "revoked"], None));
    assert_eq!(
        revoked.lines().count(),
        3,
        "both links are kept for the record: {revoked}"
    );

    let audit = ok(wharf(
        &d,
        c,
        &["audit", "--action", "link_revoke", "--json"],
        None,
    ));
    assert_eq!(audit.lines().count(), 2);
}

#[test]
fn admin_policy_applies() {
    let tmp = setup();
    let d = tmp.path().join("data");
    let config = tmp.path().join("wharf.toml");
    std::fs::write(
        &config,
        "[links]\nrequire_password = true\nallow_never = false\nmax_expiry = \"14days\"\n",
    )
    .unwrap();
    let c = Some(config.as_path());
    let f = tmp.path().join("x.bin");
    std::fs::write(&f, b"x").unwrap();
    let p = f.to_str().unwrap();
    fails(wharf(&d, c, &["link", "send", p], None), "needs a password");
    fails(
        wharf(
            &d,
            c,
            &["link", "send", p, "--password-stdin", "--expires", "never"],
            Some("s\n"),
        ),
        "never expire",
    );
    fails(
        wharf(
            &d,
            c,
            &["link", "send", p, "--password-stdin", "--expires", "1m"],
            Some("s\n"),
        ),
        "at most",
    );
    let out = ok(wharf(
        &d,
        c,
        &["link", "send", p, "--password-stdin", "--expires", "2w"],
        Some("s\n"),
    ));
    let (id, _) = created(&out);
    assert_eq!(
        field(&ok(wharf(&d, c, &["link", "show", &id], None)), "password"),
        "yes"
    );
}

/// A user whose home is not `/` shares with paths as they see them (their
/// home is their `/`); a path typed as the storage holds it is refused with
/// words that say so, naming the path as typed.
#[test]
fn share_takes_paths_in_the_users_own_view() {
    let tmp = setup();
    let d = tmp.path().join("data");
    ok(wharf(
        &d,
        None,
        &[
            "user",
            "add",
            "dave",
            "--home",
            "/partners/dave",
            "--password-stdin",
        ],
        Some("pw\n"),
    ));
    std::fs::create_dir_all(d.join("files/partners/dave/q3")).unwrap();
    std::fs::write(d.join("files/partners/dave/q3/a.txt"), b"a").unwrap();
    let (id, _) = created(&ok(wharf(
        &d,
        None,
        &["link", "share", "/q3/a.txt", "q3", "--as", "dave"],
        None,
    )));
    let show = ok(wharf(&d, None, &["link", "show", &id], None));
    assert!(show.contains("a.txt") && show.contains("q3"), "{show}");
    let out = wharf(
        &d,
        None,
        &["link", "share", "/partners/dave/q3/a.txt", "--as", "dave"],
        None,
    );
    fails(out.clone(), "/partners/dave/q3/a.txt: no such file");
    fails(out, "your home folder is /");
}

#[test]
fn edit_resend_restore_and_a_database_copied_elsewhere() {
    let tmp = setup();
    let d = tmp.path().join("data");
    let f = tmp.path().join("plan.txt");
    std::fs::write(&f, b"the plan").unwrap();
    let out = ok(wharf(
        &d,
        None,
        &[
            "link",
            "send",
            f.to_str().unwrap(),
            "--as",
            "carol",
            "--to",
            "dan@example.com",
        ],
        None,
    ));
    let (id, url) = created(&out);
    let token = url.rsplit('/').next().unwrap().to_string();
    assert_eq!(
        field(&ok(wharf(&d, None, &["link", "show", &id], None)), "url"),
        url
    );

    // Resend mails the same URL again.
    let resent = ok(wharf(&d, None, &["link", "resend", &id], None));
    assert_eq!(resent.lines().last().unwrap(), url, "{resent}");
    let mails: Vec<String> = std::fs::read_dir(d.join("outbox"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .map(|m| m.replace("=\r\n", "").replace("=\n", ""))
        .collect();
    assert_eq!(mails.len(), 2);
    assert!(mails.iter().all(|m| m.contains(&token)), "{mails:?}");

    // Edit: password from stdin, allowed e-mails, usage limit, expiry, title.
    let out = ok(wharf(
        &d,
        None,
        &[
            "link",
            "edit",
            &id,
            "--title",
            "Plan B",
            "--password-stdin",
            "--allow-email",
            "Dan@Example.com",
            "--max-uses",
            "2",
            "--expires",
            "2d",
        ],
        Some("s3cret pass\n"),
    ));
    assert!(
        out.contains("password set") && out.contains("usage limit 2"),
        "{out}"
    );
    let show = ok(wharf(&d, None, &["link", "show", &id], None));
    assert_eq!(field(&show, "title"), "Plan B");
    assert_eq!(field(&show, "password"), "yes");
    assert_eq!(field(&show, "allowed"), "dan@example.com");
    assert_eq!(field(&show, "uses"), "0/2");
    assert_eq!(field(&show, "url"), url, "editing keeps the URL");
    let out = ok(wharf(
        &d,
        None,
        &["link", "edit", &id, "--no-password", "--unlimited"],
        None,
    ));
    assert!(out.contains("password removed"), "{out}");
    assert_eq!(
        field(
            &ok(wharf(&d, None, &["link", "show", &id], None)),
            "password"
        ),
        "no"
    );
    fails(
        wharf(&d, None, &["link", "edit", &id, "--max-uses", "0"], None),
        "at least 1",
    );
    let audit = ok(wharf(
        &d,
        None,
        &["audit", "--action", "link_edit", "--json"],
        None,
    ));
    assert_eq!(audit.lines().count(), 2, "{audit}");
    assert!(!audit.contains("s3cret"), "{audit}");

    // Cancel; carol may not restore or delete; the admin restores.
    ok(wharf(&d, None, &["link", "revoke", &id], None));
    fails(
        wharf(&d, None, &["link", "restore", &id, "--as", "carol"], None),
        "only an administrator",
    );
    fails(
        wharf(&d, None, &["link", "delete", &id, "--as", "carol"], None),
        "only an administrator",
    );
    ok(wharf(&d, None, &["link", "restore", &id], None));
    let show = ok(wharf(&d, None, &["link", "show", &id], None));
    assert_eq!(field(&show, "status"), "active");
    assert_eq!(field(&show, "url"), url);

    // Regenerate: a new URL, shown from then on.
    let new = ok(wharf(&d, None, &["link", "regenerate", &id], None));
    let new_url = new.lines().last().unwrap().to_string();
    assert_ne!(new_url, url);
    assert_eq!(
        field(&ok(wharf(&d, None, &["link", "show", &id], None)), "url"),
        new_url
    );

    // The database alone, in a fresh data directory (new keys): no URL.
    let other = tmp.path().join("copy");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(d.join("wharf.db"), other.join("wharf.db")).unwrap();
    let show = ok(wharf(&other, None, &["link", "show", &id], None));
    let shown = field(&show, "url");
    assert!(shown.contains("regenerate"), "{shown}");
    let new_token = new_url.rsplit('/').next().unwrap();
    assert!(!show.contains(new_token), "{show}");
    let db = std::fs::read(other.join("wharf.db")).unwrap();
    assert!(
        !db.windows(64).any(|w| w == new_token.as_bytes()),
        "no token in the database"
    );
}
