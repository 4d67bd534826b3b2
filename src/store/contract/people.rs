//! The contract of users, API tokens, browser sessions and TOTP second factors (`Users`,
//! `Tokens`, `Sessions`, `SecondFactors`, `Dump`), run on both backends: round trips, sled's
//! conflict and not-found messages and orders, removal ending a user's sessions and revoking
//! their tokens, the touch writes moving times only forward, a TOTP change running once and a
//! recovery code accepted once when two nodes try at once, and a dump holding no secret that
//! was dropped (a removed user's password hash, a revoked token's hash).

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, Utc};
use futures_util::future::join_all;
use ulid::Ulid;

use super::t0;
use crate::domain::{ApiToken, Role, Session, TotpRecord, User, UserName};
use crate::store::port::{Dump, SecondFactors, Sessions, Tokens, Users};
use crate::store::StoreError;

fn name(s: &str) -> UserName {
    UserName::parse(s).unwrap()
}

fn user(n: &str, role: Role) -> User {
    User {
        name: name(n),
        display_name: format!("{n} the tester"),
        role,
        email: Some(format!("{n}@example.org")),
        phone: None,
        disabled: false,
        created_at: t0(),
    }
}

/// A token whose id sorts by `ms` (creation order).
fn token(owner: &str, label: &str, ms: u64) -> ApiToken {
    ApiToken {
        id: Ulid::from_parts(1_900_000_000_000 + ms, u128::from(ms) * 7 + 3),
        name: label.into(),
        owner: name(owner),
        role: Role::Responder,
        created_at: t0(),
        expires_at: Some(t0() + Duration::days(30)),
        last_used_at: None,
        revoked_at: None,
    }
}

fn session(owner: &str, at: DateTime<Utc>) -> Session {
    Session {
        id: Ulid::new(),
        user: name(owner),
        role: Role::Publisher,
        created_at: at,
        last_seen_at: at,
        enrol_only: true,
    }
}

fn totp(recovery: &[&str]) -> TotpRecord {
    TotpRecord {
        secret: "JBSWY3DPEHPK3PXP".into(),
        enabled: true,
        last_step: Some(100),
        recovery: recovery.iter().map(|s| (*s).to_owned()).collect(),
        created_at: t0(),
    }
}

fn not_found(e: StoreError, what: &str, id: &str) {
    match e {
        StoreError::NotFound { what: w, id: i } => assert_eq!((w, i.as_str()), (what, id)),
        other => panic!("expected {what} {id} not found, got {other:?}"),
    }
}

