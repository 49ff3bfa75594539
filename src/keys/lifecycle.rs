//! Key lifecycle against the database: first-start creation, loading (decrypt + validate),
//! rotation and revocation. Each state change is one write transaction; the partial unique index
//! keeps exactly one active key per algorithm whatever the interleaving.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::clock::Clock;
use secrecy::ExposeSecret;
use serde::Serialize;

pub use super::error::KeyError;
use super::generate::{self, KeyMaterial, SigningKeyPair, generate_keys};
use super::jwk::PublicJwk;
use super::kek::{Kek, KekOrigin};
use super::keyring::{ActiveKey, KeySet, PublishedKey};
use super::rotator::RotatorLease;
pub use super::schedule::KeyInfo;
use super::schedule::{self, KeyPolicy, KeyView, Transition};
use super::spares::Spares;
use super::{KeySettings, KeyState, RsaKeySize, SigningAlg};
use crate::db::models::SigningKeyRow;
use crate::db::queries::{audit, signing_keys as q};
use crate::db::{Db, DbConn, write_transaction};

fn aad(kid: &str, alg: SigningAlg) -> String {
    // Binds each ciphertext to its row: a sealed key copied onto another row does not open.
    format!("portcullis-signing-key:{kid}:{alg}")
}

/// Seals `material` into a new row made at `now`: active now, or pending until `activates_at`.
fn sealed_row(
    kek: &Kek,
    material: &KeyMaterial,
    activates_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> Result<SigningKeyRow, KeyError> {
    let kid = material.jwk.thumbprint();
    let state = if activates_at.is_some() {
        KeyState::Pending
    } else {
        KeyState::Active
    };
    Ok(SigningKeyRow {
        private_key_sealed: kek.seal(&aad(&kid, material.alg), &material.pkcs8)?,
        kid,
        alg: material.alg.as_str().into(),
        state: state.as_str().into(),
        public_jwk: serde_json::to_string(&material.jwk)
            .map_err(|e| KeyError::Generate(e.into()))?,
        created_at: now,
        activated_at: (state == KeyState::Active).then_some(now),
        retired_at: None,
        revoked_at: None,
        activates_at,
        remove_after: None,
        removed_at: None,
    })
}

/// Reads every published key, decrypts and validates the private halves, and builds a snapshot.
pub fn load_key_set(conn: &mut DbConn, kek: &Kek) -> Result<KeySet, KeyError> {
    let rows = q::published(conn)?;
    let mut active = Vec::new();
    let mut published = Vec::with_capacity(rows.len());
    for row in rows {
        let invalid = |reason: String| KeyError::Invalid {
            kid: row.kid.clone(),
            reason,
        };
        let alg = SigningAlg::parse(&row.alg)
            .ok_or_else(|| invalid(format!("unknown alg {}", row.alg)))?;
        let state = KeyState::parse(&row.state)
            .ok_or_else(|| invalid(format!("unknown state {}", row.state)))?;
        let jwk: PublicJwk =
            serde_json::from_str(&row.public_jwk).map_err(|e| invalid(e.to_string()))?;
        jwk.validate_for(alg).map_err(|e| invalid(e.to_string()))?;
        if jwk.thumbprint() != row.kid {
            return Err(invalid(
                "kid is not the thumbprint of its public key".into(),
            ));
        }
        // Every published key must decrypt: a wrong KEK is caught at start, not at first rotation.
        let pkcs8 = kek
            .open(&aad(&row.kid, alg), &row.private_key_sealed)
            .map_err(|_| KeyError::Undecryptable {
                kid: row.kid.clone(),
            })?;
        let material = generate::import(alg, pkcs8).map_err(|e| invalid(e.to_string()))?;
        if material.jwk != jwk {
            return Err(invalid("private key does not match its public JWK".into()));
        }
        if state == KeyState::Active {
            let pair =
                SigningKeyPair::from_material(&material).map_err(|e| invalid(e.to_string()))?;
            active.push(ActiveKey {
                kid: row.kid.clone(),
                alg,
                pair,
            });
        }
        published.push(PublishedKey {
            kid: row.kid,
            alg,
            state,
            jwk,
        });
    }
    Ok(KeySet::new(active, published))
}

/// Inserts `materials` as active keys (made at `now`) for algorithms that have none; returns the
/// kids inserted.
fn insert_missing_active(
    conn: &mut DbConn,
    kek: &Kek,
    materials: &[KeyMaterial],
    now: NaiveDateTime,
) -> Result<Vec<String>, KeyError> {
    write_transaction(conn, |conn| {
        let mut inserted = Vec::new();
        for material in materials {
            if q::active(conn, material.alg.as_str())?.is_none() {
                let row = sealed_row(kek, material, None, now)?;
                q::insert(conn, &row)?;
                inserted.push(row.kid);
            }
        }
        Ok(inserted)
    })
}

/// Everything `serve` needs from the key store at start.
pub struct Bootstrapped {
    /// The KEK, kept for reloads and rotations.
    pub kek: Arc<Kek>,
    /// Where it came from.
    pub kek_origin: KekOrigin,
    /// The loaded keys.
    pub key_set: KeySet,
    /// Kids generated now (first start).
    pub generated: Vec<String>,
}

/// Loads (or, on a first start, creates) the KEK and the signing keys, as configured; first keys
/// are dated by `clock`.
pub async fn bootstrap(
    db: &Db,
    settings: &KeySettings,
    clock: &Clock,
) -> Result<Bootstrapped, KeyError> {
    let kek_setting = settings.kek.as_ref().map(ExposeSecret::expose_secret);
    let (keys_dir, rsa_size) = (settings.keys_dir.as_path(), settings.rsa_key_size);
    let existing = db.run(|conn| Ok::<_, KeyError>(q::count(conn)?)).await?;
    let (kek, kek_origin) = Kek::load_or_create(kek_setting, keys_dir, existing == 0)?;
    let kek = Arc::new(kek);

    // Every existing key must open before anything is added: a wrong KEK stops here.
    let mut key_set = load_with(db, &kek).await?;
    let missing: Vec<SigningAlg> = SigningAlg::ALL
        .into_iter()
        .filter(|alg| key_set.active(*alg).is_none())
        .collect();

    let mut generated = Vec::new();
    if !missing.is_empty() {
        let materials = generate_keys(missing, rsa_size).await?;
        let (insert_kek, now) = (Arc::clone(&kek), clock.now_naive());
        generated = match db
            .run(move |conn| insert_missing_active(conn, &insert_kek, &materials, now))
            .await
        {
            // Another instance created its first keys at the same moment: use theirs.
            Err(KeyError::Conflict) => Vec::new(),
            other => other?,
        };
        key_set = load_with(db, &kek).await?;
    }
    Ok(Bootstrapped {
        kek,
        kek_origin,
        key_set,
        generated,
    })
}

/// Loads the published keys on a blocking thread.
pub async fn load_with(db: &Db, kek: &Arc<Kek>) -> Result<KeySet, KeyError> {
    let kek = Arc::clone(kek);
    db.run(move |conn| load_key_set(conn, &kek)).await
}

/// Lists every key, oldest first, with its next scheduled change under `policy`.
pub fn list(conn: &mut DbConn, policy: &KeyPolicy) -> Result<Vec<KeyInfo>, KeyError> {
    let rows = q::all(conn)?;
    let views: Vec<KeyView> = rows.iter().filter_map(KeyView::of).collect();
    Ok(rows
        .iter()
        .map(|row| {
            let mut info = KeyInfo::from(row);
            info.next =
                KeyView::of(row).and_then(|view| schedule::next_transition(&view, &views, policy));
            info
        })
        .collect())
}

/// Who changed a key, for the audit trail and the log.
#[derive(Clone, Debug)]
pub enum Actor {
    /// An administrator through the admin API: the user id.
    Admin(String),
    /// An operator through the CLI.
    Cli,
    /// The rotator, on schedule.
    Scheduler,
}

impl Actor {
    fn audit_name(&self) -> &str {
        match self {
            Self::Admin(user_id) => user_id,
            Self::Cli => "cli",
            Self::Scheduler => "scheduler",
        }
    }
}

fn record(
    conn: &mut DbConn,
    actor: &Actor,
    action: &str,
    kid: &str,
    detail: serde_json::Value,
    now: NaiveDateTime,
) -> Result<(), KeyError> {
    let detail = detail.to_string();
    audit::record(
        conn,
        Some(actor.audit_name()),
        action,
        Some(kid),
        Some(&detail),
        now,
    )?;
    tracing::info!(actor = actor.audit_name(), action, kid, %detail, "signing key change");
    Ok(())
}

/// Retires the active key of `alg` (if any) for `retention`; returns it as it now is.
fn retire_active(
    conn: &mut DbConn,
    alg: SigningAlg,
    now: NaiveDateTime,
    retention: std::time::Duration,
) -> Result<Option<KeyInfo>, KeyError> {
    let Some(previous) = q::active(conn, alg.as_str())? else {
        return Ok(None);
    };
    let remove_after = now + chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    // The conditional update's row count decides a race with a concurrent change.
    if q::retire(conn, &previous.kid, now, remove_after)? != 1 {
        return Err(KeyError::Conflict);
    }
    Ok(Some(KeyInfo::from(&SigningKeyRow {
        state: KeyState::Retired.as_str().into(),
        retired_at: Some(now),
        remove_after: Some(remove_after),
        ..previous
    })))
}

/// Makes the pending `kid` the signer of `alg`, retiring the current one. Call in a transaction.
fn promote(
    conn: &mut DbConn,
    alg: SigningAlg,
    kid: &str,
    now: NaiveDateTime,
    retention: std::time::Duration,
) -> Result<(KeyInfo, Option<KeyInfo>), KeyError> {
    let retired = retire_active(conn, alg, now, retention)?;
    if q::activate(conn, kid, now)? != 1 {
        return Err(KeyError::Conflict);
    }
    let active = q::find(conn, kid)?.ok_or_else(|| KeyError::NotFound(kid.to_owned()))?;
    Ok((KeyInfo::from(&active), retired))
}

/// What a rotation did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rotation {
    /// New keys published now that sign from their `activates_at`.
    pub pending: Vec<KeyInfo>,
    /// Keys that sign from now on.
    pub activated: Vec<KeyInfo>,
    /// Keys that stopped signing (still published until `remove_after`).
    pub retired: Vec<KeyInfo>,
    /// Set for immediate rotations: resource servers' cached JWKS may lack the new key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<&'static str>,
}

