//! APIs (resource servers) and their scopes: the registered model, its validation, and an
//! in-memory registry that decides the audience and scope of every access token (RFC 8707
//! resource indicators) without a database round trip.
//!
//! Decisions:
//! - An API's identifier is the `aud` of its access tokens: an absolute URI without a fragment
//!   (RFC 8707 §2), compared byte for byte (as redirect URIs are). It cannot change (tokens and
//!   resource servers carry it); the issuer is reserved.
//! - A scope name is an RFC 6749 §3.3 scope-token, unique across APIs, so a scope names its API:
//!   a grant is for the APIs whose scopes it holds, and nothing else has to be stored with codes
//!   or refresh tokens. The OpenID scopes (OIDC Core §5.4, §11) are never API scopes.
//! - One audience per access token: a request names at most one `resource`; several get
//!   `invalid_target` (most providers do the same; a token for several audiences is a token any
//!   of them can replay at the others).
//! - Without `resource`, a grant holding scopes of exactly one API is for that API; of none, the
//!   client's default audience as before APIs existed; of several, `invalid_target` (name one).
//! - An access token for an API carries the grant's OpenID scopes (userinfo reads them) and the
//!   grant's scopes of that API only.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::NaiveDateTime;
use serde::Serialize;

use super::authorize::AuthorizationError;
use super::clients::{Client, KNOWN_SCOPES};
use super::error::OAuthError;
use crate::db::models::{ApiRow, ApiScopeRow};
use crate::db::queries::apis as q;
use crate::db::queries::audit::Change;
use crate::db::queries::clients as clients_q;
use crate::db::snapshot::Snapshot;
use crate::db::{Db, DbConn, DbError};
use crate::verify::Scope;

/// The scopes OpenID Connect defines (OIDC Core §5.4, §11): never the name of an API scope.
pub const OPENID_SCOPES: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

/// The longest identifier, scope name, API name and description accepted (characters).
const MAX_IDENTIFIER: usize = 512;
const MAX_SCOPE: usize = 128;
const MAX_NAME: usize = 128;
const MAX_DESCRIPTION: usize = 256;

/// A scope of an API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiScope {
    /// The scope name (RFC 6749 §3.3 scope-token), unique across APIs.
    pub name: String,
    /// What it allows, shown on the consent page.
    pub description: String,
}

/// A registered API (resource server).
#[derive(Clone, Debug, Serialize)]
pub struct Api {
    /// UUID.
    pub id: String,
    /// The audience of its access tokens (RFC 8707 §2 resource).
    pub identifier: String,
    /// Shown to operators.
    pub name: String,
    /// Its scopes, by name.
    pub scopes: Vec<ApiScope>,
    /// Created (UTC).
    pub created_at: NaiveDateTime,
    /// Last change of the API or its scopes (UTC).
    pub updated_at: NaiveDateTime,
}

impl Api {
    fn from_rows(row: ApiRow, scopes: Vec<ApiScopeRow>) -> Self {
        let mut scopes: Vec<ApiScope> = scopes
            .into_iter()
            .map(|s| ApiScope {
                name: s.scope,
                description: s.description,
            })
            .collect();
        scopes.sort_by(|a, b| a.name.cmp(&b.name));
        Self {
            id: row.id,
            identifier: row.identifier,
            name: row.name,
            scopes,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }

    /// Whether `scope` is one of its scopes.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s.name == scope)
    }
}

/// An API to register.
#[derive(Clone, Debug)]
pub struct NewApi {
    /// The audience: an absolute URI without a fragment.
    pub identifier: String,
    /// Shown to operators.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<ApiScope>,
}

/// A change to an API: a new name, and a new set of scopes.
#[derive(Clone, Debug, Default)]
pub struct ApiUpdate {
    /// The new name, if any.
    pub name: Option<String>,
    /// Scopes to add, or whose description to replace.
    pub upsert_scopes: Vec<ApiScope>,
    /// Scopes to remove (refused while a client is allowed one).
    pub remove_scopes: Vec<String>,
    /// The whole new set of scopes (the admin API's replacement), applied before the two
    /// lists above.
    pub replace_scopes: Option<Vec<ApiScope>>,
}

