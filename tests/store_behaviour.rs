//! The store behaviour suite: one set of cases, written once against
//! `dyn Store`, run on a fresh SQLite database and on a fresh database of a real
//! PostgreSQL server (tests/common/postgres.rs). Both stores must give the same
//! answers, the same errors, and keep the link rules under concurrency (threads
//! hitting one link at once). Last, a real gateway on PostgreSQL: SFTP login,
//! a link downloaded with curl, the audit row read back from PostgreSQL.

mod common;

use std::sync::{Arc, Barrier};

use wharf::audit::AuditEvent;
use wharf::policy::Protocol;
use wharf::store::postgres::PostgresStore;
use wharf::store::sqlite::SqliteStore;
use wharf::store::*;
use wharf::vfs::VPath;
use wharf::ErrorKind;

/// A store under test, with what keeps it alive.
struct Fixture {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
    Fixture {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

fn postgres(case: &str) -> Option<Fixture> {
    let server = common::postgres::shared()?;
    let url = server.create_db(&common::postgres::db_name(case));
    let store: Arc<dyn Store> = Arc::new(PostgresStore::open(&url).unwrap());
    // Open the pool's connections now, so the threads of a concurrent case
    // start their statements together instead of one connection set-up apart.
    let warm = store.clone();
    race(16, move |_| warm.user_count().unwrap());
    Some(Fixture { store, _dir: None })
}

/// Each case once on SQLite and once on PostgreSQL.
macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $( #[test] fn $case() { super::$case(&super::sqlite()); } )*
        }
        mod on_postgres {
            $( #[test] fn $case() {
                if let Some(f) = super::postgres(stringify!($case)) { super::$case(&f); }
            } )*
        }
    };
}

on_both!(
    users_keys_and_api_keys,
    links_insert_get_search_edit_and_finish_draft,
    one_time_link_under_50_concurrent_reservations_gives_one,
    limit_of_5_under_60_concurrent_reservations_gives_5,
    downloads_begin_end_and_stale_refunds,
    fifty_concurrent_grants_on_a_one_time_link_reserve_once,
    downloads_and_stale_sweeps_at_once_charge_each_use_once,
    twenty_downloads_of_one_grant_at_once_take_one_use,
    codes_count_every_try_under_concurrency,
    uploads_take_uses_under_concurrency_and_give_them_back,
    web_sessions_touch_and_purge,
    audit_append_and_query,
    bans_put_and_active,
    clients_and_contacts,
    notifications_feed_and_prefs,
    leases_have_one_holder_until_their_ttl,
    twenty_nodes_racing_for_one_lease_give_one_holder,
    login_tries_reserved_at_once_never_pass_the_limit,
    bans_changed_and_ban_until,
    object_times_put_replace_list_by_folder_and_delete,
);

fn new_user(name: &str) -> NewUser {
    NewUser {
        name: name.into(),
        password_hash: Some("$argon2id$x".into()),
        home: VPath::parse(&format!("/{name}")).unwrap(),
        perms: "all".parse().unwrap(),
        protocols: "all".parse().unwrap(),
        key_and_password: false,
    }
}

