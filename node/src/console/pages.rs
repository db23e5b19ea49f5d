//! The console's pages. Each reads and acts through the local API as the signed-in official
//! ([`Console::call`]), and renders what a clerk needs at a glance.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use maud::{Markup, PreEscaped, html};
use rogatory_proto::case::Side;
use rogatory_proto::message::{MlaStatus, RefusalGround};
use serde_json::{Value, json};

use super::render::{Page, csrf, enc, notice, short, when};
use super::{Console, Failure, Signed, Who, field, fields, form, see_other};
use crate::api::wire::{
    AlertRow, CaseSummary, CaseView, DeadlineRow, DraftRow, InboxRow, OutboxRow, Status,
};
use crate::people::Permission;

/// Today: what needs someone now.
pub(super) async fn today(State(c): State<Arc<Console>>, Signed(who): Signed) -> Page {
    let l = who.lang;
    let cases: Vec<CaseSummary> = c.get(&who, "/v1/cases").await?;
    let deadlines: Vec<DeadlineRow> = c.get(&who, "/v1/deadlines?within=7").await?;
    let drafts: Vec<DraftRow> = c.get(&who, "/v1/drafts").await?;
    let status: Status = c.get(&who, "/v1/status").await?;
    let alerts: Vec<AlertRow> = c.get(&who, "/v1/alerts").await?;
    let open = |s: &CaseSummary| {
        !matches!(
            s.status.as_str(),
            "closed" | "withdrawn" | "surrendered" | "discharged"
        )
    };
    let emergencies: Vec<&CaseSummary> = cases.iter().filter(|s| s.emergency && open(s)).collect();
    let waiting: Vec<&DraftRow> = drafts
        .iter()
        .filter(|d| d.state.starts_with("awaiting"))
        .collect();
    let troubled: Vec<_> = status
        .peers
        .iter()
        .filter(|p| {
            p.connections == 0 || p.failures > 0 || p.key_state == "stale" || p.key_state == "held"
        })
        .collect();
    let body = html! {
        section aria-labelledby="h-emergencies" {
            h2 id="h-emergencies" { (l.t("today-emergencies")) " (" (emergencies.len()) ")" }
            @if emergencies.is_empty() { p { (l.t("none")) } } @else { (case_table(&who, &emergencies)) }
        }
        section aria-labelledby="h-deadlines" {
            h2 id="h-deadlines" { (l.t("today-deadlines")) " (" (deadlines.len()) ")" }
            @if deadlines.is_empty() { p { (l.t("none")) } } @else { (deadline_table(&who, &deadlines, true)) }
        }
        section aria-labelledby="h-drafts" {
            h2 id="h-drafts" { (l.t("today-drafts")) " (" (waiting.len()) ")" }
            @if waiting.is_empty() { p { (l.t("none")) } } @else {
                ul { @for d in &waiting {
                    li { a href="/drafts" { (d.kind) } " " (l.t("drafted-by")) " " (d.drafted_by) ", " (when(l, &d.drafted_at)) " — " (d.state) }
                } }
            }
        }
        section aria-labelledby="h-partners" {
            h2 id="h-partners" { (l.t("today-partners")) " (" (troubled.len()) ")" }
            @if troubled.is_empty() { p { (l.t("none")) } } @else {
                ul { @for p in &troubled {
                    li { a href="/partners" { (p.agency) } ": "
                        @if p.connections == 0 { (l.t("unreachable")) " " }
                        @if p.failures > 0 { (l.t_with("failures-n", &[("n", p.failures.to_string())])) " " }
                        @if p.key_state == "stale" || p.key_state == "held" { (l.t("keys")) " " (p.key_state) }
                    }
                } }
            }
        }
        section aria-labelledby="h-alerts" {
            h2 id="h-alerts" { (l.t("today-alerts")) " (" (alerts.len()) ")" }
            @if alerts.is_empty() { p { (l.t("none")) } } @else {
                table {
                    thead { tr { th scope="col" { (l.t("col-when")) } th scope="col" { (l.t("col-partner")) } th scope="col" { (l.t("col-kind")) } th scope="col" { (l.t("col-detail")) } } }
                    tbody { @for a in alerts.iter().rev().take(20) {
                        tr { td { (when(l, &a.at)) } td { (a.peer) } td { (a.kind) } td { (a.detail) } }
                    } }
                }
            }
        }
    };
    c.page(&who, "/", &l.t("nav-today"), body)
}

