//! The issuer identifier (OIDC Core §2, RFC 8414 §2): parsed and normalised once; tokens,
//! documents, cookies and routes use it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The issuer identifier: an `http(s)` URL without query, fragment or credentials, without a
/// trailing slash. It is parsed once (with the `url` crate, never by string prefixes); its
/// scheme, whether its host is loopback, and its path are kept for the start-up checks, the
/// cookies and the routes (OIDC Discovery §4: everything lives under the issuer's path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issuer {
    /// The normalised URL, exactly as it appears in tokens.
    text: String,
    /// The URL's path without a trailing slash: `""` for the root, else `/seg[/seg…]`.
    path: String,
    /// `https` (else `http`).
    https: bool,
    /// The host is loopback (see [`Issuer::is_loopback`]).
    loopback: bool,
}

impl Issuer {
    /// Parses and normalises an issuer URL. The path may hold only non-empty segments of
    /// letters, digits and `-._~`, so that it is also a literal route prefix.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(format!("`{text}` must use https (or http)")),
        };
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("`{text}` must not have a query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("`{text}` must not contain credentials"));
        }
        let host = url
            .host()
            .ok_or_else(|| format!("`{text}` must have a host"))?;
        let path = url.path().trim_end_matches('/');
        let segment_ok = |segment: &str| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        };
        if !path.split('/').skip(1).all(segment_ok) {
            return Err(format!(
                "`{text}`: the path may hold only letters, digits and -._~ in non-empty segments"
            ));
        }
        Ok(Self {
            text: url.as_str().trim_end_matches('/').to_owned(),
            path: path.to_owned(),
            https,
            loopback: host_is_loopback(&host),
        })
    }

    /// The issuer for a server listening on `addr` with no explicit issuer: `http://<addr>`. An
    /// unspecified address (`0.0.0.0`, `::`: every interface) becomes the loopback address of
    /// its family, the one address such a listener is surely reachable at, so that a
    /// development server bound to every interface starts with a loopback issuer.
    pub fn from_bind(addr: SocketAddr) -> Self {
        let ip = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        Self {
            text: format!("http://{}", SocketAddr::new(ip, addr.port())),
            path: String::new(),
            https: false,
            loopback: ip_is_loopback(ip),
        }
    }

    /// The issuer exactly as it appears in tokens.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The issuer's path, where every route is served: `""` for the root, else `/idp`-like (no
    /// trailing slash).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the issuer is `https`. Only then can cookies be `Secure` (browsers refuse
    /// `Secure` cookies over plain http) and pages send HSTS.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// Whether the host is loopback: an IP literal in 127.0.0.0/8, `::1` (or `::ffff:127.x.y.z`),
    /// or the name `localhost` or a name under `.localhost` (RFC 6761 §6.3 reserves them for
    /// loopback; browsers resolve them there without asking DNS). Decided on the parsed host,
    /// so `http://127.0.0.1.evil.com` or `http://localhost.evil.com` are not loopback.
    pub fn is_loopback(&self) -> bool {
        self.loopback
    }

    /// A plain-http issuer on a loopback host (local development).
    pub fn is_plain_loopback(&self) -> bool {
        !self.https && self.loopback
    }
}

/// Whether a parsed URL host is loopback (see [`Issuer::is_loopback`]).
fn host_is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip_is_loopback(IpAddr::V6(*ip)),
        // `url` has already lowercased (and IDNA-mapped) the name of an http(s) URL.
        url::Host::Domain(name) => *name == "localhost" || name.ends_with(".localhost"),
    }
}

/// Whether `ip` is loopback, an IPv4-mapped IPv6 address counting as its IPv4 address.
fn ip_is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

impl std::fmt::Display for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_is_normalised() {
        let parsed = |text: &str| Issuer::parse(text).map(|i| (i.text, i.path));
        assert_eq!(
            parsed("https://id.example.com/"),
            Ok(("https://id.example.com".to_owned(), String::new()))
        );
        assert_eq!(
            parsed("https://example.com/tenant/"),
            Ok((
                "https://example.com/tenant".to_owned(),
                "/tenant".to_owned()
            ))
        );
        assert_eq!(
            parsed("HTTPS://Example.COM:443/a/b.c~d_e-f"),
            Ok((
                "https://example.com/a/b.c~d_e-f".to_owned(),
                "/a/b.c~d_e-f".to_owned()
            ))
        );
        assert!(Issuer::parse("ftp://example.com").is_err());
        // Query, fragment and credentials are refused.
        assert!(Issuer::parse("https://example.com/?a=b").is_err());
        assert!(Issuer::parse("https://example.com/#top").is_err());
        assert!(Issuer::parse("https://user:pw@example.com").is_err());
        assert!(Issuer::parse("https://user@example.com").is_err());
        // A path that could not be a literal route prefix is refused.
        assert!(Issuer::parse("https://example.com/a//b").is_err());
        assert!(Issuer::parse("https://example.com/a%20b").is_err());
        assert!(Issuer::parse("https://example.com/{tenant}").is_err());
    }

    // The loopback test is made on the parsed host, never on a string prefix.
    #[test]
    fn issuer_loopback_is_decided_on_the_parsed_host() {
        let loopback = |text: &str| Issuer::parse(text).map(|i| i.is_loopback());
        for text in [
            "http://127.0.0.1:8080",
            "http://127.12.0.1",
            "http://localhost:8080",
            "http://LOCALHOST",
            "http://app.localhost/idp",
            "http://[::1]:80",
            "http://[::ffff:127.0.0.1]",
        ] {
            assert_eq!(loopback(text), Ok(true), "{text}");
        }
        for text in [
            "http://127.0.0.1.evil.com",
            "http://localhost.evil.com",
            "http://localhostevil.com",
            "http://[::1].evil.com",
            "http://128.0.0.1",
            "http://[::2]",
            "http://10.0.0.1:8080",
            "http://example.com",
        ] {
            assert_ne!(loopback(text), Ok(true), "{text}");
        }
        assert!(
            Issuer::parse("http://localhost")
                .unwrap()
                .is_plain_loopback()
        );
        assert!(
            !Issuer::parse("https://localhost")
                .unwrap()
                .is_plain_loopback()
        );
        assert!(
            !Issuer::parse("http://127.0.0.1.evil.com")
                .unwrap()
                .is_plain_loopback()
        );
    }

    #[test]
    fn default_issuer_follows_the_bind_address() {
        let from = |bind: &str| Issuer::from_bind(bind.parse().unwrap());
        assert_eq!(from("127.0.0.1:8080").as_str(), "http://127.0.0.1:8080");
        // Every interface: the loopback address of the family.
        assert_eq!(from("0.0.0.0:8080").as_str(), "http://127.0.0.1:8080");
        assert_eq!(from("[::]:8080").as_str(), "http://[::1]:8080");
        assert!(from("0.0.0.0:8080").is_loopback());
        assert!(!from("192.0.2.1:8080").is_loopback());
        assert_eq!(from("0.0.0.0:8080").path(), "");
    }
}
