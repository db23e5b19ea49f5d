//! The daemon (`rogatory run`): the wiring of the node's actors, and their shutdown.
//!
//! ```text
//!   partners ──libp2p──▶ net::EventLoop ──Job::Inbound / Receipt──▶ engine (store worker)
//!                           ▲    ▲                                     │  one thread, group
//!          Notice (answers, │    │ WriterEvent                         │  commits, the only
//!          queued, settled) │    └────── evidence::pool (threads) ◀────┤  writer of the store
//!                           └──────────────────────────────────────────┘
//!   clerks ──HTTP──▶ api ──Worker::ask──▶ engine;  api ──NetHandle::status──▶ net
//! ```
//!
//! Start: the keys and the store are opened, the worker started, the swarm built and
//! listening, the evidence pool started, the API bound; signals are taken over; then `api on`
//! is printed and the loop runs. Stop (SIGINT, SIGTERM): the loop stops (no more envelopes
//! taken), the API stops taking requests and finishes those in hand, the evidence pool's
//! threads end (what they synced is recorded; the rest is fetched again at the next start),
//! and the worker finishes the batch in hand and commits it. Receipts not sent are safe: a
//! resend gets the stored one.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use libp2p::Multiaddr;
use rogatory_proto::envelope::Limits;

use crate::engine::{self, Engine, Watch};
use crate::evidence::fetch::Fetcher;
use crate::evidence::pool::{Pool, PoolConfig};
use crate::keydir::KeyDir;
use crate::net::{EventLoop, Parts};
use crate::store::Store;

/// Capacity of the worker's notices to the event loop.
const NOTICES: usize = 4096;

/// What `rogatory run` needs besides the data directory.
pub struct RunOptions {
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// The configuration.
    pub config: crate::config::Config,
}

/// This node's freshness note now: its key history's checkpoint, with a timestamped signature
/// by its current key (spec/KEYS.md §7.6).
fn fresh_note(kd: &KeyDir) -> Vec<u8> {
    rogatory_proto::keyhist::fresh::sign_fresh(
        &kd.history,
        &kd.keys.signing,
        rogatory_proto::time::now_unix(),
    )
    .unwrap_or_else(|e| {
        tracing::error!("cannot sign this node's freshness note: {e}");
        Vec::new()
    })
}

/// How a run of the node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stopped by a signal.
    Stopped,
    /// Stopped to start again on new keys (`POST /v1/keys/reload`).
    Restart,
}