fn case_table(who: &Who, cases: &[&CaseSummary]) -> Markup {
    let l = who.lang;
    html! {
        table {
            thead { tr {
                th scope="col" { (l.t("col-case")) } th scope="col" { (l.t("col-kind")) } th scope="col" { (l.t("col-side")) }
                th scope="col" { (l.t("col-partner")) } th scope="col" { (l.t("col-status")) } th scope="col" { (l.t("col-updated")) }
                th scope="col" { (l.t("col-flags")) } th scope="col" { (l.t("col-next-due")) }
            } }
            tbody { @for s in cases {
                tr {
                    td { a href={ "/cases/" (s.case_id) } { (s.reference.clone().unwrap_or_else(|| s.case_id.chars().take(8).collect())) } }
                    td { (s.kind) } td { (s.our_side) } td { (s.peer) }
                    td.status { (s.status) @if s.pending > 0 { " (" (l.t("pending")) ")" } }
                    td { (when(l, &s.updated_at)) }
                    td {
                        @if s.emergency { strong.emergency { (l.t("emergency")) } " " }
                        @if s.overdue > 0 { strong.overdue { (l.t("overdue")) } }
                    }
                    td { @if let Some(d) = &s.next_due { (l.date(d)) } }
                }
            } }
        }
    }
}

fn deadline_table(who: &Who, rows: &[DeadlineRow], link: bool) -> Markup {
    let l = who.lang;
    html! {
        table {
            thead { tr {
                th scope="col" { (l.t("col-due")) } th scope="col" { (l.t("col-case")) } th scope="col" { (l.t("col-partner")) }
                th scope="col" { (l.t("col-what")) } th scope="col" { (l.t("col-source")) } th scope="col" { (l.t("col-state")) }
            } }
            tbody { @for d in rows {
                tr {
                    td { (l.date(&d.due)) }
                    td { @if link { a href={ "/cases/" (d.case_id) } { (short(&d.case_id)) } } @else { (short(&d.case_id)) } }
                    td { (d.peer) } td { (d.what) } td { (d.source) }
                    td {
                        @if let Some(m) = &d.met { (l.t("met")) " " (l.date(m)) }
                        @else if d.overdue { strong.overdue { (l.t("overdue")) } }
                        @else if let Some(n) = d.days_left { (l.t_with("days-left", &[("n", n.to_string())])) }
                    }
                }
            } }
        }
    }
}

