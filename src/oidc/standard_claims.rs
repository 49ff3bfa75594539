//! Which user claims a token holder gets (OIDC Core §5.4, §5.5) and their values.
//!
//! - Each scope stands for claims (§5.4): `profile` → `name family_name given_name middle_name
//!   nickname preferred_username profile picture website gender birthdate zoneinfo locale
//!   updated_at`; `email` → `email email_verified`; `address` → `address`; `phone` →
//!   `phone_number phone_number_verified`.
//! - They are returned from userinfo. Every ID token this server issues comes with an access
//!   token (the code flow, refresh), so §5.4 puts none of them in the ID token; a client asks
//!   for one there with the `claims` parameter's `id_token` member (§5.5), and for one no
//!   granted scope covers in userinfo with its `userinfo` member
//!   ([`crate::oidc::claims_request`]).
//! - A claim with no value is left out, never `""`; `email_verified` and
//!   `phone_number_verified` only accompany their address or number.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::accounts::profile::Profile;
use crate::db::DbConn;
use crate::db::models::UserRow;
use crate::db::queries::user_claims as claims_q;
use crate::oidc::claims_request::RequestedClaims;
use crate::verify::Scope;

/// The claims each scope stands for (OIDC Core §5.4).
pub const SCOPE_CLAIMS: [(&str, &[&str]); 4] = [
    (
        "profile",
        &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
    ),
    ("email", &["email", "email_verified"]),
    ("address", &["address"]),
    ("phone", &["phone_number", "phone_number_verified"]),
];

/// Every user claim this server can return (discovery `claims_supported`, with the ID-token
/// claims).
pub fn user_claim_names() -> impl Iterator<Item = &'static str> {
    SCOPE_CLAIMS
        .iter()
        .flat_map(|(_, claims)| claims.iter().copied())
}

/// The claims `scope` stands for.
pub fn for_scope(scope: &Scope) -> BTreeSet<&'static str> {
    SCOPE_CLAIMS
        .iter()
        .filter(|(name, _)| scope.contains(name))
        .flat_map(|(_, claims)| claims.iter().copied())
        .collect()
}

/// The value of one user claim (`None`: unset, or not a user claim). `updated_at` is seconds
/// since the epoch.
pub fn value_of(user: &UserRow, profile: &Profile, name: &str) -> Option<Value> {
    let text = |value: &Option<String>| value.clone().map(Value::String);
    match name {
        "sub" => Some(Value::String(user.id.clone())),
        "preferred_username" => Some(Value::String(user.username.clone())),
        "email" => Some(Value::String(user.email.clone())),
        "email_verified" => Some(Value::Bool(profile.email_verified)),
        "updated_at" => Some(Value::from(user.updated_at.and_utc().timestamp())),
        "name" => text(&profile.name),
        "given_name" => text(&profile.given_name),
        "family_name" => text(&profile.family_name),
        "middle_name" => text(&profile.middle_name),
        "nickname" => text(&profile.nickname),
        "profile" => text(&profile.profile),
        "picture" => text(&profile.picture),
        "website" => text(&profile.website),
        "gender" => text(&profile.gender),
        "birthdate" => text(&profile.birthdate),
        "zoneinfo" => text(&profile.zoneinfo),
        "locale" => text(&profile.locale),
        "phone_number" => text(&profile.phone_number),
        "phone_number_verified" => profile
            .phone_number
            .as_ref()
            .map(|_| Value::Bool(profile.phone_number_verified)),
        "address" => profile
            .address
            .as_ref()
            .and_then(|address| serde_json::to_value(address).ok()),
        _ => None,
    }
}

/// The values of `names` that are set, by name (alphabetical).
pub fn collect<'a>(
    user: &UserRow,
    profile: &Profile,
    names: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, Value> {
    names
        .into_iter()
        .filter_map(|name| value_of(user, profile, name).map(|value| (name.to_owned(), value)))
        .collect()
}

/// The stored standard claims of user `user_id` (none set: the default profile; a stored object
/// that no longer reads counts as none).
pub fn profile_of(conn: &mut DbConn, user_id: &str) -> diesel::QueryResult<Profile> {
    Ok(claims_q::find(conn, user_id)?
        .and_then(|row| Profile::from_stored(&row.claims))
        .unwrap_or_default())
}

/// The user claims `requested` asks for in the ID token (the `claims` parameter's `id_token`
/// member, OIDC Core §5.5), with the values that are set; reads the profile only when some are
/// asked.
pub fn id_token_claims(
    conn: &mut DbConn,
    user: &UserRow,
    requested: &RequestedClaims,
) -> diesel::QueryResult<BTreeMap<String, Value>> {
    if requested.id_token.is_empty() {
        return Ok(BTreeMap::new());
    }
    let profile = profile_of(conn, &user.id)?;
    Ok(collect(
        user,
        &profile,
        requested.id_token.iter().map(String::as_str),
    ))
}
