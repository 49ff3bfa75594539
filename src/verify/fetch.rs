//! Outbound fetches of documents that someone else names — a client's `jwks_uri`, a client ID
//! metadata document, a dynamic client's logo, a registered `request_uri` — without server-side
//! request forgery (SSRF): `https` only; no special-use address (RFC 6890 and the IANA
//! special-purpose registries: loopback, private, link-local, CGNAT, unique-local, multicast,
//! documentation, IPv4-mapped and translated IPv6 forms…) is ever connected to, checked on the
//! literal host before the request and on every address a name resolves to, inside the resolver
//! the connection itself uses (so no second lookup can swap the address: no DNS-rebinding
//! window); no proxy; no redirect followed; connect and total time limits; a size limit on the
//! streamed body; a JSON content type (for media, one the caller accepts). Also the pieces the
//! JWKS cache shares: the size-limited body read and the `Cache-Control` lifetime.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::jwks::FetchError;

/// How outbound fetches are made.
#[derive(Clone, Debug)]
pub struct FetchPolicy {
    /// Allow loopback addresses (`127.0.0.0/8`, `::1`) — for tests and local development only,
    /// when the server itself runs on loopback (draft-ietf-oauth-client-id-metadata-document
    /// §6.5). Every other special-use range stays refused.
    pub allow_loopback: bool,
    /// PEM certificates trusted besides the system's roots (a private CA; tests' throwaway
    /// certificate).
    pub extra_roots_pem: Option<Vec<u8>>,
    /// Longest wait for the TCP connection.
    pub connect_timeout: Duration,
    /// Longest a whole fetch (connect, TLS, headers, body) may take.
    pub timeout: Duration,
}

impl Default for FetchPolicy {
    /// No loopback, the system's roots, 3 s to connect and 5 s in all.
    fn default() -> Self {
        Self {
            allow_loopback: false,
            extra_roots_pem: None,
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(5),
        }
    }
}

/// A fetched document.
#[derive(Debug)]
pub struct Document {
    /// The body (at most the limit asked for).
    pub body: Vec<u8>,
    /// Its `ETag`, for revalidation.
    pub etag: Option<String>,
    /// Its `Cache-Control` header.
    pub cache_control: Option<String>,
}

/// What a fetch produced.
#[derive(Debug)]
pub enum Fetched {
    /// 200 with a JSON body.
    Document(Document),
    /// 304 to a revalidation (`If-None-Match`): the cached document stands; its new
    /// `Cache-Control`.
    NotModified {
        /// The 304's `Cache-Control` header.
        cache_control: Option<String>,
    },
}

/// An HTTPS client that reaches only public addresses (see the module documentation).
#[derive(Clone, Debug)]
pub struct SafeFetcher {
    client: reqwest::Client,
    allow_loopback: bool,
}

/// The resolver of [`SafeFetcher`]: system resolution (`getaddrinfo` on the blocking pool), then
/// a name with any address that is not allowed is refused as a whole.
struct VettedResolver {
    allow_loopback: bool,
}

/// The error a refused name resolves to, found again in the request error's sources.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RefusedAddress(String);