/// The warning of a key that signs without pre-publication (immediate rotation, or a revoked
/// active key replaced by a new key).
pub const IMMEDIATE_WARNING: &str = "the new key signs at once, before resource servers' cached JWKS hold it; verifiers that refetch on an unknown kid recover, others reject new tokens until their cache expires";

/// How and what to rotate.
#[derive(Debug, Clone)]
pub struct RotateRequest {
    /// The algorithms to rotate.
    pub algs: Vec<SigningAlg>,
    /// Activate at once (an existing pending key first, else a new key) instead of after the
    /// publish lead.
    pub immediate: bool,
}

/// Everything a key change needs besides the database.
#[derive(Clone)]
pub struct KeyContext {
    /// The key-encryption key.
    pub kek: Arc<Kek>,
    /// The schedule.
    pub policy: KeyPolicy,
    /// RSA size for new keys.
    pub rsa_size: RsaKeySize,
    /// Keys generated ahead of need, which rotations and revocations take.
    pub spares: Arc<Spares>,
    /// The time source of the schedule and of every key change's timestamps.
    pub clock: Clock,
    /// Serialises this process's rotations and revocations, so that of concurrent calls the
    /// first takes the spares and the others see its result (other processes: the database's
    /// constraints decide).
    changes: Arc<tokio::sync::Mutex<()>>,
}

