//! Evidence content encryption (spec/EVIDENCE.md §2): ChaCha20-Poly1305 in the STREAM
//! construction, over fixed-size chunks, under a fresh key per item.
//!
//! An item of `size` bytes is cut into [`CHUNK`]-byte chunks (the last may be shorter; an empty
//! item is one empty chunk). Chunk `i` is sealed under the item's [`ContentKey`] with the nonce
//! `i` as an 11-byte big-endian counter followed by one byte, `0x01` for the last chunk and
//! `0x00` otherwise, and no associated data; its 16-byte tag follows it. Because the nonce says
//! which chunk is last, chunks cannot be reordered, dropped, repeated or the stream truncated
//! without a chunk failing to open. The sealed form — the chunks one after another — is what
//! travels and what each node keeps at rest.
//!
//! Pure functions over buffers: reading files and the network is the node's business.

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use zeroize::Zeroizing;

use crate::ids::Sha256Digest;

/// Plaintext bytes per chunk (1 MiB).
pub const CHUNK: usize = 1 << 20;
/// Bytes of Poly1305 tag after each sealed chunk.
pub const TAG: usize = 16;
/// Bytes of one full sealed chunk.
pub const SEALED_CHUNK: usize = CHUNK + TAG;

/// Why a chunk did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The tag did not verify: the chunk was altered, is not chunk `index`, or its last-chunk
    /// flag is wrong (a truncated or extended stream).
    #[error("evidence chunk {index} does not verify: altered, out of place or truncated")]
    Corrupt {
        /// The chunk.
        index: u64,
    },
    /// The chunk's length is not what the item's size says.
    #[error("evidence chunk {index} is {found} bytes; {expected} were expected")]
    Length {
        /// The chunk.
        index: u64,
        /// Its length.
        found: usize,
        /// The length the item's size gives.
        expected: usize,
    },
    /// No such chunk in an item of this size.
    #[error("chunk {index} is beyond the end of the item ({chunks} chunks)")]
    OutOfRange {
        /// The chunk asked for.
        index: u64,
        /// How many the item has.
        chunks: u64,
    },
}

/// An item's content key: 32 random bytes, carried only inside the encrypted manifest, and at
/// rest only wrapped under the node's storage key.
#[derive(Clone)]
pub struct ContentKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ContentKey({})", hex::encode(self.id()))
    }
}

impl ContentKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        crate::keys::fill_random(k.as_mut());
        Self(k)
    }

    /// From its bytes.
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(Zeroizing::new(b))
    }

    /// Its bytes (to put in a manifest or wrap).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A public name for the key (8 bytes of a hash of it), to tell two encryptions of the same
    /// content apart in file names without revealing the key.
    pub fn id(&self) -> [u8; 8] {
        let mut m = b"rogatory evidence key id\0".to_vec();
        m.extend_from_slice(self.0.as_ref());
        let d = Sha256Digest::of(&m);
        let mut out = [0u8; 8];
        out.copy_from_slice(&d.0[..8]);
        out
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        let k: &[u8; 32] = &self.0;
        ChaCha20Poly1305::new(k.into())
    }
}

/// How many chunks an item of `size` bytes has (at least one).
pub fn chunks(size: u64) -> u64 {
    size.div_ceil(CHUNK as u64).max(1)
}

/// The plaintext length of chunk `index` of an item of `size` bytes.
pub fn plain_len(size: u64, index: u64) -> Result<usize, ChunkError> {
    let n = chunks(size);
    if index >= n {
        return Err(ChunkError::OutOfRange { index, chunks: n });
    }
    if index + 1 < n {
        Ok(CHUNK)
    } else {
        Ok((size - index * CHUNK as u64) as usize)
    }
}

/// The length of the sealed form of an item of `size` bytes.
pub fn sealed_len(size: u64) -> u64 {
    size + chunks(size) * TAG as u64
}

/// Where sealed chunk `index` starts in the sealed form.
pub fn sealed_offset(index: u64) -> u64 {
    index * SEALED_CHUNK as u64
}

