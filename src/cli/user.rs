//! `wharf user ...`: create, inspect and change accounts.

use std::io::BufRead;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::admin_event;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::policy::{PermSet, ProtocolSet};
use crate::store::{format_ms, Db, NewUser, User};
use crate::vfs::VPath;
use crate::{app, secret, users};

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user.
    Add {
        name: String,
        /// The user's root directory in the virtual tree (they cannot leave it).
        #[arg(long)]
        home: String,
        #[command(flatten)]
        password: PasswordSource,
        /// An OpenSSH public key file (.pub) to allow for SFTP.
        #[arg(long, value_name = "FILE.pub")]
        key: Option<PathBuf>,
        /// Comma list of list,read,write,delete,mkdir,rename,share, or all
        /// (`share`: may create links).
        #[arg(long, default_value = "all")]
        perms: PermSet,
        /// Comma list of sftp,ftps,http, or all.
        #[arg(long, default_value = "all")]
        protocols: ProtocolSet,
        /// SFTP logins need both the key and the password (needs --key and a
        /// password; other protocols, which cannot check keys, are refused).
        #[arg(long, requires = "key")]
        key_and_password: bool,
        /// Where notifications about the user's links go.
        #[arg(long)]
        email: Option<String>,
        /// What mails and pages call the user ("Ann Smith"; default: the name).
        #[arg(long)]
        display_name: Option<String>,
        /// An administrator: through the admin API, sees and manages every
        /// user's links and the whole audit log.
        #[arg(long)]
        admin: bool,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one user and their keys.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Set (or remove) a user's password.
    Passwd {
        name: String,
        #[command(flatten)]
        password: PasswordSource,
        /// Remove the password: the user can then log in with a key only.
        #[arg(long, conflicts_with_all = ["password_stdin", "generate_password"])]
        remove: bool,
    },
    /// Add or remove SSH public keys.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Choose what an SFTP login needs: `either` a key or the password (default),
    /// or `both`.
    Auth {
        name: String,
        #[arg(long, value_parser = ["either", "both"])]
        require: String,
    },
    /// Replace a user's permissions (comma list of list,read,write,delete,mkdir,rename,share, or all).
    Perms { name: String, perms: PermSet },
    /// Let a user create links (`on`: the share permission), or not (`off`).
    /// Administrators may always.
    Share {
        name: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Set the address for notifications about a user's links (`--clear` removes it).
    Email {
        name: String,
        #[arg(required_unless_present = "clear")]
        email: Option<String>,
        #[arg(long, conflicts_with = "email")]
        clear: bool,
    },
    /// Set what mails and pages call a user: `--display-name "Ann Smith"`
    /// (an empty one goes back to the user name).
    Profile {
        name: String,
        #[arg(long)]
        display_name: String,
    },
    /// Make a user an administrator of the admin API (`on`), or not (`off`).
    Admin {
        name: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Refuse all logins of a user (their data and links stay).
    Disable { name: String },
    /// Allow a disabled user to log in again.
    Enable { name: String },
    /// Delete a user and their keys (their files stay in storage).
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Allow a public key (OpenSSH .pub file; `-` reads standard input).
    Add { name: String, file: PathBuf },
    /// Remove a key by its SHA256 fingerprint (as `user show` prints it).
    Remove { name: String, fingerprint: String },
}

#[derive(Debug, Args)]
pub struct PasswordSource {
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "generate_password")]
    password_stdin: bool,
    /// Generate a strong password and print it once.
    #[arg(long)]
    generate_password: bool,
}

impl PasswordSource {
    /// The password to set, or `None` if neither flag was given.
    fn take(&self) -> Result<Option<(String, bool)>> {
        if self.generate_password {
            return Ok(Some((secret::generate_password(), true)));
        }
        if self.password_stdin {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let pw = line.trim_end_matches(['\r', '\n']).to_string();
            if pw.is_empty() {
                return Err(Error::invalid("no password on standard input"));
            }
            return Ok(Some((pw, false)));
        }
        Ok(None)
    }
}

fn read_key(file: &PathBuf) -> Result<crate::store::NewKey> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| Error::from(e).context(format!("reading {}", file.display())))?
    };
    users::parse_public_key(&text).map_err(|e| e.context(file.display()))
}