/// Why an API could not be registered, changed or deleted. Messages name the field.
#[derive(Debug, thiserror::Error)]
pub enum ApisError {
    /// A field is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The identifier is taken.
    #[error("an API with this identifier already exists")]
    Exists,
    /// A scope name is taken by another API.
    #[error("scope `{scope}` belongs to API {api}")]
    ScopeTaken {
        /// The scope.
        scope: String,
        /// The identifier of the API that has it.
        api: String,
    },
    /// No such API.
    #[error("no API with this id or identifier")]
    NotFound,
    /// Clients are allowed scopes that the change would remove.
    #[error("clients are allowed its scopes: {}", clients.join(", "))]
    InUse {
        /// The clients.
        clients: Vec<String>,
    },
    /// Database trouble.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for ApisError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            // A concurrent registration took the identifier or a scope between the check and
            // the insert: the transaction is rolled back.
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Self::Exists,
            other => Self::Db(DbError::Query(other)),
        }
    }
}

fn clean(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.chars().count() <= max
        && !text.chars().any(char::is_control)
        && text.trim() == text
}

/// Checks an API identifier (RFC 8707 §2): an absolute URI, no fragment, no whitespace or
/// control characters, at most 512 characters; not the issuer.
pub fn validate_identifier(identifier: &str, issuer: &str) -> Result<(), String> {
    let refuse = |why: &str| Err(format!("identifier `{identifier}` refused: {why}"));
    if identifier.is_empty() || identifier.chars().count() > MAX_IDENTIFIER {
        return Err(format!(
            "identifier must be 1-{MAX_IDENTIFIER} characters (an absolute URI)"
        ));
    }
    if identifier
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return refuse("it contains whitespace or control characters");
    }
    if identifier.contains('#') {
        return refuse("it has a fragment (RFC 8707 §2)");
    }
    if url::Url::parse(identifier).is_err() {
        return refuse("it is not an absolute URI (RFC 8707 §2)");
    }
    if identifier == issuer {
        return refuse("it is the issuer, the audience of the first-party API");
    }
    Ok(())
}

/// Checks a scope name: an RFC 6749 §3.3 scope-token (`%x21 / %x23-5B / %x5D-7E`), at most 128
/// characters, not an OpenID scope.
pub fn validate_scope_name(name: &str) -> Result<(), String> {
    let token_ok = !name.is_empty()
        && name.len() <= MAX_SCOPE
        && name
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
    if !token_ok {
        return Err(format!(
            "scope `{}` refused: a scope is 1-{MAX_SCOPE} printable ASCII characters without space, `\"` or `\\` (RFC 6749 §3.3)",
            name.chars().take(MAX_SCOPE).collect::<String>()
        ));
    }
    if OPENID_SCOPES.contains(&name) {
        return Err(format!(
            "scope `{name}` refused: it is an OpenID Connect scope"
        ));
    }
    Ok(())
}

fn validate_scopes(scopes: &[ApiScope]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for scope in scopes {
        validate_scope_name(&scope.name)?;
        if !clean(&scope.description, MAX_DESCRIPTION) {
            return Err(format!(
                "the description of scope `{}` must be 1-{MAX_DESCRIPTION} characters, no control characters or surrounding spaces",
                scope.name
            ));
        }
        if !seen.insert(scope.name.as_str()) {
            return Err(format!("scope `{}` is listed twice", scope.name));
        }
    }
    Ok(())
}

fn validate_name(name: &str) -> Result<(), String> {
    if clean(name, MAX_NAME) {
        Ok(())
    } else {
        Err(format!(
            "name must be 1-{MAX_NAME} characters, no control characters or surrounding spaces"
        ))
    }
}

