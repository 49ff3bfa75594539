//! Key generation and import with the `rsa` and `p256` crates (they never sign: RUSTSEC-2023-0071),
//! and conversion into parsed aws-lc-rs key pairs, which do.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::traits::PublicKeyParts;
use zeroize::Zeroizing;

use super::error::KeyError;
use super::jwk::{InvalidKey, PublicJwk};
use super::{RsaKeySize, SigningAlg};

/// Freshly generated or decrypted private key material with its public JWK.
pub struct KeyMaterial {
    /// The algorithm the key is bound to.
    pub alg: SigningAlg,
    /// PKCS#8 DER of the private key, wiped on drop.
    pub pkcs8: Zeroizing<Vec<u8>>,
    /// The public half.
    pub jwk: PublicJwk,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("alg", &self.alg)
            .field("kid", &self.jwk.thumbprint())
            .field("pkcs8", &"<redacted>")
            .finish()
    }
}

/// Generates a new key for `alg`. CPU-heavy for RSA (up to seconds): call on a blocking thread.
pub fn generate(alg: SigningAlg, rsa_size: RsaKeySize) -> Result<KeyMaterial, InvalidKey> {
    let mut rng = rand_core::OsRng;
    match alg {
        SigningAlg::Es256 => {
            let secret = p256::SecretKey::random(&mut rng);
            let der = secret
                .to_pkcs8_der()
                .map_err(|e| InvalidKey(format!("PKCS#8 encoding failed: {e}")))?;
            Ok(KeyMaterial {
                alg,
                pkcs8: Zeroizing::new(der.as_bytes().to_vec()),
                jwk: ec_jwk(&secret.public_key()),
            })
        }
        SigningAlg::Rs256 => {
            let private = rsa::RsaPrivateKey::new(&mut rng, rsa_size.bits())
                .map_err(|e| InvalidKey(format!("RSA generation failed: {e}")))?;
            let der = private
                .to_pkcs8_der()
                .map_err(|e| InvalidKey(format!("PKCS#8 encoding failed: {e}")))?;
            Ok(KeyMaterial {
                alg,
                pkcs8: Zeroizing::new(der.as_bytes().to_vec()),
                jwk: rsa_jwk(&private.to_public_key()),
            })
        }
    }
}

/// Imports PKCS#8 DER for `alg`: validates the key, derives its public JWK.
pub fn import(alg: SigningAlg, pkcs8: Zeroizing<Vec<u8>>) -> Result<KeyMaterial, InvalidKey> {
    let jwk = match alg {
        SigningAlg::Es256 => {
            let secret = p256::SecretKey::from_pkcs8_der(&pkcs8)
                .map_err(|e| InvalidKey(format!("not a P-256 PKCS#8 key: {e}")))?;
            ec_jwk(&secret.public_key())
        }
        SigningAlg::Rs256 => {
            let private = rsa::RsaPrivateKey::from_pkcs8_der(&pkcs8)
                .map_err(|e| InvalidKey(format!("not an RSA PKCS#8 key: {e}")))?;
            private
                .validate()
                .map_err(|e| InvalidKey(format!("inconsistent RSA key: {e}")))?;
            rsa_jwk(&private.to_public_key())
        }
    };
    jwk.validate_for(alg)?;
    Ok(KeyMaterial { alg, pkcs8, jwk })
}

/// A parsed aws-lc-rs key pair, ready to sign without re-parsing.
pub enum SigningKeyPair {
    /// P-256 with fixed-length (R‖S) signatures, as JWS requires (RFC 7518 §3.4).
    Es256(EcdsaKeyPair),
    /// RSA PKCS#1 v1.5.
    Rs256(RsaKeyPair),
}

impl SigningKeyPair {
    /// Parses `material` into an aws-lc-rs key pair and checks its public half matches the JWK.
    pub fn from_material(material: &KeyMaterial) -> Result<Self, InvalidKey> {
        match material.alg {
            SigningAlg::Es256 => {
                let pair =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &material.pkcs8)
                        .map_err(|e| InvalidKey(format!("aws-lc-rs refused the P-256 key: {e}")))?;
                let point = pair.public_key().as_ref();
                let matches = match &material.jwk {
                    PublicJwk::Ec { x, y, .. } => {
                        point.len() == 65
                            && URL_SAFE_NO_PAD.encode(&point[1..33]) == *x
                            && URL_SAFE_NO_PAD.encode(&point[33..]) == *y
                    }
                    PublicJwk::Rsa { .. } => false,
                };
                if !matches {
                    return Err(InvalidKey(
                        "private key does not match its public JWK".into(),
                    ));
                }
                Ok(Self::Es256(pair))
            }
            SigningAlg::Rs256 => {
                let pair = RsaKeyPair::from_pkcs8(&material.pkcs8)
                    .map_err(|e| InvalidKey(format!("aws-lc-rs refused the RSA key: {e}")))?;
                Ok(Self::Rs256(pair))
            }
        }
    }
}

fn ec_jwk(public: &p256::PublicKey) -> PublicJwk {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let point = public.to_encoded_point(false);
    // An uncompressed point always has both coordinates.
    let coordinate =
        |c: Option<&p256::FieldBytes>| c.map(|b| URL_SAFE_NO_PAD.encode(b)).unwrap_or_default();
    PublicJwk::Ec {
        crv: "P-256".into(),
        x: coordinate(point.x()),
        y: coordinate(point.y()),
    }
}

fn rsa_jwk(public: &rsa::RsaPublicKey) -> PublicJwk {
    PublicJwk::Rsa {
        n: URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        e: URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
    }
}

/// Generates one key per algorithm on a blocking thread.
pub async fn generate_keys(
    algs: Vec<SigningAlg>,
    rsa_size: RsaKeySize,
) -> Result<Vec<KeyMaterial>, KeyError> {
    tokio::task::spawn_blocking(move || {
        algs.into_iter()
            .map(|alg| generate(alg, rsa_size).map_err(|e| KeyError::Generate(e.into())))
            .collect()
    })
    .await
    .map_err(|e| KeyError::Generate(e.into()))?
}