pub fn run(config: &Config, cmd: UserCmd) -> Result<()> {
    let db = app::open_db(config)?;
    let store = db.blocking();
    let audit = |action: &str, name: &str, detail: Option<String>| {
        let mut ev = admin_event(action).path(format!("user:{name}"));
        if let Some(d) = detail {
            ev = ev.detail(d);
        }
        store.audit_append(&[ev])
    };
    match cmd {
        UserCmd::Add {
            name,
            home,
            password,
            key,
            perms,
            protocols,
            key_and_password,
            email,
            display_name,
            admin,
        } => {
            users::validate_name(&name)?;
            let email = email.map(|e| checked_email(&e)).transpose()?;
            let display_name = match display_name {
                Some(d) => users::check_display_name(&d)?,
                None => None,
            };
            let home = VPath::parse(&home)?;
            let key = key.as_ref().map(read_key).transpose()?;
            let pw = password.take()?;
            if key_and_password && pw.is_none() {
                return Err(Error::invalid(
                    "--key-and-password needs a password too: give --password-stdin or --generate-password",
                ));
            }
            if pw.is_none() && key.is_none() {
                return Err(Error::invalid(
                    "the user could not log in: give --password-stdin, --generate-password or --key",
                ));
            }
            let hash = pw
                .as_ref()
                .map(|(p, _)| secret::hash_password(p))
                .transpose()?;
            let user = store.user_insert(&NewUser {
                name: name.clone(),
                password_hash: hash,
                home,
                perms,
                protocols,
                key_and_password,
            })?;
            if let Some(e) = &email {
                store.user_set_email(&name, Some(e))?;
            }
            if let Some(d) = &display_name {
                store.user_set_display_name(&name, Some(d))?;
            }
            if admin {
                store.user_set_admin(&name, true)?;
            }
            if let Some(k) = &key {
                if let Err(e) = store.key_insert(&name, k) {
                    // Keep the command all-or-nothing.
                    let _ = store.user_delete(&name);
                    return Err(e);
                }
            }
            audit(
                "user_add",
                &name,
                Some(format!(
                    "home {} perms {} protocols {}{}",
                    user.home,
                    user.perms,
                    user.protocols,
                    if admin { " admin" } else { "" }
                )),
            )?;
            println!("created user {name} (home {})", user.home);
            if let Some((pw, true)) = pw {
                println!("password: {pw}");
            }
            Ok(())
        }
        UserCmd::List { json } => {
            let list = store.user_list()?;
            if json {
                for u in &list {
                    println!("{}", user_json(&db, u)?);
                }
            } else {
                println!(
                    "{:<20} {:<8} {:<24} {:<36} {:<16} {:>4}  ADMIN",
                    "NAME", "STATUS", "HOME", "PERMS", "PROTOCOLS", "KEYS"
                );
                for u in &list {
                    let keys = store.keys_of(&u.name)?.len();
                    println!(
                        "{:<20} {:<8} {:<24} {:<36} {:<16} {:>4}  {}",
                        u.name,
                        status(u),
                        u.home.as_str(),
                        u.perms.to_string(),
                        u.protocols.to_string(),
                        keys,
                        yes_no(u.admin)
                    );
                }
            }
            Ok(())
        }
        UserCmd::Show { name, json } => {
            let u = store
                .user_get(&name)?
                .ok_or_else(|| Error::not_found(format!("no user named {name:?}")))?;
            if json {
                println!("{}", user_json(&db, &u)?);
                return Ok(());
            }
            println!("name:       {}", u.name);
            println!("status:     {}", status(&u));
            println!("home:       {}", u.home);
            println!("email:      {}", u.email.as_deref().unwrap_or("-"));
            println!("display:    {}", u.shown_name());
            println!("perms:      {}", u.perms);
            println!("protocols:  {}", u.protocols);
            println!("admin:      {}", yes_no(u.admin));
            println!(
                "password:   {}",
                if u.password_hash.is_some() {
                    "set"
                } else {
                    "none (key only)"
                }
            );
            let login = if u.key_and_password {
                "key and password"
            } else {
                "key or password"
            };
            println!("login:      {login}");
            println!("created:    {}", format_ms(u.created_at));
            let keys = store.keys_of(&name)?;
            println!("keys:       {}", keys.len());
            for k in keys {
                println!("  {} {} {}", k.fingerprint, k.algorithm, k.comment);
            }
            Ok(())
        }
        UserCmd::Passwd {
            name,
            password,
            remove,
        } => {
            let hash = if remove {
                if store.keys_of(&name)?.is_empty() {
                    return Err(Error::invalid(format!(
                        "{name} has no SSH key: without a password they could not log in; \
                         add a key first (wharf user key add)"
                    )));
                }
                None
            } else {
                let (pw, generated) = password.take()?.ok_or_else(|| {
                    Error::invalid("give --password-stdin, --generate-password or --remove")
                })?;
                let hash = secret::hash_password(&pw)?;
                if generated {
                    println!("password: {pw}");
                }
                Some(hash)
            };
            store.user_set_password(&name, hash.as_deref())?;
            audit(
                "user_passwd",
                &name,
                remove.then(|| "password removed".to_string()),
            )?;
            println!(
                "{} password of {name}",
                if remove { "removed the" } else { "changed the" }
            );
            if name == "admin" {
                // The first-start password is no longer valid: drop its file.
                let file = config.data_dir.join(crate::app::INITIAL_PASSWORD_FILE);
                if std::fs::remove_file(&file).is_ok() {
                    println!("deleted {}", file.display());
                }
            }
            Ok(())
        }
        UserCmd::Key(KeyCmd::Add { name, file }) => {
            let key = read_key(&file)?;
            let k = store.key_insert(&name, &key)?;
            audit("user_key_add", &name, Some(k.fingerprint.clone()))?;
            println!("added key {} ({}) to {name}", k.fingerprint, k.algorithm);
            Ok(())
        }
        UserCmd::Key(KeyCmd::Remove { name, fingerprint }) => {
            store.key_delete(&name, &fingerprint)?;
            audit("user_key_remove", &name, Some(fingerprint.clone()))?;
            println!("removed key {fingerprint} from {name}");
            Ok(())
        }
        UserCmd::Auth { name, require } => {
            let both = require == "both";
            let user = store
                .user_get(&name)?
                .ok_or_else(|| Error::not_found(format!("no user named {name:?}")))?;
            if both && (user.password_hash.is_none() || store.keys_of(&name)?.is_empty()) {
                return Err(Error::invalid(format!(
                    "{name} needs both an SSH key and a password before both can be required"
                )));
            }
            store.user_set_key_and_password(&name, both)?;
            audit("user_auth", &name, Some(format!("require {require}")))?;
            let needs = if both {
                "a key and the password"
            } else {
                "a key or the password"
            };
            println!("SFTP logins of {name} now need {needs}");
            Ok(())
        }
        UserCmd::Perms { name, perms } => {
            store.user_set_perms(&name, perms)?;
            audit("user_perms", &name, Some(perms.to_string()))?;
            println!("{name} may now: {perms}");
            Ok(())
        }
        UserCmd::Share { name, state } => {
            let user = store
                .user_get(&name)?
                .ok_or_else(|| Error::not_found(format!("no user named {name:?}")))?;
            let perms = crate::users::with_share(user.perms, state == "on");
            store.user_set_perms(&name, perms)?;
            audit("user_perms", &name, Some(perms.to_string()))?;
            if state == "on" {
                println!("{name} may now create links");
            } else {
                println!("{name} may no longer create links");
            }
            Ok(())
        }
        UserCmd::Email { name, email, clear } => {
            let email = if clear {
                None
            } else {
                email.map(|e| checked_email(&e)).transpose()?
            };
            store.user_set_email(&name, email.as_deref())?;
            audit("user_email", &name, None)?;
            match email {
                Some(e) => println!("{name}'s notifications go to {e}"),
                None => println!("{name} gets no notifications"),
            }
            Ok(())
        }
        UserCmd::Profile { name, display_name } => {
            let display = users::check_display_name(&display_name)?;
            store.user_set_display_name(&name, display.as_deref())?;
            audit("user_profile", &name, display.clone())?;
            match display {
                Some(d) => println!("{name} is shown as {d}"),
                None => println!("{name} is shown by their user name"),
            }
            Ok(())
        }
        UserCmd::Admin { name, state } => {
            let on = state == "on";
            store.user_set_admin(&name, on)?;
            audit("user_admin", &name, Some(state))?;
            if on {
                println!("{name} is now an administrator");
            } else {
                println!("{name} is no longer an administrator");
            }
            Ok(())
        }
        UserCmd::Disable { name } => {
            store.user_set_enabled(&name, false)?;
            audit("user_disable", &name, None)?;
            println!("disabled {name}");
            Ok(())
        }
        UserCmd::Enable { name } => {
            store.user_set_enabled(&name, true)?;
            audit("user_enable", &name, None)?;
            println!("enabled {name}");
            Ok(())
        }
        UserCmd::Remove { name } => {
            store.user_delete(&name)?;
            audit("user_remove", &name, None)?;
            println!("removed user {name} (their files stay in storage)");
            Ok(())
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn status(u: &User) -> &'static str {
    if u.enabled {
        "enabled"
    } else {
        "disabled"
    }
}

fn checked_email(e: &str) -> Result<String> {
    if crate::policy::links::valid_email(e) {
        Ok(e.trim().to_string())
    } else {
        Err(Error::invalid(format!("{e:?} is not an e-mail address")))
    }
}

fn user_json(db: &Db, u: &User) -> Result<String> {
    let keys = db.blocking().keys_of(&u.name)?;
    Ok(users::json(u, &keys).to_string())
}