/// Refuses scope names another API (not `own_api`) already has.
fn check_scopes_free(
    conn: &mut DbConn,
    scopes: &[ApiScope],
    own_api: Option<&str>,
) -> Result<(), ApisError> {
    let names: Vec<String> = scopes.iter().map(|s| s.name.clone()).collect();
    for taken in q::scopes_named(conn, &names)? {
        if Some(taken.api_id.as_str()) != own_api {
            let api = q::find(conn, &taken.api_id)?
                .map(|a| a.identifier)
                .unwrap_or_default();
            return Err(ApisError::ScopeTaken {
                scope: taken.scope,
                api,
            });
        }
    }
    Ok(())
}

fn scope_rows(api_id: &str, scopes: &[ApiScope], now: NaiveDateTime) -> Vec<ApiScopeRow> {
    scopes
        .iter()
        .map(|s| ApiScopeRow {
            scope: s.name.clone(),
            api_id: api_id.to_owned(),
            description: s.description.clone(),
            created_at: now,
        })
        .collect()
}

fn detail(api: &Api) -> serde_json::Value {
    serde_json::to_value(api).unwrap_or_default()
}

/// Validates and registers an API at `now` (one transaction: the API and its scopes, or
/// nothing). `issuer` is reserved. The audit detail is the API.
pub fn create(
    conn: &mut DbConn,
    new: NewApi,
    issuer: &str,
    now: NaiveDateTime,
) -> Result<Change<Api>, ApisError> {
    validate_identifier(&new.identifier, issuer).map_err(ApisError::Invalid)?;
    validate_name(&new.name).map_err(ApisError::Invalid)?;
    validate_scopes(&new.scopes).map_err(ApisError::Invalid)?;
    crate::db::write_transaction(conn, |conn| {
        if q::find_by_identifier(conn, &new.identifier)?.is_some() {
            return Err(ApisError::Exists);
        }
        check_scopes_free(conn, &new.scopes, None)?;
        let row = ApiRow {
            id: uuid::Uuid::new_v4().to_string(),
            identifier: new.identifier.clone(),
            name: new.name.clone(),
            created_at: now,
            updated_at: now,
        };
        q::insert(conn, &row)?;
        q::insert_scopes(conn, &scope_rows(&row.id, &new.scopes, now))?;
        let api = load_one(conn, &row.id)?;
        let id = api.id.clone();
        let detail = serde_json::json!({ "api": detail(&api) });
        Ok(Change::made(api, id, detail))
    })
}

/// Every API with its scopes, by identifier.
pub fn list(conn: &mut DbConn) -> Result<Vec<Api>, ApisError> {
    let mut scopes: HashMap<String, Vec<ApiScopeRow>> = HashMap::new();
    for row in q::all_scopes(conn)? {
        scopes.entry(row.api_id.clone()).or_default().push(row);
    }
    Ok(q::all(conn)?
        .into_iter()
        .map(|row| {
            let own = scopes.remove(&row.id).unwrap_or_default();
            Api::from_rows(row, own)
        })
        .collect())
}

fn load_one(conn: &mut DbConn, id: &str) -> Result<Api, ApisError> {
    let row = q::find(conn, id)?.ok_or(ApisError::NotFound)?;
    let scopes = q::scopes_of(conn, id)?;
    Ok(Api::from_rows(row, scopes))
}

/// One API by its id or its identifier.
pub fn find(conn: &mut DbConn, key: &str) -> Result<Api, ApisError> {
    let row = match q::find(conn, key)? {
        Some(row) => row,
        None => q::find_by_identifier(conn, key)?.ok_or(ApisError::NotFound)?,
    };
    let id = row.id.clone();
    Ok(Api::from_rows(row, q::scopes_of(conn, &id)?))
}

/// The clients allowed any of `scopes`, by id.
fn clients_allowed(conn: &mut DbConn, scopes: &[String]) -> Result<Vec<String>, ApisError> {
    let mut using = Vec::new();
    for client in clients_q::all(conn)? {
        let allowed: Vec<String> = serde_json::from_str(&client.scopes).unwrap_or_default();
        if allowed.iter().any(|s| scopes.contains(s)) {
            using.push(client.client_id);
        }
    }
    Ok(using)
}