/// The nonce of chunk `index`: an 11-byte big-endian counter, then the last-chunk flag.
pub fn nonce(index: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// Seals chunk `index` of an item of `size` bytes in place: `buf` holds its plaintext and gets
/// the tag appended.
pub fn seal_chunk(
    key: &ContentKey,
    size: u64,
    index: u64,
    buf: &mut Vec<u8>,
) -> Result<(), ChunkError> {
    let expected = plain_len(size, index)?;
    if buf.len() != expected {
        return Err(ChunkError::Length {
            index,
            found: buf.len(),
            expected,
        });
    }
    let last = index + 1 == chunks(size);
    let tag = key
        .cipher()
        .encrypt_inout_detached((&nonce(index, last)).into(), &[], buf.as_mut_slice().into())
        .map_err(|_| ChunkError::Corrupt { index })?;
    buf.extend_from_slice(&tag);
    Ok(())
}

/// Opens sealed chunk `index` of an item of `size` bytes in place: `buf` holds the sealed chunk
/// and is left holding its plaintext. On failure `buf` must be discarded.
pub fn open_chunk(
    key: &ContentKey,
    size: u64,
    index: u64,
    buf: &mut Vec<u8>,
) -> Result<(), ChunkError> {
    let expected = plain_len(size, index)? + TAG;
    if buf.len() != expected {
        return Err(ChunkError::Length {
            index,
            found: buf.len(),
            expected,
        });
    }
    let last = index + 1 == chunks(size);
    let split = buf.len() - TAG;
    let mut tag = [0u8; TAG];
    tag.copy_from_slice(&buf[split..]);
    buf.truncate(split);
    key.cipher()
        .decrypt_inout_detached(
            (&nonce(index, last)).into(),
            &[],
            buf.as_mut_slice().into(),
            (&tag).into(),
        )
        .map_err(|_| ChunkError::Corrupt { index })
}

/// Wraps a content key under a node's storage key, bound to `context` (e.g. case and item):
/// a random 12-byte nonce, then the sealed key and its tag (60 bytes).
pub fn wrap_key(storage: &[u8; 32], context: &[u8], key: &ContentKey) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    crate::keys::fill_random(&mut nonce);
    let mut out = nonce.to_vec();
    let mut body = key.as_bytes().to_vec();
    let cipher = ChaCha20Poly1305::new(storage.into());
    // Encrypting 32 bytes with a valid key cannot fail.
    if let Ok(tag) =
        cipher.encrypt_inout_detached((&nonce).into(), context, body.as_mut_slice().into())
    {
        out.extend_from_slice(&body);
        out.extend_from_slice(&tag);
    }
    zeroize::Zeroize::zeroize(&mut body);
    out
}

/// Unwraps a content key wrapped by [`wrap_key`] under the same storage key and context.
pub fn unwrap_key(storage: &[u8; 32], context: &[u8], wrapped: &[u8]) -> Option<ContentKey> {
    if wrapped.len() != 12 + 32 + TAG {
        return None;
    }
    let nonce: [u8; 12] = wrapped[..12].try_into().ok()?;
    let mut body = Zeroizing::new([0u8; 32]);
    body.copy_from_slice(&wrapped[12..44]);
    let tag: [u8; TAG] = wrapped[44..].try_into().ok()?;
    ChaCha20Poly1305::new(storage.into())
        .decrypt_inout_detached(
            (&nonce).into(),
            context,
            body.as_mut().into(),
            (&tag).into(),
        )
        .ok()?;
    Some(ContentKey(body))
}

/// Most chunks one request of `/rogatory/evidence/1` may ask for.
pub const MAX_CHUNKS_PER_REQUEST: u64 = 4;
/// Largest encoded chunk request.
pub const MAX_REQUEST_BYTES: usize = 256;
/// Largest response: a status byte and the chunks asked for.
pub const MAX_RESPONSE_BYTES: usize = 1 + MAX_CHUNKS_PER_REQUEST as usize * SEALED_CHUNK;

/// A request of `/rogatory/evidence/1` (spec/EVIDENCE.md §4): sealed chunks `first ..
/// first + count` of item `item` of case `case`, which the requester's manifest listed from the
/// addressee. Deterministic CBOR, a map with these four keys.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkRequest {
    /// The case.
    pub case: crate::ids::CaseId,
    /// The item id, as the holder's manifest gives it.
    pub item: String,
    /// The first chunk.
    pub first: u64,
    /// How many (1 to [`MAX_CHUNKS_PER_REQUEST`]).
    pub count: u64,
}

impl ChunkRequest {
    /// Encodes it.
    pub fn encode(&self) -> Vec<u8> {
        crate::cbor::to_vec(self).unwrap_or_default()
    }

    /// Decodes and checks a request.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let r: Self = crate::cbor::from_slice(bytes, MAX_REQUEST_BYTES, "chunk request")
            .map_err(|e| e.to_string())?;
        if r.count == 0 || r.count > MAX_CHUNKS_PER_REQUEST {
            return Err(format!(
                "a request asks for 1 to {MAX_CHUNKS_PER_REQUEST} chunks, not {}",
                r.count
            ));
        }
        if r.item.is_empty() || r.item.len() > 64 {
            return Err("the item id is empty or longer than 64 bytes".into());
        }
        Ok(r)
    }
}

