//! TLS with a pinned certificate: self-signed endpoints (a Proxmox host, a BMC) are trusted
//! by the SHA-256 of their certificate, never by "accept anything". Used by the Proxmox
//! connector and by the plugin host's HTTP capability.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// The marker a pin mismatch leaves in a transport error's cause chain.
pub(crate) const PIN_MISMATCH: &str = "wakehub: certificate fingerprint does not match the pinned one";

/// Accepts exactly the certificate whose SHA-256 is pinned (signatures still verified).
#[derive(Debug)]
struct Pinned {
    sha256: Vec<u8>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if Sha256::digest(end_entity.as_ref()).as_slice() == self.sha256.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(PIN_MISMATCH.into()))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Parses `AB:CD:…` (or plain hex) into 32 bytes.
pub(crate) fn parse_fingerprint(s: &str) -> Result<Vec<u8>, String> {
    let hex: String = s.chars().filter(|c| *c != ':').collect();
    // Byte length 64 of ASCII hex only: slicing below is then on character boundaries.
    if hex.len() != 64 || !hex.is_ascii() {
        return Err("proxmox: `proxmox_fingerprint` must be a SHA-256 fingerprint (64 hex digits, `:` allowed)".into());
    }
    (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| "proxmox: `proxmox_fingerprint` is not hexadecimal".into())
}

/// A TLS client configuration that accepts exactly the certificate whose SHA-256 is `fp`
/// (`AB:CD:…`), handshake signatures still verified.
pub fn pinned_tls(fp: &str) -> Result<rustls::ClientConfig, String> {
    let sha256 = parse_fingerprint(fp)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { sha256, provider }))
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse() {
        let fp = "AB:".repeat(31) + "AB";
        assert_eq!(parse_fingerprint(&fp).unwrap(), vec![0xAB; 32]);
        assert!(parse_fingerprint("AB:CD").is_err());
        assert!(parse_fingerprint(&"ZZ".repeat(32)).is_err());
        // 64 bytes that are not 64 characters: refused, never sliced mid-character.
        assert!(parse_fingerprint(&"é".repeat(32)).is_err());
    }
}
