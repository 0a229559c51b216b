//! `wharf client ...` and `wharf contact ...`: the staff address book from the
//! command line. Commands act as a user (`--as`, default `admin`, who sees and
//! changes every client) under the same rules as the staff pages and the API
//! (`crate::addressbook`); changes are audited with the administrator running
//! the command acting as that user.

use clap::Subcommand;

use super::{admin_event, cli_actor};
use crate::addressbook as book;
use crate::app;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::{ClientEdit, Db, User};

#[derive(Debug, Subcommand)]
pub enum ClientCmd {
    /// Add a client (an organisation) to USER's address book.
    Add {
        name: String,
        #[arg(long, default_value = "")]
        notes: String,
        /// Every staff member sees it and may file links under it.
        #[arg(long)]
        shared: bool,
        /// Whose client it is.
        #[arg(long = "as", default_value = "admin")]
        user: String,
    },
    /// List the clients USER sees (theirs and shared ones; an administrator all).
    List {
        #[arg(long = "as", default_value = "admin")]
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Show a client (id or name) and its contacts.
    Show {
        client: String,
        #[arg(long = "as", default_value = "admin")]
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Rename a client, change its notes, share it or stop sharing it.
    Edit {
        client: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        notes: Option<String>,
        #[arg(long, value_parser = ["on", "off"])]
        shared: Option<String>,
        #[arg(long = "as", default_value = "admin")]
        user: String,
    },
    /// Remove a client and its contacts (its links stay, without a client).
    Remove {
        client: String,
        #[arg(long = "as", default_value = "admin")]
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContactCmd {
    /// Add a contact to a client (id or name); an address already there is renamed.
    Add {
        client: String,
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long = "as", default_value = "admin")]
        user: String,
    },
    /// List a client's contacts.
    List {
        client: String,
        #[arg(long = "as", default_value = "admin")]
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a contact by its id (as `contact list` prints it).
    Remove {
        id: i64,
        #[arg(long = "as", default_value = "admin")]
        user: String,
    },
}

async fn user(db: &Db, name: &str) -> Result<User> {
    let n = name.to_string();
    let user = db
        .run(move |s| s.user_get(&n))
        .await?
        .ok_or_else(|| Error::not_found(format!("no user named {name:?}")))?;
    if !user.enabled {
        return Err(Error::denied(format!("user {name} is disabled")));
    }
    Ok(user)
}

fn audit(db: &Db, action: &str, client: i64, user: &str, detail: String) -> Result<()> {
    let ev = admin_event(action)
        .path(format!("client:{client}"))
        .detail(format!("{detail}; {} acting as {user}", cli_actor()));
    db.blocking().audit_append(&[ev])
}

fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Runtime::new()?.block_on(f)
}

pub fn run_client(config: &Config, cmd: ClientCmd) -> Result<()> {
    let db = app::open_db(config)?;
    block_on(async {
        match cmd {
            ClientCmd::Add {
                name,
                notes,
                shared,
                user: who,
            } => {
                let u = user(&db, &who).await?;
                let c = book::create(&db, &u, &name, &notes, shared).await?;
                audit(&db, "client_create", c.id, &who, c.name.clone())?;
                println!(
                    "added client {} ({}){}",
                    c.name,
                    c.id,
                    if c.shared { ", shared" } else { "" }
                );
                Ok(())
            }
            ClientCmd::List { user: who, json } => {
                let u = user(&db, &who).await?;
                let list = book::list_with_contacts(&db, &u).await?;
                if json {
                    let items: Vec<_> = list
                        .iter()
                        .map(|(c, k)| book::client_json(c, Some(k)))
                        .collect();
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&items).unwrap_or_default()
                    );
                    return Ok(());
                }
                println!(
                    "{:<6} {:<30} {:<14} {:<7} CONTACTS",
                    "ID", "NAME", "OWNER", "SHARED"
                );
                for (c, k) in list {
                    println!(
                        "{:<6} {:<30} {:<14} {:<7} {}",
                        c.id,
                        c.name,
                        c.owner,
                        if c.shared { "yes" } else { "no" },
                        k.len()
                    );
                }
                Ok(())
            }
            ClientCmd::Show {
                client,
                user: who,
                json,
            } => {
                let u = user(&db, &who).await?;
                let c = book::resolve(&db, &u, &client).await?;
                let contacts = book::contacts(&db, &u, c.id).await?;
                if json {
                    let v = book::client_json(&c, Some(&contacts));
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                    return Ok(());
                }
                println!("id:       {}", c.id);
                println!("name:     {}", c.name);
                println!("owner:    {}", c.owner);
                println!("shared:   {}", if c.shared { "yes" } else { "no" });
                println!("notes:    {}", c.notes);
                println!("contacts:");
                for k in contacts {
                    println!("  {:<6} {:<32} {}", k.id, k.email, k.name);
                }
                Ok(())
            }
            ClientCmd::Edit {
                client,
                name,
                notes,
                shared,
                user: who,
            } => {
                let u = user(&db, &who).await?;
                let c = book::resolve(&db, &u, &client).await?;
                let edit = ClientEdit {
                    name,
                    notes,
                    shared: shared.map(|s| s == "on"),
                };
                let said = format!("{edit:?}");
                let c = book::edit(&db, &u, c.id, edit).await?;
                audit(&db, "client_edit", c.id, &who, said)?;
                println!("saved client {} ({})", c.name, c.id);
                Ok(())
            }
            ClientCmd::Remove { client, user: who } => {
                let u = user(&db, &who).await?;
                let c = book::resolve(&db, &u, &client).await?;
                let c = book::delete(&db, &u, c.id).await?;
                audit(&db, "client_delete", c.id, &who, c.name.clone())?;
                println!("removed client {} ({}) and its contacts", c.name, c.id);
                Ok(())
            }
        }
    })
}

pub fn run_contact(config: &Config, cmd: ContactCmd) -> Result<()> {
    let db = app::open_db(config)?;
    block_on(async {
        match cmd {
            ContactCmd::Add {
                client,
                email,
                name,
                user: who,
            } => {
                let u = user(&db, &who).await?;
                let c = book::resolve(&db, &u, &client).await?;
                let k = book::add_contact(&db, &u, c.id, &name, &email).await?;
                audit(&db, "contact_add", c.id, &who, k.email.clone())?;
                println!("added contact {} ({}) to {}", k.email, k.id, c.name);
                Ok(())
            }
            ContactCmd::List {
                client,
                user: who,
                json,
            } => {
                let u = user(&db, &who).await?;
                let c = book::resolve(&db, &u, &client).await?;
                let list = book::contacts(&db, &u, c.id).await?;
                if json {
                    let items: Vec<_> = list.iter().map(book::contact_json).collect();
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&items).unwrap_or_default()
                    );
                    return Ok(());
                }
                println!("{:<6} {:<32} NAME", "ID", "E-MAIL");
                for k in list {
                    println!("{:<6} {:<32} {}", k.id, k.email, k.name);
                }
                Ok(())
            }
            ContactCmd::Remove { id, user: who } => {
                let u = user(&db, &who).await?;
                let k = book::remove_contact(&db, &u, id).await?;
                audit(&db, "contact_remove", k.client_id, &who, k.email.clone())?;
                println!("removed contact {} ({id})", k.email);
                Ok(())
            }
        }
    })
}