/// The status byte that starts a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ChunkStatus {
    /// The chunks follow, one after another.
    Ok = 0,
    /// No such item for this requester (never listed to it, or not held here).
    Unknown = 1,
    /// The chunks asked for are not all within the item.
    OutOfRange = 2,
    /// Held, but cannot be read now (a disk error); ask again later.
    Unavailable = 3,
    /// The request did not parse.
    BadRequest = 4,
}

impl ChunkStatus {
    /// From its byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Ok,
            1 => Self::Unknown,
            2 => Self::OutOfRange,
            3 => Self::Unavailable,
            4 => Self::BadRequest,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_offsets() {
        assert_eq!(chunks(0), 1);
        assert_eq!(chunks(1), 1);
        assert_eq!(chunks(CHUNK as u64), 1);
        assert_eq!(chunks(CHUNK as u64 + 1), 2);
        assert_eq!(plain_len(0, 0), Ok(0));
        assert_eq!(plain_len(CHUNK as u64 + 5, 1), Ok(5));
        assert!(plain_len(10, 1).is_err());
        assert_eq!(sealed_len(0), TAG as u64);
        assert_eq!(
            sealed_len(2 * CHUNK as u64 + 1),
            2 * CHUNK as u64 + 1 + 3 * TAG as u64
        );
        assert_eq!(sealed_offset(2), 2 * SEALED_CHUNK as u64);
        assert_eq!(nonce(1, true), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(nonce(258, false)[9..], [1, 2, 0]);
    }

    #[test]
    fn a_chunk_opens_only_in_its_place_with_its_key() {
        let key = ContentKey::from_bytes([7; 32]);
        let size = CHUNK as u64 + 3;
        let mut c0 = vec![0xab; CHUNK];
        seal_chunk(&key, size, 0, &mut c0).unwrap();
        let mut c1 = b"end".to_vec();
        seal_chunk(&key, size, 1, &mut c1).unwrap();
        assert_eq!(c1.len(), 3 + TAG);
        // Swapped, or the first taken as the last (a truncated stream), or another key.
        let mut x = c1.clone();
        assert!(open_chunk(&key, size, 0, &mut x).is_err());
        let mut x = c0.clone();
        assert_eq!(
            open_chunk(&key, CHUNK as u64, 0, &mut x),
            Err(ChunkError::Corrupt { index: 0 })
        );
        let mut x = c1.clone();
        assert!(open_chunk(&ContentKey::from_bytes([8; 32]), size, 1, &mut x).is_err());
        let mut x = c1.clone();
        x[0] ^= 1;
        assert!(open_chunk(&key, size, 1, &mut x).is_err());
        // In place, with the right key.
        open_chunk(&key, size, 0, &mut c0).unwrap();
        assert_eq!(c0, vec![0xab; CHUNK]);
        open_chunk(&key, size, 1, &mut c1).unwrap();
        assert_eq!(c1, b"end");
        // The empty item is one empty chunk, sealed all the same.
        let mut e = Vec::new();
        seal_chunk(&key, 0, 0, &mut e).unwrap();
        assert_eq!(e.len(), TAG);
        open_chunk(&key, 0, 0, &mut e).unwrap();
        assert!(e.is_empty());
    }

    #[test]
    fn chunk_requests_round_trip_and_bounds_are_enforced() {
        let r = ChunkRequest {
            case: crate::ids::CaseId::from_bytes([1; 16]),
            item: "E1".into(),
            first: 7,
            count: 4,
        };
        assert_eq!(ChunkRequest::decode(&r.encode()), Ok(r.clone()));
        for bad in [0, MAX_CHUNKS_PER_REQUEST + 1] {
            let x = ChunkRequest {
                count: bad,
                ..r.clone()
            };
            assert!(ChunkRequest::decode(&x.encode()).is_err());
        }
        assert!(ChunkRequest::decode(&[0xff; 10]).is_err());
        assert_eq!(ChunkStatus::from_byte(2), Some(ChunkStatus::OutOfRange));
        assert_eq!(ChunkStatus::from_byte(9), None);
    }

    #[test]
    fn wrapped_keys_open_only_with_their_storage_key_and_context() {
        let key = ContentKey::generate();
        let w = wrap_key(&[1; 32], b"case/E1", &key);
        assert_eq!(w.len(), 60);
        let back = unwrap_key(&[1; 32], b"case/E1", &w).unwrap();
        assert_eq!(back.as_bytes(), key.as_bytes());
        assert!(unwrap_key(&[2; 32], b"case/E1", &w).is_none());
        assert!(unwrap_key(&[1; 32], b"case/E2", &w).is_none());
        assert!(unwrap_key(&[1; 32], b"case/E1", &w[1..]).is_none());
        assert_ne!(key.id(), ContentKey::generate().id());
    }
}