/// Changes an API (by id or identifier) at `now`, in one transaction: its name, scopes added or
/// re-described, scopes removed. Removing a scope some client is allowed is refused
/// ([`ApisError::InUse`], naming the clients). The audit detail is the old and new API (no
/// change when they are equal).
pub fn update(
    conn: &mut DbConn,
    key: &str,
    update: ApiUpdate,
    now: NaiveDateTime,
) -> Result<Change<Api>, ApisError> {
    if let Some(name) = &update.name {
        validate_name(name).map_err(ApisError::Invalid)?;
    }
    crate::db::write_transaction(conn, |conn| {
        let old = find(conn, key)?;
        let mut scopes = update
            .replace_scopes
            .clone()
            .unwrap_or_else(|| old.scopes.clone());
        for added in &update.upsert_scopes {
            match scopes.iter_mut().find(|s| s.name == added.name) {
                Some(existing) => existing.description = added.description.clone(),
                None => scopes.push(added.clone()),
            }
        }
        for removed in &update.remove_scopes {
            if !scopes.iter().any(|s| &s.name == removed) {
                return Err(ApisError::Invalid(format!(
                    "API {} has no scope `{removed}`",
                    old.identifier
                )));
            }
            scopes.retain(|s| &s.name != removed);
        }
        validate_scopes(&scopes).map_err(ApisError::Invalid)?;
        scopes.sort_by(|a, b| a.name.cmp(&b.name));
        let name = update.name.clone().unwrap_or_else(|| old.name.clone());
        if name == old.name && scopes == old.scopes {
            let id = old.id.clone();
            return Ok(Change::none(old, id));
        }
        let dropped: Vec<String> = old
            .scopes
            .iter()
            .filter(|s| !scopes.iter().any(|n| n.name == s.name))
            .map(|s| s.name.clone())
            .collect();
        let using = clients_allowed(conn, &dropped)?;
        if !using.is_empty() {
            return Err(ApisError::InUse { clients: using });
        }
        check_scopes_free(conn, &scopes, Some(&old.id))?;
        q::delete_scopes(conn, &old.id)?;
        q::insert_scopes(conn, &scope_rows(&old.id, &scopes, now))?;
        if q::set_name(conn, &old.id, &name, now)? != 1 {
            return Err(ApisError::NotFound);
        }
        let new = load_one(conn, &old.id)?;
        let detail = serde_json::json!({ "api": { "old": detail(&old), "new": detail(&new) } });
        let id = new.id.clone();
        Ok(Change::made(new, id, detail))
    })
}

/// Deletes an API (by id or identifier) and its scopes. Refused while a client is allowed one
/// of its scopes ([`ApisError::InUse`]): the client would keep a scope that names nothing, and
/// tokens it holds would lose their audience silently. The audit detail is the deleted API.
pub fn delete(conn: &mut DbConn, key: &str) -> Result<Change<Api>, ApisError> {
    crate::db::write_transaction(conn, |conn| {
        let api = find(conn, key)?;
        let names: Vec<String> = api.scopes.iter().map(|s| s.name.clone()).collect();
        let using = clients_allowed(conn, &names)?;
        if !using.is_empty() {
            return Err(ApisError::InUse { clients: using });
        }
        if q::delete(conn, &api.id)? != 1 {
            return Err(ApisError::NotFound);
        }
        let detail = serde_json::json!({ "api": { "old": detail(&api), "new": null } });
        let id = api.id.clone();
        Ok(Change::made(api, id, detail))
    })
}

/// Which of `scopes` are neither OpenID scopes nor scopes of a registered API (the clients
/// registration's check; read in its transaction).
pub fn unknown_scopes(conn: &mut DbConn, scopes: &[String]) -> Result<Vec<String>, DbError> {
    let candidates: Vec<String> = scopes
        .iter()
        .filter(|s| !KNOWN_SCOPES.contains(&s.as_str()))
        .cloned()
        .collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let found = q::scopes_named(conn, &candidates)?;
    Ok(candidates
        .into_iter()
        .filter(|c| !found.iter().any(|f| &f.scope == c))
        .collect())
}

