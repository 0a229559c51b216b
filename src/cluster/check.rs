//! What `wharf config check` warns about when several nodes share the database:
//! every node must show the same identity (SSH host keys, FTPS certificate, link
//! signing key, read from configured paths) and reach the same bytes (transfers,
//! mounts and upload staging on shared storage, not one node's disk).

use crate::config::Config;

/// Whether this configuration points at a database other nodes share: a
/// `[database] url` (PostgreSQL); without it the database is the data
/// directory's own SQLite file.
pub fn shared_database(config: &Config) -> bool {
    config.database.is_some()
}

/// One line per setting that differs from node to node or stays on one disk.
pub fn per_node_warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if config.sftp.enabled && config.sftp.host_key.is_empty() {
        out.push(
            "SSH host keys are generated per node: set [sftp] host_key to the same key files on every node"
                .to_string(),
        );
    }
    if config.ftps.enabled && (config.ftps.certificate.is_none() || config.ftps.key.is_none()) {
        out.push(
            "the FTPS certificate is generated per node: set [ftps] certificate and key on every node"
                .to_string(),
        );
    }
    if config.links.signing_key.is_none() {
        out.push(
            "the link signing key is generated per node (links made on one node would not open on another): set [links] signing_key"
                .to_string(),
        );
    }
    let local = |name: &str| {
        config
            .connectors
            .iter()
            .any(|c| c.name == name && c.scheme == "fs")
    };
    if local(&config.transfers.connector) {
        out.push(format!(
            "[transfers] uses connector {:?} on a local disk: send links' copies must be on shared storage (S3...)",
            config.transfers.connector
        ));
    }
    for m in config.mounts.iter().filter(|m| local(&m.connector)) {
        out.push(format!(
            "mount {} uses connector {:?} on a local disk: every node must reach the same files",
            m.at, m.connector
        ));
    }
    match &config.links.upload_staging_connector {
        Some(c) if local(c) => out.push(format!(
            "[links] upload_staging_connector {c:?} is on a local disk: a browser upload continues only on the node it started on unless that folder is shared"
        )),
        Some(_) => {}
        None => out.push(format!(
            "[links] upload_staging is a local folder ({}): a browser upload continues only on the node it started on unless that folder is shared (or set upload_staging_connector)",
            config.links.upload_staging.display()
        )),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_is_one_node_and_configured_keys_silence_it() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::load(None, Some(dir.path())).unwrap();
        let w = per_node_warnings(&c);
        assert!(w.iter().any(|l| l.contains("[sftp] host_key")), "{w:?}");
        assert!(w.iter().any(|l| l.contains("[links] signing_key")), "{w:?}");
        assert!(w.iter().any(|l| l.contains("[transfers]")), "{w:?}");
        let file = dir.path().join("wharf.toml");
        std::fs::write(
            &file,
            "[sftp]\nhost_key = \"/k/ssh_host_ed25519_key\"\n[ftps]\nenabled = false\n[links]\nsigning_key = \"${WHARF_TEST_SIGNING_KEY_FILE}\"\n",
        )
        .unwrap();
        std::env::set_var("WHARF_TEST_SIGNING_KEY_FILE", "/k/link-signing.key");
        let c = Config::load(Some(&file), Some(dir.path())).unwrap();
        assert_eq!(
            c.links.signing_key.as_deref(),
            Some(std::path::Path::new("/k/link-signing.key"))
        );
        let w = per_node_warnings(&c);
        assert!(
            !w.iter()
                .any(|l| l.contains("host_key") || l.contains("signing_key") || l.contains("FTPS")),
            "{w:?}"
        );
    }

    #[test]
    fn a_staging_connector_off_local_disk_silences_the_staging_warning() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wharf.toml");
        let staging = |c: &str| {
            let text = format!(
                "[[connector]]\nname = \"files\"\nscheme = \"fs\"\n[connector.options]\nroot = \"{}\"\n\
                 [[connector]]\nname = \"shared\"\nscheme = \"memory\"\n\
                 [[mount]]\npath = \"/\"\nconnector = \"files\"\nroot = \"data\"\n\
                 [links]\nupload_staging_connector = \"{c}\"\nupload_staging_prefix = \"part/\"\n",
                dir.path().join("files").display()
            );
            std::fs::write(&file, text).unwrap();
            let c = Config::load(Some(&file), Some(dir.path())).unwrap();
            per_node_warnings(&c)
        };
        let w = staging("shared");
        assert!(!w.iter().any(|l| l.contains("upload_staging")), "{w:?}");
        let w = staging("files");
        assert!(
            w.iter().any(|l| l.contains("upload_staging_connector")),
            "{w:?}"
        );
        let c = Config::load(None, Some(dir.path())).unwrap();
        let w = per_node_warnings(&c);
        assert!(w
            .iter()
            .any(|l| l.contains("upload_staging is a local folder")));
    }
}
