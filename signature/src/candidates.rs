//! Candidate signatures: decoding hex/base64 into tags, and a bounded collector.
//!
//! Signatures are decoded before they are compared, so the comparison is always
//! bytes against bytes in constant time, never text against text.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;

use crate::error::Rejection;
use crate::mac::{MacTag, TAG_LEN};

/// At most this many candidate signatures are checked per request. Providers send
/// one per active secret (two during a rotation); the cap bounds the work a hostile
/// header can cause.
pub(crate) const MAX_CANDIDATES: usize = 16;

/// How a signature is written in its header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Lowercase hexadecimal. Providers write lowercase and their libraries compare
    /// the text, so an uppercase digest is not what the provider sent.
    #[default]
    Hex,
    /// Standard base64 with padding (RFC 4648 §4).
    Base64,
    /// URL-safe base64 without padding (RFC 4648 §5; Sanity, JWS).
    #[serde(rename = "base64url")]
    Base64Url,
}

/// The value of one lowercase hex digit (providers write lowercase, and
/// their libraries compare text, so `A-F` is not what they sent).
fn lower_hex_digit(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

impl Encoding {
    /// The bytes if `text` is a well-formed encoding of exactly `len` bytes.
    pub(crate) fn decode_len(self, text: &str, len: usize) -> Option<Vec<u8>> {
        if text.len() != self.encoded_len(len) {
            return None;
        }
        match self {
            Self::Hex => {
                let text = text.as_bytes();
                text.chunks_exact(2)
                    .map(|pair| Some(lower_hex_digit(pair[0])? << 4 | lower_hex_digit(pair[1])?))
                    .collect()
            }
            Self::Base64 => STANDARD
                .decode(text)
                .ok()
                .filter(|bytes| bytes.len() == len),
            Self::Base64Url => URL_SAFE_NO_PAD
                .decode(text)
                .ok()
                .filter(|bytes| bytes.len() == len),
        }
    }

    /// Length of the text encoding `len` bytes.
    fn encoded_len(self, len: usize) -> usize {
        match self {
            Self::Hex => 2 * len,
            Self::Base64 => len.div_ceil(3) * 4,
            Self::Base64Url => (len * 4).div_ceil(3),
        }
    }

    /// `bytes` as the provider writes them.
    pub(crate) fn encode_bytes(self, bytes: &[u8]) -> String {
        match self {
            Self::Hex => hex::encode(bytes),
            Self::Base64 => STANDARD.encode(bytes),
            Self::Base64Url => URL_SAFE_NO_PAD.encode(bytes),
        }
    }

    /// The tag if `text` is a well-formed encoding of exactly one HMAC-SHA256 tag.
    pub(crate) fn decode(self, text: &str) -> Option<MacTag> {
        let mut tag = [0u8; TAG_LEN];
        match self {
            Self::Base64Url => {
                tag.copy_from_slice(&self.decode_len(text, TAG_LEN)?);
            }
            Self::Hex => {
                let text = text.as_bytes();
                if text.len() != 2 * TAG_LEN {
                    return None;
                }
                for (byte, pair) in tag.iter_mut().zip(text.chunks_exact(2)) {
                    *byte = lower_hex_digit(pair[0])? << 4 | lower_hex_digit(pair[1])?;
                }
            }
            Self::Base64 => {
                // 44 characters encode 32 bytes with padding; anything else is
                // rejected before decoding. The buffer is one block larger because
                // the decoder sizes its output check by whole 4-character blocks.
                if text.len() != 44 {
                    return None;
                }
                let mut buffer = [0u8; TAG_LEN + 3];
                let written = STANDARD.decode_slice(text, &mut buffer).ok()?;
                tag.copy_from_slice(buffer.get(..TAG_LEN).filter(|_| written == TAG_LEN)?);
            }
        }
        Some(tag)
    }

    /// How the provider writes `tag`.
    pub(crate) fn encode(self, tag: &MacTag) -> String {
        self.encode_bytes(tag)
    }
}

/// Gathers up to [`MAX_CANDIDATES`] decoded signatures; entries that do not decode
/// are skipped so that one garbage entry cannot hide a valid one.
#[derive(Debug, Default)]
pub(crate) struct Candidates {
    tags: Vec<MacTag>,
}

impl Candidates {
    pub(crate) fn push(&mut self, encoding: Encoding, text: &str) {
        if self.tags.len() < MAX_CANDIDATES
            && let Some(tag) = encoding.decode(text)
        {
            self.tags.push(tag);
        }
    }

    /// The tags to check, or [`Rejection::MalformedSignature`] when no entry of the
    /// expected scheme decoded.
    pub(crate) fn finish(self) -> Result<Vec<MacTag>, Rejection> {
        if self.tags.is_empty() {
            Err(Rejection::MalformedSignature)
        } else {
            Ok(self.tags)
        }
    }
}

/// [`Candidates`] for digests of any length (SHA-1, SHA-512, ...).
#[derive(Debug)]
pub(crate) struct AnyCandidates {
    len: usize,
    tags: Vec<Vec<u8>>,
}

impl AnyCandidates {
    pub(crate) fn new(len: usize) -> Self {
        Self {
            len,
            tags: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, encoding: Encoding, text: &str) {
        if self.tags.len() < MAX_CANDIDATES
            && let Some(tag) = encoding.decode_len(text, self.len)
        {
            self.tags.push(tag);
        }
    }

    /// As [`Candidates::finish`].
    pub(crate) fn finish(self) -> Result<Vec<Vec<u8>>, Rejection> {
        if self.tags.is_empty() {
            Err(Rejection::MalformedSignature)
        } else {
            Ok(self.tags)
        }
    }
}

/// Decodes the one signature of a single-signature header.
pub(crate) fn single(encoding: Encoding, text: &str) -> Result<Vec<MacTag>, Rejection> {
    let mut candidates = Candidates::default();
    candidates.push(encoding, text);
    candidates.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_exact_tags_only() {
        let hex64 = "00".repeat(32);
        assert_eq!(Encoding::Hex.decode(&hex64), Some([0; 32]));
        assert_eq!(Encoding::Hex.decode(&"00".repeat(31)), None);
        assert_eq!(Encoding::Hex.decode(&"0g".repeat(32)), None);
        assert_eq!(Encoding::Hex.decode("é"), None);
        assert_eq!(Encoding::Hex.decode(&"AB".repeat(32)), None);
        let varied: MacTag = std::array::from_fn(|i| u8::try_from(i * 8 + 7).unwrap());
        let text = hex::encode(varied);
        assert_eq!(Encoding::Hex.decode(&text), Some(varied));
        for at in [0, 33, 63] {
            let mut upper = text.clone().into_bytes();
            upper[at] = b'F';
            assert_eq!(
                Encoding::Hex.decode(std::str::from_utf8(&upper).unwrap()),
                None
            );
        }
        assert_eq!(Encoding::Hex.decode(&format!("{text}0")), None);
        let b64 = STANDARD.encode([7u8; 32]);
        assert_eq!(Encoding::Base64.decode(&b64), Some([7; 32]));
        assert_eq!(Encoding::Base64.decode(&STANDARD.encode([7u8; 31])), None);
        assert_eq!(Encoding::Base64.decode(&STANDARD.encode([7u8; 33])), None);
        assert_eq!(Encoding::Base64.decode("not base64 at all!!"), None);
    }

    #[test]
    fn round_trips() {
        for encoding in [Encoding::Hex, Encoding::Base64, Encoding::Base64Url] {
            assert_eq!(encoding.decode(&encoding.encode(&[9; 32])), Some([9; 32]));
            for len in [20, 32, 64] {
                let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let text = encoding.encode_bytes(&bytes);
                assert_eq!(encoding.decode_len(&text, len), Some(bytes.clone()));
                assert_eq!(encoding.decode_len(&text, len + 1), None);
            }
        }
        // Padding is not part of base64url as providers send it.
        assert_eq!(
            Encoding::Base64Url.decode(&format!("{}=", Encoding::Base64Url.encode(&[1; 32]))),
            None
        );
    }

    #[test]
    fn caps_candidates() {
        let mut candidates = Candidates::default();
        for _ in 0..100 {
            candidates.push(Encoding::Hex, &"ab".repeat(32));
        }
        assert_eq!(candidates.finish().unwrap().len(), MAX_CANDIDATES);
        assert_eq!(
            Candidates::default().finish(),
            Err(Rejection::MalformedSignature)
        );
    }
}
