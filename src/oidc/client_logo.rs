//! Logos of dynamically registered clients (RFC 7591 §2 and OpenID Connect Dynamic Client
//! Registration 1.0 §2 `logo_uri`): fetched once when a client registers or updates its
//! metadata, through the SSRF-safe fetcher (`https` only, public addresses only, no redirect, at
//! most [`MAX_LOGO_BYTES`]), kept only when the bytes are a PNG, JPEG, GIF or WebP image by
//! their magic number (never SVG, which can carry script), stored in the database, and served
//! from our own origin, so that the hosted login and consent pages show the logo while loading
//! nothing from other origins (AUTHZ-11). A logo that cannot be fetched or is refused never
//! fails the registration: the client simply has no logo, and the reason is logged.

use std::sync::Arc;

use chrono::NaiveDateTime;

use crate::db::models::ClientLogoRow;
use crate::db::queries::client_logos as q;
use crate::db::{Db, DbError};
use crate::verify::FetchError;
use crate::verify::fetch::SafeFetcher;

/// Largest logo accepted, in bytes (64 KiB).
pub const MAX_LOGO_BYTES: usize = 64 * 1024;

/// The `Accept` header of a logo fetch: the image types that are kept.
const ACCEPT: &str = "image/png, image/jpeg, image/gif, image/webp";

/// The image types a logo may be, recognised by their magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageType {
    /// PNG (`89 50 4E 47 0D 0A 1A 0A`, RFC 2083 §3.1).
    Png,
    /// JPEG (`FF D8 FF`: start of image, then a marker).
    Jpeg,
    /// GIF (`GIF87a` or `GIF89a`).
    Gif,
    /// WebP (`RIFF`, a length, `WEBP`; RFC 9649 §2).
    Webp,
}

impl ImageType {
    /// The type of `bytes` by their first bytes; `None` for anything else (SVG, HTML, text,
    /// other image formats).
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(Self::Gif)
        } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
            Some(Self::Webp)
        } else {
            None
        }
    }

    /// The media type it is served as.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
        }
    }

    /// Parses a stored media type ([`Self::content_type`]'s values only).
    pub fn parse(content_type: &str) -> Option<Self> {
        match content_type {
            "image/png" => Some(Self::Png),
            "image/jpeg" => Some(Self::Jpeg),
            "image/gif" => Some(Self::Gif),
            "image/webp" => Some(Self::Webp),
            _ => None,
        }
    }
}

/// A logo: its recognised type and its bytes (at most [`MAX_LOGO_BYTES`]).
#[derive(Clone, Debug)]
pub struct Logo {
    /// What the bytes are.
    pub image: ImageType,
    /// The image.
    pub bytes: Vec<u8>,
}

/// Why a logo was not stored.
#[derive(Debug, thiserror::Error)]
pub enum LogoRefused {
    /// The fetch failed or was refused: an address or URL that is not allowed (an `http` URL
    /// included), a redirect, another status than 200, a body over [`MAX_LOGO_BYTES`], a
    /// content type that is not an image, a timeout.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The bytes are not a PNG, JPEG, GIF or WebP image.
    #[error("the body is not a PNG, JPEG, GIF or WebP image (SVG is never accepted)")]
    NotAnImage,
}

/// Fetches logos through the SSRF-safe fetcher.
#[derive(Clone, Debug)]
pub struct LogoFetcher {
    fetcher: Arc<SafeFetcher>,
}

impl LogoFetcher {
    /// A fetcher of logos through `fetcher`.
    pub fn new(fetcher: Arc<SafeFetcher>) -> Self {
        Self { fetcher }
    }

    /// GETs the logo at `uri`: 200, an `image/…` content type, at most [`MAX_LOGO_BYTES`], and
    /// bytes that [`ImageType::sniff`] recognises (the declared type is not believed: the
    /// stored type is the recognised one).
    ///
    /// # Errors
    /// [`LogoRefused`].
    pub async fn fetch(&self, uri: &str) -> Result<Logo, LogoRefused> {
        let media = self
            .fetcher
            .get_media(uri, ACCEPT, MAX_LOGO_BYTES, is_image_type)
            .await?;
        let image = ImageType::sniff(&media.body).ok_or(LogoRefused::NotAnImage)?;
        Ok(Logo {
            image,
            bytes: media.body,
        })
    }
}

/// An `image/…` media type, any parameters; the bytes decide which image it is.
fn is_image_type(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
        .starts_with("image/")
}

/// Deletes `client_id`'s stored logo, if any (a failure is logged).
async fn delete_logo(db: &Db, client_id: &str) {
    let id = client_id.to_owned();
    if let Err(error) = db
        .run(move |conn| Ok::<_, DbError>(q::delete(conn, &id)?))
        .await
    {
        tracing::error!(%client_id, %error, "deleting a client's logo failed");
    }
}

/// How many logo fetches one client may cause per [`LOGO_FETCH_WINDOW`] (registration and
/// updates together); beyond it an update keeps the stored logo and fetches nothing.
pub const MAX_LOGO_FETCHES: u32 = 10;

/// The window of [`MAX_LOGO_FETCHES`]: one hour.
pub const LOGO_FETCH_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);