/// Every API scope name, for the error message of an unknown client scope (at most `limit`).
pub fn scope_names(conn: &mut DbConn, limit: usize) -> Result<Vec<String>, DbError> {
    Ok(q::all_scopes(conn)?
        .into_iter()
        .take(limit)
        .map(|s| s.scope)
        .collect())
}

/// The APIs in memory: by identifier, and each scope's API.
pub struct Apis {
    by_identifier: HashMap<String, Arc<Api>>,
    by_scope: HashMap<String, Arc<Api>>,
    fingerprint: (i64, Option<NaiveDateTime>),
}

/// The audience and scope of an access token (RFC 8707 §2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The `aud`; `None`: the client's default audience.
    pub audience: Option<String>,
    /// The `scope`.
    pub scope: Scope,
}

/// A line of the consent page: a scope and, for an API scope, its description and API name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeLine {
    /// The scope name.
    pub name: String,
    /// The API scope's description.
    pub description: Option<String>,
    /// The API's name.
    pub api: Option<String>,
}

fn one_resource(resources: &[String]) -> Result<Option<&str>, &'static str> {
    match resources {
        [] => Ok(None),
        [one] => Ok(Some(one.as_str())),
        _ => Err("Only one resource per request: an access token has one audience."),
    }
}

fn target_error(description: &str) -> OAuthError {
    OAuthError::invalid_target_because(description)
}

impl Apis {
    /// No APIs.
    pub fn empty() -> Self {
        Self {
            by_identifier: HashMap::new(),
            by_scope: HashMap::new(),
            fingerprint: (0, None),
        }
    }

    /// Whether no API is registered.
    pub fn is_empty(&self) -> bool {
        self.by_identifier.is_empty()
    }

    /// The API named by `identifier`.
    pub fn get(&self, identifier: &str) -> Option<&Arc<Api>> {
        self.by_identifier.get(identifier)
    }

    /// The API `scope` belongs to.
    pub fn api_of(&self, scope: &str) -> Option<&Arc<Api>> {
        self.by_scope.get(scope)
    }