impl reqwest::dns::Resolve for VettedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(format!("`{host}` has no address").into());
            }
            if let Some(bad) = addrs
                .iter()
                .find(|a| !address_allowed(a.ip(), allow_loopback))
            {
                return Err(Box::new(RefusedAddress(format!(
                    "`{host}` resolves to {}, a special-use address",
                    bad.ip()
                )))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl SafeFetcher {
    /// A fetcher for `policy`. Errors: an unreadable extra root certificate, a TLS setup failure.
    pub fn new(policy: &FetchPolicy) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            // A proxy from the environment would make the connection somewhere the address
            // checks never saw.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.timeout)
            .dns_resolver(std::sync::Arc::new(VettedResolver {
                allow_loopback: policy.allow_loopback,
            }))
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &policy.extra_roots_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("extra root certificates: {e}"))?;
            if certs.is_empty() {
                return Err("extra root certificates: no certificate in the PEM".into());
            }
            builder = builder.tls_certs_merge(certs);
        }
        Ok(Self {
            client: builder.build().map_err(|e| e.to_string())?,
            allow_loopback: policy.allow_loopback,
        })
    }

    /// Whether loopback addresses are allowed (tests and local development).
    pub fn allows_loopback(&self) -> bool {
        self.allow_loopback
    }

    /// GETs `url` (checked by [`check_url`]) asking for `accept`; `etag` revalidates a cached
    /// copy. Success is 200 with a JSON content type (`application/json` or `application/…+json`)
    /// and a body of at most `limit` bytes, or 304 when `etag` was sent. Errors:
    /// [`FetchError::Refused`] for a URL or address that is not allowed (no connection is made)
    /// and for a redirect (not followed); [`FetchError::Http`] for a network failure, a timeout,
    /// another status or a body over the limit; [`FetchError::Document`] for another content
    /// type.
    pub async fn get(
        &self,
        url: &str,
        accept: &str,
        limit: usize,
        etag: Option<&str>,
    ) -> Result<Fetched, FetchError> {
        let response = self.send(url, accept, etag).await?;
        let cache_control = header(&response, reqwest::header::CACHE_CONTROL);
        if response.status() == reqwest::StatusCode::NOT_MODIFIED && etag.is_some() {
            return Ok(Fetched::NotModified { cache_control });
        }
        let content_type = ok_status(url, &response)?;
        if !is_json(&content_type) {
            return Err(FetchError::Document {
                url: url.to_owned(),
                reason: format!("content type `{content_type}` is not JSON"),
            });
        }
        let etag = header(&response, reqwest::header::ETAG);
        let body = body_within(url, response, limit).await?;
        Ok(Fetched::Document(Document {
            body,
            etag,
            cache_control,
        }))
    }

    /// GETs `url` (checked by [`check_url`]) asking for `accept`, for a body that is not JSON
    /// (a client's logo, a request object by reference): success is 200 with a content type that `accepts` (given the header's
    /// value, `""` when absent) and a body of at most `limit` bytes. Errors as
    /// [`SafeFetcher::get`]'s: [`FetchError::Refused`] (URL, address, redirect),
    /// [`FetchError::Http`] (network, timeout, status, size), [`FetchError::Document`] (a
    /// content type `accepts` refuses). The caller checks the bytes themselves.
    pub async fn get_media(
        &self,
        url: &str,
        accept: &str,
        limit: usize,
        accepts: impl Fn(&str) -> bool,
    ) -> Result<Media, FetchError> {
        let response = self.send(url, accept, None).await?;
        let content_type = ok_status(url, &response)?;
        if !accepts(&content_type) {
            return Err(FetchError::Document {
                url: url.to_owned(),
                reason: format!("content type `{content_type}` is not accepted"),
            });
        }
        let body = body_within(url, response, limit).await?;
        Ok(Media { body, content_type })
    }

    /// Checks `url` and sends the GET (no redirect followed, loopback as allowed): the response,
    /// whatever its status. Errors: [`FetchError::Refused`] for a URL or address that is not
    /// allowed, [`FetchError::Http`] for a network failure or a timeout.
    async fn send(
        &self,
        url: &str,
        accept: &str,
        etag: Option<&str>,
    ) -> Result<reqwest::Response, FetchError> {
        let refused = |reason: String| FetchError::Refused {
            url: url.to_owned(),
            reason,
        };
        let http = |reason: String| FetchError::Http {
            url: url.to_owned(),
            reason,
        };
        let parsed = check_url(url, self.allow_loopback).map_err(refused)?;
        let mut request = self
            .client
            .get(parsed)
            .header(reqwest::header::ACCEPT, accept);
        if let Some(etag) = etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        request
            .send()
            .await
            .map_err(|error| match refused_address(&error) {
                Some(reason) => refused(reason),
                None if error.is_timeout() => http("timed out".into()),
                None => http(error_chain(&error)),
            })
    }
}

/// A fetched body that is not JSON ([`SafeFetcher::get_media`]).
#[derive(Debug)]
pub struct Media {
    /// The body (at most the limit asked for).
    pub body: Vec<u8>,
    /// Its `Content-Type` header as sent (`""` when absent).
    pub content_type: String,
}

