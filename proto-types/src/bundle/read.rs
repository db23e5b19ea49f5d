//! Reading a bundle file as a stream (spec/BUNDLE.md §2–3): its fields in order, each item of
//! each list one at a time, each within its own size limit, so that what the verifier holds
//! never depends on how many items a file lists, and a file is read as often as needed (the
//! verifier reads it twice) without ever being held whole.
//!
//! The CBOR heads (RFC 8949 §3) are read here, from a buffer the reader owns: a log may hold a
//! hundred million entries, each a head and a few bytes, and the reader must also hash the
//! whole file and copy out whole records. (ciborium-ll reads a head byte by byte through its
//! reader and does not give the reader back; ciborium decodes each record once it is copied.)

use std::io::Read;

use sha2::{Digest, Sha256};

use super::BundleError;
use crate::audit::merkle::Hash;

/// Largest card (PROTOCOL.md §3.10).
pub(crate) const MAX_CARD: usize = 64 * 1024;
/// Largest key history read from a bundle's `cards` (a card, or its history: spec/KEYS.md).
pub(crate) const MAX_HISTORY: usize = 1024 * 1024;
/// Most cards in a bundle.
pub(crate) const MAX_CARDS: usize = 256;
/// Largest `tlog-policy`.
pub(crate) const MAX_POLICY: usize = 64 * 1024;
/// Largest signed note (a checkpoint with its cosignatures).
pub(crate) const MAX_NOTE: usize = 64 * 1024;
/// Largest proof text.
pub(crate) const MAX_PROOF: usize = crate::audit::note::MAX_PROOF_BYTES;
/// Largest envelope record: an envelope of the default limit and its receipt.
pub(crate) const MAX_RECORD: usize =
    crate::envelope::DEFAULT_MAX_ENVELOPE_BYTES + crate::receipt::MAX_RECEIPT_BYTES + 1024;
/// Most items of one list (entries excepted: a log may be long, and costs nothing per entry).
pub(crate) const MAX_ITEMS: u64 = 1 << 24;
/// Most nesting in a record.
const MAX_DEPTH: usize = 16;
/// The reader's buffer.
const BUFFER: usize = 256 * 1024;

/// Where a bundle is read from: a file (read again for each pass) or bytes in memory.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A file.
    File(std::path::PathBuf),
    /// Bytes (a bundle built in memory).
    Bytes(std::sync::Arc<Vec<u8>>),
}

impl Source {
    fn open(&self) -> Result<Box<dyn Read + Send + '_>, BundleError> {
        Ok(match self {
            Source::File(p) => Box::new(std::fs::File::open(p)?.take(super::MAX_BUNDLE_BYTES)),
            Source::Bytes(b) => Box::new(b.as_slice()),
        })
    }
}

/// A byte string item, held, or too large to hold (then only its length and its Merkle leaf
/// hash, computed as it streamed past).
pub(crate) enum Blob {
    /// Within the limit.
    Held(Vec<u8>),
    /// Beyond it.
    Over {
        /// Its length.
        len: u64,
        /// `leaf_hash` of its bytes.
        leaf: Hash,
    },
}

/// A CBOR head: major type and argument (definite lengths only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    Uint(u64),
    Other,
    Bytes(u64),
    Text(u64),
    Array(u64),
    Map(u64),
    Tag,
}

/// A bundle being read, field by field.
pub(crate) struct Reader<'a> {
    inner: Box<dyn Read + Send + 'a>,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// The file's hash, over every byte consumed (hashed a buffer at a time).
    hash: Sha256,
    offset: u64,
    /// A copy of what is consumed, while a record is captured.
    capture: Option<Vec<u8>>,
    fields: usize,
}

fn format(e: impl std::fmt::Display) -> BundleError {
    BundleError::Format(e.to_string())
}

impl<'a> Reader<'a> {
    /// Opens a bundle and reads up to its first field.
    pub(crate) fn open(source: &'a Source) -> Result<Self, BundleError> {
        let mut r = Self {
            inner: source.open()?,
            buf: vec![0; BUFFER],
            pos: 0,
            end: 0,
            hash: Sha256::new(),
            offset: 0,
            capture: None,
            fields: 0,
        };
        let n = match r.head()? {
            Head::Map(n) => n,
            _ => return Err(format("a bundle is a CBOR map of definite length")),
        };
        if !(11..=13).contains(&n) {
            return Err(format(format!("a bundle has 11 to 13 fields, not {n}")));
        }
        r.fields = n as usize;
        Ok(r)
    }

