//! `GET /metrics`: the node's state in the OpenMetrics 1.0 text format (which Prometheus
//! scrapes), for the monitoring an agency's operations team already runs. Each scrape reads the event
//! loop's status and the store's counts, as `GET /v1/status` does; nothing is kept between
//! scrapes. The names are listed in docs/operating.md ("Monitoring").

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{ApiError, ApiState, Authorized, blocking};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Partner {
    partner: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartnerState {
    partner: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Direction {
    direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct State_ {
    state: String,
}

/// A family of gauges by partner, registered under `name`.
fn by_partner(reg: &mut Registry, name: &str, help: &str) -> Family<Partner, Gauge> {
    let f = Family::<Partner, Gauge>::default();
    reg.register(name, help, f.clone());
    f
}

fn gauge(reg: &mut Registry, name: &str, help: &str, value: u64) {
    let g = Gauge::<i64>::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    reg.register(name, help, g);
}

fn int(v: impl TryInto<i64>) -> i64 {
    v.try_into().unwrap_or(i64::MAX)
}

/// The node's metrics.
#[utoipa::path(get, path = "/metrics", tag = "status",
    responses((status = 200, description = "OpenMetrics 1.0 text format", content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "No valid bearer token", body = super::wire::ErrorBody)))]
pub async fn metrics(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
) -> Result<impl IntoResponse, ApiError> {
    let net = s.net.status().await.unwrap_or_default();
    let store = Arc::clone(&s.store);
    // Table lengths only: a scrape decodes no record.
    let counts = blocking(move || Ok(store.counts()?)).await?;

    let mut reg = Registry::with_prefix("rogatory");
    gauge(
        &mut reg,
        "inbox_envelopes",
        "Envelopes accepted from partners and held",
        counts.received,
    );
    let outbox = Family::<State_, Gauge>::default();
    reg.register(
        "outbox_envelopes",
        "Envelopes sealed here, by state: queued (not yet receipted) or settled",
        outbox.clone(),
    );
    outbox
        .get_or_create(&State_ {
            state: "queued".into(),
        })
        .set(int(counts.queued));
    outbox
        .get_or_create(&State_ {
            state: "settled".into(),
        })
        .set(int(counts.sent.saturating_sub(counts.queued)));
    gauge(
        &mut reg,
        "inbound_pending",
        "Envelopes received and not yet answered",
        net.inbound_pending as u64,
    );
    gauge(
        &mut reg,
        "evidence_transfers_active",
        "Evidence items being fetched now",
        net.evidence_active as u64,
    );
    gauge(
        &mut reg,
        "evidence_transfers_waiting",
        "Evidence items waiting for a fetcher",
        net.evidence_waiting as u64,
    );
    gauge(
        &mut reg,
        "alerts",
        "Alerts recorded (rogatory audit alerts): each one needs a person",
        counts.alerts,
    );
    gauge(
        &mut reg,
        "key_history_statements",
        "Statements in this agency's key history",
        s.me.history.statements().len() as u64,
    );

    let connections = by_partner(
        &mut reg,
        "partner_connections",
        "Open connections to the partner",
    );
    let queued = by_partner(
        &mut reg,
        "partner_queue_depth",
        "Envelopes for the partner not yet sent",
    );
    let in_flight = by_partner(
        &mut reg,
        "partner_in_flight",
        "Envelopes sent to the partner and awaiting its receipt",
    );
    let failures = by_partner(
        &mut reg,
        "partner_delivery_failures",
        "Failed deliveries to the partner since the last success",
    );
    let key_age = by_partner(
        &mut reg,
        "partner_key_age_seconds",
        "Seconds since the partner last confirmed its key history",
    );
    let held = by_partner(
        &mut reg,
        "partner_held",
        "1 while messages to the partner wait because its key history is too old",
    );
    let settled = Family::<Partner, Counter>::default();
    reg.register(
        "partner_settled",
        "Envelopes to the partner settled by its receipt since the node started",
        settled.clone(),
    );
    let key_state = Family::<PartnerState, Gauge>::default();
    reg.register(
        "partner_key_state",
        "1 for the partner's key history state: fresh, stale, held or unconfirmed",
        key_state.clone(),
    );
    for p in &net.peers {
        let l = Partner {
            partner: p.agency.clone(),
        };
        connections.get_or_create(&l).set(int(p.connections));
        queued.get_or_create(&l).set(int(p.queued));
        in_flight.get_or_create(&l).set(int(p.in_flight));
        failures.get_or_create(&l).set(int(p.failures));
        if let Some(age) = p.key_age_secs {
            key_age.get_or_create(&l).set(int(age));
        }
        held.get_or_create(&l).set(i64::from(p.key_state == "held"));
        settled.get_or_create(&l).inc_by(p.settled);
        key_state
            .get_or_create(&PartnerState {
                partner: p.agency.clone(),
                state: p.key_state.clone(),
            })
            .set(1);
    }
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct Outcome {
        outcome: String,
    }
    for (name, help, counts) in [
        (
            "envelopes_received",
            "Partners' envelopes since the node started, by outcome: accepted, or the reason code's name of the refusal",
            s.counters.received_by_outcome(),
        ),
        (
            "envelopes_settled",
            "This node's envelopes settled by their addressee's receipt since the node started, by outcome: accepted, or the reason code's name of the refusal",
            s.counters.settled_by_outcome(),
        ),
    ] {
        let f = Family::<Outcome, Counter>::default();
        reg.register(name, help, f.clone());
        // Always there, at 0 before the first: a dashboard's rate starts from it.
        f.get_or_create(&Outcome {
            outcome: "accepted".into(),
        })
        .inc_by(0);
        for (outcome, n) in counts {
            f.get_or_create(&Outcome {
                outcome: outcome.to_string(),
            })
            .inc_by(n);
        }
    }
    reg.register(
        "delivery_seconds",
        "Seconds from sealing one of this node's envelopes (whole seconds) to its addressee's receipt, since the node started",
        s.counters.delivery.clone(),
    );
    let evidence = Family::<Direction, Counter>::default();
    reg.register(
        "evidence_bytes",
        "Sealed evidence bytes moved since the process started: fetched from partners (each chunk authenticated) or served to them",
        evidence.clone(),
    );
    for (direction, n) in [
        ("fetched", &crate::evidence::BYTES_FETCHED),
        ("served", &crate::evidence::BYTES_SERVED),
    ] {
        evidence
            .get_or_create(&Direction {
                direction: direction.into(),
            })
            .inc_by(n.load(std::sync::atomic::Ordering::Relaxed));
    }
    let appended = Counter::<u64>::default();
    appended.inc_by(s.store.audit_appended());
    reg.register(
        "audit_entries_appended",
        "Audit entries appended to the cases' logs by committed transactions since the node started",
        appended,
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &reg).map_err(ApiError::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    ))
}