/// Cases, filtered by kind, status, partner, overdue or emergency.
pub(super) async fn cases(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    let l = who.lang;
    let all: Vec<CaseSummary> = c.get(&who, "/v1/cases").await?;
    let want = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let shown: Vec<&CaseSummary> = all
        .iter()
        .filter(|s| want("kind").is_none_or(|k| s.kind == k))
        .filter(|s| want("status").is_none_or(|k| s.status == k))
        .filter(|s| want("partner").is_none_or(|k| s.peer == k))
        .filter(|s| want("overdue").is_none() || s.overdue > 0)
        .filter(|s| want("emergency").is_none() || s.emergency)
        .collect();
    let mut kinds: Vec<&str> = all.iter().map(|s| s.kind.as_str()).collect();
    let mut statuses: Vec<&str> = all.iter().map(|s| s.status.as_str()).collect();
    let mut partners: Vec<&str> = all.iter().map(|s| s.peer.as_str()).collect();
    for v in [&mut kinds, &mut statuses, &mut partners] {
        v.sort_unstable();
        v.dedup();
    }
    let select = |name: &str, label: String, options: &[&str]| {
        html! {
            label for=(name) { (label) }
            select id=(name) name=(name) {
                option value="" { (l.t("any")) }
                @for o in options { option value=(o) selected[want(name) == Some(*o)] { (o) } }
            }
        }
    };
    let body = html! {
        form.filters method="get" action="/cases" role="search" {
            (select("kind", l.t("col-kind"), &kinds))
            (select("status", l.t("col-status"), &statuses))
            (select("partner", l.t("col-partner"), &partners))
            label { input type="checkbox" name="overdue" value="1" checked[want("overdue").is_some()]; " " (l.t("overdue")) }
            label { input type="checkbox" name="emergency" value="1" checked[want("emergency").is_some()]; " " (l.t("emergency")) }
            button type="submit" { (l.t("filter")) }
        }
        p { (l.t_with("cases-shown", &[("n", shown.len().to_string()), ("total", all.len().to_string())])) }
        @if !shown.is_empty() { (case_table(&who, &shown)) }
    };
    c.page(&who, "/cases", &l.t("nav-cases"), body)
}

/// The statuses this side may set next in an MLA case.
fn next_statuses(view: &CaseView) -> Vec<MlaStatus> {
    if view.summary.kind != "mla" {
        return Vec::new();
    }
    let side = match view.summary.our_side.as_str() {
        "requested" => Side::Requested,
        _ => Side::Requesting,
    };
    let Ok(current) =
        serde_json::from_value::<MlaStatus>(Value::from(view.summary.status.as_str()))
    else {
        return Vec::new();
    };
    rogatory_proto::case::mla::moves(current, side).to_vec()
}

/// What each status's form asks for.
fn status_fields(who: &Who, s: MlaStatus) -> Markup {
    let l = who.lang;
    let id = |f: &str| format!("{}-{f}", s.as_str());
    html! {
        @match s {
            MlaStatus::Registered => {
                label for=(id("reference")) { (l.t("field-reference")) }
                input id=(id("reference")) name="reference" required;
            }
            MlaStatus::ReturnedDeficient | MlaStatus::MoreInformationRequested => {
                label for=(id("items")) { (l.t("field-items")) }
                textarea id=(id("items")) name="items" required rows="2" {}
            }
            MlaStatus::Postponed => {
                label for=(id("reason")) { (l.t("field-reason")) }
                input id=(id("reason")) name="reason" required;
                label for=(id("until")) { (l.t("field-until")) }
                input id=(id("until")) name="until" type="date" required;
            }
            MlaStatus::Refused => {
                label for=(id("grounds")) { (l.t("field-grounds")) }
                input id=(id("grounds")) name="grounds" required;
                fieldset {
                    legend { (l.t("field-refusal-grounds")) }
                    @for g in RefusalGround::ALL {
                        label { input type="checkbox" name="ground" value=(g.as_str()); " " (g.as_str()) }
                    }
                }
            }
            _ => {}
        }
    }
}

