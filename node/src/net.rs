//! The network: libp2p (TCP + Noise + Yamux, ping) with the agency's Ed25519 key as the node's
//! identity, and the request-response protocol `/rogatory/envelope/1` (envelope → receipt).
//!
//! One event loop owns the swarm; one worker thread runs the inbox (verification and durable
//! commits) in arrival order, connected by bounded queues. Only pinned partners are served: a connection from any other
//! peer id is closed as soon as Noise has authenticated it, and a request from one is dropped.
//! Every read is bounded by the envelope limit; receipts by the receipt limit.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, identity, noise, ping, tcp, yamux};
use rogatory_proto::card::AgencyCard;
use rogatory_proto::envelope::Limits;
use rogatory_proto::ids::AgencyId;

use crate::keydir::KeyDir;
use crate::store::Store;

/// The envelope protocol.
pub const ENVELOPE_PROTOCOL: StreamProtocol = StreamProtocol::new("/rogatory/envelope/1");

/// Length-bounded codec: a request is an envelope, a response a receipt, each read to the end of
/// its stream with a hard limit.
#[derive(Debug, Clone, Default)]
pub struct EnvelopeCodec;

async fn read_bounded<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: usize,
) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io.take(limit as u64 + 1).read_to_end(&mut buf).await?;
    if buf.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("message larger than {limit} bytes"),
        ));
    }
    Ok(buf)
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
        read_bounded(io, rogatory_proto::envelope::DEFAULT_MAX_ENVELOPE_BYTES).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        read_bounded(io, rogatory_proto::receipt::MAX_RECEIPT_BYTES).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> std::io::Result<()> {
        io.write_all(&req).await?;
        io.close().await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> std::io::Result<()> {
        io.write_all(&res).await?;
        io.close().await
    }
}

/// The node's behaviours.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    envelope: request_response::Behaviour<EnvelopeCodec>,
    ping: ping::Behaviour,
}

/// Capacity of the queues between the event loop and the envelope worker.
const QUEUE: usize = 64;

type Work = (
    AgencyId,
    Vec<u8>,
    request_response::ResponseChannel<Vec<u8>>,
);
type Done = (request_response::ResponseChannel<Vec<u8>>, Vec<u8>);

/// The libp2p peer id of an agency: its card's Ed25519 signing key.
pub fn peer_id(card: &AgencyCard) -> Result<PeerId> {
    let pk = identity::ed25519::PublicKey::try_from_bytes(card.signing_key().as_bytes())
        .context("the card's signing key is not a libp2p Ed25519 key")?;
    Ok(identity::PublicKey::from(pk).to_peer_id())
}

