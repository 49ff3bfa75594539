//! The key-encryption key (KEK): private signing keys are sealed with AES-256-GCM under it.

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Prk, Salt};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

/// Length of the KEK in bytes.
pub const KEK_LEN: usize = 32;

/// The key-encryption key. `Debug` never shows it.
pub struct Kek {
    key: LessSafeKey,
    /// The KEK as an HKDF pseudorandom key, for the keys [`Kek::derive_key`] derives.
    derivation: Prk,
    rng: SystemRandom,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

/// Why the KEK could not be loaded or used. Messages name the setting or file.
#[derive(Debug, thiserror::Error)]
pub enum KekError {
    /// `PORTCULLIS_KEK` is not 32 bytes of base64.
    #[error("PORTCULLIS_KEK: must be {KEK_LEN} bytes, base64-encoded ({0})")]
    BadEnv(String),
    /// The KEK file is unreadable or malformed.
    #[error("KEK file {path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Keys exist but no KEK is configured.
    #[error(
        "the database holds signing keys but no key-encryption key was found: set PORTCULLIS_KEK or restore {0} (Portcullis never replaces existing keys)"
    )]
    Missing(PathBuf),
    /// Sealing failed (should not happen).
    #[error("encryption failed")]
    Seal,
    /// The ciphertext does not open under this KEK: another installation's KEK, or tampering.
    #[error("cannot decrypt")]
    Open,
}

/// Where the KEK came from, for the start-up log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KekOrigin {
    /// The `PORTCULLIS_KEK` setting.
    Setting,
    /// An existing file.
    File(PathBuf),
    /// A file created now.
    Created(PathBuf),
}

impl Kek {
    /// Builds a KEK from raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KekError> {
        if bytes.len() != KEK_LEN {
            return Err(KekError::BadEnv(format!("got {} bytes", bytes.len())));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| KekError::Seal)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
            derivation: Salt::new(HKDF_SHA256, b"portcullis key derivation").extract(bytes),
            rng: SystemRandom::new(),
        })
    }

    /// Loads the KEK from the setting, else from `<keys_dir>/kek`; creates that file (mode 0600)
    /// only when `may_create` (the database holds no keys yet).
    pub fn load_or_create(
        setting: Option<&str>,
        keys_dir: &Path,
        may_create: bool,
    ) -> Result<(Self, KekOrigin), KekError> {
        if let Some(text) = setting {
            let bytes = decode_kek_text(text).map_err(KekError::BadEnv)?;
            return Ok((Self::from_bytes(&bytes)?, KekOrigin::Setting));
        }
        let path = keys_dir.join("kek");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = decode_kek_text(&text).map_err(|reason| KekError::BadFile {
                    path: path.clone(),
                    reason,
                })?;
                let kek = Self::from_bytes(&bytes).map_err(|e| KekError::BadFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                Ok((kek, KekOrigin::File(path)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !may_create {
                    return Err(KekError::Missing(path));
                }
                match create_kek_file(&path) {
                    Ok(kek) => Ok((kek, KekOrigin::Created(path))),
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(None, keys_dir, false)
                    }
                    Err(e) => Err(KekError::BadFile {
                        path,
                        reason: format!("cannot create: {e}"),
                    }),
                }
            }
            Err(e) => Err(KekError::BadFile {
                path,
                reason: format!("cannot read: {e}"),
            }),
        }
    }

    /// A 32-byte key for `purpose` (a fixed label naming what it is for), derived from the KEK
    /// with HKDF-SHA256 (RFC 5869): the same for as long as the KEK is, on every instance that
    /// shares it, and independent of the sealing key and of every other purpose's key.
    ///
    /// # Errors
    /// [`KekError::Seal`] if the crypto library refuses (should not happen).
    pub fn derive_key(&self, purpose: &str) -> Result<Zeroizing<[u8; 32]>, KekError> {
        let mut key = Zeroizing::new([0u8; 32]);
        self.derivation
            .expand(&[purpose.as_bytes()], HKDF_SHA256)
            .and_then(|okm| okm.fill(key.as_mut()))
            .map_err(|_| KekError::Seal)?;
        Ok(key)
    }

    /// Seals `plaintext`, binding it to `aad` (the key's kid and algorithm), as base64url of
    /// nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Result<String, KekError> {
        let mut nonce_bytes = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce_bytes)
            .map_err(|_| KekError::Seal)?;
        let mut buffer = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| KekError::Seal)?;
        let mut sealed = nonce_bytes.to_vec();
        sealed.extend_from_slice(&buffer);
        Ok(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// Opens what [`Kek::seal`] produced with the same `aad`.
    pub fn open(&self, aad: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>, KekError> {
        let raw = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| KekError::Open)?;
        if raw.len() < NONCE_LEN {
            return Err(KekError::Open);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KekError::Open)?;
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        let plain_len = self
            .key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buffer)
            .map_err(|_| KekError::Open)?
            .len();
        buffer.truncate(plain_len);
        Ok(buffer)
    }
}