/// One case: its summary, status history as both sides agree on it, the next statuses this
/// side may set, its messages and deadlines.
pub(super) async fn case(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    Path(id): Path<String>,
) -> Page {
    let l = who.lang;
    let v: CaseView = c.get(&who, &format!("/v1/cases/{}", enc(&id))).await?;
    let s = &v.summary;
    let next = if who.may(Permission::Send) {
        next_statuses(&v)
    } else {
        Vec::new()
    };
    let stages = if who.may(Permission::Send) {
        super::extradition::next_stages(&v)
    } else {
        Vec::new()
    };
    let items: Vec<crate::api::wire::EvidenceRow> =
        c.get(&who, &format!("/v1/evidence/{}", enc(&id))).await?;
    let body = html! {
        (notice(l, c.take_notice(&who)))
        dl.summary {
            dt { (l.t("col-case")) } dd { code #case-id { (s.case_id) } }
            dt { (l.t("col-kind")) } dd { (s.kind) }
            dt { (l.t("col-side")) } dd { (s.our_side) }
            dt { (l.t("col-partner")) } dd { (s.peer) }
            dt { (l.t("col-status")) } dd #status { (s.status) }
            @if let Some(r) = &s.reference { dt { (l.t("field-reference")) } dd { (r) } }
            dt { (l.t("col-opened")) } dd { (when(l, &s.opened_at)) }
            @if s.emergency { dt { (l.t("emergency")) } dd { strong.emergency { (l.t("yes")) } } }
        }
        section aria-labelledby="h-history" {
            h2 id="h-history" { (l.t("case-history")) }
            @if v.updates.is_empty() { p { (l.t("none")) } } @else {
                ol #history {
                    @for u in &v.updates {
                        li {
                            span.status { (u.status.clone().or(u.stage.clone()).unwrap_or_default()) }
                            @if let Some(d) = u.update.get("decision").and_then(|d| d.as_str()) { " (" (d) ")" }
                            " — " (u.by) ", " (when(l, &u.at))
                        }
                    }
                }
            }
            @if !v.proposals.is_empty() {
                h3 { (l.t("case-proposals")) }
                ul { @for u in &v.proposals { li { (u.status.clone().or(u.stage.clone()).unwrap_or_default()) " — " (when(l, &u.at)) } } }
            }
            @if !v.refused.is_empty() {
                h3 { (l.t("case-refused")) }
                ul { @for u in &v.refused { li { (u.status.clone().or(u.stage.clone()).unwrap_or_default()) ": " (u.reason.clone().unwrap_or_default()) } } }
            }
        }
        @if !next.is_empty() {
            section aria-labelledby="h-next" {
                h2 id="h-next" { (l.t("case-next")) }
                div.next {
                    @for n in &next {
                        form method="post" action={ "/cases/" (s.case_id) "/update" } {
                            (csrf(&who))
                            input type="hidden" name="status" value=(n.as_str());
                            (status_fields(&who, *n))
                            button type="submit" data-status=(n.as_str()) { (n.as_str()) }
                        }
                    }
                }
            }
        }
        (super::extradition::forms(&who, &v, &stages))
        section aria-labelledby="h-messages" {
            h2 id="h-messages" { (l.t("case-messages")) }
            table {
                thead { tr {
                    th scope="col" { (l.t("col-when")) } th scope="col" { (l.t("col-direction")) } th scope="col" { (l.t("col-from")) }
                    th scope="col" { (l.t("col-to")) } th scope="col" { (l.t("col-kind")) } th scope="col" { (l.t("col-state")) } th scope="col" { (l.t("col-envelope")) }
                } }
                tbody { @for m in &v.messages {
                    tr {
                        td { (when(l, &m.at)) } td { (m.direction) } td { (m.from) } td { (m.to) }
                        td { (m.kind.clone().unwrap_or_default()) }
                        td { (m.state) @if let Some(r) = &m.receipt { " · " (r.event) } }
                        td { (short(&m.envelope_id)) }
                    }
                } }
            }
        }
        section aria-labelledby="h-deadlines" {
            h2 id="h-deadlines" { (l.t("case-deadlines")) }
            @if v.deadlines.is_empty() { p { (l.t("none")) } } @else { (deadline_table(&who, &v.deadlines, false)) }
        }
        (super::evidence::section(&who, &s.case_id, &s.peer, &items))
    };
    let title = format!(
        "{} {}",
        l.t("col-case"),
        s.reference
            .clone()
            .unwrap_or_else(|| s.case_id.chars().take(8).collect())
    );
    c.page(&who, "/cases", &title, body)
}

