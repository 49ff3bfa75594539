//! Subject identifiers (OpenID Connect Core §8): the `sub` a client sees for a user.
//!
//! A **public** client sees the user id, the same for every client. A **pairwise** client (OIDC
//! Core §8.1; Dynamic Client Registration §2 `subject_type: pairwise`) sees an identifier of its
//! *sector*: clients of one sector see the same value for a user, clients of different sectors
//! see unrelated values and cannot correlate their users. The sector is the host of the client's
//! `sector_identifier_uri` when it registered one (a document listing every redirect URI of the
//! client, fetched SSRF-safely, OIDC Registration §5), else the one host of its redirect URIs.
//! It is fixed when the client is created: later changes of its redirect URIs never change what
//! its users are called.
//!
//! The pairwise identifier is the deterministic authenticated encryption ([`PairwiseSubjects`]:
//! AES-256-GCM-SIV, RFC 8452, under a key derived from the KEK) of a tag of the sector followed
//! by the user id, in base64url. Hence:
//! - it is the same in every token, on every instance sharing the KEK, with no table to keep;
//! - it is unrelated between sectors (the synthetic IV covers the whole plaintext; a repeated
//!   nonce reveals only that two plaintexts are equal, which is the point of the identifier);
//! - only this server can open it again, so that the `sub` of our own tokens leads back to the
//!   user (userinfo, introspection's record check, `id_token_hint`, token exchange) without a
//!   lookup; and nobody else can forge one (a 128-bit tag).
//!
//! A new KEK therefore changes every pairwise identifier, as it already makes every sealed key
//! unreadable: the KEK is never replaced while keys exist.

use std::borrow::Cow;

use aws_lc_rs::aead::{AES_256_GCM_SIV, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::keys::SignError;
use crate::keys::kek::{Kek, KekError};
use crate::verify::fetch::{Fetched, SafeFetcher};

/// The largest sector identifier document read, in bytes.
pub const MAX_SECTOR_DOCUMENT_BYTES: usize = 64 * 1024;

/// The most URIs a sector identifier document may list.
pub const MAX_SECTOR_URIS: usize = 256;

/// Bytes of the sector's tag in the sealed plaintext.
const SECTOR_TAG_LEN: usize = 16;

/// Bytes of the AES-GCM-SIV tag (RFC 8452 §4).
const AEAD_TAG_LEN: usize = 16;

/// How a client's users are identified to it (OIDC Core §8). Serialised (in a client's JSON) as
/// `subject_type` with, when pairwise, `sector_identifier` and `sector_identifier_uri`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "subject_type")]
pub enum SubjectType {
    /// `sub` is the user id.
    #[default]
    Public,
    /// `sub` is the user's identifier in the sector.
    Pairwise(Sector),
}

/// A pairwise client's sector (OIDC Core §8.1), as stored (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sector {
    /// The sector identifier: a host name, lower case.
    pub sector_identifier: String,
    /// The sector identifier document it was checked against (OIDC Registration §2), as
    /// registered; `None`: the host of the client's redirect URIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector_identifier_uri: Option<String>,
}

impl SubjectType {
    /// The metadata value: `public` or `pairwise`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Pairwise { .. } => "pairwise",
        }
    }

    /// The sector identifier of a pairwise client.
    pub fn sector(&self) -> Option<&str> {
        match self {
            Self::Public => None,
            Self::Pairwise(sector) => Some(&sector.sector_identifier),
        }
    }

    /// The sector identifier document a pairwise client registered.
    pub fn sector_identifier_uri(&self) -> Option<&str> {
        match self {
            Self::Public => None,
            Self::Pairwise(sector) => sector.sector_identifier_uri.as_deref(),
        }
    }

    /// The stored form (`clients.pairwise_sector`): JSON of the [`Sector`], `None` when public.
    pub fn to_stored(&self) -> Option<String> {
        match self {
            Self::Public => None,
            Self::Pairwise(sector) => serde_json::to_string(sector).ok(),
        }
    }

    /// From the stored form. Errors: a value that is not a [`Sector`].
    pub fn from_stored(stored: Option<&str>) -> Result<Self, String> {
        match stored {
            None => Ok(Self::Public),
            Some(text) => serde_json::from_str(text)
                .map(Self::Pairwise)
                .map_err(|e| format!("bad pairwise_sector: {e}")),
        }
    }
}

