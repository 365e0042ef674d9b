//! Password hashes: argon2id (19 MiB, 2 passes, 1 lane: the crate's defaults, OWASP's
//! minimum), in the PHC string format, with working memory the process gives back.
//!
//! argon2 fills 19 MiB per hash. Left to the crate, that memory comes from a `Vec` of
//! exactly that size, and glibc's allocator maps the first one for itself but, once it is
//! freed, raises its mmap threshold above 19 MiB and serves every later hash from its heap,
//! which it does not shrink: each login left 19 MiB resident for the life of the server.
//! Here the memory is reserved larger than the largest threshold glibc ever sets (32 MiB),
//! so it is always mapped for the one hash and unmapped when it ends; only the 19 MiB the
//! hash uses are ever touched.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// Above glibc's largest dynamic mmap threshold (`DEFAULT_MMAP_THRESHOLD_MAX`, 32 MiB).
const RESERVE_BYTES: usize = 33 << 20;

/// Hashes `password` with `salt` into `out`, in memory of its own.
fn fill(argon: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), argon2::Error> {
    let blocks = argon.params().block_count();
    let mut memory: Vec<Block> = Vec::with_capacity(blocks.max(RESERVE_BYTES / size_of::<Block>()));
    memory.resize(blocks, Block::default());
    argon.hash_password_into_with_memory(password, salt, out, &mut memory)
}

/// `password`'s argon2id hash with a fresh random salt, as a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub(super) fn hash(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut aes_gcm::aead::OsRng);
    let argon = Argon2::default();
    let mut raw = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut raw).map_err(|e| e.to_string())?;
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        fill(&argon, password.as_bytes(), salt_bytes, out).map_err(Into::into)
    })
    .map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params()).map_err(|e| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches `phc` (any argon2 variant, version and parameters it names;
/// compared in constant time). A string that is not such a hash matches nothing.
pub(super) fn verify(phc: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(parsed.algorithm), Params::try_from(&parsed)) else {
        return false;
    };
    let Ok(version) = parsed.version.map_or(Ok(Version::default()), Version::try_from) else { return false };
    let argon = Argon2::new(algorithm, version, params);
    let mut raw = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut raw) else { return false };
    let computed =
        Output::init_with(expected.len(), |out| fill(&argon, password.as_bytes(), salt_bytes, out).map_err(Into::into));
    // `Output`'s equality is constant-time.
    computed.is_ok_and(|c| c == expected)
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

    #[test]
    fn hashes_verify_here_and_with_the_crates_own_functions_both_ways() {
        let ours = super::hash("correct horse battery").unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{ours}");
        assert!(super::verify(&ours, "correct horse battery"));
        assert!(!super::verify(&ours, "correct horse batterY"));
        assert_ne!(ours, super::hash("correct horse battery").unwrap(), "a fresh salt each time");
        // A hash the crate made (as stored before this module) verifies here; ours there.
        let salt = SaltString::generate(&mut aes_gcm::aead::OsRng);
        let theirs = argon2::Argon2::default().hash_password(b"hunter2 hunter2", &salt).unwrap().to_string();
        assert!(super::verify(&theirs, "hunter2 hunter2"));
        assert!(!super::verify(&theirs, "hunter2 hunter3"));
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(argon2::Argon2::default().verify_password(b"correct horse battery", &parsed).is_ok());
        // Other parameters, as named in the string.
        let small = argon2::Argon2::new(
            argon2::Algorithm::Argon2i,
            argon2::Version::V0x10,
            argon2::Params::new(1024, 3, 2, Some(24)).unwrap(),
        );
        let other = small.hash_password(b"another password", &salt).unwrap().to_string();
        assert!(super::verify(&other, "another password"));
        assert!(!super::verify(&other, "another passwore"));
    }

    #[test]
    fn what_is_not_a_hash_matches_nothing() {
        for phc in [
            "",
            "plain",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$scrypt$ln=16,r=8,p=1$c2FsdA$aGFzaA",
            "$argon2id$v=99$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
        ] {
            assert!(!super::verify(phc, ""), "{phc}");
            assert!(!super::verify(phc, "anything"), "{phc}");
        }
    }
}
