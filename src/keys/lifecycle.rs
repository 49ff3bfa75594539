//! Key lifecycle against the database: first-start creation, loading (decrypt + validate),
//! rotation and revocation. Each state change is one write transaction; the partial unique index
//! keeps exactly one active key per algorithm whatever the interleaving.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use super::generate::{self, KeyMaterial, SigningKeyPair};
use super::jwk::PublicJwk;
use super::kek::{Kek, KekError, KekOrigin};
use super::keyring::{ActiveKey, KeySet, PublishedKey};
use super::{KeyState, RsaKeySize, SigningAlg};
use crate::db::models::SigningKeyRow;
use crate::db::queries::signing_keys as q;
use crate::db::{Db, DbConn, DbError, write_transaction};

/// Why a key operation failed. Messages are for operators; none contains key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Database trouble.
    #[error(transparent)]
    Db(#[from] DbError),
    /// KEK trouble.
    #[error(transparent)]
    Kek(#[from] KekError),
    /// A stored key does not decrypt under the configured KEK.
    #[error(
        "signing key {kid} cannot be decrypted with the configured key-encryption key (PORTCULLIS_KEK or <keys-dir>/kek); it belongs to another installation or was tampered with. Portcullis will not generate new keys over existing ones"
    )]
    Undecryptable {
        /// The key that failed.
        kid: String,
    },
    /// A stored key is malformed or inconsistent.
    #[error("signing key {kid} is invalid: {reason}")]
    Invalid {
        /// The key.
        kid: String,
        /// What is wrong.
        reason: String,
    },
    /// No such key.
    #[error("no signing key with kid {0}")]
    NotFound(String),
    /// Already revoked.
    #[error("signing key {0} is already revoked")]
    AlreadyRevoked(String),
    /// Revoking the active key needs a replacement in the same step.
    #[error(
        "{kid} is the active {alg} key; revoke it with a replacement (`--replace`) so {alg} tokens can still be signed"
    )]
    ActiveNeedsReplacement {
        /// The key.
        kid: String,
        /// Its algorithm.
        alg: SigningAlg,
    },
    /// A concurrent change won the race; nothing was written.
    #[error("another key change happened at the same time; nothing was changed, try again")]
    Conflict,
    /// Key generation failed.
    #[error("key generation failed: {0}")]
    Generate(String),
}

impl From<diesel::result::Error> for KeyError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            // The one-active-per-algorithm index refused a second active key.
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Self::Conflict,
            other => Self::Db(DbError::Query(other)),
        }
    }
}

