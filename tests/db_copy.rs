//! `wharf db copy`: a real installation built on SQLite (users with a password
//! and an SSH key, an API key, links with files, a one-time link used once, an
//! upload request with an upload, a client with contacts, audit rows) is
//! copied into a real PostgreSQL by the real binary, and a gateway started on
//! the same data directory with `[database] url` serves it as before.

mod common;

use common::gateway::{Gateway, SSH_OPTS};
use common::postgres::{self, PgServer};
use common::ssh::password_login as ssh_login;
use wharf::app::App;
use wharf::vfs::VPath;

/// OpenSSH `sftp` with the key: (success, output).
fn sftp_with_key(gw: &Gateway, key: &std::path::Path, user: &str, batch: &str) -> (bool, String) {
    let file = gw.path("batch.txt");
    std::fs::write(&file, batch).unwrap();
    let out = std::process::Command::new("timeout")
        .arg("120")
        .arg("sftp")
        .current_dir(gw.dir.path())
        .args(SSH_OPTS)
        .arg("-P")
        .arg(gw.sftp_addr().port().to_string())
        .arg("-i")
        .arg(key)
        .arg("-b")
        .arg(&file)
        .arg(format!("{user}@127.0.0.1"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `wharf db copy` run by the real binary: (success, stdout + stderr).
fn db_copy(gw: &Gateway, from: &str, to: &str) -> (bool, String) {
    let out = gw
        .wharf()
        .args(["db", "copy", "--from", from, "--to", to])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Rows per copied table, in SQLite.
fn sqlite_counts(path: &std::path::Path) -> Vec<(String, i64)> {
    let db = rusqlite::Connection::open(path).unwrap();
    wharf::store::postgres::COPIED_TABLES
        .iter()
        .map(|t| {
            let n: i64 = db
                .query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                .unwrap();
            (t.to_string(), n)
        })
        .collect()
}

/// Rows per copied table, in PostgreSQL.
fn pg_counts(pg: &PgServer, db: &str) -> Vec<(String, i64)> {
    wharf::store::postgres::COPIED_TABLES
        .iter()
        .map(|t| {
            let n = pg.psql(db, &format!("SELECT count(*) FROM {t}"));
            (t.to_string(), n[0].parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_installation_moves_to_postgresql_and_serves_as_before() {
    let Some(pg) = postgres::shared() else {
        return;
    };
    let name = postgres::db_name("copy");
    let url = pg.create_db(&name);

    // The installation, on SQLite.
    let mut gw = Gateway::start("fs", "").await;
    let key = gw.keygen("acme_key");
    gw.add_user("acme", "/acme", "all", Some("acme pass 1"), Some(&key));
    gw.vfs()
        .mkdir(&VPath::parse("/acme").unwrap())
        .await
        .unwrap();
    let (ok, out) = sftp_with_key(&gw, &key, "acme", "mkdir in\nls\n");
    assert!(ok, "{out}");
    assert!(ssh_login(gw.sftp_addr(), "acme", "acme pass 1").await);
    let api_key = gw
        .cli(&["apikey", "create", "--user", "acme", "--name", "copy"])
        .lines()
        .find(|l| l.starts_with("wharf_"))
        .unwrap()
        .to_string();
    let http = reqwest::Client::new();
    let api = |gw: &Gateway| format!("http://{}/api/v1/links", gw.http_addr());
    assert_eq!(
        http.get(api(&gw))
            .bearer_auth(&api_key)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let data = common::pattern(300_000, 7);
    let local = gw.path("report.bin");
    std::fs::write(&local, &data).unwrap();
    let (keep_id, keep_token) = gw.link(&["send", local.to_str().unwrap(), "--as", "acme"]);
    let (_, once_token) = gw.link(&["send", local.to_str().unwrap(), "--one-time"]);
    let once_url = gw.url(&once_token);
    let page = reqwest::get(&once_url).await.unwrap().text().await.unwrap();
    let once_file = common::file_path(&page);
    let file = format!("{once_url}{once_file}");
    let body = reqwest::get(&file).await.unwrap().bytes().await.unwrap();
    assert_eq!(common::sha256(&body), common::sha256(&data));
    assert_eq!(reqwest::get(&file).await.unwrap().status(), 410);

    // An upload request with an upload (tus, one PATCH).
    let (_, req_token) = gw.link(&["request", "--as", "acme", "--folder", "/in"]);
    let visitor = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let req_url = gw.url(&req_token);
    assert_eq!(visitor.get(&req_url).send().await.unwrap().status(), 200);
    let r = visitor
        .post(format!("{req_url}/uploads"))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "5")
        .header("Upload-Metadata", "filename aGVsbG8udHh0") // hello.txt
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let r = visitor
        .patch(format!("http://{}{location}", gw.http_addr()))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    gw.cli(&["client", "add", "Acme Corp", "--as", "acme"]);
    gw.cli(&[
        "contact",
        "add",
        "acme corp",
        "wile@acme.example",
        "--as",
        "acme",
    ]);
    let audit_before = gw.cli(&["audit", "--limit", "100000"]);

    // Stopped, copied.
    gw.running.take().unwrap().shutdown().await;
    let sqlite_path = gw.config.database_path();
    // A longer audit log than one INSERT of the copy carries.
    {
        let mut db = rusqlite::Connection::open(&sqlite_path).unwrap();
        let tx = db.transaction().unwrap();
        for i in 0..1234 {
            tx.execute(
                "INSERT INTO audit (ts, protocol, actor, action, path, outcome) \
                 VALUES (?1, 'sftp', 'acme', 'download', ?2, 'ok')",
                rusqlite::params![1_700_000_000_000i64 + i, format!("/acme/old-{i}.txt")],
            )
            .unwrap();
        }
        // Booleans both ways, and a ban (of an address the test does not use).
        tx.execute_batch(
            "INSERT INTO notification_prefs (user_id, kind, email) \
               SELECT id, 'link_downloaded', 1 FROM users WHERE name = 'acme'; \
             INSERT INTO notification_prefs (user_id, kind, email) \
               SELECT id, 'upload_received', 0 FROM users WHERE name = 'acme'; \
             INSERT INTO bans (address, until, created_at, changed_at) \
               VALUES ('192.0.2.7', 4102444800000, 1700000000000, 1700000000000);",
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let before = sqlite_counts(&sqlite_path);
    for t in [
        "users",
        "user_keys",
        "api_keys",
        "links",
        "link_files",
        "link_grants",
        "link_uploads",
        "clients",
        "contacts",
        "audit",
    ] {
        let n = before.iter().find(|(n, _)| n == t).unwrap().1;
        assert!(n > 0, "the installation has {t} rows: {before:?}");
    }
    let from = format!("sqlite:{}", sqlite_path.display());
    let (ok, out) = db_copy(&gw, &from, &url);
    eprintln!("{out}");
    assert!(ok, "{out}");
    assert!(out.contains("audit"), "per table counts: {out}");
    assert_eq!(pg_counts(pg, &name), before, "rows per table");
    assert_eq!(
        pg.psql(
            &name,
            "SELECT kind || '=' || email FROM notification_prefs ORDER BY kind"
        ),
        ["link_downloaded=true", "upload_received=false"]
    );
    assert_eq!(
        pg.psql(&name, "SELECT address || ' ' || until FROM bans"),
        ["192.0.2.7 4102444800000"]
    );

    // Served from PostgreSQL on the same data directory.
    let toml = gw.path("wharf.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text}\n[database]\nurl = \"{url}\"\n")).unwrap();
    let config = wharf::config::Config::load(Some(&toml), Some(&gw.config.data_dir)).unwrap();
    assert!(config.database.is_some());
    gw.db = wharf::app::open_db(&config).unwrap();
    gw.config = config.clone();
    gw.running = Some(App::open(config).unwrap().start().await.unwrap());

    assert!(
        ssh_login(gw.sftp_addr(), "acme", "acme pass 1").await,
        "the same password"
    );
    assert!(!ssh_login(gw.sftp_addr(), "acme", "wrong").await);
    let (ok, out) = sftp_with_key(&gw, &key, "acme", "ls in\n");
    assert!(
        ok && out.contains("hello.txt"),
        "the same key, the upload: {out}"
    );
    assert_eq!(
        reqwest::get(format!("{}{once_file}", gw.url(&once_token)))
            .await
            .unwrap()
            .status(),
        410,
        "used once"
    );
    assert_eq!(
        reqwest::get(gw.url(&once_token)).await.unwrap().status(),
        410
    );
    let keep = gw.url(&keep_token);
    let page = reqwest::get(&keep).await.unwrap().text().await.unwrap();
    let r = reqwest::get(format!("{keep}{}", common::file_path(&page)))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        common::sha256(&r.bytes().await.unwrap()),
        common::sha256(&data)
    );
    let r = http
        .get(api(&gw))
        .bearer_auth(&api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the API key works");
    let links = r.text().await.unwrap();
    assert!(links.contains(&keep_id), "{links}");
    let audit_after = gw.cli(&["audit", "--limit", "100000"]);
    for line in audit_before
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
    {
        assert!(
            audit_after.contains(line),
            "old audit row {line:?} in {audit_after}"
        );
    }
    assert!(audit_after.contains("/acme/old-0.txt") && audit_after.contains("/acme/old-1233.txt"));
    // New ids follow the copied ones (the sequences were reset).
    gw.cli(&["client", "add", "Road Runner Inc", "--as", "acme"]);
    gw.running.take().unwrap().shutdown().await;

    // A second copy into the now non-empty database is refused, and a
    // password in the URL never appears in the output.
    let with_pw = url.replacen("postgres@", "postgres:Wr0ngSecret@", 1);
    assert_ne!(with_pw, url);
    let (ok, out) = db_copy(&gw, &from, &with_pw);
    assert!(!ok, "{out}");
    assert!(out.contains("already holds data"), "{out}");
    assert!(!out.contains("Wr0ngSecret"), "{out}");
    // Without --to: the config's [database] url (now the copied database).
    let out = gw
        .wharf()
        .args(["db", "copy", "--from", &from])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("already holds data"),
        "{err}"
    );
    let closed = format!(
        "postgresql://postgres:Wr0ngSecret@127.0.0.1:{}/nothing",
        common::free_port()
    );
    let (ok, out) = db_copy(&gw, &from, &closed);
    assert!(!ok && out.contains("cannot connect"), "{out}");
    assert!(!out.contains("Wr0ngSecret"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_newer_or_missing_sqlite_database_is_refused() {
    let Some(pg) = postgres::shared() else {
        return;
    };
    let name = postgres::db_name("old");
    let url = pg.create_db(&name);
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.db");
    {
        let db = rusqlite::Connection::open(&old).unwrap();
        db.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY); PRAGMA user_version = 3;")
            .unwrap();
    }
    let run = |from: &str| {
        let out = common::wharf_cmd(&dir.path().join("data"), None)
            .args(["db", "copy", "--from", from, "--to", &url])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(&format!("sqlite:{}", old.display()));
    assert!(!ok && err.contains("wharf db migrate"), "{err}");
    rusqlite::Connection::open(&old)
        .unwrap()
        .execute_batch("PRAGMA user_version = 999;")
        .unwrap();
    let (ok, err) = run(&format!("sqlite:{}", old.display()));
    assert!(!ok && err.contains("newer than this wharf"), "{err}");
    let (ok, err) = run(&format!("sqlite:{}", dir.path().join("none.db").display()));
    assert!(!ok && err.contains("no SQLite database"), "{err}");
    let (ok, err) = run(old.to_str().unwrap());
    assert!(!ok && err.contains("sqlite:PATH"), "{err}");
    assert_eq!(pg.psql(&name, "SELECT to_regclass('users') IS NULL"), ["t"]);
}