/// Brings dynamic client `client_id`'s stored logo in line with its registered `logo_uri` at
/// `now` (after its registration or an RFC 7592 update has been committed): no `logo_uri`
/// deletes any stored logo; otherwise the logo is fetched ([`LogoFetcher::fetch`]) and stored,
/// replacing any. A logo that cannot be fetched or is refused leaves the client without one —
/// unless `previous_uri` (the `logo_uri` before an update) is the same URL, in which case the
/// logo fetched earlier stays (a passing failure does not take it away). Refusals and database
/// failures are logged (the URL and the reason; nothing secret), never returned: the
/// registration stands either way. At most [`MAX_LOGO_FETCHES`] fetches per client per
/// [`LOGO_FETCH_WINDOW`]; beyond them nothing is fetched: an unchanged URL keeps the stored logo,
/// a new one leaves the client without one.
pub async fn sync(
    db: &Db,
    logos: &LogoFetcher,
    client_id: &str,
    logo_uri: Option<&str>,
    previous_uri: Option<&str>,
    now: NaiveDateTime,
) {
    if logo_uri.is_none() && previous_uri.is_none() {
        // A logo is only ever stored from a logo_uri: there is none to delete.
        return;
    }
    let Some(uri) = logo_uri else {
        delete_logo(db, client_id).await;
        return;
    };
    // Each update may name a new logo_uri: without a budget, a client could make us fetch from
    // any public host in a loop (an open-registered one through `PUT /register/{id}`).
    let key = format!("client-logo:{client_id}");
    let window = chrono::Duration::from_std(LOGO_FETCH_WINDOW).unwrap_or(chrono::Duration::MAX);
    let spent = db
        .run(move |conn| {
            crate::db::write_transaction(conn, |conn| {
                Ok::<_, DbError>(crate::db::queries::throttle::spend(
                    conn,
                    &key,
                    MAX_LOGO_FETCHES,
                    window,
                    now,
                )?)
            })
        })
        .await;
    if !matches!(spent, Ok(None)) {
        if previous_uri == Some(uri) {
            tracing::warn!(%client_id, "client logo not fetched again: the client's fetch budget is spent; the stored logo stays");
        } else {
            // A logo from an earlier URL would show what the client no longer names.
            tracing::warn!(%client_id, "client logo not fetched: the client's fetch budget is spent; the client has no logo");
            delete_logo(db, client_id).await;
        }
        return;
    }
    let fetched = logos.fetch(uri).await;
    let id = client_id.to_owned();
    let stored = match fetched {
        Ok(logo) => {
            let bytes = logo.bytes.len();
            let row = ClientLogoRow {
                client_id: id,
                content_type: logo.image.content_type().to_owned(),
                bytes: logo.bytes,
                fetched_at: now,
            };
            let stored = db
                .run(move |conn| {
                    crate::db::write_transaction(conn, |conn| {
                        Ok::<_, DbError>(q::replace(conn, &row)?)
                    })
                })
                .await;
            if stored.is_ok() {
                tracing::info!(%client_id, logo_uri = %uri, bytes, "client logo stored");
            }
            stored.map(|_| ())
        }
        Err(refused) => {
            let keep = previous_uri == Some(uri);
            tracing::warn!(
                %client_id,
                reason = %refused,
                kept_previous = keep,
                "client logo not stored; the client is registered without it"
            );
            if keep {
                return;
            }
            db.run(move |conn| Ok::<_, DbError>(q::delete(conn, &id)?))
                .await
                .map(|_| ())
        }
    };
    if let Err(error) = stored {
        tracing::error!(%client_id, %error, "storing a client's logo failed");
    }
}

/// A stored logo, as served.
#[derive(Clone, Debug)]
pub struct StoredLogo {
    /// What it is (its `Content-Type`).
    pub image: ImageType,
    /// The image.
    pub bytes: Vec<u8>,
}

/// Client `client_id`'s stored logo, if any (a row of an unknown type is logged and treated as
/// none).
///
/// # Errors
/// Database.
pub async fn stored(db: &Db, client_id: String) -> Result<Option<StoredLogo>, DbError> {
    let row = db
        .run(move |conn| Ok::<_, DbError>(q::find(conn, &client_id)?))
        .await?;
    Ok(row.and_then(|row| match ImageType::parse(&row.content_type) {
        Some(image) => Some(StoredLogo {
            image,
            bytes: row.bytes,
        }),
        None => {
            tracing::error!(client_id = %row.client_id, content_type = %row.content_type, "stored logo has an unknown type; not served");
            None
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::{ImageType, is_image_type};

    #[test]
    fn images_are_recognised_by_their_magic_number() {
        let webp = b"RIFF\x24\x00\x00\x00WEBPVP8 ";
        for (bytes, expected) in [
            (&b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"[..], ImageType::Png),
            (&b"\xff\xd8\xff\xe0\x00\x10JFIF"[..], ImageType::Jpeg),
            (&b"GIF89a\x01\x00\x01\x00"[..], ImageType::Gif),
            (&b"GIF87a\x01\x00\x01\x00"[..], ImageType::Gif),
            (&webp[..], ImageType::Webp),
        ] {
            assert_eq!(ImageType::sniff(bytes), Some(expected), "{bytes:?}");
            assert_eq!(ImageType::parse(expected.content_type()), Some(expected));
        }
        for refused in [
            &b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>"[..],
            b"<?xml version=\"1.0\"?><svg/>",
            b"<!doctype html><html>",
            b"\x89PNG",
            b"RIFF\x24\x00\x00\x00WAVEfmt ",
            b"RIFF",
            b"BM\x00\x00",
            b"",
        ] {
            assert_eq!(ImageType::sniff(refused), None, "{refused:?}");
        }
        assert_eq!(ImageType::parse("image/svg+xml"), None);
    }

    #[test]
    fn only_image_content_types_are_read() {
        assert!(is_image_type("image/png"));
        assert!(is_image_type("Image/JPEG; q=1"));
        assert!(
            is_image_type("image/svg+xml"),
            "refused later, by its bytes"
        );
        assert!(!is_image_type("text/html; charset=utf-8"));
        assert!(!is_image_type("application/octet-stream"));
        assert!(!is_image_type(""));
    }
}