fn conflict(e: StoreError) -> String {
    match e {
        StoreError::Conflict(m) => m,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

// ---- users -----------------------------------------------------------------------------------

pub(crate) async fn users<S: Users + Tokens + Sessions + SecondFactors + Sync>(a: &S, b: &S) {
    let maria = name("maria");
    assert_eq!(a.user(&maria).await.unwrap(), None);
    assert_eq!(a.password_hash(&maria).await.unwrap(), None);
    let added = a
        .add_user(user("maria", Role::Admin), "$argon2id$v=19$h1")
        .await
        .unwrap();
    assert_eq!(added, user("maria", Role::Admin));
    assert_eq!(b.user(&maria).await.unwrap(), Some(added.clone()));
    assert_eq!(
        b.password_hash(&maria).await.unwrap().as_deref(),
        Some("$argon2id$v=19$h1")
    );
    // A taken name, from the other node: sled's message, and nothing changed.
    let e = b
        .add_user(user("maria", Role::Viewer), "other")
        .await
        .unwrap_err();
    assert_eq!(
        conflict(e),
        "there is already a user maria; choose another name, or change theirs with `crier users set-role`"
    );
    assert_eq!(a.user(&maria).await.unwrap(), Some(added.clone()));
    assert_eq!(
        a.password_hash(&maria).await.unwrap().as_deref(),
        Some("$argon2id$v=19$h1")
    );

    // Every user, by name (bytewise, as sled's keys).
    for n in ["zed", "anna", "maria_c", "maria.b", "mariab", "maria-z"] {
        b.add_user(user(n, Role::Viewer), "h").await.unwrap();
    }
    let listed: Vec<String> = a
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name.to_string())
        .collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted);
    assert_eq!(listed.len(), 7);

    // Passwords.
    b.set_password(&maria, "$argon2id$v=19$h2").await.unwrap();
    assert_eq!(
        a.password_hash(&maria).await.unwrap().as_deref(),
        Some("$argon2id$v=19$h2")
    );
    not_found(
        a.set_password(&name("nobody"), "h").await.unwrap_err(),
        "user",
        "nobody",
    );
    assert_eq!(a.password_hash(&name("nobody")).await.unwrap(), None);

    // Changes: (before, after); a refusal changes nothing; an unknown name is not found.
    let (before, after) = a
        .change_user(&maria, |u| {
            let mut u = u.clone();
            u.role = Role::Publisher;
            u.disabled = true;
            Ok(u)
        })
        .await
        .unwrap();
    assert_eq!(before, added);
    assert_eq!((after.role, after.disabled), (Role::Publisher, true));
    assert_eq!(b.user(&maria).await.unwrap(), Some(after.clone()));
    let e = b
        .change_user(&maria, |_| Err(StoreError::Conflict("refused".into())))
        .await
        .unwrap_err();
    assert_eq!(conflict(e), "refused");
    assert_eq!(a.user(&maria).await.unwrap(), Some(after.clone()));
    not_found(
        a.change_user(&name("nobody"), |u| Ok(u.clone()))
            .await
            .unwrap_err(),
        "user",
        "nobody",
    );
    // A change keeps the password.
    assert_eq!(
        a.password_hash(&maria).await.unwrap().as_deref(),
        Some("$argon2id$v=19$h2")
    );

    // Ten changes at once from two nodes: each runs once, none is lost.
    let runs = AtomicUsize::new(0);
    let changes = join_all((0..10).map(|i| {
        let s = if i % 2 == 0 { a } else { b };
        let runs = &runs;
        s.change_user(&maria, move |u| {
            runs.fetch_add(1, Ordering::SeqCst);
            let mut u = u.clone();
            u.display_name.push_str(&format!(" {i}"));
            Ok(u)
        })
    }))
    .await;
    for c in changes {
        c.unwrap();
    }
    assert_eq!(runs.load(Ordering::SeqCst), 10);
    let now = a.user(&maria).await.unwrap().unwrap();
    let mut marks: Vec<&str> = now.display_name.split(' ').skip(3).collect();
    marks.sort_unstable();
    let mut want: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    want.sort_unstable();
    assert_eq!(marks, want, "every change is kept: {}", now.display_name);

    // Removal: the user, their password, second factor and sessions go; their live tokens are
    // revoked at `now` and stay listed; a token revoked before keeps its time; another user's
    // things are untouched.
    let t = t0();
    let live = token("anna", "laptop", 1);
    let old = token("anna", "ci", 2);
    let zeds = token("zed", "phone", 3);
    a.add_token(&live, &[11; 32]).await.unwrap();
    a.add_token(&old, &[12; 32]).await.unwrap();
    b.add_token(&zeds, &[13; 32]).await.unwrap();
    let revoked = b.revoke_token(old.id, t).await.unwrap();
    a.add_session(&[21; 32], &session("anna", t)).await.unwrap();
    a.add_session(&[22; 32], &session("zed", t)).await.unwrap();
    b.change_totp(&name("anna"), |_| Ok((Some(totp(&["r1"])), ())))
        .await
        .unwrap();
    b.change_totp(&name("zed"), |_| Ok((Some(totp(&["r2"])), ())))
        .await
        .unwrap();
    let gone = a
        .remove_user(&name("anna"), t + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(gone, user("anna", Role::Viewer));
    assert_eq!(b.user(&name("anna")).await.unwrap(), None);
    assert_eq!(b.password_hash(&name("anna")).await.unwrap(), None);
    assert_eq!(b.totp(&name("anna")).await.unwrap(), None);
    assert!(b.sessions_of(&name("anna")).await.unwrap().is_empty());
    assert_eq!(b.session(&[21; 32]).await.unwrap(), None);
    assert_eq!(b.token_by_hash(&[11; 32]).await.unwrap(), None);
    let annas = b.tokens(Some(&name("anna"))).await.unwrap();
    assert_eq!(annas.len(), 2);
    assert_eq!(annas[0].id, live.id);
    assert_eq!(annas[0].revoked_at, Some(t + Duration::hours(1)));
    assert_eq!(annas[1], revoked, "a token revoked before keeps its time");
    assert_eq!(
        b.user(&name("zed")).await.unwrap().unwrap().name,
        name("zed")
    );
    assert!(b.session(&[22; 32]).await.unwrap().is_some());
    assert!(b.totp(&name("zed")).await.unwrap().is_some());
    assert_eq!(b.token_by_hash(&[13; 32]).await.unwrap(), Some(zeds));
    not_found(
        b.remove_user(&name("anna"), t).await.unwrap_err(),
        "user",
        "anna",
    );
    // The name is free again.
    a.add_user(user("anna", Role::Admin), "h3").await.unwrap();
    assert_eq!(
        b.password_hash(&name("anna")).await.unwrap().as_deref(),
        Some("h3")
    );
}

// ---- tokens ----------------------------------------------------------------------------------

pub(crate) async fn tokens<S: Tokens + Sync>(a: &S, b: &S) {
    let t = t0();
    let first = token("maria", "laptop", 10);
    let second = token("jussi", "ci", 20);
    let third = token("maria", "phone", 30);
    // Added out of order: listed oldest (lowest id) first.
    b.add_token(&third, &[3; 32]).await.unwrap();
    a.add_token(&first, &[1; 32]).await.unwrap();
    b.add_token(&second, &[2; 32]).await.unwrap();
    assert_eq!(
        a.tokens(None).await.unwrap(),
        vec![first.clone(), second.clone(), third.clone()]
    );
    assert_eq!(
        b.tokens(Some(&name("maria"))).await.unwrap(),
        vec![first.clone(), third.clone()]
    );
    assert!(a.tokens(Some(&name("nobody"))).await.unwrap().is_empty());
    assert_eq!(a.token(second.id).await.unwrap(), Some(second.clone()));
    assert_eq!(a.token(Ulid::new()).await.unwrap(), None);
    assert_eq!(
        b.token_by_hash(&[1; 32]).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(b.token_by_hash(&[9; 32]).await.unwrap(), None);

    // A known hash is a conflict, and nothing is stored.
    let clash = token("maria", "again", 40);
    let e = a.add_token(&clash, &[2; 32]).await.unwrap_err();
    assert_eq!(conflict(e), "token collision; try again");
    assert_eq!(b.token(clash.id).await.unwrap(), None);
    assert_eq!(
        b.token_by_hash(&[2; 32]).await.unwrap(),
        Some(second.clone())
    );

    // Touches: only forward, the latest of a batch, unknown ids skipped, nothing else changed.
    a.touch_tokens(&[
        (first.id, t + Duration::minutes(5)),
        (first.id, t + Duration::minutes(9)),
        (first.id, t + Duration::minutes(7)),
        (Ulid::new(), t),
        (second.id, t + Duration::minutes(1)),
    ])
    .await
    .unwrap();
    b.touch_tokens(&[(first.id, t + Duration::minutes(8))])
        .await
        .unwrap();
    b.touch_tokens(&[]).await.unwrap();
    let got = a.token(first.id).await.unwrap().unwrap();
    assert_eq!(got.last_used_at, Some(t + Duration::minutes(9)));
    let mut want = first.clone();
    want.last_used_at = got.last_used_at;
    assert_eq!(got, want);
    assert_eq!(
        b.token(second.id).await.unwrap().unwrap().last_used_at,
        Some(t + Duration::minutes(1))
    );
    // A touched token is still found by its hash.
    assert_eq!(b.token_by_hash(&[1; 32]).await.unwrap(), Some(got.clone()));

    // Revocation: stops working at once (not found by its hash), stays listed; again keeps the
    // first time; an unknown id is not found.
    let r = b
        .revoke_token(first.id, t + Duration::hours(1))
        .await
        .unwrap();
    let mut want = got.clone();
    want.revoked_at = Some(t + Duration::hours(1));
    assert_eq!(r, want);
    assert_eq!(a.token(first.id).await.unwrap(), Some(want.clone()));
    assert_eq!(a.token_by_hash(&[1; 32]).await.unwrap(), None);
    let again = a
        .revoke_token(first.id, t + Duration::hours(2))
        .await
        .unwrap();
    assert_eq!(again, want);
    assert_eq!(a.tokens(None).await.unwrap().len(), 3);
    let unknown = Ulid::new();
    not_found(
        a.revoke_token(unknown, t).await.unwrap_err(),
        "token",
        &unknown.to_string(),
    );
    // A touch of a revoked token keeps it revoked.
    a.touch_tokens(&[(first.id, t + Duration::hours(3))])
        .await
        .unwrap();
    assert_eq!(
        b.token(first.id).await.unwrap().unwrap().revoked_at,
        Some(t + Duration::hours(1))
    );

    // Two revocations at once from two nodes: both answer the one time stored.
    let (x, y) = tokio::join!(
        a.revoke_token(third.id, t + Duration::hours(4)),
        b.revoke_token(third.id, t + Duration::hours(5))
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.revoked_at, y.revoked_at);
    assert_eq!(a.token(third.id).await.unwrap().unwrap(), x);
}

// ---- sessions --------------------------------------------------------------------------------

pub(crate) async fn sessions<S: Sessions + Sync>(a: &S, b: &S) {
    let t = t0();
    let maria = name("maria");
    let s1 = session("maria", t);
    a.add_session(&[0x81; 32], &s1).await.unwrap();
    assert_eq!(b.session(&[0x81; 32]).await.unwrap(), Some(s1.clone()));
    assert_eq!(b.session(&[0x82; 32]).await.unwrap(), None);
    // A known hash is a conflict; the stored session stays.
    let e = b
        .add_session(&[0x81; 32], &session("jussi", t))
        .await
        .unwrap_err();
    assert_eq!(conflict(e), "session collision; sign in again");
    assert_eq!(a.session(&[0x81; 32]).await.unwrap(), Some(s1.clone()));

    // Touch: forward only.
    b.touch_session(&[0x81; 32], t + Duration::minutes(5))
        .await
        .unwrap();
    a.touch_session(&[0x81; 32], t + Duration::minutes(2))
        .await
        .unwrap();
    let got = a.session(&[0x81; 32]).await.unwrap().unwrap();
    let mut want = s1.clone();
    want.last_seen_at = t + Duration::minutes(5);
    assert_eq!(got, want);
    // Upgrade: no longer enrol-only; the rest unchanged; an unknown hash is left alone.
    b.upgrade_session(&[0x81; 32]).await.unwrap();
    want.enrol_only = false;
    assert_eq!(a.session(&[0x81; 32]).await.unwrap(), Some(want.clone()));
    a.upgrade_session(&[0x99; 32]).await.unwrap();
    assert_eq!(a.session(&[0x99; 32]).await.unwrap(), None);

    // End: returns it once; a touch does not bring it back.
    assert_eq!(
        a.end_session(&[0x81; 32]).await.unwrap(),
        Some(want.clone())
    );
    assert_eq!(b.end_session(&[0x81; 32]).await.unwrap(), None);
    b.touch_session(&[0x81; 32], t + Duration::minutes(9))
        .await
        .unwrap();
    assert_eq!(a.session(&[0x81; 32]).await.unwrap(), None);

    // A user's sessions, by hash (bytewise); ending them all counts them.
    for (i, h) in [0x30u8, 0x10, 0xf0, 0x20].into_iter().enumerate() {
        let owner = if i == 3 { "jussi" } else { "maria" };
        let s = if i % 2 == 0 { a } else { b };
        s.add_session(&[h; 32], &session(owner, t)).await.unwrap();
    }
    let ids: Vec<Ulid> = a
        .sessions_of(&maria)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    let mut by_hash = Vec::new();
    for h in [0x10u8, 0x30, 0xf0] {
        by_hash.push(b.session(&[h; 32]).await.unwrap().unwrap().id);
    }
    assert_eq!(ids, by_hash);
    assert_eq!(b.end_sessions_of(&maria).await.unwrap(), 3);
    assert_eq!(a.end_sessions_of(&maria).await.unwrap(), 0);
    assert!(a.sessions_of(&maria).await.unwrap().is_empty());
    assert_eq!(a.sessions_of(&name("jussi")).await.unwrap().len(), 1);

    // Pruning: idle past `idle` since last seen, or older than `absolute`; at the limit counts.
    let idle = Duration::minutes(30);
    let absolute = Duration::hours(12);
    let now = t + Duration::hours(20);
    // Fresh: created 1 h ago, seen 1 min ago.
    a.add_session(&[0x41; 32], &session("maria", now - Duration::hours(1)))
        .await
        .unwrap();
    a.touch_session(&[0x41; 32], now - Duration::minutes(1))
        .await
        .unwrap();
    // Idle exactly 30 min.
    b.add_session(&[0x42; 32], &session("maria", now - Duration::minutes(30)))
        .await
        .unwrap();
    // Seen a minute ago but created 12 h ago.
    a.add_session(&[0x43; 32], &session("maria", now - Duration::hours(12)))
        .await
        .unwrap();
    a.touch_session(&[0x43; 32], now - Duration::minutes(1))
        .await
        .unwrap();
    // Created 11 h 59 min ago, seen 29 min ago: kept.
    b.add_session(
        &[0x44; 32],
        &session("maria", now - Duration::hours(12) + Duration::minutes(1)),
    )
    .await
    .unwrap();
    b.touch_session(&[0x44; 32], now - Duration::minutes(29))
        .await
        .unwrap();
    // jussi's session from before (created at t, 20 h ago) goes too.
    assert_eq!(a.prune_sessions(now, idle, absolute).await.unwrap(), 3);
    assert!(b.session(&[0x41; 32]).await.unwrap().is_some());
    assert!(b.session(&[0x44; 32]).await.unwrap().is_some());
    assert_eq!(b.session(&[0x42; 32]).await.unwrap(), None);
    assert_eq!(b.session(&[0x43; 32]).await.unwrap(), None);
    assert_eq!(b.prune_sessions(now, idle, absolute).await.unwrap(), 0);
}

// ---- second factors --------------------------------------------------------------------------

/// Uses a recovery code as sign-in does: removes it if it is unused, refuses it otherwise.
fn use_code(
    code: &'static str,
) -> impl FnOnce(Option<TotpRecord>) -> Result<(Option<TotpRecord>, bool), StoreError> + Send {
    move |r| {
        let Some(mut r) = r else {
            return Err(StoreError::Conflict("no second factor".into()));
        };
        let before = r.recovery.len();
        r.recovery.retain(|c| c != code);
        if r.recovery.len() == before {
            return Err(StoreError::Conflict("that recovery code is used".into()));
        }
        Ok((Some(r), true))
    }
}

pub(crate) async fn second_factors<S: Users + SecondFactors + Sync>(a: &S, b: &S) {
    let maria = name("maria");
    a.add_user(user("maria", Role::Publisher), "h")
        .await
        .unwrap();
    assert_eq!(a.totp(&maria).await.unwrap(), None);

    // Created from nothing; the value handed back comes back.
    let out = b
        .change_totp(&maria, |r| {
            assert_eq!(r, None);
            Ok((Some(totp(&["c1", "c2", "c3"])), 42))
        })
        .await
        .unwrap();
    assert_eq!(out, 42);
    assert_eq!(
        a.totp(&maria).await.unwrap(),
        Some(totp(&["c1", "c2", "c3"]))
    );
    // A refusal changes nothing.
    let e = a
        .change_totp(&maria, |_| -> Result<(Option<TotpRecord>, ()), _> {
            Err(StoreError::Conflict("wrong code".into()))
        })
        .await
        .unwrap_err();
    assert_eq!(conflict(e), "wrong code");
    assert_eq!(
        b.totp(&maria).await.unwrap(),
        Some(totp(&["c1", "c2", "c3"]))
    );

    // One recovery code tried eight times at once from two nodes: accepted once; each change
    // ran once.
    let runs = AtomicUsize::new(0);
    let tries = join_all((0..8).map(|i| {
        let s = if i % 2 == 0 { a } else { b };
        let runs = &runs;
        let f = use_code("c2");
        s.change_totp(&maria, move |r| {
            runs.fetch_add(1, Ordering::SeqCst);
            f(r)
        })
    }))
    .await;
    assert_eq!(runs.load(Ordering::SeqCst), 8);
    let ok = tries.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{tries:?}");
    for e in tries.into_iter().filter_map(Result::err) {
        assert_eq!(conflict(e), "that recovery code is used");
    }
    assert_eq!(a.totp(&maria).await.unwrap(), Some(totp(&["c1", "c3"])));

    // Two different codes at once: both kept out (no lost update).
    let (x, y) = tokio::join!(
        a.change_totp(&maria, use_code("c1")),
        b.change_totp(&maria, use_code("c3"))
    );
    assert!(x.unwrap() && y.unwrap());
    assert_eq!(b.totp(&maria).await.unwrap(), Some(totp(&[])));

    // Removed with `None`.
    a.change_totp(&maria, |_| Ok((None, ()))).await.unwrap();
    assert_eq!(b.totp(&maria).await.unwrap(), None);

    // A name with no user: the same, and two creations at once leave one record.
    let ghost = name("ghost");
    let (x, y) = tokio::join!(
        a.change_totp(&ghost, |r| Ok((
            Some(r.unwrap_or_else(|| totp(&["g1"]))),
            ()
        ))),
        b.change_totp(&ghost, |r| Ok((
            Some(r.unwrap_or_else(|| totp(&["g2"]))),
            ()
        )))
    );
    x.unwrap();
    y.unwrap();
    let kept = a.totp(&ghost).await.unwrap().unwrap();
    assert!(kept == totp(&["g1"]) || kept == totp(&["g2"]), "{kept:?}");
}

// ---- dump ------------------------------------------------------------------------------------

fn holds(dump: &[(Vec<u8>, Vec<u8>, Vec<u8>)], needle: &[u8]) -> bool {
    dump.iter().any(|(_, k, v)| {
        [k, v]
            .iter()
            .any(|h| h.windows(needle.len()).any(|w| w == needle))
    })
}

pub(crate) async fn dump<S: Users + Tokens + Sessions + Dump + Sync>(a: &S, b: &S) {
    let t = t0();
    a.add_user(user("maria", Role::Admin), "$argon2id$maria-phc")
        .await
        .unwrap();
    a.add_user(user("olli", Role::Viewer), "$argon2id$olli-phc")
        .await
        .unwrap();
    let live = token("maria", "laptop", 1);
    let gone = token("maria", "ci", 2);
    b.add_token(&live, &[0xa1; 32]).await.unwrap();
    b.add_token(&gone, &[0xa2; 32]).await.unwrap();
    a.add_session(&[0xb1; 32], &session("maria", t))
        .await
        .unwrap();
    b.revoke_token(gone.id, t).await.unwrap();
    b.remove_user(&name("olli"), t).await.unwrap();

    let d = a.dump().await.unwrap();
    assert!(d.iter().any(|(t, _, _)| t == b"sessions"));
    assert!(d.iter().any(|(t, _, _)| t == b"users"));
    // What is kept is there...
    assert!(holds(&d, b"$argon2id$maria-phc"));
    assert!(holds(&d, &[0xa1; 32]));
    assert!(holds(&d, &[0xb1; 32]));
    // ... what was dropped is nowhere: a removed user's password, a revoked token's hash.
    assert!(!holds(&d, b"olli-phc"));
    assert!(!holds(&d, &[0xa2; 32]));
}

// ---- the backends ----------------------------------------------------------------------------

mod on_sled {
    use super::super::on_sled::store;

    #[tokio::test]
    async fn users() {
        let (_dir, s) = store();
        super::users(&s, &s.clone()).await;
    }

    #[tokio::test]
    async fn tokens() {
        let (_dir, s) = store();
        super::tokens(&s, &s.clone()).await;
    }

    #[tokio::test]
    async fn sessions() {
        let (_dir, s) = store();
        super::sessions(&s, &s.clone()).await;
    }

    #[tokio::test]
    async fn second_factors() {
        let (_dir, s) = store();
        super::second_factors(&s, &s.clone()).await;
    }

    #[tokio::test]
    async fn dump() {
        let (_dir, s) = store();
        super::dump(&s, &s.clone()).await;
    }
}

mod on_pg {
    use super::super::on_pg::nodes;

    #[tokio::test]
    async fn users() {
        let Some((a, b)) = nodes("cpusers").await else {
            return;
        };
        super::users(&a, &b).await;
    }

    #[tokio::test]
    async fn tokens() {
        let Some((a, b)) = nodes("cptokens").await else {
            return;
        };
        super::tokens(&a, &b).await;
    }

    #[tokio::test]
    async fn sessions() {
        let Some((a, b)) = nodes("cpsessions").await else {
            return;
        };
        super::sessions(&a, &b).await;
    }

    #[tokio::test]
    async fn second_factors() {
        let Some((a, b)) = nodes("cptotp").await else {
            return;
        };
        super::second_factors(&a, &b).await;
    }

    #[tokio::test]
    async fn dump() {
        let Some((a, b)) = nodes("cpdump").await else {
            return;
        };
        super::dump(&a, &b).await;
    }
}
