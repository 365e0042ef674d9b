//! Secrets at rest: the master key, AES-256-GCM sealing, and a string type that never
//! prints its content.
//!
//! The key comes from `WAKEHUB_MASTER_KEY` (base64 of 32 bytes) or from a key file created
//! with mode 0600 on first use. Each credential is sealed with a fresh random nonce and its
//! own id as associated data, so a ciphertext cannot be moved to another row unnoticed.

use std::fmt;
use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload, rand_core::RngCore};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// The environment variable holding the master key (base64 of 32 random bytes).
pub const MASTER_KEY_ENV: &str = "WAKEHUB_MASTER_KEY";

/// Why a secret could not be loaded, sealed or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The master key given is not base64 of exactly 32 bytes.
    #[error("the master key ({source_name}) must be base64 of 32 bytes")]
    BadKey {
        /// Where it came from (the variable or the file).
        source_name: String,
    },
    /// The key file could not be read or created.
    #[error("key file {path}: {message}")]
    KeyFile {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Decryption failed: wrong master key or tampered data.
    #[error("cannot decrypt credential: wrong master key or tampered data")]
    Decrypt,
    /// A referenced secret could not be read.
    #[error("secret {reference} is unavailable: {message}")]
    Unavailable {
        /// The reference (`env:VAR`, `file:PATH`, `credential:N`), never the value.
        reference: String,
        /// Why.
        message: String,
    },
}

/// A plaintext secret in memory. `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a plaintext secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The plaintext, for the one place that must send it (a connector's login).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A sealed secret: nonce and ciphertext (with the GCM tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The 96-bit nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext followed by the 128-bit tag.
    pub ciphertext: Vec<u8>,
}

/// The AES-256-GCM key that seals every credential in a store.
#[derive(Clone)]
pub struct MasterKey(Key<Aes256Gcm>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self(Aes256Gcm::generate_key(OsRng))
    }

    /// Decodes a base64 key of 32 bytes.
    pub fn from_base64(text: &str, source_name: &str) -> Result<Self, SecretError> {
        let bytes = B64.decode(text.trim()).map_err(|_| SecretError::BadKey { source_name: source_name.into() })?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey { source_name: source_name.into() });
        }
        Ok(Self(*Key::<Aes256Gcm>::from_slice(&bytes)))
    }

    /// The key as base64 (to write a key file).
    fn to_base64(&self) -> String {
        B64.encode(self.0.as_slice())
    }

    /// `WAKEHUB_MASTER_KEY` if set, else the key file at `path`, created (mode 0600, a fresh
    /// random key) if it does not exist.
    pub fn from_env_or_file(path: &Path) -> Result<Self, SecretError> {
        match std::env::var(MASTER_KEY_ENV) {
            Ok(value) => Self::from_base64(&value, MASTER_KEY_ENV),
            Err(_) => Self::from_file(path),
        }
    }

    /// Reads the key file at `path`, creating it with a fresh key (mode 0600) if missing.
    pub fn from_file(path: &Path) -> Result<Self, SecretError> {
        let key_err =
            |e: std::io::Error| SecretError::KeyFile { path: path.display().to_string(), message: e.to_string() };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(key_err)?;
                }
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(key_err)?;
                file.write_all(format!("{}\n", key.to_base64()).as_bytes()).map_err(key_err)?;
                file.sync_all().map_err(key_err)?;
                Ok(key)
            }
            Err(e) => Err(key_err(e)),
        }
    }

    /// Encrypts `plaintext`, binding it to `aad` (associated data, e.g. the row id).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Sealed {
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let cipher = Aes256Gcm::new(&self.0);
        // Encryption only fails for plaintexts beyond 64 GiB, which never reach here.
        let ciphertext = cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad }).unwrap_or_default();
        Sealed { nonce: nonce.to_vec(), ciphertext }
    }

    /// A digest of `data` only a holder of this key can compute (SHA-256 over a domain
    /// name, the key and the data, hex): an identity for content holding secrets that can be
    /// shown without letting anyone test guesses of those secrets against it.
    pub fn keyed_digest(&self, domain: &str, data: &[u8]) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(domain.as_bytes());
        h.update([0u8]);
        h.update(self.0.as_slice());
        h.update(data);
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Decrypts what [`seal`](Self::seal) produced with the same `aad`.
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, SecretError> {
        if sealed.nonce.len() != 12 {
            return Err(SecretError::Decrypt);
        }
        Aes256Gcm::new(&self.0)
            .decrypt(Nonce::from_slice(&sealed.nonce), Payload { msg: &sealed.ciphertext, aad })
            .map_err(|_| SecretError::Decrypt)
    }
}

/// `bytes` random bytes from the operating system, as base64url without padding (API and
/// session tokens, generated passwords).
pub fn random_string(bytes: usize) -> String {
    use aes_gcm::aead::rand_core::RngCore;
    use base64::Engine as _;
    let mut buf = vec![0u8; bytes];
    aes_gcm::aead::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper_detection() {
        let key = MasterKey::generate();
        let sealed = key.seal(b"hunter2", b"credential:1");
        assert_ne!(sealed.ciphertext, b"hunter2");
        assert_eq!(key.open(&sealed, b"credential:1").unwrap(), b"hunter2");
        assert!(matches!(key.open(&sealed, b"credential:2"), Err(SecretError::Decrypt)));
        assert!(matches!(MasterKey::generate().open(&sealed, b"credential:1"), Err(SecretError::Decrypt)));
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(matches!(key.open(&tampered, b"credential:1"), Err(SecretError::Decrypt)));
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let a = MasterKey::from_file(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let b = MasterKey::from_file(&path).unwrap();
        let sealed = a.seal(b"x", b"");
        assert_eq!(b.open(&sealed, b"").unwrap(), b"x");
        std::fs::write(&path, "not base64 !!").unwrap();
        assert!(matches!(MasterKey::from_file(&path), Err(SecretError::BadKey { .. })));
    }

    #[test]
    fn secret_string_never_prints() {
        let s = SecretString::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
    }
}
