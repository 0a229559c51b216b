//! Config loading: defaults, env expansion, and errors that name line and key.

use super::*;

fn load(text: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wharf.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(Some(&path), Some(Path::new("/srv/wharf")))
}

#[test]
fn no_file_gives_the_embedded_default() {
    let c = Config::load(None, None).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("./wharf-data"));
    let names: Vec<&str> = c.connectors.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["files", "transfers"]);
    assert!(c.connectors[0].options["root"].ends_with("wharf-data/files"));
    assert_eq!(c.mounts.len(), 1);
    assert!(c.mounts[0].at.is_root());
    assert_eq!(c.transfers.connector, "transfers");
}

#[test]
fn env_values_are_expanded_and_relative_roots_use_the_data_dir() {
    std::env::set_var("WHARF_TEST_BUCKET_SECRET", "hunter2");
    let c = load(
        r#"
[[connector]]
name = "local"
scheme = "fs"
options = { root = "store" }

[[connector]]
name = "s3"
scheme = "s3"
options = { bucket = "b", secret_access_key = "${WHARF_TEST_BUCKET_SECRET}" }

[[mount]]
path = "/"
connector = "local"

[[mount]]
path = "/cloud"
connector = "s3"
root = "/prefix/"
"#,
    )
    .unwrap();
    assert_eq!(c.connectors[0].options["root"], "/srv/wharf/store");
    assert_eq!(c.connectors[1].options["secret_access_key"], "hunter2");
    assert_eq!(c.mounts[1].root, "prefix");
    assert_eq!(c.connectors.last().unwrap().name, "transfers");
}

#[test]
fn missing_env_names_variable_line_and_key() {
    let err = load(
        "[[connector]]\nname = \"s3\"\nscheme = \"s3\"\n[connector.options]\nsecret_access_key = \"${WHARF_TEST_SURELY_UNSET}\"\n",
    )
    .unwrap_err();
    assert_eq!(err.line, Some(5), "{err}");
    assert_eq!(err.key.as_deref(), Some("secret_access_key"));
    assert!(
        err.message.contains("WHARF_TEST_SURELY_UNSET is not set"),
        "{err}"
    );
}

#[test]
fn unknown_keys_and_bad_types_are_errors_at_their_line() {
    let err = load("[storage]\nbuffer_sise = \"1MiB\"\n").unwrap_err();
    assert_eq!(
        (err.line, err.key.as_deref()),
        (Some(2), Some("buffer_sise"))
    );
    assert!(err.message.contains("unknown field"), "{err}");

    let err = load("[audit]\n\nqueue = \"many\"\n").unwrap_err();
    assert_eq!((err.line, err.key.as_deref()), (Some(3), Some("queue")));

    let err = load("[storage]\nbuffer_size = \"12 parsecs\"\n").unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn mounts_must_name_a_defined_connector() {
    let err = load(
        "[[connector]]\nname = \"a\"\nscheme = \"memory\"\n\n[[mount]]\npath = \"/\"\nconnector = \"b\"\n",
    )
    .unwrap_err();
    assert_eq!(err.line, Some(7));
    assert_eq!(err.key.as_deref(), Some("mount[0].connector"));
    assert!(err.message.contains("no connector named \"b\""), "{err}");
    let shown = err.to_string();
    assert!(
        shown.contains("wharf.toml line 7") && shown.contains("connector = \"b\""),
        "{shown}"
    );
}

#[test]
fn unknown_scheme_and_duplicates_are_refused() {
    let err = load("[[connector]]\nname = \"a\"\nscheme = \"ftp\"\n").unwrap_err();
    assert_eq!(err.line, Some(3));
    assert!(err.message.contains("available"), "{err}");
    let err = load(
        "[[connector]]\nname = \"a\"\nscheme = \"memory\"\n[[connector]]\nname = \"a\"\nscheme = \"memory\"\n",
    )
    .unwrap_err();
    assert_eq!(err.line, Some(5));
}

#[test]
fn connectors_without_mounts_are_refused() {
    let err = load("[[connector]]\nname = \"a\"\nscheme = \"memory\"\n").unwrap_err();
    assert!(err.message.contains("[[mount]]"), "{err}");
}

#[test]
fn the_example_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/wharf.example.toml");
    let c = Config::load(Some(&path), Some(Path::new("/srv/wharf"))).unwrap();
    assert_eq!(c.mounts.len(), 1);
    assert_eq!(c.buffer_size, 256 * 1024);
    assert_eq!(c.connectors[0].options["root"], "/srv/wharf/files");
}