    /// The APIs `scope` holds scopes of, by identifier.
    fn apis_in<'a>(&'a self, scope: &Scope) -> BTreeMap<&'a str, &'a Arc<Api>> {
        scope
            .iter()
            .filter_map(|s| self.api_of(s))
            .map(|api| (api.identifier.as_str(), api))
            .collect()
    }

    /// The grant's scopes an access token for `api` carries: the OpenID scopes (userinfo reads
    /// them) and the scopes of `api`; scopes of other APIs, and scopes no longer defined, are
    /// left out.
    fn scope_for(&self, granted: &Scope, api: Option<&Api>) -> Scope {
        let keep = |s: &&str| match self.api_of(s) {
            Some(owner) => api.is_some_and(|a| a.id == owner.id),
            None => KNOWN_SCOPES.contains(s),
        };
        // The common case (nothing to leave out) costs one copy, not a parse.
        if granted.iter().all(|s| keep(&s)) {
            return granted.clone();
        }
        let kept: Vec<&str> = granted.iter().filter(keep).collect();
        Scope::parse(&kept.join(" ")).unwrap_or_else(|_| Scope::empty())
    }

    /// The audience and scope of an access token for `client` from a grant of `granted`, at
    /// the `resources` the token request names (RFC 8707 §2, §2.2; the `audience` parameter of
    /// `client_credentials` counts as one). A resource must be a registered API the grant holds
    /// a scope of, or one of the client's own audiences; else `invalid_target`. Without one,
    /// see the module's decisions.
    pub fn target(
        &self,
        client: &Client,
        granted: &Scope,
        resources: &[String],
    ) -> Result<Target, OAuthError> {
        let resource = one_resource(resources).map_err(target_error)?;
        let in_grant = self.apis_in(granted);
        match resource {
            Some(resource) => {
                if let Some(api) = in_grant.get(resource) {
                    return Ok(Target {
                        audience: Some(api.identifier.clone()),
                        scope: self.scope_for(granted, Some(api)),
                    });
                }
                if client.audiences.iter().any(|a| a == resource) {
                    // One of the client's own audiences (before APIs existed): no API scopes.
                    let api = self.get(resource).map(Arc::as_ref);
                    return Ok(Target {
                        audience: Some(resource.to_owned()),
                        scope: self.scope_for(granted, api),
                    });
                }
                Err(target_error(
                    "The resource is not an API this grant holds a scope of, nor an audience of this client.",
                ))
            }
            None => match in_grant.len() {
                0 => Ok(Target {
                    audience: None,
                    scope: self.scope_for(granted, None),
                }),
                1 => {
                    let api = in_grant.values().next().map(|a| a.as_ref());
                    Ok(Target {
                        audience: api.map(|a| a.identifier.clone()),
                        scope: self.scope_for(granted, api),
                    })
                }
                _ => Err(target_error(
                    "The grant holds scopes of several APIs: name one with resource.",
                )),
            },
        }
    }

    /// The scopes `client` is allowed of the API `resource` (`client_credentials` without a
    /// `scope`: a token for an API carries what the client may have of it).
    pub fn allowed_of(&self, client: &Client, resources: &[String]) -> Option<Scope> {
        let [resource] = resources else {
            return None;
        };
        let api = self.get(resource)?;
        let allowed: Vec<&str> = client
            .scopes
            .iter()
            .map(String::as_str)
            .filter(|s| api.has_scope(s))
            .collect();
        Scope::parse(&allowed.join(" ")).ok()
    }

    /// The authorization request's `resource` (RFC 8707 §2): at most one; a registered API
    /// whose scopes are asked for, or one of the client's audiences. When it names an API, the
    /// API scopes asked for must be its own (`invalid_scope`).
    pub fn check_authorization_resource(
        &self,
        client: &Client,
        scope: &Scope,
        resources: &[String],
    ) -> Result<(), AuthorizationError> {
        let invalid_target = |description| AuthorizationError::new("invalid_target", description);
        let Some(resource) = one_resource(resources).map_err(invalid_target)? else {
            return Ok(());
        };
        let asked = self.apis_in(scope);
        let own_audience = client.audiences.iter().any(|a| a == resource);
        if !asked.contains_key(resource) && !own_audience {
            return Err(invalid_target(
                "The resource is not an API whose scopes are asked for, nor an audience of this client.",
            ));
        }
        if asked.keys().any(|identifier| *identifier != resource) {
            return Err(AuthorizationError::new(
                "invalid_scope",
                "A requested scope belongs to another API than the resource.",
            ));
        }
        Ok(())
    }

    /// The consent page's lines for `scopes`: API scopes with their description.
    pub fn describe<'a>(&self, scopes: impl IntoIterator<Item = &'a str>) -> Vec<ScopeLine> {
        scopes
            .into_iter()
            .map(|name| {
                let api = self.api_of(name);
                ScopeLine {
                    name: name.to_owned(),
                    description: api.and_then(|api| {
                        api.scopes
                            .iter()
                            .find(|s| s.name == name)
                            .map(|s| s.description.clone())
                    }),
                    api: api.map(|api| api.name.clone()),
                }
            })
            .collect()
    }
}

/// Every API in memory, reloaded when the tables change (checked every key refresh tick on every
/// instance, and at once after a change made by this process), installed by compare-and-swap as
/// the client registry is (a load overtaken by another is not installed).
pub struct ApiRegistry {
    loaded: Snapshot<Apis>,
}

impl ApiRegistry {
    /// Loads every API.
    pub fn load(conn: &mut DbConn) -> Result<Self, ApisError> {
        Ok(Self {
            loaded: Snapshot::new(load(conn)?),
        })
    }

