//! SQL for what link visitors hold: grants (and the use each one is charged) and
//! pending e-mail codes.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::Result;
use crate::store::{CodeCheck, Millis, Ticket};

/// Starts a download under `grant`: free if the grant is charged, shared if
/// another of its downloads holds a reservation, else one use is reserved with
/// the same conditional UPDATE as before. One IMMEDIATE transaction, so two
/// downloads of one grant never both reserve.
pub fn begin_download(
    c: &mut Connection,
    link_id: i64,
    grant: &str,
    now: Millis,
) -> Result<Ticket> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let held: Option<(bool, i64)> = tx
        .query_row(
            "SELECT charged, inflight FROM link_grants WHERE link_id = ?1 AND grant_id = ?2",
            params![link_id, grant],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let ticket = match held {
        Some((true, _)) => Ticket::Free,
        Some((false, n)) if n > 0 => {
            tx.execute(
                "UPDATE link_grants SET inflight = inflight + 1, reserved_at = ?3
                 WHERE link_id = ?1 AND grant_id = ?2",
                params![link_id, grant, now],
            )?;
            Ticket::Shared
        }
        _ => {
            if super::links::reserve_use(&tx, link_id, now)? {
                tx.execute(
                    "INSERT INTO link_grants (link_id, grant_id, charged, inflight, created_at, reserved_at)
                     VALUES (?1, ?2, 0, 1, ?3, ?3)
                     ON CONFLICT (link_id, grant_id) DO UPDATE SET inflight = 1, charged = 0, reserved_at = ?3",
                    params![link_id, grant, now],
                )?;
                Ticket::Reserved
            } else {
                Ticket::Refused
            }
        }
    };
    tx.commit()?;
    Ok(ticket)
}

/// Ends a download begun with a `Shared` or `Reserved` ticket. A complete one
/// charges the grant; when the last download of an uncharged grant fails, its
/// use is refunded.
pub fn end_download(c: &mut Connection, link_id: i64, grant: &str, complete: bool) -> Result<()> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "UPDATE link_grants SET inflight = MAX(inflight - 1, 0), charged = charged OR ?3
         WHERE link_id = ?1 AND grant_id = ?2",
        params![link_id, grant, complete],
    )?;
    let gone = tx.execute(
        "DELETE FROM link_grants WHERE link_id = ?1 AND grant_id = ?2 AND inflight = 0 AND charged = 0",
        params![link_id, grant],
    )?;
    if gone == 1 {
        super::links::refund_use(&tx, link_id)?;
    }
    tx.commit()?;
    Ok(())
}

/// Marks the downloads of `grant` as alive at `now` (a long download calls it
/// now and then, so the sweep below leaves it alone).
pub fn touch_download(c: &mut Connection, link_id: i64, grant: &str, now: Millis) -> Result<()> {
    c.execute(
        "UPDATE link_grants SET reserved_at = ?3 WHERE link_id = ?1 AND grant_id = ?2 AND inflight > 0",
        params![link_id, grant, now],
    )?;
    Ok(())
}

