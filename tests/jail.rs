//! Confinement against the real server: every door keeps a user inside their
//! home (a share link inside its folder, an upload request inside its folder),
//! even where symlinks on the fs storage point elsewhere; and a path the server
//! cannot accept is refused, never taken for the current directory.

mod common;

use std::sync::Arc;

use common::gateway::Gateway;
use suppaftp::{FtpError, RustlsConnector, RustlsFtpStream, Status};

/// A TLS client that trusts exactly the certificate the gateway generated.
fn tls(gw: &Gateway) -> RustlsConnector {
    use rustls::pki_types::pem::PemObject;
    let pem = gw.config.data_dir.join(wharf::ftps::tls::CERT_FILE);
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(&pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    RustlsConnector::from(Arc::new(config))
}

fn ftps(gw: &Gateway, user: &str, password: &str) -> RustlsFtpStream {
    let ftp = RustlsFtpStream::connect(gw.ftps_explicit()).unwrap();
    let mut ftp = ftp.into_secure(tls(gw), "localhost").unwrap();
    ftp.login(user, password).unwrap();
    ftp.transfer_type(suppaftp::types::FileType::Binary)
        .unwrap();
    ftp
}

/// Sends one raw command line; returns the reply code.
fn raw(ftp: &mut RustlsFtpStream, line: &str) -> u32 {
    match ftp.custom_command(line, &[Status::CommandOk]) {
        Ok(r) => r.status.code(),
        Err(FtpError::UnexpectedResponse(r)) => r.status.code(),
        Err(e) => panic!("{line:?}: {e}"),
    }
}

/// `RMD <NUL>` removed the current directory, `RNFR <tab>` + `RNTO` moved it,
/// and `DELE`/`CWD`/`SIZE`/`RETR` with a NUL acted on it too: an invalid path is
/// now a 553 (or 501) and nothing moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftp_invalid_paths_are_refused_not_taken_for_the_current_directory() {
    let gw = Gateway::start("fs", "").await;
    gw.add_user("alice", "/alice", "all", Some("pw-a"), None);
    let gw = tokio::task::spawn_blocking(move || {
        let mut ftp = ftps(&gw, "alice", "pw-a");
        ftp.mkdir("d").unwrap();
        ftp.cwd("d").unwrap();
        let refused = |code: u32| code == 553 || code == 501;
        for line in [
            "RMD \0",
            "RMD x\0y",
            "XRMD \u{1}",
            "DELE \0",
            "CWD a\0",
            "MKD \0",
            "SIZE \0",
            "MDTM \0",
            "MLST \0",
            "RNFR \t",
            "RNFR \0",
        ] {
            let code = raw(&mut ftp, line);
            assert!(refused(code), "{line:?} answered {code}");
            // Had RNFR been accepted, this would move the current directory.
            let code = raw(&mut ftp, "RNTO /moved");
            assert_eq!(code, 503, "RNTO after {line:?}");
        }
        ftp.cwd("/").unwrap();
        ftp.rename("d", "d2").unwrap();
        ftp.cwd("d2").unwrap();
        // RNFR of a valid name followed by an invalid RNTO moves nothing either.
        assert_eq!(raw(&mut ftp, "RNFR ."), 350);
        assert!(refused(raw(&mut ftp, "RNTO \t")));
        assert_eq!(ftp.pwd().unwrap(), "/d2");
        ftp.quit().unwrap();
        gw
    })
    .await
    .unwrap();
    let home = gw.config.data_dir.join("files/alice");
    assert!(home.join("d2").is_dir(), "the directory is still there");
    let names: Vec<_> = std::fs::read_dir(&home)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["d2"]);
}
