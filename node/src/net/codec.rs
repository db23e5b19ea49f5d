//! The bounded request-response codecs of the node's three protocols: `/rogatory/envelope/1`
//! (envelope → receipt), `/rogatory/evidence/1` (chunk request → chunks) and
//! `/rogatory/keys/1` (statements held → key history). Every read is
//! bounded by the message's limit and, for envelopes, by byte budgets per connection and in
//! total; every message ends with its stream.

use std::sync::Arc;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response::{self};

/// The envelope protocol.
pub const ENVELOPE_PROTOCOL: StreamProtocol = StreamProtocol::new("/rogatory/envelope/1");

/// Bytes of envelopes being read from one connection at once (every stream of it together).
pub const READ_BUDGET_PER_CONNECTION: usize = 48 * 1024 * 1024;
/// Bytes of envelopes being read from every connection together.
pub const READ_BUDGET_TOTAL: usize = 384 * 1024 * 1024;

/// A byte budget shared by readers: a reservation that does not fit fails at once (the stream
/// is reset and its sender retries), so waiting readers never pile up.
#[derive(Debug)]
pub struct Budget {
    used: std::sync::atomic::AtomicUsize,
    limit: usize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            used: std::sync::atomic::AtomicUsize::new(0),
            limit,
        }
    }

    fn take(&self, n: usize) -> bool {
        use std::sync::atomic::Ordering;
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let Some(next) = cur.checked_add(n).filter(|v| *v <= self.limit) else {
                return false;
            };
            match self
                .used
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => cur = seen,
            }
        }
    }

    fn give(&self, n: usize) {
        self.used.fetch_sub(n, std::sync::atomic::Ordering::AcqRel);
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// What one read holds of its budgets, given back when it ends (however it ends).
struct Held<'a> {
    budgets: [&'a Budget; 2],
    bytes: usize,
}

impl Held<'_> {
    fn grow(&mut self, n: usize) -> bool {
        if !self.budgets[0].take(n) {
            return false;
        }
        if !self.budgets[1].take(n) {
            self.budgets[0].give(n);
            return false;
        }
        self.bytes += n;
        true
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        for b in self.budgets {
            b.give(self.bytes);
        }
    }
}

/// Reads a stream to its end like [`read_bounded`], each 64 KiB reserved first from the
/// connection's and the node's budgets: when either is spent the read fails (the stream is
/// reset; the sender retries later), so what a peer makes the node hold while it sends is
/// bounded per connection, hence per peer, and in total.
async fn read_budgeted<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: usize,
    connection: &Budget,
    total: &Budget,
) -> std::io::Result<Vec<u8>> {
    let mut held = Held {
        budgets: [connection, total],
        bytes: 0,
    };
    let mut buf: Vec<u8> = Vec::new();
    loop {
        if buf.len() > limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("message larger than {limit} bytes"),
            ));
        }
        // Reserved in steps that double from 8 KiB to 1 MiB: little for small envelopes, few
        // steps for large ones.
        let step = held.bytes.clamp(8 * 1024, 1024 * 1024);
        if buf.len() == held.bytes && !held.grow(step) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                "too many bytes being received from this connection or in all: try again later",
            ));
        }
        let room = held.bytes - buf.len();
        let start = buf.len();
        buf.resize(start + room, 0);
        let n = io.read(&mut buf[start..]).await?;
        buf.truncate(start + n);
        if n == 0 {
            return Ok(buf);
        }
    }
}

/// Length-bounded codec: a request is an envelope, a response a receipt, each read to the end of
/// its stream with a hard limit; requests are read within the connection's and the node's
/// budgets (`read_budgeted`).
///
/// libp2p's request-response behaviour clones its codec once per connection (for the
/// connection's handler), and the handler clones that once per stream. The behaviour's own
/// codec has no connection budget; a clone of it gets a fresh one, which the clones of that
/// clone (its streams) share.
#[derive(Debug)]
pub struct EnvelopeCodec {
    total: Arc<Budget>,
    connection: Option<Arc<Budget>>,
}

impl Default for EnvelopeCodec {
    /// The codec with the node's total budget ([`READ_BUDGET_TOTAL`]).
    fn default() -> Self {
        Self::new(READ_BUDGET_TOTAL)
    }
}

impl EnvelopeCodec {
    /// The codec of a node, with its total read budget.
    pub fn new(total: usize) -> Self {
        Self {
            total: Arc::new(Budget::new(total)),
            connection: None,
        }
    }
}

impl Clone for EnvelopeCodec {
    fn clone(&self) -> Self {
        Self {
            total: Arc::clone(&self.total),
            connection: Some(match &self.connection {
                Some(c) => Arc::clone(c),
                None => Arc::new(Budget::new(READ_BUDGET_PER_CONNECTION)),
            }),
        }
    }
}