/// `response`'s header `name`, if it is text.
fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `response`'s content type (`""` when absent) if its status is 200. Errors:
/// [`FetchError::Refused`] for a redirect (never followed), [`FetchError::Http`] for any other
/// status.
fn ok_status(url: &str, response: &reqwest::Response) -> Result<String, FetchError> {
    let status = response.status();
    if status.is_redirection() {
        return Err(FetchError::Refused {
            url: url.to_owned(),
            reason: format!("status {status}: redirects are not followed"),
        });
    }
    if status != reqwest::StatusCode::OK {
        return Err(FetchError::Http {
            url: url.to_owned(),
            reason: format!("status {status}"),
        });
    }
    Ok(header(response, reqwest::header::CONTENT_TYPE).unwrap_or_default())
}

/// `response`'s body if it is at most `limit` bytes ([`read_limited`]); else
/// [`FetchError::Http`].
async fn body_within(
    url: &str,
    response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, FetchError> {
    read_limited(response, limit)
        .await
        .map_err(|reason| FetchError::Http {
            url: url.to_owned(),
            reason: if reason.contains("timed out") {
                "timed out".into()
            } else {
                reason
            },
        })
}

/// `application/json` or a structured `+json` type (`application/jwk-set+json`), any parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The reason of a [`RefusedAddress`] among `error`'s sources.
fn refused_address(error: &reqwest::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(refused) = current.downcast_ref::<RefusedAddress>() {
            return Some(refused.0.clone());
        }
        source = current.source();
    }
    None
}

/// `error` and its sources, joined (reqwest's own message omits the cause).
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(current) = source {
        text.push_str(": ");
        text.push_str(&current.to_string());
        source = current.source();
    }
    text
}

/// Parses `url` for an outbound fetch: absolute `https`, a host, no user name or password, no
/// fragment; a host that is an IP address must be allowed by [`address_allowed`] (such a host
/// never reaches the resolver). The error says why.
pub fn check_url(url: &str, allow_loopback: bool) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|_| "not an absolute URL".to_owned())?;
    if parsed.scheme() != "https" {
        return Err("only https URLs are fetched".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("the URL carries credentials".into());
    }
    if parsed.fragment().is_some() {
        return Err("the URL has a fragment".into());
    }
    let ip = match parsed.host() {
        None => return Err("the URL has no host".into()),
        Some(url::Host::Domain(_)) => None,
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
    };
    match ip {
        Some(ip) if !address_allowed(ip, allow_loopback) => {
            Err(format!("{ip} is a special-use address"))
        }
        _ => Ok(parsed),
    }
}

/// Whether an outbound fetch may connect to `ip`: a public address ([`is_special_use`] is
/// false), or — with `allow_loopback` — `127.0.0.0/8` or `::1` (not their IPv4-mapped forms).
pub fn address_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    !is_special_use(ip) || (allow_loopback && ip.is_loopback())
}

/// Whether `ip` is a special-use address (RFC 6890 and the IANA IPv4/IPv6 special-purpose
/// address registries, RFC 9637): anything an outbound fetch must not reach. IPv6 is allowed
/// only within global unicast `2000::/3`, minus its special blocks; IPv4-mapped, -compatible
/// and translated forms (`::ffff:0:0/96`, `::/96`, `64:ff9b::/96`, `64:ff9b:1::/48`, 6to4
/// `2002::/16`, Teredo `2001::/32`) are all refused, whatever IPv4 address they carry.
pub fn is_special_use(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_special_v4(ip),
        IpAddr::V6(ip) => is_special_v6(ip),
    }
}

fn is_special_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network" (RFC 791), 0.0.0.0 included
        || a == 10 // private (RFC 1918)
        || (a == 100 && (64..128).contains(&b)) // shared address space, CGNAT (RFC 6598)
        || a == 127 // loopback
        || (a == 169 && b == 254) // link-local, cloud metadata (RFC 3927)
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments (RFC 6890)
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1 (RFC 5737)
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast (RFC 7526)
        || (a == 192 && b == 168) // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking (RFC 2544)
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224 // multicast (224/4), reserved (240/4), broadcast
}

