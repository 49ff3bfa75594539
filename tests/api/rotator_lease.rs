//! The rotator role as a lease row (issue 19 item 4): one holder among several instances, a
//! takeover once the lease lapses, and a holder that lost its lease makes no change, on both
//! backends. Instances are in-process `Leadership`s on their own connections and one clock,
//! which the tests move forward instead of sleeping.

use std::sync::Arc;
use std::time::Duration;

use portcullis::config::Settings;
use portcullis::db::DbConn;
use portcullis::keys::kek::Kek;
use portcullis::keys::lifecycle::{self, KeyContext};
use portcullis::keys::rotator::{Leadership, RotatorLease};
use portcullis::keys::schedule::KeyPolicy;
use portcullis::keys::{KeyError, RsaKeySize};
use portcullis::startup::Application;

use crate::helpers::{Backend, TestEnv};
use crate::{on_both_backends, on_pgbouncer};

/// The lease every instance of these tests takes.
const TTL: Duration = Duration::from_secs(10);
/// Keys rotate this long after they became active: the tests move the clock past it to make
/// the preparation of the next keys due.
const ROTATION: Duration = Duration::from_secs(3600);

/// A migrated database with its first keys (made by a server that is built, never run, so no
/// rotator of its own competes), and the key context of an instance on the env's clock.
async fn prepared(backend: Backend) -> (TestEnv, KeyContext) {
    let env = TestEnv::new(backend).await;
    let settings = Settings::from_args(env.args()).expect("settings");
    drop(
        Application::build_with_clock(settings, env.clock.clone())
            .await
            .expect("server builds"),
    );
    let (kek, _) = Kek::load_or_create(None, &env.keys_dir, false).expect("kek");
    let policy = KeyPolicy {
        rotation_interval: Some(ROTATION),
        publish_lead: Duration::from_secs(60),
        retention: Duration::from_secs(60),
    };
    let ctx = KeyContext::new(
        Arc::new(kek),
        policy,
        RsaKeySize::Rsa2048,
        env.clock.clone(),
    );
    (env, ctx)
}

/// One tick of `lead` on a fresh connection: (the instance back, the transitions it made).
async fn tick(env: &TestEnv, ctx: &KeyContext, lead: Leadership) -> (Leadership, usize) {
    let ctx = ctx.clone();
    env.with_db(move |conn| {
        let mut lead = lead;
        let made = lead.tick(conn, &ctx).expect("tick");
        (lead, made.len())
    })
    .await
}

async fn holder(env: &TestEnv) -> String {
    env.with_db(|conn| {
        portcullis::db::queries::lease::holder(conn, "signing_keys")
            .expect("lease row")
            .expect("the migration creates the row")
            .0
    })
    .await
}

async fn pending_keys(env: &TestEnv) -> usize {
    env.keys_list()
        .await
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["state"] == "pending")
        .count()
}

fn instances(n: usize) -> Vec<Leadership> {
    (0..n)
        .map(|_| Leadership::with_lease(RotatorLease::new(TTL)))
        .collect()
}

// Four instances tick at once, round after round: exactly one holds the lease, the same one
// every round, and the due preparation of the next keys (one per algorithm) is made once.
async fn one_holder_among_several_instances(backend: Backend) {
    let (env, ctx) = prepared(backend).await;
    env.clock.advance(ROTATION);
    let mut leads = instances(4);
    let mut made_total = 0;
    let mut first_holder = None;
    for round in 0..5 {
        let mut ticks = Vec::new();
        for lead in leads {
            let (manager, ctx) = (env.connection_manager(), ctx.clone());
            ticks.push(tokio::task::spawn_blocking(move || {
                let mut conn: DbConn = manager.establish().expect("connect");
                let mut lead = lead;
                let made = lead.tick(&mut conn, &ctx).expect("tick");
                (lead, made.len())
            }));
        }
        leads = Vec::new();
        for ticked in ticks {
            let (lead, made) = ticked.await.expect("tick task");
            made_total += made;
            leads.push(lead);
        }
        let leading: Vec<&Leadership> = leads.iter().filter(|l| l.is_leading()).collect();
        assert_eq!(leading.len(), 1, "round {round}: exactly one rotator");
        let id = leading[0].lease().holder().to_owned();
        assert_eq!(holder(&env).await, id, "round {round}: the row names it");
        assert_eq!(
            first_holder.get_or_insert_with(|| id.clone()),
            &id,
            "round {round}: the holder renews its lease"
        );
        env.clock.advance(Duration::from_secs(2));
    }
    assert_eq!(made_total, 2, "one preparation per algorithm, once");
    assert_eq!(pending_keys(&env).await, 2);
}

