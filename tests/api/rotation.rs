//! Key rotation as resource servers see it: pre-publication (KEY-04), retention and removal
//! (KEY-05), the schedule, rotation under load (KEY-06), crashes mid-rotation (KEY-08), and
//! several instances on one database (KEY-09). Short settings stand in for days: a JWKS max-age
//! of 1 s, key reloads every 200 ms, a publish lead of 1.5–2 s.

use std::collections::BTreeSet;
use std::time::Duration;

use portcullis::config::SettingsArgs;
use portcullis::keys::SigningAlg;
use portcullis::verify::{Verifier, VerifierConfig};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    Backend, TestApp, TestEnv, claim_i64, join_all, kid_of, kids_of, portcullis_command,
    verifies_against, verify_signed_token, wait_for, wait_until,
};
use crate::on_both_backends;

/// Settings with a fast schedule: manual rotation unless `interval` is given.
fn fast_keys(env: &TestEnv, interval: &str, lead: &str) -> SettingsArgs {
    SettingsArgs {
        jwks_max_age: Some(1),
        key_refresh_interval: Some("200ms".into()),
        key_publish_lead: Some(lead.into()),
        key_rotation_interval: Some(interval.into()),
        ..env.args()
    }
}

fn keys_in_state(list: &Value, state: &str) -> Vec<Value> {
    list.as_array()
        .unwrap()
        .iter()
        .filter(|k| k["state"] == state)
        .cloned()
        .collect()
}

fn timestamp(value: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .timestamp()
}

// KEY-04/05: a new key is published before it signs; a token signed just before the rotation
// verifies until it expires; the retired key leaves the JWKS only after that.
async fn key_04_05_prepublication_and_retention(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env
        .spawn_with(SettingsArgs {
            access_token_ttl: Some("3s".into()),
            id_token_ttl: Some("3s".into()),
            key_retention: Some("4s".into()),
            ..fast_keys(&env, "0", "2s")
        })
        .await;
    let admin = app.admin_token().await;
    let old = kid_of(&admin);
    app.ready_spares(&admin).await;

    let started = app
        .post_bearer("/admin/keys/rotate?alg=ES256", &admin)
        .await;
    assert_eq!(started.status(), StatusCode::CREATED);
    let started: Value = started.json().await.unwrap();
    let pending = started["pending"][0]["kid"].as_str().unwrap().to_owned();
    let activates_at = timestamp(&started["pending"][0]["activates_at"]);

    // KEY-04: the snapshot taken now, before activation, already holds the new key.
    let snapshot = app.jwks().await;
    assert!(kids_of(&snapshot).contains(&pending));
    assert!(kids_of(&snapshot).contains(&old));
    let (before, mut refresh_token) = app.tokens("root").await;
    assert_eq!(kid_of(&before), old, "the pending key does not sign yet");
    assert!(claim_i64(&before, "iat") <= activates_at);

    // The new key signs once the lead has passed, never earlier.
    let (access, next) = app.refreshed(&refresh_token).await;
    refresh_token = next;
    assert_eq!(kid_of(&access), old);
    app.advance(Duration::from_secs(2));
    let (app_ref, pending_ref) = (&app, pending.as_str());
    wait_until(
        "the rotator activates the pending key once the lead has passed",
        Duration::from_secs(10),
        || async move { verify_signed_token(app_ref, SigningAlg::Es256).await.1 == pending_ref },
    )
    .await;
    let (first_new, _) = app.refreshed(&refresh_token).await;
    assert_eq!(kid_of(&first_new), pending);
    assert!(claim_i64(&first_new, "iat") >= activates_at);
    assert!(
        verifies_against(&first_new, &snapshot, &app.issuer).is_ok(),
        "a verifier holding the pre-activation snapshot verifies the new key's tokens"
    );

    // KEY-05: the token signed just before the rotation still verifies, locally and offline.
    assert_eq!(app.get_bearer("/api/me", &before).await.status(), 200);
    assert!(verifies_against(&before, &app.jwks().await, &app.issuer).is_ok());
    let list = env.keys_list().await;
    let retired = keys_in_state(&list, "retired");
    assert_eq!(retired.len(), 1);
    assert_eq!(retired[0]["kid"], old.as_str());
    assert_eq!(retired[0]["next"]["action"], "remove");

    // After the retention the retired key leaves the JWKS, its private half erased — and by
    // then every token it signed has expired.
    app.advance(Duration::from_secs(4));
    app.wait_for_jwks("retired key removed", |jwks| !kids_of(jwks).contains(&old))
        .await;
    let list = env.keys_list().await;
    let removed = keys_in_state(&list, "removed");
    assert_eq!(removed.len(), 1, "{list}");
    assert!(timestamp(&removed[0]["removed_at"]) >= claim_i64(&before, "exp"));
    let sealed = env
        .with_db(move |conn| {
            portcullis::db::queries::signing_keys::find(conn, &old)
                .unwrap()
                .unwrap()
                .private_key_sealed
        })
        .await;
    assert!(sealed.is_empty(), "a removed key's private half is erased");
}