fn is_special_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // Only global unicast is ever public (RFC 4291 §2.4); this also refuses ::, ::1, the
    // IPv4-mapped and -compatible forms, 64:ff9b::/96 and 64:ff9b:1::/48 (NAT64), 100::/64
    // (discard), fc00::/7 (unique local), fe80::/10 (link-local), fec0::/10, ff00::/8
    // (multicast).
    if s[0] & 0xe000 != 0x2000 {
        return true;
    }
    match s[0] {
        // IETF protocol assignments 2001::/23 (Teredo included), documentation 2001:db8::/32.
        0x2001 => s[1] < 0x0200 || s[1] == 0x0db8,
        // 6to4 (RFC 3056): carries an IPv4 address.
        0x2002 => true,
        // Documentation 3fff::/20 (RFC 9637).
        0x3fff => s[1] < 0x1000,
        _ => false,
    }
}

/// The lifetime a `Cache-Control` header gives: its `max-age` in seconds, zero for `no-store`
/// or `no-cache` (RFC 9111 §5.2.2); `None` when it says neither. The caller bounds it.
pub fn max_age(cache_control: Option<&str>) -> Option<Duration> {
    cache_control.and_then(|value| {
        value.split(',').map(str::trim).find_map(|directive| {
            if directive.eq_ignore_ascii_case("no-store")
                || directive.eq_ignore_ascii_case("no-cache")
            {
                return Some(Duration::ZERO);
            }
            directive
                .strip_prefix("max-age=")
                .and_then(|n| n.trim_matches('"').parse::<u64>().ok())
                .map(Duration::from_secs)
        })
    })
}

/// Reads `response`'s body, refusing (before or while streaming) one over `limit` bytes.
pub async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, String> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(format!("document larger than {limit} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        if e.is_timeout() {
            "timed out".to_owned()
        } else {
            e.to_string()
        }
    })? {
        if body.len() + chunk.len() > limit {
            return Err(format!("document larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_use_addresses_are_refused() {
        for special in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.0.9",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "3fff::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            let ip: IpAddr = special.parse().unwrap_or_else(|_| panic!("{special}"));
            assert!(is_special_use(ip), "{special}");
            assert!(!address_allowed(ip, false), "{special}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
        ] {
            let ip: IpAddr = public.parse().unwrap_or_else(|_| panic!("{public}"));
            assert!(!is_special_use(ip), "{public}");
        }
    }

    #[test]
    fn the_loopback_allowance_covers_loopback_only() {
        let allowed = |text: &str| {
            address_allowed(
                text.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                true,
            )
        };
        assert!(allowed("127.0.0.1"));
        assert!(allowed("::1"));
        for refused in [
            "::ffff:127.0.0.1",
            "10.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "::",
        ] {
            assert!(!allowed(refused), "{refused}");
        }
    }

    #[test]
    fn urls_are_https_without_credentials_or_special_use_literals() {
        assert!(check_url("https://client.example/jwks", false).is_ok());
        for (bad, why) in [
            ("http://client.example/jwks", "https"),
            ("https://user:pw@client.example/jwks", "credentials"),
            ("https://client.example/jwks#x", "fragment"),
            ("https://127.0.0.1/jwks", "special-use"),
            ("https://0x7f.1/jwks", "special-use"),
            ("https://2130706433/jwks", "special-use"),
            ("https://[::1]/jwks", "special-use"),
            ("https://[::ffff:7f00:1]/jwks", "special-use"),
            ("https://10.1.2.3/jwks", "special-use"),
            ("https://169.254.169.254/latest/meta-data", "special-use"),
            ("/jwks", "absolute"),
        ] {
            let error = check_url(bad, false).expect_err(bad);
            assert!(error.contains(why), "{bad}: {error}");
        }
        assert!(check_url("https://127.0.0.1:8443/jwks", true).is_ok());
    }

    #[test]
    fn cache_control_gives_a_lifetime() {
        assert_eq!(
            max_age(Some("public, max-age=60")),
            Some(Duration::from_secs(60))
        );
        assert_eq!(max_age(Some("no-store")), Some(Duration::ZERO));
        assert_eq!(max_age(Some("public")), None);
        assert_eq!(max_age(None), None);
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/jwk-set+json"));
        assert!(!is_json("text/html"));
        assert!(!is_json(""));
    }
}