#[test]
fn mail_defaults_to_the_outbox_and_smtp_hides_its_password() {
    let c = Config::load(None, None).unwrap();
    assert!(c.mail.smtp.is_none());
    assert!(c.mail.outbox.ends_with("wharf-data/outbox"));
    std::env::set_var("WHARF_TEST_SMTP_PASSWORD", "s3cret-smtp");
    let c = load(
        "[mail]\nsmtp_host = \"smtp.example.org\"\nsecurity = \"tls\"\nsmtp_port = 465\n\
         username = \"wharf\"\npassword = \"${WHARF_TEST_SMTP_PASSWORD}\"\n",
    )
    .unwrap();
    let smtp = c.mail.smtp.clone().unwrap();
    assert_eq!((smtp.security, smtp.port), (MailSecurity::Tls, 465));
    assert_eq!(smtp.password, "s3cret-smtp");
    assert!(
        !format!("{c:?}").contains("s3cret-smtp"),
        "the password never reaches a log line"
    );
    let err = load("[mail]\nsecurity = \"ssl\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("mail.security"), "{err}");
}

#[test]
fn host_key_is_one_path_or_an_array() {
    let c = load("[sftp]\nhost_key = \"/k/ed\"\n").unwrap();
    assert_eq!(c.sftp.host_key, [PathBuf::from("/k/ed")]);
    std::env::set_var("WHARF_TEST_KEY_DIR", "/keys");
    let c = load("[sftp]\nhost_key = [\"/k/ed\", \"${WHARF_TEST_KEY_DIR}/rsa\"]\n").unwrap();
    assert_eq!(
        c.sftp.host_key,
        [PathBuf::from("/k/ed"), PathBuf::from("/keys/rsa")]
    );
    assert!(load("").unwrap().sftp.host_key.is_empty());
    let err = load("[sftp]\n\nhost_key = 5\n").unwrap_err();
    assert_eq!((err.line, err.key.as_deref()), (Some(3), Some("host_key")));
    assert!(err.message.contains("a path or an array of paths"), "{err}");
}

#[test]
fn database_url_selects_postgres_and_never_shows_its_password() {
    assert!(load("").unwrap().database.is_none(), "SQLite by default");
    std::env::set_var("WHARF_TEST_DB_PASSWORD", "s3cr3t-pw");
    let c = load(
        "[database]\nurl = \"postgresql://wharf:${WHARF_TEST_DB_PASSWORD}@db.internal:5432/wharf?sslmode=require\"\n",
    )
    .unwrap();
    let url = c.database.as_ref().unwrap();
    assert_eq!(
        url.0,
        "postgresql://wharf:s3cr3t-pw@db.internal:5432/wharf?sslmode=require"
    );
    assert_eq!(
        url.redacted(),
        "postgresql://wharf:***@db.internal:5432/wharf?…"
    );
    let shown = format!("{c:?}");
    assert!(!shown.contains("s3cr3t-pw"), "{shown}");
    assert!(shown.contains("db.internal"), "{shown}");

    let err = load("[database]\nurl = \"mysql://u:pw@h/db\"\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("database.url"), "{text}");
    assert!(!text.contains(":pw@"), "{text}");
    assert!(load("[database]\nurl = \"postgres://h/db\"\nextra = 1\n").is_err());
}

#[test]
fn upload_staging_on_a_connector_is_checked() {
    let base = "[[connector]]\nname = \"files\"\nscheme = \"memory\"\n\
                [[connector]]\nname = \"shared\"\nscheme = \"memory\"\n\
                [[mount]]\npath = \"/\"\nconnector = \"files\"\n[links]\n";
    // Unset: the local folder, as before.
    let c = load(base).unwrap();
    assert_eq!(c.links.upload_staging_connector, None);
    assert_eq!(c.links.upload_staging, PathBuf::from("/srv/wharf/uploads"));
    // Set: the connector and the default folder inside it.
    let c = load(&format!("{base}upload_staging_connector = \"shared\"\n")).unwrap();
    assert_eq!(c.links.upload_staging_connector.as_deref(), Some("shared"));
    assert_eq!(c.links.upload_staging_prefix, "wharf-staging");
    let c = load(&format!(
        "{base}upload_staging_connector = \"shared\"\nupload_staging_prefix = \"/tus/parts/\"\n"
    ))
    .unwrap();
    assert_eq!(c.links.upload_staging_prefix, "tus/parts");
    // An unknown name: a clear error at its line.
    let err = load(&format!("{base}upload_staging_connector = \"s3\"\n")).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("links.upload_staging_connector"));
    assert_eq!(err.line, Some(11));
    assert!(
        err.message.contains("no connector named \"s3\"") && err.message.contains("shared"),
        "{err}"
    );
    // A folder a mount shows (its staged bytes would be users' files): refused.
    let err = load(&format!("{base}upload_staging_connector = \"files\"\n")).unwrap_err();
    assert!(err.message.contains("visible in mount /"), "{err}");
    let err = load(&format!(
        "{base}upload_staging_connector = \"shared\"\nupload_staging_prefix = \"/\"\n"
    ))
    .unwrap_err();
    assert!(err.message.contains("folder of its own"), "{err}");
}