/// Sets the next status of an MLA case: an `mla-status` message to the partner.
pub(super) async fn update(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Page {
    let f = form(&who, &body)?;
    let status = field(&f, "status");
    let mut u = json!({
        "status": status,
        "effective_at": rogatory_proto::time::format_unix(rogatory_proto::time::now_unix()),
        "grounds": [],
        "items": [],
    });
    let set = |u: &mut Value, k: &str, v: &str| {
        if !v.trim().is_empty() {
            u[k] = Value::from(v.trim());
        }
    };
    set(&mut u, "reference", field(&f, "reference"));
    set(&mut u, "reason", field(&f, "reason"));
    set(&mut u, "until", field(&f, "until"));
    set(&mut u, "note", field(&f, "note"));
    let items: Vec<&str> = field(&f, "items")
        .lines()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    u["items"] = json!(items);
    let grounds = field(&f, "grounds").trim();
    if !grounds.is_empty() {
        u["grounds"] = json!([grounds]);
    }
    let codes = fields(&f, "ground");
    if !codes.is_empty() {
        u["refusal_grounds"] = json!(codes);
    }
    c.tell_partner(&who, &id, "mla-status", u, status).await
}

/// Messages received.
pub(super) async fn inbox(State(c): State<Arc<Console>>, Signed(who): Signed) -> Page {
    let l = who.lang;
    let mut rows: Vec<InboxRow> = c.get(&who, "/v1/inbox").await?;
    rows.sort_by_key(|r| std::cmp::Reverse(r.arrival));
    let body = html! {
        @if rows.is_empty() { p { (l.t("none")) } } @else {
            table #inbox {
                thead { tr {
                    th scope="col" { (l.t("col-received")) } th scope="col" { (l.t("col-from")) } th scope="col" { (l.t("col-kind")) }
                    th scope="col" { (l.t("col-case")) } th scope="col" { (l.t("col-flags")) }
                } }
                tbody { @for r in &rows {
                    tr {
                        td { (when(l, &r.received_at)) } td { (r.from) } td { (r.kind) }
                        td { a href={ "/cases/" (r.case_id) } { (short(&r.case_id)) } }
                        td { @if r.emergency { strong.emergency { (l.t("emergency")) } } }
                    }
                } }
            }
        }
    };
    c.page(&who, "/inbox", &l.t("nav-inbox"), body)
}

/// Messages sent: delivery state, retries, receipts, rejections in words.
pub(super) async fn outbox(State(c): State<Arc<Console>>, Signed(who): Signed) -> Page {
    let l = who.lang;
    let mut rows: Vec<OutboxRow> = c.get(&who, "/v1/outbox").await?;
    rows.reverse();
    let body = html! {
        @if rows.is_empty() { p { (l.t("none")) } } @else {
            table #outbox {
                thead { tr {
                    th scope="col" { (l.t("col-sealed")) } th scope="col" { (l.t("col-to")) } th scope="col" { (l.t("col-case")) }
                    th scope="col" { (l.t("col-state")) } th scope="col" { (l.t("col-detail")) }
                } }
                tbody { @for r in rows.iter().take(500) {
                    tr {
                        td { (when(l, &r.sealed_at)) } td { (r.to) }
                        td { a href={ "/cases/" (r.case_id) } { (short(&r.case_id)) } }
                        td.state { (r.state) }
                        td {
                            @if let Some(rc) = &r.receipt {
                                (rc.event) " " (when(l, &rc.received_at))
                                @if let Some(reason) = &rc.reason { ": " (reason) }
                                @if let Some(d) = &rc.detail { " — " (d) }
                            }
                            @if let Some(n) = r.failures { (l.t_with("failures-n", &[("n", n.to_string())])) " " }
                            @if let Some(s) = r.retry_in_secs { (l.t_with("retry-in", &[("n", format!("{s:.0}"))])) " " }
                            @if let Some(e) = &r.last_error { (e) }
                        }
                    }
                } }
            }
        }
    };
    c.page(&who, "/outbox", &l.t("nav-outbox"), body)
}