/// Downloads in flight not seen alive since `before` never settled (the process
/// died under them): their grants stop counting them, and a grant left with no
/// charged download gives its use back. Returns the uses given back.
pub fn refund_stale(c: &mut Connection, before: Millis) -> Result<u64> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let stale: Vec<(i64, String, bool)> = {
        let mut q = tx.prepare(
            "SELECT link_id, grant_id, charged FROM link_grants WHERE inflight > 0 AND reserved_at < ?1",
        )?;
        let rows = q.query_map(params![before], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut refunded = 0;
    for (link_id, grant, charged) in stale {
        if charged {
            tx.execute(
                "UPDATE link_grants SET inflight = 0 WHERE link_id = ?1 AND grant_id = ?2",
                params![link_id, grant],
            )?;
        } else {
            tx.execute(
                "DELETE FROM link_grants WHERE link_id = ?1 AND grant_id = ?2",
                params![link_id, grant],
            )?;
            super::links::refund_use(&tx, link_id)?;
            refunded += 1;
        }
    }
    tx.commit()?;
    Ok(refunded)
}

/// Whether `grant` holds a use of the link (charged or in flight): such a visitor
/// may go on downloading after the link's limit is reached.
pub fn grant_holds(c: &mut Connection, link_id: i64, grant: &str) -> Result<bool> {
    Ok(c.query_row(
        "SELECT count(*) FROM link_grants WHERE link_id = ?1 AND grant_id = ?2",
        params![link_id, grant],
        |r| r.get::<_, i64>(0),
    )? > 0)
}

/// Stores a new code for (link, address), replacing any pending one.
pub fn put_code(
    c: &mut Connection,
    link_id: i64,
    email: &str,
    hash: &str,
    expires_at: Millis,
) -> Result<()> {
    c.execute(
        "INSERT INTO link_codes (link_id, email, code_hash, expires_at, attempts) VALUES (?1, ?2, ?3, ?4, 0)
         ON CONFLICT (link_id, email) DO UPDATE SET code_hash = ?3, expires_at = ?4, attempts = 0",
        params![link_id, email, hash, expires_at],
    )?;
    Ok(())
}

/// Checks an entered code: each try counts; a valid code is used up.
pub fn try_code(
    c: &mut Connection,
    link_id: i64,
    email: &str,
    hash: &str,
    now: Millis,
    max_attempts: u32,
) -> Result<CodeCheck> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let row: Option<(String, Millis, u32)> = tx
        .query_row(
            "SELECT code_hash, expires_at, attempts FROM link_codes WHERE link_id = ?1 AND email = ?2",
            params![link_id, email],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let answer = match row {
        Some((stored, expires_at, attempts)) if expires_at > now && attempts < max_attempts => {
            use subtle::ConstantTimeEq;
            if bool::from(stored.as_bytes().ct_eq(hash.as_bytes())) {
                tx.execute(
                    "DELETE FROM link_codes WHERE link_id = ?1 AND email = ?2",
                    params![link_id, email],
                )?;
                CodeCheck::Valid
            } else {
                tx.execute(
                    "UPDATE link_codes SET attempts = attempts + 1 WHERE link_id = ?1 AND email = ?2",
                    params![link_id, email],
                )?;
                CodeCheck::Wrong
            }
        }
        _ => CodeCheck::Missing,
    };
    tx.commit()?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::store::sqlite::SqliteStore;
    use crate::store::*;

    fn store_with_link(max_uses: Option<u32>) -> (tempfile::TempDir, Arc<SqliteStore>, i64) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("t.db")).unwrap());
        let link = store
            .link_insert(
                &NewLink {
                    public_id: "p".into(),
                    token_hash: "h".into(),
                    kind: LinkKind::Send,
                    owner: "alice".into(),
                    title: String::new(),
                    inbound: None,
                    message: String::new(),
                    recipients: vec![],
                    expires_at: None,
                    max_uses,
                    password_hash: None,
                    allowed_emails: vec![],
                    state: LinkState::Active,
                    generation: None,
                    client_id: None,
                    reference: None,
                    name: String::new(),
                },
                &[],
            )
            .unwrap();
        (dir, store, link.id)
    }

    #[test]
    fn a_grant_pays_once_and_a_failed_first_download_is_refunded() {
        let (_d, s, id) = store_with_link(Some(1));
        let now = now_ms();
        assert_eq!(
            s.link_begin_download(id, "g1", now).unwrap(),
            Ticket::Reserved
        );
        // A second file of the same grant rides on the reservation.
        assert_eq!(
            s.link_begin_download(id, "g1", now).unwrap(),
            Ticket::Shared
        );
        // Another visitor finds the one use taken.
        assert_eq!(
            s.link_begin_download(id, "g2", now).unwrap(),
            Ticket::Refused
        );
        // Both downloads of g1 fail: the use comes back.
        s.link_end_download(id, "g1", false).unwrap();
        assert!(s.link_grant_holds(id, "g1").unwrap());
        s.link_end_download(id, "g1", false).unwrap();
        assert!(!s.link_grant_holds(id, "g1").unwrap());
        assert_eq!(s.link_by_public_id("p").unwrap().unwrap().uses, 0);
        // g2 now gets it, completes, and later downloads are free.
        assert_eq!(
            s.link_begin_download(id, "g2", now).unwrap(),
            Ticket::Reserved
        );
        s.link_end_download(id, "g2", true).unwrap();
        assert_eq!(s.link_begin_download(id, "g2", now).unwrap(), Ticket::Free);
        assert_eq!(s.link_by_public_id("p").unwrap().unwrap().uses, 1);
        assert_eq!(
            s.link_begin_download(id, "g1", now).unwrap(),
            Ticket::Refused
        );
    }

    #[test]
    fn fifty_concurrent_grants_on_a_one_time_link_get_one_use() {
        let (_d, s, id) = store_with_link(Some(1));
        let now = now_ms();
        let threads: Vec<_> = (0..50)
            .map(|i| {
                let s = s.clone();
                std::thread::spawn(move || {
                    s.link_begin_download(id, &format!("g{i}"), now).unwrap()
                })
            })
            .collect();
        let reserved = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|t| *t == Ticket::Reserved)
            .count();
        assert_eq!(reserved, 1);
    }

    #[test]
    fn codes_expire_run_out_of_attempts_and_are_used_once() {
        let (_d, s, id) = store_with_link(None);
        let now = now_ms();
        s.link_code_put(id, "bob@x.org", "H", now + 1000).unwrap();
        assert_eq!(
            s.link_code_try(id, "bob@x.org", "X", now, 5).unwrap(),
            CodeCheck::Wrong
        );
        assert_eq!(
            s.link_code_try(id, "eve@x.org", "H", now, 5).unwrap(),
            CodeCheck::Missing
        );
        assert_eq!(
            s.link_code_try(id, "bob@x.org", "H", now + 1000, 5)
                .unwrap(),
            CodeCheck::Missing
        );
        assert_eq!(
            s.link_code_try(id, "bob@x.org", "H", now, 5).unwrap(),
            CodeCheck::Valid
        );
        assert_eq!(
            s.link_code_try(id, "bob@x.org", "H", now, 5).unwrap(),
            CodeCheck::Missing
        );
        s.link_code_put(id, "bob@x.org", "H", now + 1000).unwrap();
        for _ in 0..5 {
            assert_eq!(
                s.link_code_try(id, "bob@x.org", "X", now, 5).unwrap(),
                CodeCheck::Wrong
            );
        }
        assert_eq!(
            s.link_code_try(id, "bob@x.org", "H", now, 5).unwrap(),
            CodeCheck::Missing,
            "out of attempts"
        );
    }
}