/// Mints and opens pairwise subject identifiers (see the module documentation). Built once at
/// start from the KEK.
pub struct PairwiseSubjects {
    aead: LessSafeKey,
    sectors: hmac::Key,
}

impl std::fmt::Debug for PairwiseSubjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PairwiseSubjects(<redacted>)")
    }
}

impl PairwiseSubjects {
    /// The identifiers of this installation: keys derived from `kek`
    /// ([`Kek::derive_key`]).
    ///
    /// # Errors
    /// [`KekError::Seal`] if the crypto library refuses (should not happen).
    pub fn new(kek: &Kek) -> Result<Self, KekError> {
        let aead = kek.derive_key("portcullis pairwise subject identifiers v1")?;
        let sectors = kek.derive_key("portcullis pairwise sector tags v1")?;
        let aead =
            UnboundKey::new(&AES_256_GCM_SIV, aead.as_slice()).map_err(|_| KekError::Seal)?;
        Ok(Self {
            aead: LessSafeKey::new(aead),
            sectors: hmac::Key::new(hmac::HMAC_SHA256, sectors.as_slice()),
        })
    }

    /// The `sub` a client identified as `subject_type` sees for `user_id`: the user id itself
    /// for a public client, the sector's identifier for a pairwise one (91 characters of
    /// base64url for a UUID user id). Session ids (`sid`) are sealed the same way.
    ///
    /// # Errors
    /// [`SignError::Crypto`] if the crypto library refuses (should not happen).
    pub fn subject<'a>(
        &self,
        subject_type: &SubjectType,
        user_id: &'a str,
    ) -> Result<Cow<'a, str>, SignError> {
        let Some(sector) = subject_type.sector() else {
            return Ok(Cow::Borrowed(user_id));
        };
        let tag = hmac::sign(&self.sectors, sector.as_bytes());
        let mut sealed = Vec::with_capacity(SECTOR_TAG_LEN + user_id.len() + AEAD_TAG_LEN);
        sealed.extend_from_slice(&tag.as_ref()[..SECTOR_TAG_LEN]);
        sealed.extend_from_slice(user_id.as_bytes());
        // Deterministic on purpose: one identifier per (sector, user).
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key([0u8; NONCE_LEN]),
                Aad::empty(),
                &mut sealed,
            )
            .map_err(|_| SignError::Crypto)?;
        Ok(Cow::Owned(URL_SAFE_NO_PAD.encode(sealed)))
    }

    /// The user id behind the `sub` of one of our own tokens (or the session id behind a
    /// pairwise `sid`): a pairwise identifier opened again, anything else (a user id) as it is.
    /// It opens an identifier of any sector, so callers pass only values of tokens this server
    /// signed (whose client fixed the sector), or seal the result again and compare, as
    /// [`crate::oidc::tokens::TokenService::requested_user`] does.
    pub fn user_id<'a>(&self, sub: &'a str) -> Cow<'a, str> {
        // Shorter than a sealed identifier (tag, at least one byte, AEAD tag): a user id, as
        // every public `sub` is; no decryption is tried.
        if sub.len() < (SECTOR_TAG_LEN + 1 + AEAD_TAG_LEN) * 4 / 3 {
            return Cow::Borrowed(sub);
        }
        let Ok(mut sealed) = URL_SAFE_NO_PAD.decode(sub) else {
            return Cow::Borrowed(sub);
        };
        let Ok(plain) = self.aead.open_in_place(
            Nonce::assume_unique_for_key([0u8; NONCE_LEN]),
            Aad::empty(),
            &mut sealed,
        ) else {
            return Cow::Borrowed(sub);
        };
        match plain
            .get(SECTOR_TAG_LEN..)
            .map(|id| String::from_utf8(id.to_vec()))
        {
            Some(Ok(user_id)) => Cow::Owned(user_id),
            _ => Cow::Borrowed(sub),
        }
    }
}