/// Generates a random KEK, base64-encoded (what `PORTCULLIS_KEK` takes).
pub fn generate_kek_text() -> Result<Zeroizing<String>, KekError> {
    let mut bytes = Zeroizing::new([0u8; KEK_LEN]);
    SystemRandom::new()
        .fill(bytes.as_mut())
        .map_err(|_| KekError::Seal)?;
    Ok(Zeroizing::new(STANDARD.encode(bytes.as_ref())))
}

fn decode_kek_text(text: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let text = text.trim();
    let bytes = STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .map_err(|_| "not valid base64".to_owned())?;
    if bytes.len() != KEK_LEN {
        return Err(format!(
            "decodes to {} bytes, expected {KEK_LEN}",
            bytes.len()
        ));
    }
    Ok(Zeroizing::new(bytes))
}

fn create_kek_file(path: &Path) -> std::io::Result<Kek> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let text = generate_kek_text().map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    let bytes = decode_kek_text(&text).map_err(std::io::Error::other)?;
    Kek::from_bytes(&bytes).map_err(|e| std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_binding() {
        let kek = Kek::from_bytes(&[7u8; KEK_LEN]).unwrap();
        let sealed = kek.seal("kid-1/ES256", b"secret").unwrap();
        assert_eq!(
            kek.open("kid-1/ES256", &sealed).unwrap().as_slice(),
            b"secret"
        );
        // Bound to the row it belongs to: another kid's AAD does not open it.
        assert!(kek.open("kid-2/ES256", &sealed).is_err());
        let other = Kek::from_bytes(&[8u8; KEK_LEN]).unwrap();
        assert!(other.open("kid-1/ES256", &sealed).is_err());
    }

    #[test]
    fn derived_keys_are_stable_and_separate() {
        let kek = Kek::from_bytes(&[7u8; KEK_LEN]).unwrap();
        let again = Kek::from_bytes(&[7u8; KEK_LEN]).unwrap();
        let a = kek.derive_key("purpose a").unwrap();
        assert_eq!(*a, *again.derive_key("purpose a").unwrap());
        assert_ne!(*a, *kek.derive_key("purpose b").unwrap());
        let other = Kek::from_bytes(&[8u8; KEK_LEN]).unwrap();
        assert_ne!(*a, *other.derive_key("purpose a").unwrap());
        assert_ne!(a.as_slice(), &[7u8; KEK_LEN]);
    }

    #[test]
    fn kek_file_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let (_, origin) = Kek::load_or_create(None, &keys, true).unwrap();
        assert_eq!(origin, KekOrigin::Created(keys.join("kek")));
        let mode = std::fs::metadata(keys.join("kek"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (_, origin) = Kek::load_or_create(None, &keys, true).unwrap();
        assert_eq!(origin, KekOrigin::File(keys.join("kek")));
    }

    #[test]
    fn missing_kek_with_existing_keys_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Kek::load_or_create(None, dir.path(), false).unwrap_err();
        assert!(matches!(err, KekError::Missing(_)));
        let err = Kek::load_or_create(Some("c2hvcnQ="), dir.path(), true).unwrap_err();
        assert!(err.to_string().contains("PORTCULLIS_KEK"));
    }
}
