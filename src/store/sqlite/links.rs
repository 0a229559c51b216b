//! SQL for links and their files.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::{Error, Result};
use crate::store::{
    now_ms, Inbound, Link, LinkChange, LinkEdit, LinkFile, LinkKind, LinkState, Millis, NewLink,
    RefType, Reference,
};

pub(super) const COLS: &str = "id, public_id, kind, owner, title, message, recipients, expires_at, \
                    max_uses, uses, password_hash, allowed_emails, state, created_at, ended_at, last_used_at, name, \
                    folder, max_size, notify_uploads, generation, token_hash, \
                    client_id, ref_type, ref_value";

fn list_of(s: String) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

pub(super) fn row(r: &Row<'_>) -> rusqlite::Result<Link> {
    let bad = |i: usize, v: String| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown value {v:?}").into(),
        )
    };
    let kind: String = r.get(2)?;
    let state: String = r.get(12)?;
    Ok(Link {
        id: r.get(0)?,
        public_id: r.get(1)?,
        kind: LinkKind::parse(&kind).ok_or_else(|| bad(2, kind.clone()))?,
        owner: r.get(3)?,
        title: r.get(4)?,
        message: r.get(5)?,
        recipients: list_of(r.get(6)?),
        expires_at: r.get(7)?,
        max_uses: r.get(8)?,
        uses: r.get(9)?,
        password_hash: r.get(10)?,
        allowed_emails: list_of(r.get(11)?),
        state: LinkState::parse(&state).ok_or_else(|| bad(12, state.clone()))?,
        created_at: r.get(13)?,
        ended_at: r.get(14)?,
        last_used_at: r.get(15)?,
        name: r.get(16)?,
        inbound: match r.get::<_, Option<String>>(17)? {
            Some(folder) => Some(Inbound {
                folder,
                max_size: r.get::<_, Option<i64>>(18)?.map(|n| n as u64),
                notify: r.get(19)?,
            }),
            None => None,
        },
        generation: r.get(20)?,
        token_hash: r.get(21)?,
        client_id: r.get(22)?,
        reference: match (
            r.get::<_, Option<String>>(23)?,
            r.get::<_, Option<String>>(24)?,
        ) {
            (Some(t), Some(value)) => Some(Reference {
                kind: RefType::parse(&t).ok_or_else(|| bad(23, t.clone()))?,
                value,
            }),
            _ => None,
        },
    })
}

fn one(c: &mut Connection, clause: &str, value: &dyn rusqlite::ToSql) -> Result<Option<Link>> {
    Ok(c.query_row(
        &format!("SELECT {COLS} FROM links WHERE {clause}"),
        [value],
        row,
    )
    .optional()?)
}

pub fn insert(c: &mut Connection, l: &NewLink, files: &[LinkFile]) -> Result<Link> {
    let tx = c.transaction()?;
    tx.execute(
        "INSERT INTO links (public_id, token_hash, kind, owner, title, message, recipients, expires_at,
                            max_uses, password_hash, allowed_emails, state, created_at, name,
                            folder, max_size, notify_uploads, generation, client_id, ref_type, ref_value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                 ?19, ?20, ?21)",
        params![
            l.public_id,
            l.token_hash,
            l.kind.as_str(),
            l.owner,
            l.title,
            l.message,
            l.recipients.join(","),
            l.expires_at,
            l.max_uses,
            l.password_hash,
            l.allowed_emails.join(","),
            l.state.as_str(),
            now_ms(),
            l.name,
            l.inbound.as_ref().map(|i| i.folder.clone()),
            l.inbound.as_ref().and_then(|i| i.max_size).map(|n| n as i64),
            l.inbound.as_ref().is_some_and(|i| i.notify),
            l.generation,
            l.client_id,
            l.reference.as_ref().map(|r| r.kind.as_str()),
            l.reference.as_ref().map(|r| r.value.clone()),
        ],
    )?;
    let id = tx.last_insert_rowid();
    for f in files {
        add_file_tx(&tx, id, f)?;
    }
    tx.commit()?;
    by_public_id(c, &l.public_id)?.ok_or_else(|| Error::internal("link vanished after insert"))
}