fn new_link(public_id: &str, max_uses: Option<u32>) -> NewLink {
    NewLink {
        public_id: public_id.into(),
        token_hash: format!("hash-{public_id}"),
        kind: LinkKind::Send,
        owner: "alice".into(),
        title: format!("Title of {public_id}"),
        message: String::new(),
        recipients: vec!["bob@example.com".into()],
        expires_at: None,
        max_uses,
        password_hash: None,
        allowed_emails: vec![],
        state: LinkState::Active,
        name: String::new(),
        inbound: None,
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

/// Runs `n` threads released together; returns their answers.
fn race<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (f, barrier) = (f.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn users_keys_and_api_keys(f: &Fixture) {
    let s = f.store.as_ref();
    for name in ["bob", "Alice", "carol"] {
        s.user_insert(&new_user(name)).unwrap();
    }
    assert_eq!(
        s.user_insert(&new_user("bob")).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    assert_eq!(s.user_count().unwrap(), 3);
    let names: Vec<String> = s.user_list().unwrap().into_iter().map(|u| u.name).collect();
    assert_eq!(
        names,
        ["Alice", "bob", "carol"],
        "byte order, as SQLite sorts"
    );
    let bob = s.user_get("bob").unwrap().unwrap();
    assert!(bob.enabled && !bob.admin && !bob.key_and_password);
    assert_eq!(bob.home.as_str(), "/bob");
    assert_eq!(bob.password_hash.as_deref(), Some("$argon2id$x"));
    assert!(s.user_get("nobody").unwrap().is_none());

    s.user_set_password("bob", None).unwrap();
    s.user_set_enabled("bob", false).unwrap();
    s.user_set_key_and_password("bob", true).unwrap();
    s.user_set_email("bob", Some("bob@example.com")).unwrap();
    s.user_set_perms("bob", "list,read".parse().unwrap())
        .unwrap();
    s.user_set_admin("bob", true).unwrap();
    s.user_set_display_name("bob", Some("Bob B.")).unwrap();
    let b = s.user_get("bob").unwrap().unwrap();
    assert_eq!(b.password_hash, None);
    assert!(!b.enabled && b.key_and_password && b.admin);
    assert_eq!(b.email.as_deref(), Some("bob@example.com"));
    assert_eq!(b.display_name.as_deref(), Some("Bob B."));
    assert_eq!(b.perms.to_string(), "list,read");
    for err in [
        s.user_set_enabled("nobody", true).unwrap_err(),
        s.user_set_password("nobody", None).unwrap_err(),
        s.user_delete("nobody").unwrap_err(),
        s.keys_of("nobody").unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    }

    let key = NewKey {
        algorithm: "ssh-ed25519".into(),
        openssh: "ssh-ed25519 AAAA".into(),
        comment: "laptop".into(),
        fingerprint: "SHA256:abc".into(),
    };
    let k = s.key_insert("bob", &key).unwrap();
    assert_eq!(
        (k.fingerprint.as_str(), k.comment.as_str()),
        ("SHA256:abc", "laptop")
    );
    assert_eq!(
        s.key_insert("bob", &key).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    s.key_insert("carol", &key).unwrap();
    assert_eq!(s.keys_of("bob").unwrap(), vec![k]);
    assert_eq!(
        s.key_delete("bob", "SHA256:none").unwrap_err().kind(),
        ErrorKind::NotFound
    );

    let api = |prefix: &str| NewApiKey {
        name: "ci".into(),
        prefix: prefix.into(),
        key_hash: format!("hash-{prefix}"),
    };
    let a = s.api_key_insert("bob", &api("aaaa2222")).unwrap();
    assert_eq!(
        (a.user.as_str(), a.last_used_at, a.revoked_at),
        ("bob", None, None)
    );
    assert_eq!(
        s.api_key_insert("carol", &api("aaaa2222"))
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        s.api_key_insert("nobody", &api("cccc2222"))
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    s.api_key_insert("carol", &api("bbbb2222")).unwrap();
    assert_eq!(s.api_key_list(None).unwrap().len(), 2);
    assert_eq!(
        s.api_key_list(Some("bob")).unwrap(),
        std::slice::from_ref(&a)
    );
    s.api_key_touch(a.id, 1_000_000).unwrap();
    s.api_key_touch(a.id, 1_000_001).unwrap();
    let t = s.api_key_by_prefix("aaaa2222").unwrap().unwrap();
    assert_eq!(t.last_used_at, Some(1_000_000), "one write a minute");
    s.api_key_revoke("aaaa2222", 5).unwrap();
    s.api_key_revoke("aaaa2222", 9).unwrap();
    let r = s.api_key_by_prefix("aaaa2222").unwrap().unwrap();
    assert_eq!(r.revoked_at, Some(5), "the first revocation stays");
    assert_eq!(
        s.api_key_revoke("zzzz2222", 5).unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // A user goes with their keys and API keys.
    s.user_delete("bob").unwrap();
    assert!(s.api_key_by_prefix("aaaa2222").unwrap().is_none());
    assert_eq!(s.user_count().unwrap(), 2);
    s.key_delete("carol", "SHA256:abc").unwrap();
    assert!(s.keys_of("carol").unwrap().is_empty());
}

fn links_insert_get_search_edit_and_finish_draft(f: &Fixture) {
    let s = f.store.as_ref();
    let now = now_ms();
    let mut a = new_link("aaa", Some(3));
    a.title = "Quarterly REPORT 50%".into();
    a.reference = Some(Reference {
        kind: RefType::Ticket,
        value: "OPS-42".into(),
    });
    let a = s.link_insert(&a, &[file("b.pdf"), file("a.pdf")]).unwrap();
    assert_eq!(a.uses, 0);
    assert_eq!(a.max_uses, Some(3));
    assert_eq!(a.generation, Some(1));
    assert_eq!(a.recipients, ["bob@example.com"]);
    assert_eq!(
        s.link_insert(&new_link("aaa", None), &[])
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyExists
    );
    assert_eq!(s.link_by_token_hash("hash-aaa").unwrap().unwrap(), a);
    assert_eq!(s.link_by_public_id("aaa").unwrap().unwrap(), a);
    assert!(s.link_by_public_id("zzz").unwrap().is_none());
    let names: Vec<String> = s
        .link_files(a.id)
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["a.pdf", "b.pdf"]);
    s.link_add_file(a.id, &file("c.txt")).unwrap();
    assert_eq!(
        s.link_add_file(a.id, &file("c.txt")).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );

    let mut b = new_link("bbb", None);
    b.owner = "bob".into();
    b.expires_at = Some(now - 1);
    let b = s.link_insert(&b, &[]).unwrap();
    let mut inbound = new_link("ccc", Some(1));
    inbound.kind = LinkKind::Request;
    inbound.inbound = Some(Inbound {
        folder: "/alice/in".into(),
        max_size: Some(1 << 40),
        notify: true,
    });
    let c = s.link_insert(&inbound, &[]).unwrap();
    assert_eq!(c.inbound, inbound.inbound);
    assert_eq!(s.link_list(None).unwrap().len(), 3);
    let mine: Vec<String> = s
        .link_list(Some("alice"))
        .unwrap()
        .into_iter()
        .map(|l| l.public_id)
        .collect();
    assert_eq!(mine, ["ccc", "aaa"], "newest first");

    let search = |q: LinkQuery| -> (Vec<String>, usize) {
        let page = s
            .link_search(&LinkQuery {
                limit: 10,
                now,
                ..q
            })
            .unwrap();
        (
            page.rows.into_iter().map(|r| r.link.public_id).collect(),
            page.total,
        )
    };
    // Case-insensitive words, LIKE's characters literal, file names count.
    let text = |t: &str| LinkQuery {
        text: Some(t.into()),
        ..Default::default()
    };
    assert_eq!(search(text("report 50%")), (vec!["aaa".to_string()], 1));
    assert_eq!(search(text("5_%")).1, 0);
    assert_eq!(search(text("C.TXT")).0, ["aaa"]);
    assert_eq!(search(text("ops-42")).0, ["aaa"]);
    let status = |st: &str| LinkQuery {
        status: Some(st.into()),
        ..Default::default()
    };
    assert_eq!(search(status("expired")).0, ["bbb"]);
    assert_eq!(search(status("active")).0, ["ccc", "aaa"]);
    let kind = LinkQuery {
        kind: Some(LinkKind::Request),
        ..Default::default()
    };
    assert_eq!(search(kind).0, ["ccc"]);
    let by_ref = LinkQuery {
        ref_type: Some(RefType::Ticket),
        reference: Some("ops".into()),
        ..Default::default()
    };
    assert_eq!(search(by_ref).0, ["aaa"]);
    let page = s
        .link_search(&LinkQuery {
            owner: Some("alice".into()),
            sort: LinkSort::Title,
            ascending: true,
            limit: 1,
            offset: 1,
            now,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.rows.len(), 1);
    assert_eq!(
        page.rows[0].link.public_id, "ccc",
        "'Quarterly…' < 'Title of ccc'"
    );
    let first = s
        .link_search(&LinkQuery {
            limit: 10,
            now,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        first.rows.iter().find(|r| r.link.id == a.id).unwrap().files,
        3
    );
    let last = &first.rows[1].link;
    let older = search(LinkQuery {
        before: Some((last.created_at, last.id)),
        ..Default::default()
    });
    assert_eq!(
        older.0.len(),
        1,
        "keyset paging: one link older than the second"
    );

    // Edits change only what they name.
    s.link_edit(a.id, &LinkEdit::default()).unwrap();
    s.link_edit(
        a.id,
        &LinkEdit {
            title: Some("New".into()),
            max_uses: Some(None),
            allowed_emails: Some(vec!["a@b.c".into(), "d@e.f".into()]),
            password_hash: Some(Some("$argon2id$p".into())),
            reference: Some(None),
            ..LinkEdit::default()
        },
    )
    .unwrap();
    let e = s.link_by_public_id("aaa").unwrap().unwrap();
    assert_eq!(e.title, "New");
    assert_eq!(e.max_uses, None);
    assert_eq!(e.allowed_emails, ["a@b.c", "d@e.f"]);
    assert_eq!(e.password_hash.as_deref(), Some("$argon2id$p"));
    assert_eq!(e.reference, None);
    assert_eq!(e.recipients, a.recipients);
    assert_eq!(
        s.link_edit(
            9999,
            &LinkEdit {
                title: Some("x".into()),
                ..LinkEdit::default()
            }
        )
        .unwrap_err()
        .kind(),
        ErrorKind::NotFound
    );

    // Changes: revoke, restore, token, expiry.
    s.link_change(a.id, &LinkChange::Revoke(now)).unwrap();
    assert!(!s.link_reserve_use(a.id, now).unwrap());
    s.link_change(a.id, &LinkChange::Restore).unwrap();
    assert!(s.link_change(a.id, &LinkChange::Restore).is_err());
    s.link_change(
        a.id,
        &LinkChange::Token {
            hash: "new-hash".into(),
            generation: 2,
        },
    )
    .unwrap();
    assert!(s.link_by_token_hash("hash-aaa").unwrap().is_none());
    assert_eq!(
        s.link_by_token_hash("new-hash")
            .unwrap()
            .unwrap()
            .generation,
        Some(2)
    );
    s.link_change(b.id, &LinkChange::Expiry(None)).unwrap();
    assert!(s.link_reserve_use(b.id, now).unwrap());

    // A draft is finished once.
    let mut d = new_link("ddd", None);
    d.state = LinkState::Draft;
    let d = s.link_insert(&d, &[]).unwrap();
    assert!(!s.link_reserve_use(d.id, now).unwrap());
    let mut fin = new_link("ddd", Some(2));
    fin.token_hash = "final".into();
    fin.title = "Final".into();
    assert!(s.link_finish_draft(d.id, &fin).unwrap());
    assert!(!s.link_finish_draft(d.id, &fin).unwrap());
    let d = s.link_by_token_hash("final").unwrap().unwrap();
    assert_eq!(
        (d.state, d.title.as_str(), d.max_uses),
        (LinkState::Active, "Final", Some(2))
    );

    s.link_delete_files(a.id).unwrap();
    assert!(s.link_files(a.id).unwrap().is_empty());
    s.link_delete(a.id).unwrap();
    assert!(s.link_by_public_id("aaa").unwrap().is_none());
    assert_eq!(s.link_delete(a.id).unwrap_err().kind(), ErrorKind::NotFound);
}

fn reservations(f: &Fixture, limit: u32, threads: usize) -> (usize, u32) {
    let link = f
        .store
        .link_insert(&new_link("race", Some(limit)), &[file("a.pdf")])
        .unwrap();
    let now = now_ms();
    let store = f.store.clone();
    let granted = race(threads, move |_| {
        store.link_reserve_use(link.id, now).unwrap()
    })
    .into_iter()
    .filter(|g| *g)
    .count();
    let uses = f.store.link_by_public_id("race").unwrap().unwrap().uses;
    (granted, uses)
}

fn one_time_link_under_50_concurrent_reservations_gives_one(f: &Fixture) {
    assert_eq!(reservations(f, 1, 50), (1, 1));
    let id = f.store.link_by_public_id("race").unwrap().unwrap().id;
    f.store.link_refund_use(id).unwrap();
    assert!(f.store.link_reserve_use(id, now_ms()).unwrap());
    assert!(!f.store.link_reserve_use(id, now_ms()).unwrap());
}

fn limit_of_5_under_60_concurrent_reservations_gives_5(f: &Fixture) {
    assert_eq!(reservations(f, 5, 60), (5, 5));
}

fn downloads_begin_end_and_stale_refunds(f: &Fixture) {
    let s = f.store.as_ref();
    let id = s.link_insert(&new_link("p", Some(1)), &[]).unwrap().id;
    let now = now_ms();
    assert_eq!(
        s.link_begin_download(id, "g1", now).unwrap(),
        Ticket::Reserved
    );
    assert_eq!(
        s.link_begin_download(id, "g1", now).unwrap(),
        Ticket::Shared
    );
    assert_eq!(
        s.link_begin_download(id, "g2", now).unwrap(),
        Ticket::Refused
    );
    s.link_end_download(id, "g1", false).unwrap();
    assert!(s.link_grant_holds(id, "g1").unwrap());
    s.link_end_download(id, "g1", false).unwrap();
    assert!(!s.link_grant_holds(id, "g1").unwrap());
    assert_eq!(s.link_by_public_id("p").unwrap().unwrap().uses, 0);
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

    // Stale reservations: an uncharged grant gives its use back, a charged one
    // only stops counting its download; one kept alive stays.
    let q = s.link_insert(&new_link("q", Some(3)), &[]).unwrap().id;
    let t0 = 1_000;
    for g in ["dead", "paid", "alive"] {
        assert_eq!(s.link_begin_download(q, g, t0).unwrap(), Ticket::Reserved);
    }
    s.link_end_download(q, "paid", true).unwrap();
    assert_eq!(s.link_begin_download(q, "paid", t0).unwrap(), Ticket::Free);
    s.link_touch_download(q, "alive", 5_000).unwrap();
    assert_eq!(s.link_refund_stale(2_000).unwrap(), 1);
    assert_eq!(s.link_refund_stale(2_000).unwrap(), 0, "once");
    assert!(!s.link_grant_holds(q, "dead").unwrap());
    assert!(s.link_grant_holds(q, "paid").unwrap());
    assert!(s.link_grant_holds(q, "alive").unwrap());
    assert_eq!(s.link_by_public_id("q").unwrap().unwrap().uses, 2);
}

fn fifty_concurrent_grants_on_a_one_time_link_reserve_once(f: &Fixture) {
    let id = f
        .store
        .link_insert(&new_link("p", Some(1)), &[])
        .unwrap()
        .id;
    let now = now_ms();
    let store = f.store.clone();
    let tickets = race(50, move |i| {
        store
            .link_begin_download(id, &format!("g{}", i % 25), now)
            .unwrap()
    });
    let reserved = tickets.iter().filter(|t| **t == Ticket::Reserved).count();
    let shared = tickets.iter().filter(|t| **t == Ticket::Shared).count();
    assert_eq!(reserved, 1, "{tickets:?}");
    assert!(
        shared <= 1,
        "only the winner's second download rides: {tickets:?}"
    );
    assert_eq!(f.store.link_by_public_id("p").unwrap().unwrap().uses, 1);
}

/// One visitor's twenty parallel downloads (one grant) on a link with uses to
/// spare: one reserves, the others ride on it, and the link counts one use.
fn twenty_downloads_of_one_grant_at_once_take_one_use(f: &Fixture) {
    let id = f
        .store
        .link_insert(&new_link("p", Some(100)), &[])
        .unwrap()
        .id;
    let now = now_ms();
    // Connections opened beforehand, so the twenty start at once.
    let store = f.store.clone();
    race(20, move |_| store.link_grant_holds(id, "g").unwrap());
    let store = f.store.clone();
    let tickets = race(20, move |_| {
        store.link_begin_download(id, "g", now).unwrap()
    });
    let reserved = tickets.iter().filter(|t| **t == Ticket::Reserved).count();
    let shared = tickets.iter().filter(|t| **t == Ticket::Shared).count();
    assert_eq!((reserved, shared), (1, 19), "{tickets:?}");
    assert_eq!(f.store.link_by_public_id("p").unwrap().unwrap().uses, 1);
    for _ in 0..19 {
        f.store.link_end_download(id, "g", false).unwrap();
    }
    f.store.link_end_download(id, "g", true).unwrap();
    assert_eq!(
        f.store.link_begin_download(id, "g", now).unwrap(),
        Ticket::Free
    );
    assert_eq!(f.store.link_by_public_id("p").unwrap().unwrap().uses, 1);
}

/// Downloads beginning and ending while two sweeps refund stale reservations
/// (as two nodes would): no deadlock or error, and in the end the link counts
/// exactly the grants that were charged.
fn downloads_and_stale_sweeps_at_once_charge_each_use_once(f: &Fixture) {
    let id = f
        .store
        .link_insert(&new_link("p", Some(1000)), &[])
        .unwrap()
        .id;
    let store = f.store.clone();
    race(24, move |i| {
        if i < 2 {
            let mut refunded = 0;
            for _ in 0..20 {
                refunded += store.link_refund_stale(Millis::MAX).unwrap();
            }
            return refunded;
        }
        for round in 0..5 {
            let grant = format!("g{i}-{round}");
            let t = store.link_begin_download(id, &grant, 1).unwrap();
            assert_eq!(t, Ticket::Reserved);
            // Shared, or Reserved again when a sweep took the first one.
            let second = store.link_begin_download(id, &grant, 1).unwrap();
            assert!(
                matches!(second, Ticket::Shared | Ticket::Reserved),
                "{second:?}"
            );
            store.link_end_download(id, &grant, false).unwrap();
            store.link_end_download(id, &grant, round % 2 == 0).unwrap();
        }
        0
    });
    f.store.link_refund_stale(Millis::MAX).unwrap();
    let uses = f.store.link_by_public_id("p").unwrap().unwrap().uses;
    let charged = (2..24)
        .flat_map(|i| (0..5).map(move |r| format!("g{i}-{r}")))
        .filter(|g| f.store.link_grant_holds(id, g).unwrap())
        .count();
    assert_eq!(uses as usize, charged);
    assert!(
        charged <= 22 * 3,
        "only complete downloads charge: {charged}"
    );
}

fn codes_count_every_try_under_concurrency(f: &Fixture) {
    let s = f.store.as_ref();
    let id = s.link_insert(&new_link("p", None), &[]).unwrap().id;
    let now = now_ms();
    s.link_code_put(id, "bob@x.org", "H", now + 60_000).unwrap();
    assert_eq!(
        s.link_code_try(id, "bob@x.org", "X", now, 5).unwrap(),
        CodeCheck::Wrong
    );
    assert_eq!(
        s.link_code_try(id, "eve@x.org", "H", now, 5).unwrap(),
        CodeCheck::Missing
    );
    assert_eq!(
        s.link_code_try(id, "bob@x.org", "H", now + 60_000, 5)
            .unwrap(),
        CodeCheck::Missing,
        "expired"
    );
    assert_eq!(
        s.link_code_try(id, "bob@x.org", "H", now, 5).unwrap(),
        CodeCheck::Valid
    );
    assert_eq!(
        s.link_code_try(id, "bob@x.org", "H", now, 5).unwrap(),
        CodeCheck::Missing
    );

    // 30 wrong guesses at once: exactly 5 are counted as tries, the rest find
    // the code out of attempts; then the right code is refused too.
    s.link_code_put(id, "bob@x.org", "H", now + 60_000).unwrap();
    let store = f.store.clone();
    let answers = race(30, move |_| {
        store.link_code_try(id, "bob@x.org", "X", now, 5).unwrap()
    });
    let wrong = answers.iter().filter(|a| **a == CodeCheck::Wrong).count();
    assert_eq!(wrong, 5, "{answers:?}");
    assert_eq!(
        s.link_code_try(id, "bob@x.org", "H", now, 5).unwrap(),
        CodeCheck::Missing
    );

    // The right code entered 20 times at once is valid once.
    s.link_code_put(id, "bob@x.org", "H", now + 60_000).unwrap();
    let store = f.store.clone();
    let answers = race(20, move |_| {
        store.link_code_try(id, "bob@x.org", "H", now, 5).unwrap()
    });
    let valid = answers.iter().filter(|a| **a == CodeCheck::Valid).count();
    assert_eq!(valid, 1, "{answers:?}");
}

fn uploads_take_uses_under_concurrency_and_give_them_back(f: &Fixture) {
    let s = f.store.as_ref();
    let mut req = new_link("req", Some(3));
    req.kind = LinkKind::Request;
    req.inbound = Some(Inbound {
        folder: "/alice/in".into(),
        max_size: None,
        notify: false,
    });
    let id = s.link_insert(&req, &[]).unwrap().id;
    let now = now_ms();
    let store = f.store.clone();
    let made = race(20, move |i| {
        store
            .upload_create(
                &NewUpload {
                    key: format!("k{i}"),
                    link_id: id,
                    grant: "g".into(),
                    name: format!("f{i}.bin"),
                    size: 100,
                    remote: Some("192.0.2.1".into()),
                },
                true,
                now,
            )
            .unwrap()
    });
    let made: Vec<Upload> = made.into_iter().flatten().collect();
    assert_eq!(made.len(), 3, "three files allowed");
    assert_eq!(s.link_by_public_id("req").unwrap().unwrap().uses, 3);
    let (a, b, c) = (&made[0], &made[1], &made[2]);
    assert!(a.counted && a.state == UploadState::Open && a.received == 0);
    assert_eq!(s.upload_get(&a.key).unwrap().unwrap(), *a);
    assert!(s.upload_get("nope").unwrap().is_none());

    s.upload_progress(a.id, 40, now + 1).unwrap();
    let a2 = s.upload_get(&a.key).unwrap().unwrap();
    assert_eq!((a2.received, a2.updated_at), (40, now + 1));
    let done = LinkFile {
        id: 0,
        name: a.name.clone(),
        path: "/alice/in/f.bin".into(),
        is_dir: false,
        size: 100,
        sha256: Some("cafe".into()),
    };
    s.upload_complete(a.id, &done, now + 2).unwrap();
    assert_eq!(
        s.upload_complete(a.id, &done, now + 2).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let a3 = s.upload_get(&a.key).unwrap().unwrap();
    assert_eq!(a3.state, UploadState::Complete);
    assert_eq!((a3.received, a3.sha256.as_deref()), (100, Some("cafe")));
    let files = s.link_files(id).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(
        (files[0].name.as_str(), files[0].size),
        (a.name.as_str(), 100)
    );

    // Cancelling gives the use back, once; the stale list holds open ones.
    assert!(s.upload_cancel(b.id, now + 3).unwrap());
    assert!(!s.upload_cancel(b.id, now + 3).unwrap());
    assert!(!s.upload_cancel(a.id, now + 3).unwrap(), "complete");
    assert_eq!(s.link_by_public_id("req").unwrap().unwrap().uses, 2);
    let stale: Vec<i64> = s
        .uploads_stale(now + 10)
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(stale, [c.id]);
    assert!(s.uploads_stale(now).unwrap().is_empty());
    assert_eq!(s.uploads_of(id).unwrap().len(), 3);

    // Without counting, no use is taken, even past the limit.
    s.link_reserve_use(id, now).unwrap();
    let free = s
        .upload_create(
            &NewUpload {
                key: "free".into(),
                link_id: id,
                grant: "g".into(),
                name: "x".into(),
                size: 1,
                remote: None,
            },
            false,
            now,
        )
        .unwrap()
        .unwrap();
    assert!(!free.counted);
    assert_eq!(s.link_by_public_id("req").unwrap().unwrap().uses, 3);
}

const NOW: Millis = 1_800_000_000_000;
const HOUR: Millis = 3_600_000;

fn web_sessions_touch_and_purge(f: &Fixture) {
    let s = f.store.as_ref();
    let alice = s.user_insert(&new_user("alice")).unwrap();
    let session = |hash: &str| NewWebSession {
        token_hash: hash.into(),
        user_id: alice.id,
        csrf: format!("csrf-{hash}"),
        created_at: NOW,
        expires_at: NOW + 24 * HOUR,
    };
    s.web_session_insert(&session("h1")).unwrap();
    let seen = s
        .web_session_touch("h1", NOW + HOUR, NOW - 7 * HOUR)
        .unwrap()
        .expect("a fresh session");
    assert_eq!(seen.user, alice);
    assert_eq!(
        (seen.csrf.as_str(), seen.last_seen_at),
        ("csrf-h1", NOW + HOUR)
    );
    assert!(s
        .web_session_touch("other", NOW, NOW - HOUR)
        .unwrap()
        .is_none());
    let t = NOW + 8 * HOUR;
    assert!(s
        .web_session_touch("h1", t, t - 8 * HOUR)
        .unwrap()
        .is_some());
    let end = NOW + 24 * HOUR;
    assert!(s
        .web_session_touch("h1", end, end - 8 * HOUR)
        .unwrap()
        .is_none());
    assert!(s
        .web_session_touch("h1", NOW, NOW - 8 * HOUR)
        .unwrap()
        .is_none());

    for h in ["a", "b", "c"] {
        s.web_session_insert(&session(h)).unwrap();
    }
    s.web_session_delete("a").unwrap();
    s.web_session_delete("unknown").unwrap();
    assert!(s.web_session_touch("a", NOW, NOW - HOUR).unwrap().is_none());
    assert!(s
        .web_session_touch("b", NOW + 2 * HOUR, NOW - HOUR)
        .unwrap()
        .is_some());
    assert_eq!(s.web_session_purge(NOW + 3 * HOUR, NOW + HOUR).unwrap(), 1);
    assert!(s
        .web_session_touch("b", NOW + 3 * HOUR, NOW + HOUR)
        .unwrap()
        .is_some());
    s.user_set_password("alice", Some("new")).unwrap();
    assert!(
        s.web_session_touch("b", NOW + 3 * HOUR, NOW + HOUR)
            .unwrap()
            .is_none(),
        "a new password ends the sessions"
    );
    s.web_session_insert(&session("d")).unwrap();
    s.user_delete("alice").unwrap();
    assert!(s.web_session_touch("d", NOW, NOW - HOUR).unwrap().is_none());

    // Concurrent touches of one session all see it (none finds it idle).
    let bob = s.user_insert(&new_user("bob")).unwrap();
    s.web_session_insert(&NewWebSession {
        user_id: bob.id,
        ..session("e")
    })
    .unwrap();
    let store = f.store.clone();
    let seen = race(20, move |i| {
        let now = NOW + HOUR + i as Millis;
        store
            .web_session_touch("e", now, now - 2 * HOUR)
            .unwrap()
            .is_some()
    });
    assert!(seen.iter().all(|s| *s), "{seen:?}");
}

fn audit_append_and_query(f: &Fixture) {
    let s = f.store.as_ref();
    s.link_insert(&new_link("mine", None), &[]).unwrap();
    let ev = |actor: Option<&str>, path: &str, ts: Millis| {
        let mut e = AuditEvent::new(Protocol::Http, "link.download").path(path);
        e.ts = ts;
        e.bytes = Some(12);
        if let Some(a) = actor {
            e = e.actor(a);
        }
        e
    };
    s.audit_append(&[
        ev(Some("alice"), "/a", 1),
        ev(Some("bob"), "/b", 2),
        ev(None, "link:mine", 3),
        ev(None, "link:other", 4),
        ev(Some("bob"), "link:mine", 5),
    ])
    .unwrap();
    let paths = |q: AuditQuery| -> Vec<String> {
        s.audit_query(&q)
            .unwrap()
            .into_iter()
            .filter_map(|r| r.event.path)
            .collect()
    };
    assert_eq!(
        paths(AuditQuery {
            visible_to: Some("alice".into()),
            ..Default::default()
        }),
        ["link:mine", "link:mine", "/a"]
    );
    assert_eq!(
        paths(AuditQuery {
            actor: Some("bob".into()),
            ..Default::default()
        }),
        ["link:mine", "/b"]
    );
    assert_eq!(
        paths(AuditQuery {
            since: Some(4),
            path: Some("link:other".into()),
            action: Some("link.download".into()),
            ..Default::default()
        }),
        ["link:other"]
    );
    let all = s.audit_query(&AuditQuery::default()).unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].event.bytes, Some(12));
    assert_eq!(all[0].event.protocol, "http");
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = s
            .audit_query(&AuditQuery {
                limit: 2,
                before,
                ..Default::default()
            })
            .unwrap();
        let Some(last) = page.last() else { break };
        before = Some((last.event.ts, last.id));
        seen.extend(page.iter().map(|r| r.event.ts));
    }
    assert_eq!(seen, [5, 4, 3, 2, 1]);
}

fn bans_put_and_active(f: &Fixture) {
    let s = f.store.as_ref();
    s.ban_put("192.0.2.1", 2_000, 0).unwrap();
    s.ban_put("192.0.2.1", 1_500, 10).unwrap();
    s.ban_put("192.0.2.2", 900, 0).unwrap();
    s.ban_put("2001:db8::1", 3_000, 0).unwrap();
    let bans = s.bans_active(1_000).unwrap();
    assert_eq!(
        bans,
        [
            Ban {
                address: "192.0.2.1".into(),
                until: 2_000
            },
            Ban {
                address: "2001:db8::1".into(),
                until: 3_000
            }
        ]
    );
    assert_eq!(s.bans_active(2_000).unwrap().len(), 1);
    assert!(s.bans_active(3_000).unwrap().is_empty());
}

fn leases_have_one_holder_until_their_ttl(f: &Fixture) {
    let s = f.store.as_ref();
    assert!(s.lease_take("job:x", "a", 100, 0).unwrap());
    assert!(!s.lease_take("job:x", "b", 100, 50).unwrap(), "taken");
    assert!(s.lease_take("job:x", "a", 100, 90).unwrap(), "renewed");
    assert!(!s.lease_take("job:x", "b", 100, 150).unwrap(), "till 190");
    assert_eq!(s.lease_holder("job:x", 150).unwrap().as_deref(), Some("a"));
    assert_eq!(s.lease_holder("job:x", 190).unwrap(), None, "expired");
    assert!(s.lease_take("job:x", "b", 100, 190).unwrap(), "expired");
    s.lease_release("job:x", "a").unwrap();
    assert!(!s.lease_take("job:x", "a", 100, 200).unwrap(), "not a's");
    s.lease_release("job:x", "b").unwrap();
    assert!(s.lease_take("job:x", "a", 100, 200).unwrap(), "released");
    assert!(
        s.lease_take("job:y", "b", 100, 200).unwrap(),
        "one per name"
    );
}

fn twenty_nodes_racing_for_one_lease_give_one_holder(f: &Fixture) {
    let store = f.store.clone();
    let won = race(20, move |i| {
        store
            .lease_take("job:race", &format!("node{i}"), 60_000, 1_000)
            .unwrap()
    });
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
}

fn login_tries_reserved_at_once_never_pass_the_limit(f: &Fixture) {
    // 30 tries of one address at once, spread as nodes would: at most 5 are
    // let through to be checked.
    let store = f.store.clone();
    let ids = race(30, move |_| {
        store
            .failure_reserve("login:192.0.2.9", 1_000, 60_000, 5)
            .unwrap()
    });
    let granted: Vec<i64> = ids.into_iter().flatten().collect();
    assert_eq!(granted.len(), 5, "{granted:?}");
    let s = f.store.as_ref();
    // Failures are kept and counted; a success frees its slot.
    assert_eq!(
        s.failure_settle(granted[0], "login:192.0.2.9", true, 1_100, 60_000)
            .unwrap(),
        1
    );
    assert_eq!(
        s.failure_settle(granted[1], "login:192.0.2.9", false, 1_100, 60_000)
            .unwrap(),
        0
    );
    assert!(s
        .failure_reserve("login:192.0.2.9", 1_200, 60_000, 5)
        .unwrap()
        .is_some());
    assert_eq!(
        s.failure_reserve("login:192.0.2.9", 1_200, 60_000, 5)
            .unwrap(),
        None,
        "4 in flight and 1 failure fill the limit"
    );
    assert!(
        s.failure_reserve("login:192.0.2.10", 1_200, 60_000, 5)
            .unwrap()
            .is_some(),
        "another address has its own count"
    );
    s.failures_clear("login:192.0.2.9").unwrap();
    // Past the window every row of the key is gone.
    assert!(s
        .failure_reserve("login:192.0.2.9", 70_000, 60_000, 1)
        .unwrap()
        .is_some());
}

/// Modification times kept for object stores: replaced per key, listed per
/// folder (not below it, not of another connector), deleted per key.
fn object_times_put_replace_list_by_folder_and_delete(f: &Fixture) {
    use wharf::vfs::KeptTime;
    let s = &f.store;
    let t = |connector: &str, key: &str, dir: &str, ms: i64| KeptTime {
        connector: connector.into(),
        key: key.into(),
        dir: dir.into(),
        mtime_ms: ms,
        size: 5_000_000_000,
        tag: format!("etag-{key}@1700000000"),
    };
    assert_eq!(s.object_time_get("s3", "a/x").unwrap(), None);
    s.object_time_put(&t("s3", "a/x", "a/", 1)).unwrap();
    s.object_time_put(&t("s3", "a/x", "a/", 1_614_816_000_000))
        .unwrap();
    s.object_time_put(&t("s3", "a/y", "a/", 2)).unwrap();
    s.object_time_put(&t("s3", "a/b/z", "a/b/", 3)).unwrap();
    s.object_time_put(&t("other", "a/w", "a/", 4)).unwrap();
    s.object_time_put(&t("s3", "top", "", -5)).unwrap();
    assert_eq!(
        s.object_time_get("s3", "a/x").unwrap(),
        Some(t("s3", "a/x", "a/", 1_614_816_000_000)),
        "a second put replaces the first; sizes above 4 GiB are kept"
    );
    let mut keys: Vec<(String, i64)> = s
        .object_times_in("s3", "a/")
        .unwrap()
        .into_iter()
        .map(|k| (k.key, k.mtime_ms))
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            ("a/x".to_string(), 1_614_816_000_000),
            ("a/y".to_string(), 2)
        ]
    );
    assert_eq!(
        s.object_times_in("s3", "").unwrap(),
        [t("s3", "top", "", -5)]
    );
    s.object_time_delete("s3", "a/x").unwrap();
    s.object_time_delete("s3", "absent").unwrap();
    assert_eq!(s.object_time_get("s3", "a/x").unwrap(), None);
    assert_eq!(s.object_times_in("s3", "a/").unwrap().len(), 1);
    assert_eq!(s.object_times_in("other", "a/").unwrap().len(), 1);
}

fn bans_changed_and_ban_until(f: &Fixture) {
    let s = f.store.as_ref();
    s.ban_put("192.0.2.1", 5_000, 100).unwrap();
    s.ban_put("192.0.2.2", 5_000, 200).unwrap();
    assert_eq!(s.bans_changed(150, 1_000).unwrap().len(), 1);
    // A shorter ban changes nothing; a longer one is news again.
    s.ban_put("192.0.2.1", 4_000, 300).unwrap();
    assert_eq!(s.bans_changed(250, 1_000).unwrap(), []);
    s.ban_put("192.0.2.1", 9_000, 400).unwrap();
    assert_eq!(
        s.bans_changed(250, 1_000).unwrap(),
        [Ban {
            address: "192.0.2.1".into(),
            until: 9_000
        }]
    );
    assert_eq!(s.ban_until("192.0.2.1", 1_000).unwrap(), Some(9_000));
    assert_eq!(s.ban_until("192.0.2.2", 5_000).unwrap(), None, "ended");
    assert_eq!(s.ban_until("192.0.2.3", 1_000).unwrap(), None);
}

fn clients_and_contacts(f: &Fixture) {
    let s = f.store.as_ref();
    let nc = |owner: &str, name: &str, shared: bool| NewClient {
        owner: owner.into(),
        name: name.into(),
        notes: String::new(),
        shared,
    };
    let acme = s.client_insert(&nc("alice", "acme", false)).unwrap();
    let beta = s.client_insert(&nc("bob", "Beta", true)).unwrap();
    s.client_insert(&nc("bob", "zeta", false)).unwrap();
    let dup = s.client_insert(&nc("alice", "acme", true)).unwrap_err();
    assert_eq!(dup.kind(), ErrorKind::AlreadyExists);
    assert!(dup.public_text().unwrap().contains("acme"));
    s.client_insert(&nc("bob", "acme", false)).unwrap();
    let names = |u: Option<&str>| -> Vec<String> {
        s.client_list(u)
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect()
    };
    assert_eq!(names(Some("alice")), ["acme", "Beta"]);
    assert_eq!(names(None).len(), 4);
    assert_eq!(s.client_get(acme.id).unwrap().unwrap(), acme);
    s.client_edit(
        acme.id,
        &ClientEdit {
            notes: Some("n".into()),
            shared: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    let e = s.client_get(acme.id).unwrap().unwrap();
    assert!(e.shared && e.notes == "n");
    let zeta = s.client_list(Some("bob")).unwrap();
    let zeta = zeta.iter().find(|c| c.name == "zeta").unwrap();
    let rename = |id: i64, name: &str| {
        s.client_edit(
            id,
            &ClientEdit {
                name: Some(name.into()),
                ..Default::default()
            },
        )
    };
    assert_eq!(
        rename(zeta.id, "acme").unwrap_err().kind(),
        ErrorKind::AlreadyExists,
        "bob has an acme"
    );
    rename(acme.id, "Beta").unwrap();
    rename(acme.id, "acme").unwrap();
    assert_eq!(
        s.client_edit(
            999,
            &ClientEdit {
                notes: Some("x".into()),
                ..Default::default()
            }
        )
        .unwrap_err()
        .kind(),
        ErrorKind::NotFound
    );

    let c1 = s.contact_put(beta.id, "Zed", "zed@beta.example").unwrap();
    let c2 = s.contact_put(beta.id, "amy", "amy@beta.example").unwrap();
    let c1b = s
        .contact_put(beta.id, "Zed Z.", "zed@beta.example")
        .unwrap();
    assert_eq!(c1b.id, c1.id);
    assert_eq!(c1b.name, "Zed Z.");
    let names: Vec<String> = s
        .contacts_of(beta.id)
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["amy", "Zed Z."]);
    assert_eq!(s.contact_get(c2.id).unwrap().unwrap(), c2);
    s.contact_delete(c2.id).unwrap();
    assert_eq!(
        s.contact_delete(c2.id).unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // A client's links keep going without it; its contacts go.
    let mut l = new_link("withclient", None);
    l.client_id = Some(beta.id);
    let l = s.link_insert(&l, &[]).unwrap();
    assert_eq!(l.client_id, Some(beta.id));
    s.client_delete(beta.id).unwrap();
    assert_eq!(
        s.link_by_public_id("withclient")
            .unwrap()
            .unwrap()
            .client_id,
        None
    );
    assert!(s.contact_get(c1.id).unwrap().is_none());
    assert_eq!(
        s.client_delete(beta.id).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

fn notifications_feed_and_prefs(f: &Fixture) {
    let s = f.store.as_ref();
    s.user_insert(&new_user("alice")).unwrap();
    let n = |kind: NoticeKind, link: &str| NewNotification {
        user: "alice".into(),
        kind,
        link_public_id: link.into(),
        link_label: "Label".into(),
        file: "a.pdf".into(),
        who: "bob@example.com".into(),
        bytes: Some(12),
    };
    let first = s
        .notification_add(&n(NoticeKind::Downloaded, "l1"), 1)
        .unwrap();
    assert!(first.is_some());
    assert!(s
        .notification_add(&n(NoticeKind::Downloaded, "l1"), 2)
        .unwrap()
        .is_some());
    assert!(s
        .notification_add(&n(NoticeKind::Expired, "l1"), 3)
        .unwrap()
        .is_some());
    assert!(
        s.notification_add(&n(NoticeKind::Expired, "l1"), 4)
            .unwrap()
            .is_none(),
        "once per link"
    );
    let mut gone = n(NoticeKind::Uploaded, "l2");
    gone.user = "nobody".into();
    assert!(s.notification_add(&gone, 5).unwrap().is_none());
    let feed = s.notifications_of("alice", 10).unwrap();
    assert_eq!(feed.len(), 3);
    assert_eq!(feed[0].kind, NoticeKind::Expired);
    assert_eq!((feed[2].bytes, feed[2].created_at), (Some(12), 1));
    assert_eq!(s.notifications_of("alice", 1).unwrap().len(), 1);
    assert_eq!(s.notifications_unread("alice").unwrap(), 3);
    assert_eq!(s.notifications_mark_read("alice", first, 10).unwrap(), 1);
    assert_eq!(s.notifications_mark_read("alice", first, 11).unwrap(), 0);
    assert_eq!(s.notifications_unread("alice").unwrap(), 2);
    assert_eq!(s.notifications_mark_read("alice", None, 12).unwrap(), 2);
    assert_eq!(s.notifications_unread("alice").unwrap(), 0);
    assert_eq!(s.notifications_unread("nobody").unwrap(), 0);

    assert!(s.notification_prefs("alice").unwrap().is_empty());
    s.notification_pref_set("alice", NoticeKind::Downloaded, false)
        .unwrap();
    s.notification_pref_set("alice", NoticeKind::Downloaded, true)
        .unwrap();
    s.notification_pref_set("alice", NoticeKind::Uploaded, false)
        .unwrap();
    let mut prefs = s.notification_prefs("alice").unwrap();
    prefs.sort_by_key(|(k, _)| k.as_str());
    assert_eq!(
        prefs,
        [
            (NoticeKind::Downloaded, true),
            (NoticeKind::Uploaded, false)
        ]
    );

    let now = now_ms();
    let mut exp = new_link("exp", None);
    exp.expires_at = Some(now - 1_000);
    let exp = s.link_insert(&exp, &[]).unwrap();
    let mut later = new_link("later", None);
    later.expires_at = Some(now + HOUR);
    s.link_insert(&later, &[]).unwrap();
    let found: Vec<String> = s
        .links_newly_expired(None, now - HOUR, now)
        .unwrap()
        .into_iter()
        .map(|l| l.public_id)
        .collect();
    assert_eq!(found, ["exp"]);
    assert!(s
        .links_newly_expired(Some("bob"), now - HOUR, now)
        .unwrap()
        .is_empty());
    s.notification_add(&n(NoticeKind::Expired, "exp"), now)
        .unwrap();
    assert!(s
        .links_newly_expired(None, now - HOUR, now)
        .unwrap()
        .is_empty());

    s.link_recipient_names_set(
        exp.id,
        &[
            ("Bob@Example.com".into(), " Bob ".into()),
            ("amy@example.com".into(), "Amy".into()),
            ("nobody@example.com".into(), "  ".into()),
        ],
    )
    .unwrap();
    assert_eq!(
        s.link_recipient_names(exp.id).unwrap(),
        [
            ("amy@example.com".to_string(), "Amy".to_string()),
            ("bob@example.com".to_string(), "Bob".to_string())
        ]
    );
    s.link_recipient_names_set(exp.id, &[("amy@example.com".into(), "Amy A.".into())])
        .unwrap();
    assert_eq!(s.link_recipient_names(exp.id).unwrap().len(), 1);
}

// PostgreSQL's own cases: migrations under the advisory lock, and the schema
// version shared with SQLite.

#[test]
fn postgres_schema_version_is_sqlites() {
    assert_eq!(
        wharf::store::postgres::SCHEMA_VERSION,
        wharf::store::sqlite::SCHEMA_VERSION
    );
}

#[test]
fn postgres_migrations_run_twice_at_once_end_at_the_latest_version_once() {
    let Some(server) = common::postgres::shared() else {
        return;
    };
    let db = common::postgres::db_name("migrate");
    let url = server.create_db(&db);
    let answers = race(2, move |_| {
        let store = PostgresStore::connect_only(&url).unwrap();
        store.migrate().unwrap()
    });
    let latest = wharf::store::postgres::SCHEMA_VERSION;
    assert_eq!(answers, [latest, latest]);
    assert_eq!(
        server.psql(&db, "SELECT count(*), max(version) FROM schema_version"),
        [format!("1|{latest}")]
    );
    assert_eq!(
        server.psql(
            &db,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'users'"
        ),
        ["1"]
    );
}

#[test]
fn postgres_database_from_a_newer_wharf_is_refused() {
    let Some(server) = common::postgres::shared() else {
        return;
    };
    let db = common::postgres::db_name("newer");
    let url = server.create_db(&db);
    drop(PostgresStore::open(&url).unwrap());
    let newer = wharf::store::postgres::SCHEMA_VERSION + 1;
    server.psql(&db, &format!("UPDATE schema_version SET version = {newer}"));
    let err = PostgresStore::open(&url).err().expect("refused");
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.to_string().contains("newer"), "{err}");
}

/// Runs a client with a deadline; returns (success, stdout and stderr).
async fn run(cmd: &mut tokio::process::Command, secs: u64) -> (bool, String) {
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(secs), cmd.output())
        .await
        .expect("finished in time")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_postgres_serves_sftp_and_links_and_audits_there() {
    let Some(server) = common::postgres::shared() else {
        return;
    };
    let db = common::postgres::db_name("gateway");
    let url = server.create_db(&db);
    let mut gw =
        common::gateway::Gateway::start("fs", &format!("[database]\nurl = \"{url}\"\n")).await;
    assert!(
        !gw.config.database_path().exists(),
        "no SQLite file beside PostgreSQL"
    );
    let migrated = gw.cli(&["db", "migrate"]);
    let latest = wharf::store::postgres::SCHEMA_VERSION;
    assert!(
        migrated.contains(&format!("schema version {latest} (was {latest})")),
        "{migrated}"
    );

    let backup = gw
        .wharf()
        .args(["backup", "--to"])
        .arg(gw.path("b.tar"))
        .output()
        .unwrap();
    assert!(!backup.status.success());
    assert!(
        String::from_utf8_lossy(&backup.stderr).contains("pg_dump"),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );

    // A user made through the store is in PostgreSQL, and logs in over SFTP.
    let key = gw.keygen("k");
    gw.add_user("acme", "/acme", "all", None, Some(&key));
    assert_eq!(
        server.psql(&db, "SELECT home FROM users WHERE name = 'acme'"),
        ["/acme"]
    );
    let data = common::pattern(1_500_000, 15);
    std::fs::write(gw.path("up.bin"), &data).unwrap();
    std::fs::write(
        gw.path("batch.txt"),
        "put up.bin up.bin\nget up.bin back.bin\n",
    )
    .unwrap();
    let mut sftp = tokio::process::Command::new("sftp");
    sftp.current_dir(gw.dir.path())
        .args(common::gateway::SSH_OPTS)
        .arg("-P")
        .arg(gw.sftp_addr().port().to_string())
        .arg("-i")
        .arg(&key)
        .args(["-b", "batch.txt", "acme@127.0.0.1"]);
    let (ok, out) = run(&mut sftp, 120).await;
    assert!(ok, "{out}");
    let back = std::fs::read(gw.path("back.bin")).unwrap();
    assert_eq!(common::sha256(&back), common::sha256(&data));

    // A one-time link made by the CLI (on PostgreSQL too), downloaded with curl.
    let local = gw.path("report.bin");
    std::fs::write(&local, &data).unwrap();
    let (id, token) = gw.link(&["send", local.to_str().unwrap(), "--one-time"]);
    let page_url = gw.url(&token);
    let (ok, page) = run(
        tokio::process::Command::new("curl").args(["-sS", "--fail", &page_url]),
        60,
    )
    .await;
    assert!(ok, "{page}");
    let file_url = format!("{page_url}{}", common::file_path(&page));
    let got = gw.path("got.bin");
    let (ok, out) = run(
        tokio::process::Command::new("curl")
            .args(["-sS", "--fail", "-o"])
            .arg(&got)
            .arg(&file_url),
        60,
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(
        common::sha256(&std::fs::read(&got).unwrap()),
        common::sha256(&data)
    );
    let (_, again) = run(
        tokio::process::Command::new("curl").args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &file_url,
        ]),
        60,
    )
    .await;
    assert_eq!(again, "410", "the one use is taken, in PostgreSQL");
    assert_eq!(
        server.psql(
            &db,
            &format!("SELECT uses, max_uses FROM links WHERE public_id = '{id}'")
        ),
        ["1|1"]
    );

    // The audit rows are written to PostgreSQL.
    gw.stop_and_audit(AuditQuery::default()).await;
    let rows = server.psql(
        &db,
        "SELECT protocol, action, coalesce(actor, ''), outcome, coalesce(bytes, -1) FROM audit \
         WHERE action IN ('login', 'upload', 'link_download') ORDER BY id",
    );
    assert!(
        rows.contains(&"sftp|login|acme|ok|-1".to_string()),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|r| r.starts_with("sftp|upload|acme|ok|")),
        "{rows:?}"
    );
    assert!(
        rows.contains(&format!("http|link_download||ok|{}", data.len())),
        "{rows:?}"
    );
}

#[test]
fn db_migrate_on_sqlite_creates_the_database_and_prints_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = common::wharf_cmd(&data, None)
        .args(["db", "migrate"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let latest = wharf::store::sqlite::SCHEMA_VERSION;
    assert!(text.contains(&format!("schema version {latest}")), "{text}");
    assert!(data.join("wharf.db").exists());
    // Then the store opens it as it is.
    SqliteStore::open(&data.join("wharf.db")).unwrap();
}

#[test]
fn postgres_over_tls_verifies_the_server_certificate() {
    if !common::postgres::available() {
        return;
    }
    // A CA and a certificate for 127.0.0.1 signed by it.
    let certs = tempfile::tempdir().unwrap();
    let d = certs.path();
    std::fs::write(d.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    let script = "set -e
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout ca.key -out ca.pem -days 2 -subj /CN=wharf-test-ca 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -out server.crt -days 2 -extfile san.ext 2>/dev/null
        chmod 600 server.key";
    let ok = std::process::Command::new("sh")
        .args(["-c", script])
        .current_dir(d)
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl");
    common::postgres::give_to_postgres(d);
    let server = common::postgres::PgServer::start_with(&format!(
        "-c ssl=on -c ssl_cert_file={0}/server.crt -c ssl_key_file={0}/server.key",
        d.display()
    ))
    .unwrap();
    let url = server.create_db("tls");

    let trusted = format!(
        "{url}?sslmode=verify-full&sslrootcert={}",
        d.join("ca.pem").display()
    );
    let store = PostgresStore::open(&trusted).unwrap();
    assert_eq!(store.user_count().unwrap(), 0);
    let encrypted = server.psql(
        "tls",
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE s.ssl AND a.datname = 'tls'",
    );
    assert_ne!(encrypted, ["0"], "the store's connection is encrypted");

    // The system's roots do not know this CA: refused, not downgraded.
    let err = PostgresStore::open(&format!("{url}?sslmode=require"))
        .err()
        .expect("an unknown CA is refused");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    let err = PostgresStore::open(&format!("{url}?sslmode=require&sslrootcert=/nonexistent"))
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}