// The holder stops ticking (it died): nobody takes over while its lease runs; once it lapsed,
// the next instance to tick does, and the old holder finds it lost at its next tick.
async fn another_instance_takes_over_a_lapsed_lease(backend: Backend) {
    let (env, ctx) = prepared(backend).await;
    let mut leads = instances(2).into_iter();
    let (a, b) = (leads.next().unwrap(), leads.next().unwrap());
    let (a, _) = tick(&env, &ctx, a).await;
    assert!(a.is_leading());

    env.clock.advance(TTL - Duration::from_secs(1));
    let (b, _) = tick(&env, &ctx, b).await;
    assert!(!b.is_leading(), "the lease still runs");
    assert_eq!(holder(&env).await, a.lease().holder());

    env.clock.advance(Duration::from_secs(2));
    let (b, _) = tick(&env, &ctx, b).await;
    assert!(b.is_leading(), "the lapsed lease is taken over");
    assert_eq!(holder(&env).await, b.lease().holder());

    let (a, _) = tick(&env, &ctx, a).await;
    assert!(!a.is_leading(), "the old holder knows it lost the role");
    assert_eq!(holder(&env).await, b.lease().holder());
}

// A holder whose lease was taken over between its renewal and its rotation (a pause longer
// than the lease: GC, a frozen VM, a slow database) makes no change: the transaction of each
// transition confirms the lease first. The new holder makes the change, once.
async fn a_holder_that_lost_its_lease_does_not_rotate(backend: Backend) {
    let (env, ctx) = prepared(backend).await;
    let mut leads = instances(2).into_iter();
    let (a, b) = (leads.next().unwrap(), leads.next().unwrap());
    let (a, made) = tick(&env, &ctx, a).await;
    assert!(a.is_leading());
    assert_eq!(made, 0, "nothing due yet");

    // A is paused past its lease, and past the rotation; B takes the lapsed lease.
    env.clock.advance(ROTATION + TTL);
    let (b_lease, b_ctx) = (b.lease().clone(), ctx.clone());
    let taken = env
        .with_db(move |conn| b_lease.take_or_renew(conn, &b_ctx).expect("take"))
        .await;
    assert!(taken);

    // A resumes where it was: it believes it leads and carries out what is due.
    let (a_lease, a_ctx) = (a.lease().clone(), ctx.clone());
    let resumed = env
        .with_db(move |conn| lifecycle::run_due(conn, &a_ctx, &a_lease))
        .await;
    assert!(
        matches!(resumed, Err(KeyError::NotRotator)),
        "the old holder is refused: {resumed:?}"
    );
    assert_eq!(pending_keys(&env).await, 0, "the old holder made no change");

    let (a, made) = tick(&env, &ctx, a).await;
    assert!(!a.is_leading());
    assert_eq!(made, 0);
    let (b, made) = tick(&env, &ctx, b).await;
    assert!(b.is_leading());
    assert_eq!(made, 2, "the new holder prepares the next keys");
    assert_eq!(pending_keys(&env).await, 2);
}

on_both_backends!(
    one_holder_among_several_instances,
    another_instance_takes_over_a_lapsed_lease,
    a_holder_that_lost_its_lease_does_not_rotate,
);

// The lease through PgBouncer in transaction pooling: each tick's statements may run on any
// server connection, and one instance still holds the role.
on_pgbouncer!(
    one_holder_among_several_instances,
    another_instance_takes_over_a_lapsed_lease,
    a_holder_that_lost_its_lease_does_not_rotate,
);
