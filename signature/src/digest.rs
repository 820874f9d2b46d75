//! Keys and digests of any supported hash (SHA-1, SHA-256, SHA-512) for the
//! declarative schemes and the dedicated ones that are not HMAC-SHA256: HMAC with
//! a prepared key, a plain digest (HubSpot v1/v2), and the constant-time equality
//! every comparison goes through.

use std::fmt;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

use crate::error::{ConfigError, Rejection};

/// The hash under the MAC (or the plain digest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// SHA-1 (Intercom, Vercel, Segment, Trello, Twilio, Mandrill, Braintree).
    Sha1,
    /// SHA-256, the common case.
    #[default]
    Sha256,
    /// SHA-512 (Paystack).
    Sha512,
}

impl Algorithm {
    /// Length of the digest in bytes.
    pub(crate) fn len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// The plain digest of the concatenation of `parts`.
    pub(crate) fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut digest = D::new();
            for part in parts {
                digest.update(part);
            }
            digest.finalize().to_vec()
        }
        match self {
            Self::Sha1 => run::<Sha1>(parts),
            Self::Sha256 => run::<Sha256>(parts),
            Self::Sha512 => run::<Sha512>(parts),
        }
    }
}

/// One secret's HMAC state with the key absorbed once; each use clones it.
#[derive(Clone)]
pub(crate) enum AnyMac {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

impl AnyMac {
    pub(crate) fn new(algorithm: Algorithm, key: &[u8]) -> Result<Self, ConfigError> {
        if key.is_empty() {
            return Err(ConfigError::EmptySecret);
        }
        // HMAC takes keys of any length; the error arm exists only in the trait.
        let invalid = |_| ConfigError::EmptySecret;
        Ok(match algorithm {
            Algorithm::Sha1 => Self::Sha1(Hmac::new_from_slice(key).map_err(invalid)?),
            Algorithm::Sha256 => Self::Sha256(Hmac::new_from_slice(key).map_err(invalid)?),
            Algorithm::Sha512 => Self::Sha512(Hmac::new_from_slice(key).map_err(invalid)?),
        })
    }

    /// The tag over the concatenation of `parts`.
    pub(crate) fn sign(&self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + Clone>(mac: &M, parts: &[&[u8]]) -> Vec<u8> {
            let mut mac = mac.clone();
            for part in parts {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Self::Sha1(mac) => run(mac, parts),
            Self::Sha256(mac) => run(mac, parts),
            Self::Sha512(mac) => run(mac, parts),
        }
    }
}

/// Whether `a` equals `b`, in time independent of where they differ.
pub(crate) fn equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Accepts when any candidate equals `expected` (constant time per comparison).
pub(crate) fn any_equal(expected: &[u8], candidates: &[Vec<u8>]) -> bool {
    candidates
        .iter()
        .fold(false, |found, candidate| found | equal(expected, candidate))
}

/// The secrets of one source as HMAC keys of one algorithm (several during rotation).
#[derive(Clone)]
pub(crate) struct MacKeys {
    keys: Vec<AnyMac>,
}

impl MacKeys {
    pub(crate) fn new(algorithm: Algorithm, keys: &[Vec<u8>]) -> Result<Self, ConfigError> {
        if keys.is_empty() {
            return Err(ConfigError::NoSecret);
        }
        Ok(Self {
            keys: keys
                .iter()
                .map(|key| AnyMac::new(algorithm, key))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The key a signer uses: the first configured.
    pub(crate) fn first(&self) -> &AnyMac {
        // `new` refuses an empty list.
        &self.keys[0]
    }

    /// Accepts when any candidate is the MAC of `parts` under any key.
    pub(crate) fn verify(&self, parts: &[&[u8]], candidates: &[Vec<u8>]) -> Result<(), Rejection> {
        for key in &self.keys {
            if any_equal(&key.sign(parts), candidates) {
                return Ok(());
            }
        }
        Err(Rejection::InvalidSignature)
    }
}

impl fmt::Debug for MacKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MacKeys")
            .field("count", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// Raw key bytes kept for schemes that put the secret itself in the message
/// (HubSpot v1/v2) or compare it (tokens). `Debug` never shows them.
#[derive(Clone)]
pub(crate) struct SecretBytes(pub(crate) Vec<Vec<u8>>);

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBytes")
            .field("count", &self.0.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        let mac = AnyMac::new(Algorithm::Sha256, b"It's a Secret to Everybody").unwrap();
        assert_eq!(
            hex::encode(mac.sign(&[b"Hello, ", b"World!"])),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        assert_eq!(
            hex::encode(Algorithm::Sha1.hash(&[b"abc"])),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        for algorithm in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
            let mac = AnyMac::new(algorithm, b"k").unwrap();
            assert_eq!(mac.sign(&[b"x"]).len(), algorithm.len());
        }
    }

    #[test]
    fn equality() {
        assert!(equal(b"abc", b"abc"));
        assert!(!equal(b"abc", b"abd"));
        assert!(!equal(b"abc", b"ab"));
        assert!(any_equal(b"x", &[b"y".to_vec(), b"x".to_vec()]));
        assert!(!any_equal(b"x", &[]));
    }
}