/// The subject type a client registration asks for (OIDC Registration §2 `subject_type`, absent:
/// `public`), its pairwise sector checked by [`pairwise_sector`] (which may fetch
/// `sector_identifier_uri` with `fetcher`) for the client `client_id`. The one check of dynamic
/// registration, the admin API and the CLI.
///
/// # Errors
/// A message for `invalid_client_metadata`: another subject type, a `sector_identifier_uri`
/// for a public client, or [`pairwise_sector`]'s errors.
pub async fn checked_subject_type(
    fetcher: &SafeFetcher,
    subject_type: Option<&str>,
    sector_identifier_uri: Option<&str>,
    redirect_uris: &[String],
    client_id: &str,
) -> Result<SubjectType, String> {
    match subject_type {
        None | Some("public") if sector_identifier_uri.is_some() => {
            Err("sector_identifier_uri is for subject_type pairwise only".into())
        }
        None | Some("public") => Ok(SubjectType::Public),
        Some("pairwise") => {
            pairwise_sector(fetcher, sector_identifier_uri, redirect_uris, client_id)
                .await
                .map(|sector_identifier| {
                    SubjectType::Pairwise(Sector {
                        sector_identifier,
                        sector_identifier_uri: sector_identifier_uri.map(str::to_owned),
                    })
                })
        }
        Some(other) => Err(format!(
            "subject_type `{other}` is not supported: public or pairwise (see subject_types_supported)"
        )),
    }
}

/// The longest `sector_identifier_uri` accepted, in bytes.
pub const MAX_SECTOR_URI_BYTES: usize = 512;

/// The sector of a client registering for pairwise identifiers (OIDC Core §8.1, Registration
/// §2 and §5). With a `sector_identifier_uri` (https, at most [`MAX_SECTOR_URI_BYTES`]): fetched
/// with `fetcher` (SSRF-safe, JSON, at most [`MAX_SECTOR_DOCUMENT_BYTES`]), its document must be
/// a JSON array of at most [`MAX_SECTOR_URIS`] URI strings that contains every one of
/// `redirect_uris`; the sector is its host. Without one: the one host all `redirect_uris` share
/// ([`redirect_sector`]; a client whose redirect URIs name no party is its own sector).
///
/// # Errors
/// A message for `invalid_client_metadata`: the URL refused, the document not fetched or not a
/// JSON array of strings (the fetch's details are logged, not answered: they could describe the
/// server's network), a redirect URI missing from it, or redirect URIs on several hosts.
pub async fn pairwise_sector(
    fetcher: &SafeFetcher,
    sector_identifier_uri: Option<&str>,
    redirect_uris: &[String],
    client_id: &str,
) -> Result<String, String> {
    let Some(uri) = sector_identifier_uri else {
        return redirect_sector(redirect_uris, client_id);
    };
    if uri.len() > MAX_SECTOR_URI_BYTES {
        return Err(format!(
            "sector_identifier_uri is longer than {MAX_SECTOR_URI_BYTES} bytes"
        ));
    }
    let parsed =
        url::Url::parse(uri).map_err(|_| "sector_identifier_uri is not a URL".to_owned())?;
    if parsed.scheme() != "https" || parsed.fragment().is_some() {
        return Err("sector_identifier_uri must be an https URL without a fragment".into());
    }
    let Some(host) = parsed.host_str().map(str::to_ascii_lowercase) else {
        return Err("sector_identifier_uri has no host".into());
    };
    let unusable = "sector_identifier_uri could not be fetched as a JSON document (https, a public address, no redirect, Content-Type application/json, at most 64 KiB)";
    let body = match fetcher
        .get(uri, "application/json", MAX_SECTOR_DOCUMENT_BYTES, None)
        .await
    {
        Ok(Fetched::Document(document)) => document.body,
        Ok(Fetched::NotModified { .. }) => return Err(unusable.into()),
        Err(error) => {
            tracing::info!(%error, "sector_identifier_uri refused");
            return Err(unusable.into());
        }
    };
    let listed: Vec<String> = serde_json::from_slice(&body).map_err(|_| {
        "the sector_identifier_uri document must be a JSON array of URI strings".to_owned()
    })?;
    if listed.len() > MAX_SECTOR_URIS {
        return Err(format!(
            "the sector_identifier_uri document lists more than {MAX_SECTOR_URIS} URIs"
        ));
    }
    if let Some(missing) = redirect_uris.iter().find(|uri| !listed.contains(uri)) {
        return Err(format!(
            "redirect URI `{missing}` is not listed in the sector_identifier_uri document"
        ));
    }
    Ok(host)
}

