//! SQL for what link visitors hold: grants (and the use each one is charged) and
//! pending e-mail codes. Where SQLite takes its one write lock, these
//! transactions lock the link's row (then the grant's), so they hold across
//! nodes.

use super::conn::{begin, commit, get, Conn, Sql};
use super::links::{lock, refund_use, reserve_use};
use crate::error::Result;
use crate::store::{CodeCheck, Millis, Ticket};

/// Starts a download under `grant`: free if the grant is charged, shared if
/// another of its downloads holds a reservation, else one use is reserved.
pub fn begin_download(c: &mut Conn, link_id: i64, grant: &str, now: Millis) -> Result<Ticket> {
    let tx = begin(c)?;
    lock(&tx, link_id)?;
    let held: Option<(bool, i64)> = match tx.opt(
        "SELECT charged, inflight FROM link_grants WHERE link_id = $1 AND grant_id = $2",
        &[&link_id, &grant],
    )? {
        Some(r) => Some((get(&r, 0)?, get(&r, 1)?)),
        None => None,
    };
    let ticket = match held {
        Some((true, _)) => Ticket::Free,
        Some((false, n)) if n > 0 => {
            tx.exec(
                "UPDATE link_grants SET inflight = inflight + 1, reserved_at = $3
                 WHERE link_id = $1 AND grant_id = $2",
                &[&link_id, &grant, &now],
            )?;
            Ticket::Shared
        }
        _ => {
            if reserve_use(&tx, link_id, now)? {
                tx.exec(
                    "INSERT INTO link_grants (link_id, grant_id, charged, inflight, created_at, reserved_at)
                     VALUES ($1, $2, FALSE, 1, $3, $3)
                     ON CONFLICT (link_id, grant_id)
                     DO UPDATE SET inflight = 1, charged = FALSE, reserved_at = $3",
                    &[&link_id, &grant, &now],
                )?;
                Ticket::Reserved
            } else {
                Ticket::Refused
            }
        }
    };
    commit(tx)?;
    Ok(ticket)
}

/// Ends a download begun with a `Shared` or `Reserved` ticket. A complete one
/// charges the grant; when the last download of an uncharged grant fails, its
/// use is refunded.
pub fn end_download(c: &mut Conn, link_id: i64, grant: &str, complete: bool) -> Result<()> {
    let tx = begin(c)?;
    lock(&tx, link_id)?;
    tx.exec(
        "UPDATE link_grants SET inflight = GREATEST(inflight - 1, 0), charged = charged OR $3
         WHERE link_id = $1 AND grant_id = $2",
        &[&link_id, &grant, &complete],
    )?;
    let gone = tx.exec(
        "DELETE FROM link_grants
         WHERE link_id = $1 AND grant_id = $2 AND inflight = 0 AND NOT charged",
        &[&link_id, &grant],
    )?;
    if gone == 1 {
        refund_use(&tx, link_id)?;
    }
    commit(tx)
}

/// Marks the downloads of `grant` as alive at `now`.
pub fn touch_download(c: &mut Conn, link_id: i64, grant: &str, now: Millis) -> Result<()> {
    c.exec(
        "UPDATE link_grants SET reserved_at = $3
         WHERE link_id = $1 AND grant_id = $2 AND inflight > 0",
        &[&link_id, &grant, &now],
    )?;
    Ok(())
}

/// Downloads in flight not seen alive since `before` never settled: their
/// grants stop counting them, and a grant left with no charged download gives
/// its use back. Each grant is settled in its own transaction that locks its
/// link first and checks again, so two nodes sweeping at once refund once.
pub fn refund_stale(c: &mut Conn, before: Millis) -> Result<u64> {
    let stale: Vec<(i64, String)> = c
        .rows(
            "SELECT link_id, grant_id FROM link_grants WHERE inflight > 0 AND reserved_at < $1",
            &[&before],
        )?
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
        .collect::<Result<_>>()?;
    let mut refunded = 0;
    for (link_id, grant) in stale {
        let tx = begin(c)?;
        lock(&tx, link_id)?;
        let row = tx.opt(
            "SELECT charged FROM link_grants
             WHERE link_id = $1 AND grant_id = $2 AND inflight > 0 AND reserved_at < $3",
            &[&link_id, &grant, &before],
        )?;
        match row {
            None => {}
            Some(r) if get::<bool>(&r, 0)? => {
                tx.exec(
                    "UPDATE link_grants SET inflight = 0 WHERE link_id = $1 AND grant_id = $2",
                    &[&link_id, &grant],
                )?;
            }
            Some(_) => {
                tx.exec(
                    "DELETE FROM link_grants WHERE link_id = $1 AND grant_id = $2",
                    &[&link_id, &grant],
                )?;
                refund_use(&tx, link_id)?;
                refunded += 1;
            }
        }
        commit(tx)?;
    }
    Ok(refunded)
}

/// Whether `grant` holds a use of the link (charged or in flight).
pub fn grant_holds(c: &mut Conn, link_id: i64, grant: &str) -> Result<bool> {
    let n: i64 = get(
        &c.one(
            "SELECT count(*) FROM link_grants WHERE link_id = $1 AND grant_id = $2",
            &[&link_id, &grant],
        )?,
        0,
    )?;
    Ok(n > 0)
}

/// Stores a new code for (link, address), replacing any pending one.
pub fn put_code(
    c: &mut Conn,
    link_id: i64,
    email: &str,
    hash: &str,
    expires_at: Millis,
) -> Result<()> {
    c.exec(
        "INSERT INTO link_codes (link_id, email, code_hash, expires_at, attempts)
         VALUES ($1, $2, $3, $4, 0)
         ON CONFLICT (link_id, email) DO UPDATE SET code_hash = $3, expires_at = $4, attempts = 0",
        &[&link_id, &email, &hash, &expires_at],
    )?;
    Ok(())
}

/// Checks an entered code: each try counts; a valid code is used up. The code's
/// row is locked, so concurrent tries (on any node) are counted one by one.
pub fn try_code(
    c: &mut Conn,
    link_id: i64,
    email: &str,
    hash: &str,
    now: Millis,
    max_attempts: u32,
) -> Result<CodeCheck> {
    let tx = begin(c)?;
    let row: Option<(String, Millis, i64)> = match tx.opt(
        "SELECT code_hash, expires_at, attempts FROM link_codes
         WHERE link_id = $1 AND email = $2 FOR UPDATE",
        &[&link_id, &email],
    )? {
        Some(r) => Some((get(&r, 0)?, get(&r, 1)?, get(&r, 2)?)),
        None => None,
    };
    let answer = match row {
        Some((stored, expires_at, attempts))
            if expires_at > now && attempts < i64::from(max_attempts) =>
        {
            use subtle::ConstantTimeEq;
            if bool::from(stored.as_bytes().ct_eq(hash.as_bytes())) {
                tx.exec(
                    "DELETE FROM link_codes WHERE link_id = $1 AND email = $2",
                    &[&link_id, &email],
                )?;
                CodeCheck::Valid
            } else {
                tx.exec(
                    "UPDATE link_codes SET attempts = attempts + 1 WHERE link_id = $1 AND email = $2",
                    &[&link_id, &email],
                )?;
                CodeCheck::Wrong
            }
        }
        _ => CodeCheck::Missing,
    };
    commit(tx)?;
    Ok(answer)
}
