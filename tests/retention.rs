//! The retention job inside the running server: copies of ended send links go
//! once their retention has passed; share targets and active links stay.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use wharf::app::App;
use wharf::config::Config;

fn wharf(data: &Path, config: &Path, args: &[&str]) -> String {
    let out = common::wharf_cmd(data, Some(config))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn id_of(created: &str) -> String {
    created.split_whitespace().nth(3).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_purges_ended_send_copies_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = tmp.path().join("wharf.toml");
    std::fs::write(
        &config,
        "[links]\nretention_days = 0\n[sftp]\nenabled = false\n[ftps]\nenabled = false\n[http]\nenabled = false\n",
    )
    .unwrap();
    let file = tmp.path().join("a.bin");
    std::fs::write(&file, b"payload").unwrap();
    let f = file.to_str().unwrap();
    std::fs::create_dir_all(data.join("files/docs")).unwrap();
    std::fs::write(data.join("files/docs/keep.txt"), b"keep").unwrap();

    wharf(
        &data,
        &config,
        &["user", "add", "admin", "--home", "/", "--generate-password"],
    );
    let ended = id_of(&wharf(&data, &config, &["link", "send", f]));
    let active = id_of(&wharf(&data, &config, &["link", "send", f]));
    let share = id_of(&wharf(&data, &config, &["link", "share", "/docs/keep.txt"]));
    wharf(&data, &config, &["link", "revoke", &ended]);
    wharf(&data, &config, &["link", "revoke", &share]);

    let cfg = Config::load(Some(&config), Some(&data)).unwrap();
    let running = App::open(cfg).unwrap().start().await.unwrap();
    let copy = data.join("transfers").join(&ended).join("a.bin");
    let deadline = Instant::now() + Duration::from_secs(20);
    while copy.exists() {
        assert!(Instant::now() < deadline, "the ended copy was not purged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.shutdown().await;
    assert!(
        data.join("transfers").join(&active).join("a.bin").exists(),
        "active links keep their copies"
    );
    assert_eq!(
        std::fs::read(data.join("files/docs/keep.txt")).unwrap(),
        b"keep",
        "share targets stay"
    );
    let shown = wharf(&data, &config, &["link", "show", &ended]);
    assert!(
        shown.contains("status:      revoked") && shown.contains("files:       0"),
        "{shown}"
    );
}
