//! Public JWKs (RFC 7517), their RFC 7638 thumbprints, and validation of key material.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::SigningAlg;

/// The smallest RSA modulus accepted (RFC 7518 §3.3).
pub const MIN_RSA_BITS: usize = 2048;

/// The public members of a JWK. Private members cannot be represented, so cannot leak.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kty", deny_unknown_fields)]
pub enum PublicJwk {
    /// RSA public key.
    #[serde(rename = "RSA")]
    Rsa {
        /// Modulus, base64url big-endian.
        n: String,
        /// Public exponent, base64url big-endian.
        e: String,
    },
    /// Elliptic-curve public key.
    #[serde(rename = "EC")]
    Ec {
        /// Curve name (`P-256`).
        crv: String,
        /// X coordinate, base64url, 32 bytes.
        x: String,
        /// Y coordinate, base64url, 32 bytes.
        y: String,
    },
}

/// A JWK as published in the JWKS: public members plus `kid`, `use` and `alg`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublishedJwk {
    /// Key material.
    #[serde(flatten)]
    pub key: PublicJwk,
    /// Key id (thumbprint).
    pub kid: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// The one algorithm this key is used with.
    pub alg: String,
}

/// Why key material was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid key material: {0}")]
pub struct InvalidKey(pub String);

impl PublicJwk {
    /// RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order, base64url.
    pub fn thumbprint(&self) -> String {
        // The member values are base64url or fixed names, so no JSON escaping is needed.
        let canonical = match self {
            Self::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
            Self::Ec { crv, x, y } => {
                format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#)
            }
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// Checks the material is a usable key for `alg`: the right type, RSA ≥ 2048 bits with a
    /// sane exponent, an EC point on P-256.
    pub fn validate_for(&self, alg: SigningAlg) -> Result<(), InvalidKey> {
        match (self, alg) {
            (Self::Rsa { n, e }, SigningAlg::Rs256) => {
                let n = decode_b64(n, "n")?;
                let e = decode_b64(e, "e")?;
                let key = rsa::RsaPublicKey::new(
                    rsa::BigUint::from_bytes_be(&n),
                    rsa::BigUint::from_bytes_be(&e),
                )
                .map_err(|err| InvalidKey(format!("RSA public key rejected: {err}")))?;
                let bits = rsa::traits::PublicKeyParts::n(&key).bits();
                if bits < MIN_RSA_BITS {
                    return Err(InvalidKey(format!(
                        "RSA modulus of {bits} bits is below {MIN_RSA_BITS}"
                    )));
                }
                Ok(())
            }
            (Self::Ec { crv, x, y }, SigningAlg::Es256) => {
                if crv != "P-256" {
                    return Err(InvalidKey(format!("curve {crv} is not P-256")));
                }
                let x = decode_b64(x, "x")?;
                let y = decode_b64(y, "y")?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(InvalidKey("P-256 coordinates must be 32 bytes".into()));
                }
                let mut sec1 = Vec::with_capacity(65);
                sec1.push(4);
                sec1.extend_from_slice(&x);
                sec1.extend_from_slice(&y);
                p256::PublicKey::from_sec1_bytes(&sec1)
                    .map_err(|_| InvalidKey("point is not on P-256".into()))?;
                Ok(())
            }
            _ => Err(InvalidKey(format!("key type does not match {alg}"))),
        }
    }

    /// A `jsonwebtoken` decoding key for this public key.
    pub fn decoding_key(&self) -> Result<jsonwebtoken::DecodingKey, InvalidKey> {
        match self {
            Self::Rsa { n, e } => jsonwebtoken::DecodingKey::from_rsa_components(n, e),
            Self::Ec { x, y, .. } => jsonwebtoken::DecodingKey::from_ec_components(x, y),
        }
        .map_err(|err| InvalidKey(err.to_string()))
    }
}

fn decode_b64(value: &str, member: &str) -> Result<Vec<u8>, InvalidKey> {
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| InvalidKey(format!("member `{member}` is not base64url")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1 example key and its published thumbprint.
        let jwk = PublicJwk::Rsa {
            n: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into(),
            e: "AQAB".into(),
        };
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn small_rsa_and_off_curve_points_are_refused() {
        let small = PublicJwk::Rsa {
            n: URL_SAFE_NO_PAD.encode([0xC1u8; 128]),
            e: "AQAB".into(),
        };
        assert!(small.validate_for(SigningAlg::Rs256).is_err());
        let off_curve = PublicJwk::Ec {
            crv: "P-256".into(),
            x: URL_SAFE_NO_PAD.encode([1u8; 32]),
            y: URL_SAFE_NO_PAD.encode([1u8; 32]),
        };
        assert!(off_curve.validate_for(SigningAlg::Es256).is_err());
        let ec_as_rsa = off_curve.validate_for(SigningAlg::Rs256);
        assert!(ec_as_rsa.is_err());
    }
}
