//! Key lifecycle: persistence across restarts, the KEK, rotation and revocation by the CLI while a
//! server runs, and the one-active-key-per-algorithm invariant.

use std::os::unix::fs::PermissionsExt;

use portcullis::keys::SigningAlg;
use serde_json::Value;

use crate::helpers::{Backend, TestEnv, kids_of, stderr_of, stdout_json, verify_signed_token};
use crate::on_both_backends;

fn sorted(mut kids: Vec<String>) -> Vec<String> {
    kids.sort();
    kids
}

fn active_kids(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .unwrap()
        .iter()
        .filter(|k| k["state"] == "active")
        .map(|k| {
            (
                k["alg"].as_str().unwrap().to_owned(),
                k["kid"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn keys_are_created_once_and_reloaded_after_restart(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let kids = sorted(app.jwks_kids().await);
    app.stop().await;

    let kek = env.keys_dir.join("kek");
    let mode = std::fs::metadata(&kek).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "KEK file is private");

    let app = env.spawn().await;
    assert_eq!(
        sorted(app.jwks_kids().await),
        kids,
        "same keys after restart"
    );
    let list = stdout_json(&env.cli(&["keys", "list"]).await);
    assert_eq!(
        list.as_array().unwrap().len(),
        2,
        "no key generated twice: {list}"
    );
    // The reloaded keys still sign.
    for alg in SigningAlg::ALL {
        verify_signed_token(&app, alg).await;
    }
}

async fn private_keys_are_sealed_at_rest(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    drop(app);
    let rows: Vec<(String, String)> = {
        let manager = env.connection_manager();
        tokio::task::spawn_blocking(move || {
            use diesel::prelude::*;
            use portcullis::db::schema::signing_keys::dsl;
            let mut conn = manager.establish().unwrap();
            dsl::signing_keys
                .select((dsl::public_jwk, dsl::private_key_sealed))
                .load(&mut conn)
                .unwrap()
        })
        .await
        .unwrap()
    };
    assert_eq!(rows.len(), 2);
    for (public, sealed) in rows {
        let public: Value = serde_json::from_str(&public).unwrap();
        assert!(
            public.get("d").is_none(),
            "no private member in the public column"
        );
        assert!(!sealed.contains("BEGIN"), "no PEM in clear");
        // A PKCS#8 DER key starts with a SEQUENCE (0x30); sealed bytes start with a random nonce,
        // and the sealed value is not the base64 of a DER key.
        use base64::Engine;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&sealed)
            .unwrap();
        assert!(raw.len() > 12 + 16);
        assert!(
            !raw.windows(9)
                .any(|w| w == [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]),
            "EC key OID visible: the key is not encrypted"
        );
        assert!(
            !raw.windows(11).any(|w| w
                == [
                    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01
                ]),
            "RSA key OID visible: the key is not encrypted"
        );
    }
}

async fn wrong_or_missing_kek_stops_serve(backend: Backend) {
    let env = TestEnv::new(backend).await;
    env.spawn().await.stop().await;
    let before = stdout_json(&env.cli(&["keys", "list"]).await);

    // Another installation's KEK: refuse to start, never generate keys over the old ones.
    let other_kek = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let output = env
        .cli_with_env(
            &["serve", "--bind", "127.0.0.1:0"],
            &[("PORTCULLIS_KEK", other_kek)],
        )
        .await;
    assert!(!output.status.success());
    let stderr = stderr_of(&output);
    assert!(stderr.contains("cannot be decrypted"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // The KEK file is lost: refuse to start too.
    std::fs::remove_file(env.keys_dir.join("kek")).unwrap();
    let output = env.cli(&["serve", "--bind", "127.0.0.1:0"]).await;
    assert!(!output.status.success());
    let stderr = stderr_of(&output);
    assert!(stderr.contains("no key-encryption key"), "{stderr}");
    assert!(
        !env.keys_dir.join("kek").exists(),
        "no new KEK created over existing keys"
    );

    // Rotation with the wrong KEK is refused the same way.
    let output = env
        .cli_with_env(&["keys", "rotate"], &[("PORTCULLIS_KEK", other_kek)])
        .await;
    assert!(!output.status.success());
    assert!(stderr_of(&output).contains("cannot be decrypted"));

    let after = stdout_json(&env.cli(&["keys", "list"]).await);
    assert_eq!(before, after, "nothing was written");
}

async fn cli_immediate_rotation_is_picked_up_by_a_running_server(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let old = sorted(app.jwks_kids().await);

    let rotation = stdout_json(&env.cli(&["keys", "rotate", "--immediate"]).await);
    assert!(
        rotation["warning"]
            .as_str()
            .unwrap()
            .contains("cached JWKS"),
        "an immediate rotation says caches may lag: {rotation}"
    );
    let activated: Vec<String> = rotation["activated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    let retired: Vec<String> = rotation["retired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(activated.len(), 2);
    assert_eq!(sorted(retired), old);

    // The running server reloads: old keys stay published as retired, new keys sign.
    let jwks = app
        .wait_for_jwks("four keys after rotation", |jwks| kids_of(jwks).len() == 4)
        .await;
    let kids = kids_of(&jwks);
    for kid in old.iter().chain(activated.iter()) {
        assert!(kids.contains(kid), "{kid} published");
    }
    for alg in SigningAlg::ALL {
        let (_, kid) = verify_signed_token(&app, alg).await;
        assert!(activated.contains(&kid), "{alg} signs with the new key");
    }
    let list = stdout_json(&env.cli(&["keys", "list"]).await);
    for key in list.as_array().unwrap() {
        let kid = key["kid"].as_str().unwrap().to_owned();
        if old.contains(&kid) {
            assert_eq!(key["state"], "retired");
            assert!(key["retired_at"].is_string());
            assert_eq!(key["next"]["action"], "remove", "{key}");
        } else {
            assert_eq!(key["state"], "active");
            assert!(key["activated_at"].is_string());
        }
    }
}

async fn revoked_keys_leave_the_jwks(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let first = stdout_json(&env.cli(&["keys", "list"]).await);
    stdout_json(&env.cli(&["keys", "rotate", "--immediate"]).await);
    let retired_kid = first[0]["kid"].as_str().unwrap().to_owned();

    let revoked = stdout_json(&env.cli(&["keys", "revoke", &retired_kid]).await);
    assert_eq!(revoked["revoked"]["state"], "revoked");
    app.wait_for_jwks("revoked key gone", |jwks| {
        !kids_of(jwks).contains(&retired_kid)
    })
    .await;

    // KEY-10: revoking the active key activates a replacement in the same step.
    let list = stdout_json(&env.cli(&["keys", "list"]).await);
    let (alg, active_kid) = active_kids(&list)[0].clone();
    let replaced = stdout_json(&env.cli(&["keys", "revoke", &active_kid]).await);
    let replacement = replaced["replacement"]["kid"].as_str().unwrap().to_owned();
    assert_eq!(replaced["replacement"]["alg"], alg.as_str());
    assert_eq!(replaced["replacement"]["state"], "active");
    let jwks = app
        .wait_for_jwks("replacement published", |jwks| {
            kids_of(jwks).contains(&replacement)
        })
        .await;
    assert!(!kids_of(&jwks).contains(&active_kid));
    let alg = SigningAlg::parse(&alg).unwrap();
    let (_, kid) = verify_signed_token(&app, alg).await;
    assert_eq!(kid, replacement);

    // A pending key, already published, is the preferred replacement.
    let started = stdout_json(&env.cli(&["keys", "rotate", "--alg", alg.as_str()]).await);
    let pending = started["pending"][0]["kid"].as_str().unwrap().to_owned();
    let replaced = stdout_json(&env.cli(&["keys", "revoke", &replacement]).await);
    assert_eq!(replaced["replacement"]["kid"], pending.as_str());
    assert!(
        replaced["warning"].is_null(),
        "the pending key was published ahead"
    );

    let again = env.cli(&["keys", "revoke", &replacement]).await;
    assert!(!again.status.success());
    assert!(stderr_of(&again).contains("no longer published"));

    let unknown = env.cli(&["keys", "revoke", "no-such-kid"]).await;
    assert!(!unknown.status.success());
    assert!(stderr_of(&unknown).contains("no signing key with kid"));
}

// KEY-08 (in part): whatever the interleaving, exactly one active key per algorithm.
async fn concurrent_rotations_keep_one_active_key_per_algorithm(backend: Backend) {
    let env = TestEnv::new(backend).await;
    env.spawn().await.stop().await;
    // ADM-02: two rotations started at once make one rotation; the other is refused.
    let (a, b) = tokio::join!(env.cli(&["keys", "rotate"]), env.cli(&["keys", "rotate"]));
    let successes = [&a, &b].iter().filter(|o| o.status.success()).count();
    assert_eq!(successes, 1, "a: {} b: {}", stderr_of(&a), stderr_of(&b));
    let refused = if a.status.success() { &b } else { &a };
    assert!(
        stderr_of(refused).contains("already in progress")
            || stderr_of(refused).contains("another key change"),
        "{}",
        stderr_of(refused)
    );
    let list = stdout_json(&env.cli(&["keys", "list"]).await);
    let pending = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["state"] == "pending")
        .count();
    assert_eq!(pending, 2, "one pending key per algorithm: {list}");

    // Immediate rotations at once: whatever the interleaving, one active key per algorithm.
    let (a, b) = tokio::join!(
        env.cli(&["keys", "rotate", "--immediate"]),
        env.cli(&["keys", "rotate", "--immediate"])
    );
    let successes = [&a, &b].iter().filter(|o| o.status.success()).count();
    assert!(successes >= 1, "a: {} b: {}", stderr_of(&a), stderr_of(&b));
    for output in [&a, &b] {
        if !output.status.success() {
            assert!(
                stderr_of(output).contains("another key change"),
                "{}",
                stderr_of(output)
            );
        }
    }
    let list = stdout_json(&env.cli(&["keys", "list"]).await);
    let mut active_algs: Vec<String> = active_kids(&list).into_iter().map(|(alg, _)| alg).collect();
    active_algs.sort();
    assert_eq!(active_algs, ["ES256", "RS256"], "{list}");
}

// KEY-08: the database itself refuses a second active key, not only the code.
async fn database_enforces_one_active_key_per_algorithm(backend: Backend) {
    let env = TestEnv::new(backend).await;
    env.spawn().await.stop().await;
    let manager = env.connection_manager();
    let error = tokio::task::spawn_blocking(move || {
        use portcullis::db::queries::signing_keys as q;
        let mut conn = manager.establish().unwrap();
        let mut row = q::all(&mut conn)
            .unwrap()
            .into_iter()
            .find(|r| r.state == "active")
            .unwrap();
        row.kid = "second-active".into();
        q::insert(&mut conn, &row).unwrap_err()
    })
    .await
    .unwrap();
    assert!(
        matches!(
            error,
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            )
        ),
        "{error:?}"
    );
}

on_both_backends!(
    keys_are_created_once_and_reloaded_after_restart,
    private_keys_are_sealed_at_rest,
    wrong_or_missing_kek_stops_serve,
    cli_immediate_rotation_is_picked_up_by_a_running_server,
    revoked_keys_leave_the_jwks,
    concurrent_rotations_keep_one_active_key_per_algorithm,
    database_enforces_one_active_key_per_algorithm,
);