/// Reads a stream to its end, refusing more than `limit` bytes. With `reserve`, room for the
/// largest message is taken up front: for large messages many of which are in flight, growing by
/// doubling would reserve up to twice each one (pages never written cost no memory).
pub(crate) async fn read_bounded<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: usize,
    reserve: bool,
) -> std::io::Result<Vec<u8>> {
    let mut buf = if reserve {
        Vec::with_capacity(limit + 1)
    } else {
        Vec::new()
    };
    io.take(limit as u64 + 1).read_to_end(&mut buf).await?;
    if buf.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("message larger than {limit} bytes"),
        ));
    }
    Ok(buf)
}

/// Writes a whole message and closes the stream (the end of the stream ends the message).
pub(crate) async fn write_closed<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
) -> std::io::Result<()> {
    io.write_all(bytes).await?;
    io.close().await
}

impl request_response::Codec for EnvelopeCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        let connection = match &self.connection {
            Some(c) => Arc::clone(c),
            None => Arc::new(Budget::new(READ_BUDGET_PER_CONNECTION)),
        };
        read_budgeted(
            io,
            rogatory_proto::envelope::DEFAULT_MAX_ENVELOPE_BYTES,
            &connection,
            &self.total,
        )
        .await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        read_bounded(io, rogatory_proto::receipt::MAX_RECEIPT_BYTES, false).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> std::io::Result<()> {
        write_closed(io, &req).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> std::io::Result<()> {
        write_closed(io, &res).await
    }
}

/// The evidence protocol.
pub const EVIDENCE_PROTOCOL: StreamProtocol = StreamProtocol::new("/rogatory/evidence/1");

/// The key history protocol (spec/KEYS.md §7).
pub const KEYS_PROTOCOL: StreamProtocol = StreamProtocol::new("/rogatory/keys/1");

/// Codec of `/rogatory/evidence/1` and `/rogatory/keys/1`: a request and a response, each read
/// to the end of its stream with a hard limit. Evidence: a [`ChunkRequest`](rogatory_proto::evidence::ChunkRequest)
/// answered by a status byte and the sealed chunks. Keys: how many statements the asker holds,
/// answered by the key history.
#[derive(Debug, Clone, Copy)]
pub struct BoundedCodec {
    request: usize,
    response: usize,
}

impl BoundedCodec {
    /// The evidence protocol's limits.
    pub const EVIDENCE: Self = Self {
        request: rogatory_proto::evidence::MAX_REQUEST_BYTES,
        response: rogatory_proto::evidence::MAX_RESPONSE_BYTES,
    };
    /// The key history protocol's limits.
    pub const KEYS: Self = Self {
        // A count, or a count and a cosignature of the answerer's key log.
        request: rogatory_proto::keyhist::fresh::MAX_KEY_LOG_NOTE_BYTES + 64,
        // The history, and the notes and introductions that come with it.
        response: rogatory_proto::keyhist::MAX_HISTORY_BYTES + 512 * 1024,
    };
}

/// The evidence protocol's codec.
pub type EvidenceCodec = BoundedCodec;

impl request_response::Codec for BoundedCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        read_bounded(io, self.request, false).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        read_bounded(io, self.response, true).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> std::io::Result<()> {
        write_closed(io, &req).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> std::io::Result<()> {
        write_closed(io, &res).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8], connection: &Budget, total: &Budget) -> std::io::Result<Vec<u8>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut io = futures::io::Cursor::new(bytes.to_vec());
        rt.block_on(read_budgeted(&mut io, 1 << 20, connection, total))
    }

    /// A read takes what it reads from both budgets and gives it back when it ends; one that
    /// does not fit fails at once, and a message beyond the limit is refused.
    #[test]
    fn reads_stay_within_the_connection_s_and_the_node_s_budgets() {
        let (connection, total) = (Budget::new(256 * 1024), Budget::new(1 << 20));
        let msg = vec![7u8; 100_000];
        assert_eq!(read(&msg, &connection, &total).unwrap(), msg);
        assert_eq!((connection.used(), total.used()), (0, 0), "given back");
        // More than the connection may hold at once.
        let big = vec![7u8; 300_000];
        let e = read(&big, &connection, &total).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::OutOfMemory);
        assert_eq!((connection.used(), total.used()), (0, 0));
        // The node's budget spent by others: nothing fits.
        assert!(total.take(1 << 20));
        assert!(read(b"x", &connection, &total).is_err());
        total.give(1 << 20);
        // Beyond the message limit.
        let (c, t) = (Budget::new(4 << 20), Budget::new(4 << 20));
        let e = read(&vec![0u8; (1 << 20) + 1], &c, &t).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        // A clone of the behaviour's codec has a budget of its own; its clones share it.
        let codec = EnvelopeCodec::default();
        let a = codec.clone();
        let (a1, b) = (a.clone(), codec.clone());
        let (ac, a1c, bc) = (
            a.connection.unwrap(),
            a1.connection.unwrap(),
            b.connection.unwrap(),
        );
        assert!(Arc::ptr_eq(&ac, &a1c) && !Arc::ptr_eq(&ac, &bc));
        assert!(Arc::ptr_eq(&a.total, &b.total));
    }
}