/// A key as listed by the CLI and admin API (no key material).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KeyInfo {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: SigningAlg,
    /// State.
    pub state: KeyState,
    /// Created (UTC).
    pub created_at: DateTime<Utc>,
    /// Activated (UTC).
    pub activated_at: Option<DateTime<Utc>>,
    /// Retired (UTC).
    pub retired_at: Option<DateTime<Utc>>,
    /// Revoked (UTC).
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&SigningKeyRow> for KeyInfo {
    fn from(row: &SigningKeyRow) -> Self {
        Self {
            kid: row.kid.clone(),
            alg: SigningAlg::parse(&row.alg).unwrap_or(SigningAlg::Es256),
            state: KeyState::parse(&row.state).unwrap_or(KeyState::Revoked),
            created_at: row.created_at.and_utc(),
            activated_at: row.activated_at.map(|t| t.and_utc()),
            retired_at: row.retired_at.map(|t| t.and_utc()),
            revoked_at: row.revoked_at.map(|t| t.and_utc()),
        }
    }
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

fn aad(kid: &str, alg: SigningAlg) -> String {
    // Binds each ciphertext to its row: a sealed key copied onto another row does not open.
    format!("portcullis-signing-key:{kid}:{alg}")
}

/// Seals `material` into a new row in `state`.
fn sealed_row(
    kek: &Kek,
    material: &KeyMaterial,
    state: KeyState,
) -> Result<SigningKeyRow, KeyError> {
    let kid = material.jwk.thumbprint();
    let now = now();
    Ok(SigningKeyRow {
        private_key_sealed: kek.seal(&aad(&kid, material.alg), &material.pkcs8)?,
        kid,
        alg: material.alg.as_str().into(),
        state: state.as_str().into(),
        public_jwk: serde_json::to_string(&material.jwk)
            .map_err(|e| KeyError::Generate(e.to_string()))?,
        created_at: now,
        activated_at: (state == KeyState::Active).then_some(now),
        retired_at: None,
        revoked_at: None,
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

/// Generates one key per algorithm on a blocking thread.
pub async fn generate_keys(
    algs: Vec<SigningAlg>,
    rsa_size: RsaKeySize,
) -> Result<Vec<KeyMaterial>, KeyError> {
    tokio::task::spawn_blocking(move || {
        algs.into_iter()
            .map(|alg| {
                generate::generate(alg, rsa_size).map_err(|e| KeyError::Generate(e.to_string()))
            })
            .collect()
    })
    .await
    .map_err(|e| KeyError::Generate(e.to_string()))?
}

/// Inserts `materials` as active keys for algorithms that have none; returns the kids inserted.
fn insert_missing_active(
    conn: &mut DbConn,
    kek: &Kek,
    materials: &[KeyMaterial],
) -> Result<Vec<String>, KeyError> {
    write_transaction(conn, |conn| {
        let mut inserted = Vec::new();
        for material in materials {
            if q::active(conn, material.alg.as_str())?.is_none() {
                let row = sealed_row(kek, material, KeyState::Active)?;
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

/// Loads (or, on a first start, creates) the KEK and the signing keys, as configured.
pub async fn bootstrap(
    db: &Db,
    settings: &crate::config::Settings,
) -> Result<Bootstrapped, KeyError> {
    let kek_setting = settings.kek.as_ref().map(|k| k.expose());
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
        let insert_kek = Arc::clone(&kek);
        generated = match db
            .run(move |conn| insert_missing_active(conn, &insert_kek, &materials))
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

/// Lists every key, oldest first.
pub fn list(conn: &mut DbConn) -> Result<Vec<KeyInfo>, KeyError> {
    Ok(q::all(conn)?.iter().map(KeyInfo::from).collect())
}

/// What a rotation did.
#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    /// Newly active keys.
    pub activated: Vec<KeyInfo>,
    /// Keys that stopped signing (still published).
    pub retired: Vec<KeyInfo>,
}

/// Rotates every algorithm in `materials`: the new key becomes active, the previous active key
/// is retired but stays published. One transaction; a concurrent rotation yields `Conflict`.
pub fn rotate(
    conn: &mut DbConn,
    kek: &Kek,
    materials: &[KeyMaterial],
) -> Result<Rotation, KeyError> {
    let rows: Vec<SigningKeyRow> = materials
        .iter()
        .map(|m| sealed_row(kek, m, KeyState::Active))
        .collect::<Result<_, _>>()?;
    write_transaction(conn, |conn| {
        let now = now();
        let mut retired = Vec::new();
        for row in &rows {
            // Retire first: the index admits the new active row only once the old one is gone.
            // The conditional update's row count decides a race with a concurrent rotation.
            if let Some(previous) = q::active(conn, &row.alg)? {
                if q::retire(conn, &previous.kid, now)? != 1 {
                    return Err(KeyError::Conflict);
                }
                retired.push(KeyInfo::from(&SigningKeyRow {
                    state: KeyState::Retired.as_str().into(),
                    retired_at: Some(now),
                    ..previous
                }));
            }
            q::insert(conn, row)?;
        }
        Ok(Rotation {
            activated: rows.iter().map(KeyInfo::from).collect(),
            retired,
        })
    })
}

/// What a revocation did.
#[derive(Debug, Clone, Serialize)]
pub struct Revocation {
    /// The revoked key.
    pub revoked: KeyInfo,
    /// Its replacement, when the revoked key was active.
    pub replacement: Option<KeyInfo>,
}

/// Revokes `kid` (removed from the JWKS at once). An active key is revoked only together with
/// activating `replacement` in the same transaction.
pub fn revoke(
    conn: &mut DbConn,
    kek: &Kek,
    kid: &str,
    replacement: Option<&KeyMaterial>,
) -> Result<Revocation, KeyError> {
    write_transaction(conn, |conn| {
        let row = q::find(conn, kid)?.ok_or_else(|| KeyError::NotFound(kid.to_owned()))?;
        let alg = SigningAlg::parse(&row.alg).ok_or_else(|| KeyError::NotFound(kid.to_owned()))?;
        if row.state == KeyState::Revoked.as_str() {
            return Err(KeyError::AlreadyRevoked(kid.to_owned()));
        }
        let replacement_row = match (row.state.as_str(), replacement) {
            ("active", None) => {
                return Err(KeyError::ActiveNeedsReplacement {
                    kid: kid.to_owned(),
                    alg,
                });
            }
            ("active", Some(material)) if material.alg == alg => {
                Some(sealed_row(kek, material, KeyState::Active)?)
            }
            ("active", Some(_)) => {
                return Err(KeyError::Generate(
                    "replacement has the wrong algorithm".into(),
                ));
            }
            _ => None,
        };
        if q::revoke(conn, kid, now())? != 1 {
            return Err(KeyError::Conflict);
        }
        if let Some(new_row) = &replacement_row {
            q::insert(conn, new_row)?;
        }
        let revoked = q::find(conn, kid)?.ok_or_else(|| KeyError::NotFound(kid.to_owned()))?;
        Ok(Revocation {
            revoked: KeyInfo::from(&revoked),
            replacement: replacement_row.as_ref().map(KeyInfo::from),
        })
    })
}

/// The algorithm of a stored key, to generate its replacement before the transaction.
pub fn key_alg(conn: &mut DbConn, kid: &str) -> Result<(SigningAlg, KeyState), KeyError> {
    let row = q::find(conn, kid)?.ok_or_else(|| KeyError::NotFound(kid.to_owned()))?;
    match (SigningAlg::parse(&row.alg), KeyState::parse(&row.state)) {
        (Some(alg), Some(state)) => Ok((alg, state)),
        _ => Err(KeyError::NotFound(kid.to_owned())),
    }
}

/// Sign-and-verify self-test of every active key, through the `Signer` and `jsonwebtoken`.
pub fn self_test(signer: &super::Signer) -> Result<(), String> {
    let set = signer.key_ring().current();
    let now = Utc::now().timestamp();
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