    /// The APIs as they are now (cheap: an `Arc`).
    pub fn current(&self) -> Arc<Apis> {
        self.loaded.current()
    }

    /// Reloads at once (after a change made by this process), by compare-and-swap
    /// ([`Snapshot::reload`]).
    pub async fn reload(&self, db: &Db) -> Result<(), ApisError> {
        self.loaded.reload(db, load).await
    }

    /// Reloads if the tables changed since the last load; a load that another one overtook is
    /// dropped ([`Snapshot::refresh`]).
    pub async fn refresh(&self, db: &Db) -> Result<(), ApisError> {
        let installed = self
            .loaded
            .refresh(db, |observed| {
                let current = observed.fingerprint;
                move |conn: &mut DbConn| {
                    if q::fingerprint(conn)? == current {
                        return Ok::<_, ApisError>(None);
                    }
                    load(conn).map(Some)
                }
            })
            .await?;
        if let Some(loaded) = installed {
            tracing::info!(apis = loaded.by_identifier.len(), "APIs changed; reloaded");
        }
        Ok(())
    }
}

fn load(conn: &mut DbConn) -> Result<Apis, ApisError> {
    let fingerprint = q::fingerprint(conn)?;
    let mut apis = Apis::empty();
    apis.fingerprint = fingerprint;
    for api in list(conn)? {
        let api = Arc::new(api);
        for scope in &api.scopes {
            apis.by_scope.insert(scope.name.clone(), Arc::clone(&api));
        }
        apis.by_identifier.insert(api.identifier.clone(), api);
    }
    Ok(apis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(identifier: &str, scopes: &[&str]) -> Arc<Api> {
        Arc::new(Api {
            id: identifier.to_owned(),
            identifier: identifier.to_owned(),
            name: identifier.to_owned(),
            scopes: scopes
                .iter()
                .map(|s| ApiScope {
                    name: (*s).to_owned(),
                    description: format!("{s} things"),
                })
                .collect(),
            created_at: NaiveDateTime::default(),
            updated_at: NaiveDateTime::default(),
        })
    }

    fn apis() -> Apis {
        let mut apis = Apis::empty();
        for api in [
            api("https://orders.example", &["orders:read", "orders:write"]),
            api("https://billing.example", &["billing:read"]),
        ] {
            for scope in &api.scopes {
                apis.by_scope.insert(scope.name.clone(), Arc::clone(&api));
            }
            apis.by_identifier.insert(api.identifier.clone(), api);
        }
        apis
    }

    fn scope(text: &str) -> Scope {
        Scope::parse(text).expect("scope")
    }

    fn client(audiences: &[&str]) -> Client {
        let mut client = Client::for_tests("web", &["https://app.example/cb"], false);
        client.audiences = audiences.iter().map(|a| (*a).to_owned()).collect();
        client
    }

    fn resources(list: &[&str]) -> Vec<String> {
        list.iter().map(|r| (*r).to_owned()).collect()
    }

    #[test]
    fn identifiers_are_absolute_uris_without_fragment() {
        let issuer = "https://id.example";
        for good in [
            "https://orders.example",
            "https://orders.example/v1",
            "urn:example:orders",
        ] {
            assert!(validate_identifier(good, issuer).is_ok(), "{good}");
        }
        for bad in [
            "",
            "orders",
            "/orders",
            "https://orders.example/#x",
            "https://orders.example/a b",
            "https://id.example",
            &format!("https://x.example/{}", "a".repeat(600)),
        ] {
            assert!(validate_identifier(bad, issuer).is_err(), "{bad}");
        }
    }

    #[test]
    fn scope_names_follow_rfc_6749_and_leave_openid_scopes_alone() {
        for good in ["orders:read", "https://orders.example/read", "a", "x!#[]~"] {
            assert!(validate_scope_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "two words",
            "quote\"d",
            "back\\slash",
            "tab\t",
            "é",
            "openid",
            "profile",
            "phone",
            "offline_access",
        ] {
            assert!(validate_scope_name(bad).is_err(), "{bad}");
        }
        let twice = [
            ApiScope {
                name: "a".into(),
                description: "A".into(),
            },
            ApiScope {
                name: "a".into(),
                description: "B".into(),
            },
        ];
        assert!(validate_scopes(&twice).is_err());
        let blank = [ApiScope {
            name: "a".into(),
            description: String::new(),
        }];
        assert!(validate_scopes(&blank).is_err());
    }

    #[test]
    fn a_token_is_for_one_api_with_that_apis_scopes() {
        let apis = apis();
        let web = client(&[]);
        let grant = scope("openid orders:read billing:read offline_access");
        let orders = apis
            .target(&web, &grant, &resources(&["https://orders.example"]))
            .expect("orders");
        assert_eq!(orders.audience.as_deref(), Some("https://orders.example"));
        assert_eq!(orders.scope.as_str(), "openid orders:read offline_access");
        let billing = apis
            .target(&web, &grant, &resources(&["https://billing.example"]))
            .expect("billing");
        assert_eq!(billing.scope.as_str(), "openid billing:read offline_access");
        // Several APIs in the grant and none named; several named; one not in the grant.
        for named in [
            resources(&[]),
            resources(&["https://orders.example", "https://billing.example"]),
            resources(&["https://unknown.example"]),
        ] {
            let error = apis.target(&web, &grant, &named).expect_err("refused");
            assert_eq!(error.code, "invalid_target", "{named:?}");
        }
        let only_orders = scope("openid orders:write");
        let inferred = apis
            .target(&web, &only_orders, &[])
            .expect("one API: inferred");
        assert_eq!(inferred.audience.as_deref(), Some("https://orders.example"));
        let not_in_grant =
            apis.target(&web, &only_orders, &resources(&["https://billing.example"]));
        assert!(not_in_grant.is_err());
    }

    #[test]
    fn grants_without_api_scopes_keep_the_default_audience() {
        let apis = apis();
        let legacy = client(&["https://legacy.example"]);
        let grant = scope("openid profile");
        let default = apis.target(&legacy, &grant, &[]).expect("default");
        assert_eq!(
            default,
            Target {
                audience: None,
                scope: grant.clone()
            }
        );
        let named = apis
            .target(&legacy, &grant, &resources(&["https://legacy.example"]))
            .expect("own audience");
        assert_eq!(named.audience.as_deref(), Some("https://legacy.example"));
        // A scope that names nothing any more (its API was changed) is left out.
        let stale = apis
            .target(&legacy, &scope("openid gone:read"), &[])
            .expect("stale");
        assert_eq!(stale.scope.as_str(), "openid");
    }

    #[test]
    fn the_authorization_resource_must_match_the_api_scopes_asked() {
        let apis = apis();
        let web = client(&["https://legacy.example"]);
        let orders = resources(&["https://orders.example"]);
        assert!(
            apis.check_authorization_resource(&web, &scope("openid orders:read"), &orders)
                .is_ok()
        );
        let code = |scope_text: &str, named: &[String]| {
            apis.check_authorization_resource(&web, &scope(scope_text), named)
                .expect_err("refused")
                .code
        };
        assert_eq!(
            code("openid orders:read billing:read", &orders),
            "invalid_scope"
        );
        assert_eq!(code("openid", &orders), "invalid_target");
        assert_eq!(
            code(
                "openid",
                &resources(&["https://a.example", "https://b.example"])
            ),
            "invalid_target"
        );
        assert!(
            apis.check_authorization_resource(
                &web,
                &scope("openid"),
                &resources(&["https://legacy.example"])
            )
            .is_ok()
        );
    }

    #[test]
    fn consent_lines_describe_api_scopes() {
        let lines = apis().describe(["openid", "orders:read"]);
        assert_eq!(lines[0].description, None);
        assert_eq!(lines[1].description.as_deref(), Some("orders:read things"));
        assert_eq!(lines[1].api.as_deref(), Some("https://orders.example"));
    }
}