fn swarm(kd: &KeyDir) -> Result<libp2p::Swarm<Behaviour>> {
    let keypair = identity::Keypair::ed25519_from_bytes(*kd.keys.signing.seed())
        .context("the agency key as a libp2p identity")?;
    let cfg = request_response::Config::default().with_request_timeout(Duration::from_secs(60));
    Ok(libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|_| Behaviour {
            envelope: request_response::Behaviour::new(
                [(ENVELOPE_PROTOCOL, ProtocolSupport::Full)],
                cfg,
            ),
            ping: ping::Behaviour::default(),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build())
}

fn pinned_peers(dir: &Path) -> Result<HashMap<PeerId, AgencyCard>> {
    KeyDir::pinned(dir)?
        .into_iter()
        .map(|c| Ok((peer_id(&c)?, c)))
        .collect()
}

/// Runs the node until SIGINT or SIGTERM: listens, and answers envelopes from pinned partners.
pub async fn run(dir: &Path, listen: &[Multiaddr]) -> Result<()> {
    let kd = KeyDir::load(dir)?;
    let store = Store::open(dir).context("cannot open the store")?;
    let pinned = pinned_peers(dir)?;
    let trusted: Vec<AgencyCard> = pinned.values().cloned().collect();
    let mut swarm = swarm(&kd)?;
    let me = kd.card.id().clone();
    // Envelopes are processed by one worker thread, in arrival order, so that the fsyncs of
    // durable commits never stall the event loop. Both queues are bounded: when the work queue
    // is full, a request gets no answer and its sender retries.
    let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<Work>(QUEUE);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<Done>(QUEUE);
    let worker = std::thread::spawn(move || {
        for (from, request, channel) in work_rx {
            let now = rogatory_proto::time::now_unix();
            let outcome = crate::inbox::receive(
                &store,
                &kd,
                &trusted,
                &from,
                &request,
                now,
                &Limits::default(),
            );
            let receipt = match outcome {
                Ok(crate::inbox::Outcome::Accepted {
                    receipt,
                    envelope_id,
                    ..
                }) => {
                    println!("accepted envelope {envelope_id} from {from}");
                    receipt
                }
                Ok(crate::inbox::Outcome::Replay { receipt }) => receipt,
                Ok(crate::inbox::Outcome::Rejected { receipt, reason }) => {
                    println!("rejected an envelope from {from}: {}", reason.name());
                    receipt
                }
                // Nothing durable: no receipt; the sender retries.
                Err(e) => {
                    eprintln!("error: could not process an envelope from {from}: {e:#}");
                    continue;
                }
            };
            if done_tx.blocking_send((channel, receipt)).is_err() {
                break;
            }
        }
    });
    for addr in listen {
        swarm
            .listen_on(addr.clone())
            .with_context(|| format!("cannot listen on {addr}"))?;
    }
    println!("{me} running as peer {}", swarm.local_peer_id());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            Some((channel, receipt)) = done_rx.recv() => {
                let _ = swarm.behaviour_mut().envelope.send_response(channel, receipt);
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { address, .. } => {
                    println!("listening on {address}");
                }
                SwarmEvent::ConnectionEstablished { peer_id, connection_id, .. }
                    if !pinned.contains_key(&peer_id) =>
                {
                    eprintln!("refused a connection from {peer_id}: not a pinned partner");
                    swarm.close_connection(connection_id);
                }
                SwarmEvent::Behaviour(BehaviourEvent::Envelope(request_response::Event::Message {
                    peer,
                    message: request_response::Message::Request { request, channel, .. },
                    ..
                })) => {
                    let Some(card) = pinned.get(&peer) else {
                        continue;
                    };
                    let from: AgencyId = card.id().clone();
                    if work_tx.try_send((from.clone(), request, channel)).is_err() {
                        eprintln!("busy: an envelope from {from} was not taken; it will be resent");
                    }
                }
                _ => {}
            }
        }
    }
    // Finish the envelope in hand: the worker ends when its queue closes. Receipts not yet sent
    // are safe: each envelope taken was committed, and a resend gets its stored receipt.
    drop(work_tx);
    drop(done_rx);
    let _ = worker.join();
    println!("{me} stopped");
    Ok(())
}

/// Delivers one envelope to the partner whose card is given, at `addr`, and returns its receipt.
pub async fn deliver(
    kd: &KeyDir,
    card: &AgencyCard,
    addr: Multiaddr,
    envelope: Vec<u8>,
) -> Result<Vec<u8>> {
    let to = card.id();
    let peer = peer_id(card)?;
    let mut swarm = swarm(kd)?;
    swarm.add_peer_address(peer, addr.clone());
    swarm
        .dial(peer)
        .with_context(|| format!("cannot dial {to} at {addr}"))?;
    let request = swarm.behaviour_mut().envelope.send_request(&peer, envelope);
    let deadline = tokio::time::sleep(Duration::from_secs(90));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => bail!("no receipt from {to} within 90 s"),
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(BehaviourEvent::Envelope(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response }, ..
                })) if request_id == request => return Ok(response),
                SwarmEvent::Behaviour(BehaviourEvent::Envelope(request_response::Event::OutboundFailure { error, .. })) => {
                    bail!("delivery to {to} at {addr} failed: {error}")
                }
                SwarmEvent::OutgoingConnectionError { error, .. } => bail!("cannot connect to {to} at {addr}: {error}"),
                _ => {}
            }
        }
    }
}