impl KeyContext {
    /// A context with empty spare slots, on `clock`.
    pub fn new(kek: Arc<Kek>, policy: KeyPolicy, rsa_size: RsaKeySize, clock: Clock) -> Self {
        Self {
            kek,
            policy,
            rsa_size,
            spares: Arc::new(Spares::new(rsa_size)),
            clock,
            changes: Arc::default(),
        }
    }
}

/// Starts a rotation (the admin API and CLI `keys rotate`). By default every requested
/// algorithm gets a new pending key, published now and signing after the publish lead; a second
/// rotation while one is pending is refused (`RotationInProgress`), so concurrent calls make one
/// rotation. `immediate` activates at once. New keys are spares generated ahead of the call
/// (`KeyError::NoSpare` when one is not ready yet); the change is one transaction.
pub async fn rotate_keys(
    db: &Db,
    ctx: &KeyContext,
    request: RotateRequest,
    actor: Actor,
) -> Result<Rotation, KeyError> {
    let _one_at_a_time = ctx.changes.lock().await;
    let pending: Vec<SigningKeyRow> = db.run(|conn| Ok::<_, KeyError>(q::pending(conn)?)).await?;
    let has_pending = |alg: SigningAlg| pending.iter().any(|row| row.alg == alg.as_str());
    if !request.immediate && request.algs.iter().any(|alg| has_pending(*alg)) {
        return Err(KeyError::RotationInProgress(
            pending.iter().map(KeyInfo::from).collect(),
        ));
    }
    // An immediate rotation activates an already-published pending key rather than a new one.
    let needed: Vec<SigningAlg> = request
        .algs
        .iter()
        .copied()
        .filter(|alg| !(request.immediate && has_pending(*alg)))
        .collect();
    let materials = ctx.spares.take(&needed)?;
    crate::fault::point("rotate.generated");
    let (kek, policy, clock) = (Arc::clone(&ctx.kek), ctx.policy, ctx.clock.clone());
    db.run(move |conn| {
        write_transaction(conn, |conn| {
            let now = clock.now_naive();
            let mut rotation = Rotation::default();
            for alg in &request.algs {
                let material = materials.iter().find(|m| m.alg == *alg);
                if request.immediate {
                    let waiting = q::pending(conn)?
                        .into_iter()
                        .find(|row| row.alg == alg.as_str());
                    let (active, retired) = match (waiting, material) {
                        (Some(row), _) => promote(conn, *alg, &row.kid, now, policy.retention)?,
                        (None, Some(material)) => {
                            let retired = retire_active(conn, *alg, now, policy.retention)?;
                            let row = sealed_row(&kek, material, None, now)?;
                            q::insert(conn, &row)?;
                            (KeyInfo::from(&row), retired)
                        }
                        (None, None) => return Err(KeyError::Conflict),
                    };
                    record(
                        conn,
                        &actor,
                        "key_rotated_immediately",
                        &active.kid,
                        serde_json::json!({
                            "alg": alg, "retired": retired.as_ref().map(|k| &k.kid),
                        }),
                        now,
                    )?;
                    rotation.activated.push(active);
                    rotation.retired.extend(retired);
                } else {
                    let material = material.ok_or(KeyError::Conflict)?;
                    let activates_at = now
                        + chrono::Duration::from_std(policy.publish_lead)
                            .unwrap_or(chrono::Duration::MAX);
                    let row = sealed_row(&kek, material, Some(activates_at), now)?;
                    q::insert(conn, &row).map_err(|error| match KeyError::from(error) {
                        KeyError::Conflict => KeyError::RotationInProgress(Vec::new()),
                        other => other,
                    })?;
                    let current = q::active(conn, alg.as_str())?.map(|k| k.kid);
                    record(
                        conn,
                        &actor,
                        "key_rotation_started",
                        &row.kid,
                        serde_json::json!({
                            "alg": alg, "activates_at": activates_at.and_utc(), "replaces": current,
                        }),
                        now,
                    )?;
                    rotation.pending.push(KeyInfo::from(&row));
                }
            }
            if request.immediate {
                rotation.warning = Some(IMMEDIATE_WARNING);
            }
            crate::fault::point("rotate.before_commit");
            Ok(rotation)
        })
    })
    .await
    .inspect(|_| crate::fault::point("rotate.committed"))
}