    /// Makes at least one byte available; false at the end of the input.
    fn fill(&mut self) -> Result<bool, BundleError> {
        if self.pos < self.end {
            return Ok(true);
        }
        self.hash.update(&self.buf[..self.end]);
        self.pos = 0;
        self.end = 0;
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(n) => {
                    self.end = n;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(BundleError::Io(e)),
            }
        }
    }

    /// Consumes `n` bytes, each run of them given to `sink`.
    fn take(&mut self, mut n: u64, mut sink: impl FnMut(&[u8])) -> Result<(), BundleError> {
        while n > 0 {
            if !self.fill()? {
                return Err(format(format!(
                    "the file ends inside an item (byte {})",
                    self.offset
                )));
            }
            let k = ((self.end - self.pos) as u64).min(n) as usize;
            let run = &self.buf[self.pos..self.pos + k];
            if let Some(c) = self.capture.as_mut() {
                c.extend_from_slice(run);
            }
            sink(run);
            self.pos += k;
            self.offset += k as u64;
            n -= k as u64;
        }
        Ok(())
    }

    fn byte(&mut self) -> Result<u8, BundleError> {
        let mut b = 0;
        self.take(1, |r| b = r[0])?;
        Ok(b)
    }

    fn head(&mut self) -> Result<Head, BundleError> {
        let at = self.offset;
        let first = self.byte()?;
        let info = first & 0x1f;
        let arg = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let mut v = 0u64;
                self.take(1 << (info - 24), |r| {
                    for b in r {
                        v = (v << 8) | u64::from(*b);
                    }
                })?;
                v
            }
            _ => {
                return Err(format(format!(
                    "indefinite lengths and reserved values are not used in a bundle (byte {at})"
                )));
            }
        };
        Ok(match first >> 5 {
            0 => Head::Uint(arg),
            2 => Head::Bytes(arg),
            3 => Head::Text(arg),
            4 => Head::Array(arg),
            5 => Head::Map(arg),
            6 => Head::Tag,
            _ => Head::Other,
        })
    }

    fn read_vec(&mut self, n: u64) -> Result<Vec<u8>, BundleError> {
        let mut v = Vec::with_capacity(n as usize);
        self.take(n, |r| v.extend_from_slice(r))?;
        Ok(v)
    }

    /// The next field's key, which must be `name`.
    pub(crate) fn key(&mut self, name: &str) -> Result<(), BundleError> {
        let k = self.text(64)?;
        if k != name {
            return Err(format(format!(
                "field `{name}` expected (the fields are in the order of spec/BUNDLE.md §2), found `{k}`"
            )));
        }
        Ok(())
    }

    /// The key of the next field, whatever it is.
    pub(crate) fn any_key(&mut self) -> Result<String, BundleError> {
        self.text(64)
    }

    /// A text item of at most `cap` bytes.
    pub(crate) fn text(&mut self, cap: usize) -> Result<String, BundleError> {
        match self.text_or_over(cap)? {
            Ok(t) => Ok(t),
            Err(e) => Err(format(e)),
        }
    }

    /// A text item of at most `cap` bytes; a longer one is read past and given as an error.
    pub(crate) fn text_or_over(
        &mut self,
        cap: usize,
    ) -> Result<Result<String, String>, BundleError> {
        match self.head()? {
            Head::Text(n) if n <= cap as u64 => {
                let b = self.read_vec(n)?;
                Ok(String::from_utf8(b).map_err(|_| "text that is not UTF-8".to_string()))
            }
            Head::Text(n) => {
                self.take(n, |_| {})?;
                Ok(Err(format!(
                    "a text of {n} bytes, where at most {cap} are allowed"
                )))
            }
            _ => Err(format("text expected")),
        }
    }

    /// An unsigned integer.
    pub(crate) fn uint(&mut self) -> Result<u64, BundleError> {
        match self.head()? {
            Head::Uint(n) => Ok(n),
            _ => Err(format("an unsigned integer expected")),
        }
    }

    /// A byte string of at most `cap` bytes, held; a longer one is read past, hashed as a
    /// Merkle leaf.
    pub(crate) fn blob(&mut self, cap: usize) -> Result<Blob, BundleError> {
        let n = match self.head()? {
            Head::Bytes(n) => n,
            _ => return Err(format("a byte string expected")),
        };
        if n <= cap as u64 {
            return Ok(Blob::Held(self.read_vec(n)?));
        }
        let mut h = Sha256::new();
        h.update([0u8]);
        self.take(n, |r| h.update(r))?;
        Ok(Blob::Over {
            len: n,
            leaf: h.finalize().into(),
        })
    }

    /// A byte string of at most `cap` bytes; a longer one is an error.
    pub(crate) fn bytes(&mut self, cap: usize, what: &str) -> Result<Vec<u8>, BundleError> {
        match self.blob(cap)? {
            Blob::Held(b) => Ok(b),
            Blob::Over { len, .. } => Err(format(format!(
                "{what} of {len} bytes, where at most {cap} are allowed"
            ))),
        }
    }

    /// Reads past a byte string.
    pub(crate) fn skip_bytes(&mut self) -> Result<(), BundleError> {
        match self.head()? {
            Head::Bytes(n) => self.take(n, |_| {}),
            _ => Err(format("a byte string expected")),
        }
    }

    /// Reads past one whole data item.
    pub(crate) fn skip_item(&mut self) -> Result<(), BundleError> {
        self.walk(usize::MAX, 0)
    }

    /// A disclosure record (`{envelope: bytes .size 32, key: bytes}`): the envelope id, and the
    /// key if it is at most `cap` bytes.
    pub(crate) fn disclosure(
        &mut self,
        cap: usize,
    ) -> Result<(crate::ids::EnvelopeId, Blob), BundleError> {
        if self.head()? != Head::Map(2) {
            return Err(format("a disclosure is a map of `envelope` and `key`"));
        }
        self.key("envelope")?;
        let id: [u8; 32] = self
            .bytes(32, "an envelope id")?
            .try_into()
            .map_err(|_| format("an envelope id is 32 bytes"))?;
        self.key("key")?;
        Ok((crate::ids::Sha256Digest(id), self.blob(cap)?))
    }

    /// The length of an array (of definite length, at most `most` items).
    pub(crate) fn array(&mut self, most: u64, what: &str) -> Result<u64, BundleError> {
        match self.head()? {
            Head::Array(n) if n <= most => Ok(n),
            Head::Array(n) => Err(format(format!(
                "{n} {what}, where at most {most} are allowed"
            ))),
            _ => Err(format(format!("a list of {what} expected"))),
        }
    }

    /// One whole data item as its encoded bytes (at most `cap`), for a record to decode on its
    /// own.
    pub(crate) fn item(&mut self, cap: usize) -> Result<Vec<u8>, BundleError> {
        self.capture = Some(Vec::new());
        let walked = self.walk(cap, 0);
        let captured = self.capture.take().unwrap_or_default();
        walked?;
        Ok(captured)
    }

    fn captured(&self) -> usize {
        self.capture.as_ref().map_or(0, Vec::len)
    }

    fn walk(&mut self, cap: usize, depth: usize) -> Result<(), BundleError> {
        if depth > MAX_DEPTH {
            return Err(format("a record nested too deeply"));
        }
        let too_big = || format(format!("a record of more than {cap} bytes"));
        if self.captured() > cap {
            return Err(too_big());
        }
        match self.head()? {
            Head::Uint(_) | Head::Other => {}
            Head::Tag => self.walk(cap, depth + 1)?,
            Head::Bytes(n) | Head::Text(n) => {
                if (self.captured() as u64).saturating_add(n) > cap as u64 {
                    return Err(too_big());
                }
                self.take(n, |_| {})?;
            }
            Head::Array(n) => {
                for _ in 0..n {
                    self.walk(cap, depth + 1)?;
                }
            }
            Head::Map(n) => {
                for _ in 0..n.saturating_mul(2) {
                    self.walk(cap, depth + 1)?;
                }
            }
        }
        Ok(())
    }

    /// The end of the bundle: nothing may follow. Returns the SHA-256 of the whole file.
    pub(crate) fn finish(mut self) -> Result<[u8; 32], BundleError> {
        if self.fill()? {
            return Err(format("bytes follow the bundle"));
        }
        Ok(self.hash.finalize().into())
    }

    /// The number of fields the bundle's map declares.
    pub(crate) fn fields(&self) -> usize {
        self.fields
    }
}