fn add_file_tx(c: &Connection, link_id: i64, f: &LinkFile) -> Result<()> {
    c.execute(
        "INSERT INTO link_files (link_id, name, path, is_dir, size, sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![link_id, f.name, f.path, f.is_dir, f.size as i64, f.sha256],
    )?;
    Ok(())
}

pub fn add_file(c: &mut Connection, link_id: i64, f: &LinkFile) -> Result<()> {
    add_file_tx(c, link_id, f)
}

pub fn by_token_hash(c: &mut Connection, hash: &str) -> Result<Option<Link>> {
    one(c, "token_hash = ?1", &hash)
}

pub fn by_public_id(c: &mut Connection, id: &str) -> Result<Option<Link>> {
    one(c, "public_id = ?1", &id)
}

pub fn list(c: &mut Connection, owner: Option<&str>) -> Result<Vec<Link>> {
    let mut stmt = c.prepare(&format!(
        "SELECT {COLS} FROM links WHERE (?1 IS NULL OR owner = ?1) ORDER BY created_at DESC, id DESC"
    ))?;
    let rows = stmt.query_map([owner], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn files(c: &mut Connection, link_id: i64) -> Result<Vec<LinkFile>> {
    let mut stmt = c.prepare(
        "SELECT id, name, path, is_dir, size, sha256 FROM link_files WHERE link_id = ?1 ORDER BY name",
    )?;
    let rows = stmt.query_map([link_id], |r| {
        Ok(LinkFile {
            id: r.get(0)?,
            name: r.get(1)?,
            path: r.get(2)?,
            is_dir: r.get(3)?,
            size: r.get::<_, i64>(4)? as u64,
            sha256: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn changed(n: usize) -> Result<()> {
    match n {
        0 => Err(Error::not_found("no such link")),
        _ => Ok(()),
    }
}

pub fn change(c: &mut Connection, id: i64, ch: &LinkChange) -> Result<()> {
    let n = match ch {
        LinkChange::Expiry(at) => c.execute("UPDATE links SET expires_at = ?1 WHERE id = ?2", params![at, id])?,
        LinkChange::Revoke(at) => c.execute(
            "UPDATE links SET state = 'revoked', ended_at = ?1 WHERE id = ?2 AND state != 'revoked'",
            params![at, id],
        )?,
        LinkChange::Token { hash, generation } => c.execute(
            "UPDATE links SET token_hash = ?1, generation = ?2 WHERE id = ?3",
            params![hash, generation, id],
        )?,
        LinkChange::Activate => c.execute(
            "UPDATE links SET state = 'active' WHERE id = ?1 AND state = 'draft'",
            params![id],
        )?,
        LinkChange::Restore => c.execute(
            "UPDATE links SET state = 'active', ended_at = NULL WHERE id = ?1 AND state = 'revoked'",
            params![id],
        )?,
    };
    changed(n)
}

/// Applies staff's new rules in one statement (nothing if nothing changes).
pub fn edit(c: &mut Connection, id: i64, e: &LinkEdit) -> Result<()> {
    let mut sets: Vec<&str> = Vec::new();
    let mut values: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
    let mut put = |col: &'static str, v: Box<dyn rusqlite::ToSql>| {
        sets.push(col);
        values.push(v);
    };
    if let Some(v) = &e.title {
        put("title", Box::new(v.clone()));
    }
    if let Some(v) = &e.message {
        put("message", Box::new(v.clone()));
    }
    if let Some(v) = &e.recipients {
        put("recipients", Box::new(v.join(",")));
    }
    if let Some(v) = &e.password_hash {
        put("password_hash", Box::new(v.clone()));
    }
    if let Some(v) = &e.allowed_emails {
        put("allowed_emails", Box::new(v.join(",")));
    }
    if let Some(v) = e.max_uses {
        put("max_uses", Box::new(v));
    }
    if let Some(v) = e.expires_at {
        put("expires_at", Box::new(v));
    }
    if let Some(v) = e.client_id {
        put("client_id", Box::new(v));
    }
    if let Some(v) = &e.reference {
        put("ref_type", Box::new(v.as_ref().map(|r| r.kind.as_str())));
        put("ref_value", Box::new(v.as_ref().map(|r| r.value.clone())));
    }
    if sets.is_empty() {
        return Ok(());
    }
    let assignments: Vec<String> = sets
        .iter()
        .enumerate()
        .map(|(i, col)| format!("{col} = ?{}", i + 1))
        .collect();
    let sql = format!(
        "UPDATE links SET {} WHERE id = ?{}",
        assignments.join(", "),
        sets.len() + 1
    );
    values.push(Box::new(id));
    changed(c.execute(&sql, rusqlite::params_from_iter(values.iter()))?)
}

/// Gives a draft its rules and token and makes it active; false if it was not
/// (or no longer) a draft.
pub fn finish_draft(c: &mut Connection, id: i64, l: &NewLink) -> Result<bool> {
    let n = c.execute(
        "UPDATE links SET token_hash = ?2, title = ?3, message = ?4, recipients = ?5,
                          expires_at = ?6, max_uses = ?7, password_hash = ?8,
                          allowed_emails = ?9, name = ?10, state = 'active', generation = ?11,
                          client_id = ?12, ref_type = ?13, ref_value = ?14
         WHERE id = ?1 AND state = 'draft'",
        params![
            id,
            l.token_hash,
            l.title,
            l.message,
            l.recipients.join(","),
            l.expires_at,
            l.max_uses,
            l.password_hash,
            l.allowed_emails.join(","),
            l.name,
            l.generation,
            l.client_id,
            l.reference.as_ref().map(|r| r.kind.as_str()),
            l.reference.as_ref().map(|r| r.value.clone()),
        ],
    )?;
    Ok(n == 1)
}

pub fn delete(c: &mut Connection, id: i64) -> Result<()> {
    changed(c.execute("DELETE FROM links WHERE id = ?1", [id])?)
}

pub fn delete_files(c: &mut Connection, link_id: i64) -> Result<()> {
    c.execute("DELETE FROM link_files WHERE link_id = ?1", [link_id])?;
    Ok(())
}

pub fn reserve_use(c: &Connection, id: i64, now: Millis) -> Result<bool> {
    // One statement decides and counts: SQLite serialises writers, so N concurrent
    // requests on a one-time link see exactly one row updated.
    let n = c.execute(
        "UPDATE links SET uses = uses + 1, last_used_at = ?2
         WHERE id = ?1 AND state = 'active'
           AND (expires_at IS NULL OR expires_at > ?2)
           AND (max_uses IS NULL OR uses < max_uses)",
        params![id, now],
    )?;
    Ok(n == 1)
}

pub fn refund_use(c: &Connection, id: i64) -> Result<()> {
    c.execute(
        "UPDATE links SET uses = uses - 1 WHERE id = ?1 AND uses > 0",
        [id],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::store::sqlite::SqliteStore;
    use crate::store::*;

    fn new_link(public_id: &str, max_uses: Option<u32>, expires_at: Option<Millis>) -> NewLink {
        NewLink {
            public_id: public_id.into(),
            token_hash: format!("hash-{public_id}"),
            kind: LinkKind::Send,
            owner: "alice".into(),
            title: "Q3 report".into(),
            inbound: None,
            message: String::new(),
            recipients: vec!["bob@example.com".into()],
            expires_at,
            max_uses,
            password_hash: None,
            allowed_emails: vec![],
            state: LinkState::Active,
            name: String::new(),
            generation: Some(1),
            client_id: None,
            reference: None,
        }
    }

    fn file(name: &str) -> LinkFile {
        LinkFile {
            id: 0,
            name: name.into(),
            path: format!("links/x/{name}"),
            is_dir: false,
            size: 12,
            sha256: Some("ab".into()),
        }
    }

    #[test]
    fn fifty_concurrent_reservations_of_a_one_time_link_give_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("t.db")).unwrap());
        let link = store
            .link_insert(&new_link("once", Some(1), None), &[file("a.pdf")])
            .unwrap();
        let now = now_ms();
        let threads: Vec<_> = (0..50)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || store.link_reserve_use(link.id, now).unwrap())
            })
            .collect();
        let granted = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|g| *g)
            .count();
        assert_eq!(granted, 1);
        let after = store.link_by_public_id("once").unwrap().unwrap();
        assert_eq!(after.uses, 1);
        // A refunded use can be taken again, once.
        store.link_refund_use(link.id).unwrap();
        assert!(store.link_reserve_use(link.id, now).unwrap());
        assert!(!store.link_reserve_use(link.id, now).unwrap());
    }

    #[test]
    fn expired_revoked_and_draft_links_give_no_use() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let now = now_ms();
        let old = store
            .link_insert(&new_link("old", None, Some(now - 1)), &[])
            .unwrap();
        assert!(!store.link_reserve_use(old.id, now).unwrap());
        let l = store
            .link_insert(&new_link("rev", None, None), &[file("a"), file("b")])
            .unwrap();
        assert!(store.link_reserve_use(l.id, now).unwrap());
        store.link_change(l.id, &LinkChange::Revoke(now)).unwrap();
        assert!(!store.link_reserve_use(l.id, now).unwrap());
        let mut draft = new_link("draft", None, None);
        draft.state = LinkState::Draft;
        let d = store.link_insert(&draft, &[]).unwrap();
        assert!(!store.link_reserve_use(d.id, now).unwrap());
        store.link_change(d.id, &LinkChange::Activate).unwrap();
        assert!(store.link_reserve_use(d.id, now).unwrap());

        let names: Vec<String> = store
            .link_files(l.id)
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
        store
            .link_change(
                l.id,
                &LinkChange::Token {
                    hash: "new-hash".into(),
                    generation: 2,
                },
            )
            .unwrap();
        assert!(
            store.link_by_token_hash("hash-rev").unwrap().is_none(),
            "old token gone"
        );
        assert_eq!(
            store
                .link_by_token_hash("new-hash")
                .unwrap()
                .unwrap()
                .public_id,
            "rev"
        );
        store.link_delete(l.id).unwrap();
        assert!(
            store.link_files(l.id).unwrap().is_empty(),
            "files go with the link"
        );
        assert_eq!(store.link_list(Some("alice")).unwrap().len(), 2);
    }

    #[test]
    fn edits_change_only_what_they_name_and_restore_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let mut l = new_link("ed", Some(3), None);
        l.password_hash = Some("$argon2id$x".into());
        let l = store.link_insert(&l, &[]).unwrap();
        assert_eq!(l.generation, Some(1));
        store.link_edit(l.id, &LinkEdit::default()).unwrap();
        assert_eq!(store.link_by_public_id("ed").unwrap().unwrap(), l);
        store
            .link_edit(
                l.id,
                &LinkEdit {
                    title: Some("New".into()),
                    password_hash: Some(None),
                    max_uses: Some(None),
                    allowed_emails: Some(vec!["a@b.c".into(), "d@e.f".into()]),
                    ..LinkEdit::default()
                },
            )
            .unwrap();
        let e = store.link_by_public_id("ed").unwrap().unwrap();
        assert_eq!(e.title, "New");
        assert_eq!(e.password_hash, None);
        assert_eq!(e.max_uses, None);
        assert_eq!(e.allowed_emails, ["a@b.c", "d@e.f"]);
        assert_eq!(e.recipients, l.recipients, "not named, not changed");
        assert_eq!(e.message, l.message);
        let now = now_ms();
        store.link_change(l.id, &LinkChange::Revoke(now)).unwrap();
        assert!(!store.link_reserve_use(l.id, now).unwrap());
        store.link_change(l.id, &LinkChange::Restore).unwrap();
        let r = store.link_by_public_id("ed").unwrap().unwrap();
        assert_eq!((r.state, r.ended_at), (LinkState::Active, None));
        assert!(store.link_reserve_use(l.id, now).unwrap());
        assert!(
            store.link_change(l.id, &LinkChange::Restore).is_err(),
            "only a revoked link is restored"
        );
    }
}