/// Drafts waiting for approval, with the approval and rejection forms for those who may.
pub(super) async fn drafts(State(c): State<Arc<Console>>, Signed(who): Signed) -> Page {
    let l = who.lang;
    let mut rows: Vec<DraftRow> = c.get(&who, "/v1/drafts").await?;
    rows.reverse();
    let approver = who.may(Permission::Approve);
    let body = html! {
        (notice(l, c.take_notice(&who)))
        @if rows.is_empty() { p { (l.t("none")) } } @else {
            table #drafts {
                thead { tr {
                    th scope="col" { (l.t("col-draft")) } th scope="col" { (l.t("col-kind")) } th scope="col" { (l.t("col-to")) }
                    th scope="col" { (l.t("col-drafted")) } th scope="col" { (l.t("col-state")) } th scope="col" { (l.t("col-action")) }
                } }
                tbody { @for d in &rows {
                    tr {
                        td { (short(&d.id)) } td { (d.kind) } td { (d.to.join(", ")) }
                        td { (d.drafted_by) ", " (when(l, &d.drafted_at)) }
                        td.state { (d.state) @if let Some(by) = &d.decided_by { " (" (by) ")" } }
                        td {
                            @if approver && d.state == "awaiting-approval" && d.drafted_by != who.user {
                                form method="post" action={ "/drafts/" (d.id) "/approve" } {
                                    (csrf(&who))
                                    button type="submit" { (l.t("approve")) }
                                }
                                form method="post" action={ "/drafts/" (d.id) "/reject" } {
                                    (csrf(&who))
                                    label for={ "reason-" (d.id) } { (l.t("field-reason")) }
                                    input id={ "reason-" (d.id) } name="reason" required;
                                    button type="submit" { (l.t("reject")) }
                                }
                            }
                        }
                    }
                } }
            }
        }
    };
    c.page(&who, "/drafts", &l.t("nav-drafts"), body)
}