// The schedule: with an interval, the next key is published a lead ahead and activates on
// time, with no call from anyone; the rotator's changes are audited.
async fn scheduled_rotation_prepublishes_and_activates(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn_with(fast_keys(&env, "4s", "2s")).await;
    let initial = kids_of(&app.jwks().await);
    assert_eq!(initial.len(), 2);
    // Two seconds on, the rotation (due 4 s after the first keys) is a lead away: the rotator's
    // next tick publishes the next keys.
    app.advance(Duration::from_secs(2));
    let jwks = app
        .wait_for_jwks("next keys published", |jwks| kids_of(jwks).len() == 4)
        .await;
    let upcoming: Vec<String> = kids_of(&jwks)
        .into_iter()
        .filter(|kid| !initial.contains(kid))
        .collect();
    for alg in SigningAlg::ALL {
        let (_, kid) = verify_signed_token(&app, alg).await;
        assert!(initial.contains(&kid), "{alg}: pending keys do not sign");
    }
    // The lead passes: the next tick activates them.
    app.advance(Duration::from_secs(2));
    let (app_ref, upcoming_ref) = (&app, &upcoming);
    wait_until(
        "the scheduled key signs",
        Duration::from_secs(10),
        || async move {
            let (_, kid) = verify_signed_token(app_ref, SigningAlg::Es256).await;
            upcoming_ref.contains(&kid)
        },
    )
    .await;
    for alg in SigningAlg::ALL {
        let (_, kid) = verify_signed_token(&app, alg).await;
        assert!(
            upcoming.contains(&kid),
            "{alg} signs with its scheduled key"
        );
    }
    let events = env
        .with_db(|conn| portcullis::db::queries::audit::recent(conn, 50).unwrap())
        .await;
    for kid in &upcoming {
        for action in ["key_rotation_started", "key_activated"] {
            assert!(
                events
                    .iter()
                    .any(|(actor, a, subject)| actor.as_deref() == Some("scheduler")
                        && a == action
                        && subject.as_deref() == Some(kid.as_str())),
                "{action} {kid}: {events:?}"
            );
        }
    }
}