/// What a revocation did.
#[derive(Debug, Clone, Serialize)]
pub struct Revocation {
    /// The revoked key.
    pub revoked: KeyInfo,
    /// Its replacement, when the revoked key was active.
    pub replacement: Option<KeyInfo>,
    /// Set when the replacement is a new key (no pending key was published ahead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<&'static str>,
}

/// Revokes `kid` (compromise): out of the JWKS at once, its private half erased. If it was the
/// active key, a replacement signs from the same transaction: the pending key of its algorithm
/// when there is one (already published), else the spare key of its algorithm.
pub async fn revoke_key(
    db: &Db,
    ctx: &KeyContext,
    kid: String,
    actor: Actor,
) -> Result<Revocation, KeyError> {
    let _one_at_a_time = ctx.changes.lock().await;
    let lookup = kid.clone();
    let (alg, state, has_pending) = db
        .run(move |conn| {
            let (alg, state) = key_alg(conn, &lookup)?;
            let has_pending = q::pending(conn)?.iter().any(|r| r.alg == alg.as_str());
            Ok::<_, KeyError>((alg, state, has_pending))
        })
        .await?;
    if matches!(state, KeyState::Revoked | KeyState::Removed) {
        return Err(KeyError::AlreadyRevoked(kid));
    }
    let material = if state == KeyState::Active && !has_pending {
        ctx.spares.take(&[alg])?.pop()
    } else {
        None
    };
    let (kek, policy, clock) = (Arc::clone(&ctx.kek), ctx.policy, ctx.clock.clone());
    db.run(move |conn| {
        write_transaction(conn, |conn| {
            let now = clock.now_naive();
            let row = q::find(conn, &kid)?.ok_or_else(|| KeyError::NotFound(kid.clone()))?;
            let was_active = row.state == KeyState::Active.as_str();
            if q::revoke(conn, &kid, now)? != 1 {
                return Err(KeyError::AlreadyRevoked(kid.clone()));
            }
            let mut warning = None;
            let replacement = if was_active {
                let waiting = q::pending(conn)?
                    .into_iter()
                    .find(|r| r.alg == alg.as_str());
                Some(match (waiting, &material) {
                    (Some(pending), _) => promote(conn, alg, &pending.kid, now, policy.retention)?.0,
                    (None, Some(material)) => {
                        let new_row = sealed_row(&kek, material, None, now)?;
                        q::insert(conn, &new_row)?;
                        warning = Some(IMMEDIATE_WARNING);
                        KeyInfo::from(&new_row)
                    }
                    (None, None) => return Err(KeyError::Conflict),
                })
            } else {
                None
            };
            record(
                conn,
                &actor,
                "key_revoked",
                &kid,
                serde_json::json!({
                    "alg": alg, "was": row.state, "replacement": replacement.as_ref().map(|k| &k.kid),
                }),
                now,
            )?;
            let revoked = q::find(conn, &kid)?.ok_or_else(|| KeyError::NotFound(kid.clone()))?;
            Ok(Revocation {
                revoked: KeyInfo::from(&revoked),
                replacement,
                warning,
            })
        })
    })
    .await
}