/// The sector of a pairwise client without a sector identifier document: the one host its
/// redirect URIs share (OIDC Core §8.1). Redirect URIs that name no party — loopback hosts
/// (`127.0.0.0/8`, `[::1]`, `localhost`, `*.localhost`) and private-use schemes without a host,
/// which every native app on every machine shares (RFC 8252 §7) — or none at all make the client
/// its own sector, `client:{client_id}` (a deviation from §8.1, which would put every such
/// client in one sector: their users would have one `sub` across unrelated apps).
///
/// # Errors
/// Redirect URIs on several hosts, or named hosts mixed with ones that name no party.
fn redirect_sector(redirect_uris: &[String], client_id: &str) -> Result<String, String> {
    let need_uri = "pairwise subject identifiers need a sector_identifier_uri unless every redirect URI has the same host (OIDC Core §8.1)";
    let hosts: Vec<Option<String>> = redirect_uris
        .iter()
        .map(|uri| {
            url::Url::parse(uri).ok().and_then(|url| {
                let host = url.host_str()?.to_ascii_lowercase();
                let loopback = match url.host()? {
                    url::Host::Domain(_) => host == "localhost" || host.ends_with(".localhost"),
                    url::Host::Ipv4(ip) => ip.is_loopback(),
                    url::Host::Ipv6(ip) => ip.is_loopback(),
                };
                (!loopback && !host.is_empty()).then_some(host)
            })
        })
        .collect();
    if hosts.iter().all(Option::is_none) {
        return Ok(format!("client:{client_id}"));
    }
    match hosts.first() {
        Some(Some(first)) if hosts.iter().all(|host| host.as_ref() == Some(first)) => {
            Ok(first.clone())
        }
        _ => Err(need_uri.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subjects(kek_byte: u8) -> PairwiseSubjects {
        PairwiseSubjects::new(&Kek::from_bytes(&[kek_byte; 32]).unwrap()).unwrap()
    }

    fn pairwise(sector: &str) -> SubjectType {
        SubjectType::Pairwise(Sector {
            sector_identifier: sector.into(),
            sector_identifier_uri: None,
        })
    }

    #[test]
    fn public_subjects_are_the_user_id() {
        let s = subjects(1);
        assert_eq!(s.subject(&SubjectType::Public, "u-1").unwrap(), "u-1");
        assert_eq!(s.user_id("u-1"), "u-1");
    }

    #[test]
    fn pairwise_subjects_are_stable_per_sector_and_unrelated_across_sectors() {
        let s = subjects(1);
        let user = "6f1c2a9e-0d55-4b1f-9a43-2f7f5b0c9e11";
        let a = s
            .subject(&pairwise("a.example"), user)
            .unwrap()
            .into_owned();
        assert_eq!(a, s.subject(&pairwise("a.example"), user).unwrap());
        assert_eq!(
            a,
            subjects(1).subject(&pairwise("a.example"), user).unwrap()
        );
        let b = s.subject(&pairwise("b.example"), user).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, s.subject(&pairwise("a.example"), "another").unwrap());
        assert!(!a.contains(user) && a.len() <= 255);
        // Opened back by this installation only.
        assert_eq!(s.user_id(&a), user);
        assert_eq!(s.user_id(&b), user);
        assert_eq!(subjects(2).user_id(&a), a.as_str());
        // Tampering does not open to another user.
        let mut forged = a.clone().into_bytes();
        forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(s.user_id(&forged), forged.as_str());
    }

    #[test]
    fn the_sector_without_a_document_is_the_one_redirect_host() {
        let uris = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let sector = |list: &[&str]| redirect_sector(&uris(list), "c-1");
        assert_eq!(
            sector(&["https://App.example/cb", "https://app.example/other"]),
            Ok("app.example".into())
        );
        assert!(sector(&["https://a.example/cb", "https://b.example/cb"]).is_err());
        assert!(sector(&["https://a.example/cb", "http://127.0.0.1:9/cb"]).is_err());
        // Redirect URIs that name no party: the client is its own sector.
        for own in [
            &["com.example.app:/cb"][..],
            &["http://127.0.0.1:9/cb", "http://localhost/cb"],
            &["http://[::1]:8080/cb", "http://app.localhost/cb"],
            &[],
        ] {
            assert_eq!(sector(own), Ok("client:c-1".into()), "{own:?}");
        }
    }
}