// KEY-06: tokens issued and verified continuously by three resource-server verifiers that cache
// the JWKS for its max-age, through three scheduled rotations: zero failures.
async fn key_06_rotation_under_load_has_no_verification_failures(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn_with(fast_keys(&env, "3s", "2s")).await;
    let admin = app.admin_token().await;
    let verifiers: Vec<Verifier> = (0..3)
        .map(|_| {
            let mut config = VerifierConfig::for_issuer(&app.issuer);
            config.min_cache_ttl = Duration::from_secs(1);
            // No unknown-kid refetch to fall back on: pre-publication alone must suffice.
            config.unknown_kid_cooldown = Duration::from_secs(3600);
            Verifier::new(config).unwrap()
        })
        .collect();
    for verifier in &verifiers {
        verifier.verify::<Value>(&admin).await.unwrap();
    }
    let initial = kid_of(&admin);

    let clients = join_all((0..4).map(|_| async {
        let (_, mut refresh_token) = app.tokens("root").await;
        let mut seen = BTreeSet::new();
        let mut verified = 0u32;
        let mut failures = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        while tokio::time::Instant::now() < deadline {
            let (access, next) = app.refreshed(&refresh_token).await;
            refresh_token = next;
            seen.insert(kid_of(&access));
            for verifier in &verifiers {
                match verifier.verify::<Value>(&access).await {
                    Ok(_) => verified += 1,
                    Err(error) => failures.push(format!("{}: {error}", kid_of(&access))),
                }
            }
            if seen.len() >= 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (seen, verified, failures)
    }))
    .await;
    let mut kids = BTreeSet::new();
    for (seen, verified, failures) in clients {
        assert!(
            failures.is_empty(),
            "{} verification failures, the first: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        assert!(verified > 0);
        kids.extend(seen);
    }
    assert!(kids.contains(&initial));
    assert!(kids.len() >= 4, "three rotations seen: {kids:?}");
}

fn one_active_per_alg(list: &Value) -> Vec<String> {
    let active = keys_in_state(list, "active");
    let mut algs: Vec<&str> = active.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    assert_eq!(
        algs,
        ["ES256", "RS256"],
        "exactly one active key per algorithm: {list}"
    );
    active
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// The running server publishes and signs with exactly the active keys of `list`.
async fn assert_server_signs_with(app: &TestApp, active: &[String]) {
    app.wait_for_jwks("every active key published", |jwks| {
        active.iter().all(|kid| kids_of(jwks).contains(kid))
    })
    .await;
    for alg in SigningAlg::ALL {
        wait_until(
            &format!("{alg} signs with an active key"),
            Duration::from_secs(5),
            || async move { active.contains(&verify_signed_token(app, alg).await.1) },
        )
        .await;
    }
}

// KEY-08: the CLI aborted (as by kill -9) at each point of a rotation: afterwards exactly one
// active, published key per algorithm, and repeating the call converges.
async fn key_08_crash_at_every_point_of_a_rotation(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    for point in [
        "rotate.generated",
        "rotate.before_commit",
        "rotate.committed",
    ] {
        let before = one_active_per_alg(&env.keys_list().await);
        let crashed = env
            .cli_with_env(
                &["keys", "rotate", "--immediate"],
                &[("PORTCULLIS_FAULT_POINT", point)],
            )
            .await;
        assert!(!crashed.status.success(), "{point}: the process died");
        let after = one_active_per_alg(&env.keys_list().await);
        if point == "rotate.committed" {
            assert!(
                after.iter().all(|kid| !before.contains(kid)),
                "{point}: committed"
            );
        } else {
            assert_eq!(after, before, "{point}: rolled back, nothing half-written");
        }
        assert_server_signs_with(&app, &after).await;
    }
    // Starting a scheduled rotation crashes after commit: the retry is refused as in progress,
    // and the state is the same as after one successful call.
    let crashed = env
        .cli_with_env(
            &["keys", "rotate"],
            &[("PORTCULLIS_FAULT_POINT", "rotate.committed")],
        )
        .await;
    assert!(!crashed.status.success());
    let retry = env.cli(&["keys", "rotate"]).await;
    assert!(!retry.status.success());
    assert!(String::from_utf8_lossy(&retry.stderr).contains("already in progress"));
    let list = env.keys_list().await;
    assert_eq!(keys_in_state(&list, "pending").len(), 2, "{list}");
    let recovered = env.cli(&["keys", "rotate", "--immediate"]).await;
    assert!(recovered.status.success());
    let active = one_active_per_alg(&env.keys_list().await);
    assert_server_signs_with(&app, &active).await;
}

// KEY-08: a server killed in the middle of a scheduled activation: the transaction never
// happened; after restart the pending key activates, one active key per algorithm throughout.
async fn key_08_crash_during_scheduled_activation(backend: Backend) {
    let env = TestEnv::new(backend).await;
    env.spawn().await.stop().await;
    let initial = one_active_per_alg(&env.keys_list().await);

    let mut command = portcullis_command();
    command
        .arg("serve")
        .env("PORTCULLIS_DATABASE_URL", &env.database_url)
        .env("PORTCULLIS_DB_POOLER", env.pooler.as_str())
        .env("PORTCULLIS_KEYS_DIR", &env.keys_dir)
        .env("PORTCULLIS_BIND", "127.0.0.1:0")
        .env("PORTCULLIS_JWKS_MAX_AGE", "1")
        .env("PORTCULLIS_KEY_REFRESH_INTERVAL", "200ms")
        .env("PORTCULLIS_KEY_ROTATION_INTERVAL", "3s")
        .env("PORTCULLIS_KEY_PUBLISH_LEAD", "1500ms")
        .env("PORTCULLIS_FAULT_POINT", "activate.before_commit")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let server = command.spawn().unwrap();
    let output = tokio::time::timeout(Duration::from_secs(60), server.wait_with_output())
        .await
        .expect("the server reached the fault point")
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("fault point activate.before_commit"));

    let list = env.keys_list().await;
    assert_eq!(
        one_active_per_alg(&list),
        initial,
        "the activation rolled back"
    );
    let pending: Vec<String> = keys_in_state(&list, "pending")
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !pending.is_empty(),
        "the next keys were published before the crash"
    );

    // Restarted (with manual rotation, so nothing else changes), the rotator activates the
    // published keys that are due.
    let app = env.spawn_with(fast_keys(&env, "0", "1500ms")).await;
    let (env_ref, pending_ref) = (&env, &pending);
    let active = wait_for(
        "the published keys that are due activate",
        Duration::from_secs(10),
        || async move {
            let active = one_active_per_alg(&env_ref.keys_list().await);
            pending_ref
                .iter()
                .all(|kid| active.contains(kid))
                .then_some(active)
        },
    )
    .await;
    assert_server_signs_with(&app, &active).await;
}

on_both_backends!(
    key_04_05_prepublication_and_retention,
    scheduled_rotation_prepublishes_and_activates,
    key_06_rotation_under_load_has_no_verification_failures,
    key_08_crash_at_every_point_of_a_rotation,
    key_08_crash_during_scheduled_activation,
);

// KEY-09: three instances on one Postgres. A rotation through one is published by all within
// 5 s, and the first token any instance signs with the new key verifies against every
// instance's JWKS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_09_three_instances_on_one_database() {
    let env = TestEnv::new(Backend::Postgres).await;
    let args = SettingsArgs {
        issuer: Some("https://idp.example.test".into()),
        ..fast_keys(&env, "0", "2s")
    };
    let mut apps = Vec::new();
    for _ in 0..3 {
        apps.push(env.spawn_with(args.clone()).await);
    }
    let admin = apps[0].admin_token().await;
    let mut chains = Vec::new();
    for app in &apps {
        chains.push(app.tokens("root").await.1);
    }

    apps[1].ready_spares(&admin).await;
    let started = apps[1]
        .post_bearer("/admin/keys/rotate?alg=ES256", &admin)
        .await;
    assert_eq!(started.status(), StatusCode::CREATED);
    let started: Value = started.json().await.unwrap();
    let pending = started["pending"][0]["kid"].as_str().unwrap().to_owned();
    let apps = &apps;
    let pending = pending.as_str();
    for app in apps {
        wait_until(
            "every instance publishes the new key within 5 s",
            Duration::from_secs(5),
            || async move { app.jwks_kids().await.iter().any(|kid| kid == pending) },
        )
        .await;
    }

    // The publish lead passes, on the clock the three instances share; the rotator activates
    // the key at its next tick and each instance picks it up at its own.
    env.clock.advance(Duration::from_secs(2));
    let progress = tokio::sync::Mutex::new((chains, vec![None::<String>; apps.len()]));
    let progress = &progress;
    wait_until(
        "every instance switched to the new key",
        Duration::from_secs(20),
        || async move {
            let mut progress = progress.lock().await;
            let (chains, first_new) = &mut *progress;
            for (i, app) in apps.iter().enumerate() {
                if first_new[i].is_some() {
                    continue;
                }
                let (access, next) = app.refreshed(&chains[i]).await;
                chains[i] = next;
                if kid_of(&access) == pending {
                    // At the moment an instance first signs with the key, every instance
                    // publishes it.
                    for other in apps {
                        verifies_against(&access, &other.jwks().await, "https://idp.example.test")
                            .unwrap_or_else(|e| panic!("instance {i}'s token at another: {e}"));
                    }
                    first_new[i] = Some(access);
                }
            }
            first_new.iter().all(Option::is_some)
        },
    )
    .await;
    // Exactly one rotation happened whatever the number of instances.
    let list = env.keys_list().await;
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
    one_active_per_alg(&list);
}