/// Runs the node until SIGINT or SIGTERM (or until asked to restart on new keys): listens,
/// answers envelopes from pinned partners, delivers the outbox, fetches and serves evidence,
/// and serves the local API.
pub async fn run(dir: &Path, opts: RunOptions) -> Result<Outcome> {
    let kd = Arc::new(KeyDir::load(dir)?);
    let store = Arc::new(
        Store::open(dir)
            .context("cannot open the store")?
            .with_record_keys(crate::store::RecordKeys::new(&kd.keys))
            .with_earlier_keys(
                kd.history
                    .cards()
                    .iter()
                    .map(|c| c.signing_key().clone())
                    .filter(|k| k != kd.card.signing_key())
                    .collect(),
            ),
    );
    let pinned = crate::net::pinned_peers(dir)?;
    let trust = Arc::new(crate::trust::Trust::load(dir)?);
    let limits = Limits {
        max_envelope_bytes: opts.config.limits.max_envelope_bytes,
        ..Limits::default()
    };
    let mut swarm = crate::net::swarm(&kd)?;
    let me = kd.card.id().clone();
    let peer = *swarm.local_peer_id();

    // The store worker, and what it tells the event loop.
    let counters = Arc::new(crate::engine::counters::Counters::default());
    let watch = Arc::new(Watch::default());
    let (notice_tx, notices) = tokio::sync::mpsc::channel(NOTICES);
    let (worker, worker_thread) = engine::spawn(
        Engine::new(
            Arc::clone(&store),
            Arc::clone(&kd),
            Arc::clone(&trust),
            limits,
            crate::evidence::Quotas::from_config(&opts.config.evidence, dir),
        )
        .with_policy(crate::engine::receive::SignaturePolicy {
            signed: opts.config.approval.partners_signed.clone(),
            validated: opts.config.approval.partners_validated.clone(),
        })
        .with_counters(Arc::clone(&counters)),
        opts.config.limits.store_queue,
        notice_tx,
        Arc::clone(&watch),
    )?;

    for addr in &opts.listen {
        swarm.listen_on(addr.clone()).map_err(|e| {
            anyhow::anyhow!("cannot listen on {addr}: {e} (is the port in use by another node?)")
        })?;
    }
    // The outbox as it stands: the loop reads nothing itself.
    let mut queued = Vec::new();
    for (order, id) in store.queued()? {
        if let Some(entry) = store.outbox_entry(&id)? {
            queued.push((order, id, entry.to));
        }
    }

    // Evidence: items listed by partners fetched by a bounded pool, resuming where the last
    // run stopped.
    let (writer_tx, writer_events) = tokio::sync::mpsc::channel(256);
    let evidence = &opts.config.evidence;
    let (pool, queue) = Pool::start(
        PoolConfig {
            data: dir.to_path_buf(),
            store: Arc::clone(&store),
            recorder: Arc::new(worker.clone()),
            storage: kd.keys.storage_key(),
            sync_every: evidence.sync_every_mib << 20,
            max_active: evidence.max_active_items,
            keep_free: evidence.keep_free_mib << 20,
        },
        writer_tx,
    )?;

    // Envelopes from partners are opened by a few threads in front of the worker, in order.
    let (opener, open_pool) = engine::OpenPool::start(
        opts.config.limits.open_threads(),
        Arc::clone(&kd),
        Arc::clone(&trust),
        limits,
        worker.clone(),
    )?;

    let (net, event_loop) = EventLoop::new(Parts {
        swarm,
        partners: pinned.into_iter().collect(),
        queued,
        delivery: opts.config.delivery.clone(),
        worker: worker.clone(),
        opener,
        limits,
        notices,
        writer_events,
        fetcher: Fetcher::new(queue),
        store: Arc::clone(&store),
        data: dir.to_path_buf(),
        trust: Arc::clone(&trust),
        fresh: fresh_note(&kd),
        me: Arc::clone(&kd),
        introductions: crate::keydir::own_introductions(dir)?,
        trust_config: opts.config.trust.clone(),
    });
    // This node says again, every refresh, that its key history is the one it serves.
    let refresher = {
        let (kd, net, every) = (Arc::clone(&kd), net.clone(), opts.config.trust.refresh());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                net.set_fresh(fresh_note(&kd)).await;
            }
        })
    };

    // The local API.
    let restart = Arc::new(tokio::sync::Notify::new());
    let token = crate::api::new_token(dir)?;
    let api_state = Arc::new(crate::api::ApiState {
        data: dir.to_path_buf(),
        watch: Arc::clone(&watch),
        store: Arc::clone(&store),
        me: Arc::clone(&kd),
        trust: Arc::clone(&trust),
        limits,
        worker: worker.clone(),
        net: net.clone(),
        peer_id: peer.to_string(),
        token_hash: rogatory_proto::ids::Sha256Digest::of(token.as_bytes()),
        restart: Arc::clone(&restart),
        accounts: crate::people::Accounts::new(dir),
        approval: opts.config.approval.required.clone(),
        signed: opts.config.approval.signed.clone(),
        validated: opts.config.approval.validated.clone(),
        stats_threshold: opts.config.stats.threshold,
        counters,
    });
    drop(token);
    drop(worker);
    let (stop_api, api_stopped) = tokio::sync::watch::channel(false);
    let agency = me.to_string();
    let (api_addr, api_task) = crate::api::start(
        dir,
        opts.config.api.bind,
        api_state,
        api_stopped,
        |api, addr| crate::console::with_console(api, addr, &agency, dir),
    )
    .await?;

    // Deadlines passed or near, in the log before anything else happens.
    crate::cases::log_deadlines(&store);
    let deadline_watch = tokio::spawn(crate::cases::watch_deadlines(Arc::clone(&store)));
    // Signals are taken over before the node says it is up: a SIGTERM right after `api on`
    // stops it cleanly instead of killing it.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    println!("api on {api_addr}");
    println!("console on http://{api_addr}/");
    println!("{me} running as peer {peer}");
    tracing::info!(agency = %me, %peer, api = %api_addr, "node started");

    let mut event_loop = tokio::spawn(event_loop.run());
    let mut outcome = Outcome::Stopped;
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = term.recv() => {}
        () = restart.notified() => outcome = Outcome::Restart,
        _ = &mut event_loop => tracing::error!("the event loop ended on its own"),
    }
    tracing::info!("stopping");
    net.stop().await;
    let _ = event_loop.await;
    let _ = std::fs::remove_file(dir.join(crate::api::ADDR_FILE));
    deadline_watch.abort();
    refresher.abort();
    let _ = stop_api.send(true);
    let _ = api_task.await;
    // The loop has gone with the items' channels and the opener: the pools' threads end (what
    // was being opened reaches the worker); then nothing but the worker's own queue is left, and the worker ends once it has committed what it holds.
    let _ = tokio::task::spawn_blocking(move || pool.close()).await;
    let _ = tokio::task::spawn_blocking(move || open_pool.close()).await;
    let _ = tokio::task::spawn_blocking(move || worker_thread.join()).await;
    println!("{me} stopped");
    Ok(outcome)
}
