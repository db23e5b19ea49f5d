//! Statistics of the node's cases over a period (spec/STATS.md): `GET /v1/stats`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use rogatory_proto::stats::{self, Figures, Params};

use super::wire::{ErrorBody, StatsQuery};
use super::{ApiError, ApiState, Authorized, blocking};

/// Parses a period bound: `YYYY-MM-DD` (the day's first second, or with `end` its last) or
/// `YYYY-MM-DDTHH:MM:SSZ`, as `rogatory-verify --stats` does.
fn bound(s: &str, end: bool) -> Option<u64> {
    rogatory_proto::verify_cli::period_bound(s, end)
}

/// The figures of the cases begun and the messages sent or received in the period: counts by
/// direction, partner, kind, offence (ICCS), measure, urgency, outcome and refusal ground;
/// victims by age band and gender with small counts suppressed; the times from an MLA request
/// to its acknowledgement, registration, execution and closing; extradition deadlines met and
/// missed. The same figures as `rogatory-verify --stats` over the node's export bundles. Needs
/// the `content` permission: a period holding one case shows that case's offences and measures.
#[utoipa::path(get, path = "/v1/stats", tag = "cases", params(StatsQuery),
    responses((status = 200, description = "The figures (format rogatory-stats/1, spec/STATS.md §4)", body = Object),
        (status = 422, description = "Refused as given", body = ErrorBody),
        (status = 500, description = "The node's store failed", body = ErrorBody)))]
pub async fn stats(
    Authorized(user): Authorized,
    State(s): State<Arc<ApiState>>,
    Query(q): Query<StatsQuery>,
) -> Result<Json<Figures>, ApiError> {
    let from = match q.from.as_deref() {
        None => 0,
        Some(f) => bound(f, false).ok_or_else(|| {
            ApiError::invalid(format!(
                "from {f:?}: give YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"
            ))
        })?,
    };
    let until = match q.until.as_deref() {
        None => rogatory_proto::time::now_unix(),
        Some(u) => bound(u, true).ok_or_else(|| {
            ApiError::invalid(format!(
                "until {u:?}: give YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"
            ))
        })?,
    };
    if until < from {
        return Err(ApiError::invalid("the period ends before it starts"));
    }
    let threshold = q.threshold.unwrap_or(s.stats_threshold);
    if threshold < s.stats_threshold {
        return Err(ApiError::invalid(format!(
            "the suppression threshold is at least {} here ([stats] threshold, spec/STATS.md §5)",
            s.stats_threshold
        )));
    }
    let params = Params {
        agency: s.me.card.id().clone(),
        from,
        until,
        threshold,
    };
    // One computation at a time: each opens every envelope of the period again.
    static ONE_AT_A_TIME: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
    let _turn = ONE_AT_A_TIME.acquire().await.map_err(ApiError::internal)?;
    let st = Arc::clone(&s);
    let figures = blocking(move || {
        let material = crate::stats::material(&st.store, &st.me, &st.trust.snapshot(), until)
            .map_err(|e| ApiError::internal(format!("{e:#}")))?;
        Ok(stats::compute(&material, &params))
    })
    .await?;
    tracing::info!(
        user = user.as_deref().unwrap_or("node token"),
        from = %figures.from,
        until = %figures.until,
        cases = figures.cases.total,
        "statistics computed"
    );
    Ok(Json(figures))
}