/// Carries out every transition due now (the rotator's tick; runs on a blocking thread, where it
/// also generates the keys it prepares). Each transition is its own transaction, which first
/// confirms that this instance still holds the rotator `lease` ([`KeyError::NotRotator`] if
/// not: nothing more is done); a transition another instance made first is skipped. Returns
/// the transitions made.
pub fn run_due(
    conn: &mut DbConn,
    ctx: &KeyContext,
    lease: &RotatorLease,
) -> Result<Vec<Transition>, KeyError> {
    let views: Vec<KeyView> = q::all(conn)?.iter().filter_map(KeyView::of).collect();
    let mut done = Vec::new();
    for transition in schedule::due(&views, &ctx.policy, ctx.clock.now_naive()) {
        let result = match &transition {
            Transition::Activate { alg, kid } => write_transaction(conn, |conn| {
                lease.confirm(conn, ctx)?;
                let now = ctx.clock.now_naive();
                let (active, retired) = promote(conn, *alg, kid, now, ctx.policy.retention)?;
                record(
                    conn,
                    &Actor::Scheduler,
                    "key_activated",
                    &active.kid,
                    serde_json::json!({"alg": alg, "retired": retired.map(|k| k.kid)}),
                    now,
                )?;
                crate::fault::point("activate.before_commit");
                Ok(())
            }),
            Transition::Remove { kid } => write_transaction(conn, |conn| {
                lease.confirm(conn, ctx)?;
                let now = ctx.clock.now_naive();
                if q::remove(conn, kid, now)? != 1 {
                    return Err(KeyError::Conflict);
                }
                record(
                    conn,
                    &Actor::Scheduler,
                    "key_removed",
                    kid,
                    serde_json::json!({}),
                    now,
                )
            }),
            Transition::Prepare { alg, activates_at } => {
                let material = generate::generate(*alg, ctx.rsa_size)
                    .map_err(|e| KeyError::Generate(e.into()))?;
                write_transaction(conn, |conn| {
                    lease.confirm(conn, ctx)?;
                    let row = sealed_row(
                        &ctx.kek,
                        &material,
                        Some(*activates_at),
                        ctx.clock.now_naive(),
                    )?;
                    q::insert(conn, &row)?;
                    record(
                        conn,
                        &Actor::Scheduler,
                        "key_rotation_started",
                        &row.kid,
                        serde_json::json!({"alg": alg, "activates_at": activates_at.and_utc()}),
                        row.created_at,
                    )
                })
            }
        };
        match result {
            Ok(()) => done.push(transition),
            // Another instance (or an operator) made this change first.
            Err(KeyError::Conflict) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(done)
}

/// The algorithm of a stored key, to generate its replacement before the transaction.
pub fn key_alg(conn: &mut DbConn, kid: &str) -> Result<(SigningAlg, KeyState), KeyError> {
    let row = q::find(conn, kid)?.ok_or_else(|| KeyError::NotFound(kid.to_owned()))?;
    match (SigningAlg::parse(&row.alg), KeyState::parse(&row.state)) {
        (Some(alg), Some(state)) => Ok((alg, state)),
        _ => Err(KeyError::NotFound(kid.to_owned())),
    }
}

/// Sign-and-verify self-test of every active key, through the `Signer` and `jsonwebtoken`. The
/// test token is issued at `now`, which must be the system time (not the application's clock):
/// `jsonwebtoken` checks `exp` against the system time.
pub fn self_test(signer: &super::Signer, now: DateTime<Utc>) -> Result<(), String> {
    let set = signer.key_ring().current();
    let now = now.timestamp();
    let claims = serde_json::json!({
        "iss": "portcullis-self-test", "sub": "self-test", "aud": "portcullis-self-test",
        "iat": now, "nbf": now, "exp": now + 60,
    });
    for alg in SigningAlg::ALL {
        let token = signer
            .sign(alg, "JWT", &claims)
            .map_err(|e| e.to_string())?;
        let active = set
            .active(alg)
            .ok_or_else(|| format!("no active {alg} key"))?;
        let published = set
            .published()
            .iter()
            .find(|k| k.kid == active.kid)
            .ok_or_else(|| format!("active {alg} key is not published"))?;
        let key = published.jwk.decoding_key().map_err(|e| e.to_string())?;
        let mut validation = jsonwebtoken::Validation::new(alg.jsonwebtoken());
        validation.set_audience(&["portcullis-self-test"]);
        validation.set_issuer(&["portcullis-self-test"]);
        jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation)
            .map_err(|e| format!("{alg} self-test token did not verify: {e}"))?;
    }
    Ok(())
}
