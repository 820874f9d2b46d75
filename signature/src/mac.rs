//! HMAC-SHA256 keys prepared once, and the one constant-time comparison every
//! HMAC scheme goes through.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{ConfigError, Rejection};

type HmacSha256 = Hmac<Sha256>;

/// Length of an HMAC-SHA256 tag in bytes.
pub(crate) const TAG_LEN: usize = 32;

/// A decoded candidate signature of the right length.
pub(crate) type MacTag = [u8; TAG_LEN];

/// One secret's HMAC state with the key already absorbed (inner and outer pads
/// hashed once at start-up); each use clones it.
#[derive(Clone)]
pub(crate) struct MacKey(HmacSha256);

impl MacKey {
    pub(crate) fn new(secret: &[u8]) -> Result<Self, ConfigError> {
        if secret.is_empty() {
            return Err(ConfigError::EmptySecret);
        }
        // HMAC accepts keys of any length; the error arm exists only in the
        // generic `KeyInit` signature.
        HmacSha256::new_from_slice(secret)
            .map(Self)
            .map_err(|_| ConfigError::EmptySecret)
    }

    /// The MAC over the concatenation of `parts`, without building it in memory.
    fn absorb(&self, parts: &[&[u8]]) -> HmacSha256 {
        let mut mac = self.0.clone();
        for part in parts {
            mac.update(part);
        }
        mac
    }

    /// The tag a provider would send for `parts` (used by the signer).
    pub(crate) fn sign(&self, parts: &[&[u8]]) -> MacTag {
        self.absorb(parts).finalize().into_bytes().into()
    }
}

/// The secrets of one source, at least one (several during rotation).
#[derive(Clone)]
pub(crate) struct Keys {
    /// The first configured secret: the one a [`Signer`](crate::Signer) uses.
    first: MacKey,
    rest: Vec<MacKey>,
}

impl Keys {
    /// Prepares every secret after `decode` turned its configured text into key bytes.
    pub(crate) fn new<F>(secrets: &[&[u8]], mut decode: F) -> Result<Self, ConfigError>
    where
        F: FnMut(&[u8]) -> Result<Vec<u8>, ConfigError>,
    {
        let (first, rest) = secrets.split_first().ok_or(ConfigError::NoSecret)?;
        Ok(Self {
            first: MacKey::new(&decode(first)?)?,
            rest: rest
                .iter()
                .map(|secret| MacKey::new(&decode(secret)?))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Keys used as configured (the secret's bytes are the key).
    pub(crate) fn raw(secrets: &[&[u8]]) -> Result<Self, ConfigError> {
        Self::new(secrets, |secret| Ok(secret.to_vec()))
    }

    pub(crate) fn signing(&self) -> &MacKey {
        &self.first
    }

    /// Accepts when any candidate is the MAC of `parts` under any key.
    ///
    /// The message is hashed once per key; each candidate is then checked with
    /// `Mac::verify_slice`, which compares in constant time. Which candidate or key
    /// matched may leak through timing; neither is secret.
    pub(crate) fn verify(&self, parts: &[&[u8]], candidates: &[MacTag]) -> Result<(), Rejection> {
        for key in std::iter::once(&self.first).chain(&self.rest) {
            let mac = key.absorb(parts);
            for candidate in candidates {
                if mac.clone().verify_slice(candidate).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(Rejection::InvalidSignature)
    }
}

impl fmt::Debug for Keys {
    // Never print key material, not even a prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("count", &(1 + self.rest.len()))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_docs_known_answer() {
        let key = MacKey::new(b"It's a Secret to Everybody").unwrap();
        assert_eq!(
            hex::encode(key.sign(&[b"Hello, ", b"World!"])),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn any_key_any_candidate() {
        let keys = Keys::raw(&[b"old", b"new"]).unwrap();
        let good = MacKey::new(b"new").unwrap().sign(&[b"body"]);
        assert_eq!(keys.verify(&[b"body"], &[[0; TAG_LEN], good]), Ok(()));
        assert_eq!(
            keys.verify(&[b"body!"], &[good]),
            Err(Rejection::InvalidSignature)
        );
        assert_eq!(
            keys.verify(&[b"body"], &[]),
            Err(Rejection::InvalidSignature)
        );
    }

    #[test]
    fn debug_hides_keys() {
        let keys = Keys::raw(&[b"super-secret-value"]).unwrap();
        let shown = format!("{keys:?}");
        assert!(!shown.contains("super"), "{shown}");
    }

    #[test]
    fn empty_secret_is_refused() {
        assert!(matches!(Keys::raw(&[b""]), Err(ConfigError::EmptySecret)));
        assert!(matches!(Keys::raw(&[]), Err(ConfigError::NoSecret)));
    }
}