/// Approves a draft: it is sealed and sent, signed in the approver's name.
pub(super) async fn approve(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Page {
    form(&who, &body)?;
    let d: DraftRow = c
        .call(
            &who,
            Method::POST,
            &format!("/v1/drafts/{}/approve", enc(&id)),
            None,
        )
        .await?;
    c.flash(&who, "draft-approved", None);
    Ok(see_other(&format!("/cases/{}", enc(&d.case_id))))
}

/// Rejects a draft, with the reason.
pub(super) async fn reject(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Page {
    let f = form(&who, &body)?;
    let _: DraftRow = c
        .call(
            &who,
            Method::POST,
            &format!("/v1/drafts/{}/reject", enc(&id)),
            Some(json!({"reason": field(&f, "reason")})),
        )
        .await?;
    c.flash(&who, "draft-rejected", None);
    Ok(see_other("/drafts"))
}

/// One partner as the directory knows it (`rogatory directory`).
struct Known {
    id: String,
    name: String,
    fingerprint: String,
    statements: usize,
    addresses: Vec<String>,
    confirmed: Option<u64>,
    introduced_by: Option<Vec<String>>,
    witnesses: Vec<String>,
}

/// The partners pinned here, from their key histories in the data directory.
fn directory(data: &std::path::Path) -> anyhow::Result<Vec<Known>> {
    let trust = crate::trust::Trust::load(data)?;
    Ok(crate::keydir::KeyDir::partners(data)?
        .iter()
        .map(|h| {
            let id = h.agency();
            let body = h.current_card().body();
            Known {
                id: id.to_string(),
                name: body.name.clone(),
                fingerprint: h.fingerprint(),
                statements: h.statements().len(),
                addresses: body.addresses.clone(),
                confirmed: trust.fresh_at(id),
                introduced_by: trust.introduced_by(id),
                witnesses: trust.witnessed(id).into_iter().map(|w| w.witness).collect(),
            }
        })
        .collect())
}

/// Partners: their cards (name, root fingerprint, key history, addresses, who introduced and
/// who witnessed them), reachability, queues, key state and freshness.
pub(super) async fn partners(State(c): State<Arc<Console>>, Signed(who): Signed) -> Page {
    let l = who.lang;
    let status: Status = c.get(&who, "/v1/status").await?;
    let data = c.data.clone();
    let known = tokio::task::spawn_blocking(move || directory(&data))
        .await
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    let body = html! {
        table #directory {
            caption { (l.t("partners-cards")) }
            thead { tr {
                th scope="col" { (l.t("col-partner")) } th scope="col" { (l.t("col-name")) }
                th scope="col" { (l.t("col-fingerprint")) } th scope="col" { (l.t("col-keys")) }
                th scope="col" { (l.t("col-confirmed")) } th scope="col" { (l.t("col-introduced")) }
                th scope="col" { (l.t("col-witnesses")) } th scope="col" { (l.t("col-addresses")) }
            } }
            tbody { @for k in &known {
                tr {
                    th scope="row" { (k.id) } td { (k.name) }
                    td { code.fingerprint { (k.fingerprint) } }
                    td { (k.statements) }
                    td { @if let Some(t) = k.confirmed { (when(l, &rogatory_proto::time::format_unix(t))) } }
                    td { (k.introduced_by.as_ref().map(|v| v.join(", ")).unwrap_or_else(|| l.t("pinned-by-fingerprint"))) }
                    td { (k.witnesses.join(", ")) }
                    td { @for a in &k.addresses { code { (a) } " " } }
                }
            } }
        }
        table #partners {
            caption { (l.t("partners-now")) }
            thead { tr {
                th scope="col" { (l.t("col-partner")) } th scope="col" { (l.t("col-connections")) } th scope="col" { (l.t("col-queue")) }
                th scope="col" { (l.t("col-failures")) } th scope="col" { (l.t("col-keys")) } th scope="col" { (l.t("col-confirmed")) }
                th scope="col" { (l.t("col-peer-id")) }
            } }
            tbody { @for p in &status.peers {
                tr {
                    th scope="row" { (p.agency) }
                    td { (p.connections) @if p.connections == 0 { " — " (l.t("unreachable")) } }
                    td { (p.queued) " / " (p.in_flight) }
                    td { (p.failures) @if let Some(e) = &p.last_error { ": " (e) } }
                    td { (p.key_state) }
                    td { @if let Some(age) = p.key_age_secs { (l.t_with("ago", &[("when", rogatory_proto::stats::render::seconds(age))])) } }
                    td { (short(&p.peer_id)) }
                }
            } }
        }
        p { (l.t("partners-help")) }
    };
    c.page(&who, "/partners", &l.t("nav-partners"), body)
}

/// Statistics of a period, with the charts of `rogatory stats --html`.
pub(super) async fn stats(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    let l = who.lang;
    let mut path = "/v1/stats?".to_string();
    for k in ["from", "until"] {
        if let Some(v) = q.get(k).filter(|v| !v.is_empty()) {
            path.push_str(&format!("{k}={}&", enc(v)));
        }
    }
    let figures: rogatory_proto::stats::Figures = c.get(&who, &path).await?;
    let v = |k: &str| q.get(k).cloned().unwrap_or_default();
    let body = html! {
        form.filters method="get" action="/stats" {
            label for="from" { (l.t("field-from")) } input id="from" name="from" type="date" value=(v("from"));
            label for="until" { (l.t("field-until")) } input id="until" name="until" type="date" value=(v("until"));
            button type="submit" { (l.t("filter")) }
        }
        (PreEscaped(rogatory_proto::stats::render::html_body(&figures)))
    };
    c.page(&who, "/stats", &l.t("nav-stats"), body)
}
