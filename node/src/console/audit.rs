//! The console's audit pages: a case's log with an inclusion proof for each entry, its signed
//! checkpoint with the partners' cosignatures, the case's export bundle for an auditor, and the
//! verification of bundles an auditor uploads, with the report `rogatory-verify --html` writes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde_json::json;

use super::files::{csrf_header, fresh, room, save, stream};
use super::render::{Page, enc, short, when};
use super::{Console, Failure, Signed};
use crate::api::wire::{CheckpointText, Exported, LogEntry, ProofText};

/// The largest card uploaded (an agency card or key history).
const MAX_CARD: u64 = 1 << 20;
/// The largest bundle uploaded for verification (spec/BUNDLE.md §3 bounds what is read).
const MAX_BUNDLE: u64 = 4 << 30;
/// Bundles verified at once, across sessions.
static VERIFYING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
/// Files being received at once, across sessions (cards, bundles to verify).
static SAVING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// The caller, asked of the API again: an account disabled since sign-in is refused here too.
async fn still(
    c: &Console,
    who: &super::Who,
    need: crate::people::Permission,
) -> Result<(), Failure> {
    let me: crate::api::wire::Me = c.get(who, "/v1/me").await?;
    if me.permissions.contains(&need) {
        Ok(())
    } else {
        Err(Failure(
            StatusCode::FORBIDDEN,
            format!("{} may not do this ({need:?})", who.user),
        ))
    }
}

/// A case's audit log, its checkpoint, and its export for an auditor.
pub(super) async fn page(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    Path(case): Path<String>,
) -> Page {
    let l = who.lang;
    let entries: Vec<LogEntry> = c
        .get(&who, &format!("/v1/audit/{}/log", enc(&case)))
        .await?;
    let cp: CheckpointText = c
        .get(&who, &format!("/v1/audit/{}/checkpoint", enc(&case)))
        .await?;
    let s = |e: &LogEntry, k: &str| {
        e.entry
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let body = html! {
        p { a href={ "/cases/" (case) } { (l.t("back-to-case")) } }
        section aria-labelledby="h-checkpoint" {
            h2 id="h-checkpoint" { (l.t("audit-checkpoint")) }
            pre #checkpoint { (cp.note) }
        }
        section aria-labelledby="h-log" {
            h2 id="h-log" { (l.t_with("audit-log", &[("n", entries.len().to_string())])) }
            table #log {
                thead { tr {
                    th scope="col" { "#" } th scope="col" { (l.t("col-when")) } th scope="col" { (l.t("col-kind")) }
                    th scope="col" { (l.t("col-partner")) } th scope="col" { (l.t("col-envelope")) } th scope="col" { (l.t("col-user")) }
                    th scope="col" { (l.t("col-proof")) }
                } }
                tbody { @for (i, e) in entries.iter().enumerate() {
                    tr {
                        td { (i) }
                        td { @if let Some(t) = e.entry.get("time").and_then(|v| v.as_u64()) { (when(l, &rogatory_proto::time::format_unix(t))) } }
                        td { (s(e, "event")) }
                        td { (s(e, "peer")) }
                        td { @let env = s(e, "envelope_id"); @if !env.is_empty() { (short(&env)) } }
                        td { (e.entry.get("actor").and_then(|a| a.get("user")).and_then(|u| u.as_str()).unwrap_or("")) }
                        td { a href={ "/cases/" (case) "/audit/proof?index=" (i) } { (l.t("proof")) } }
                    }
                } }
            }
        }
        section aria-labelledby="h-export" {
            h2 id="h-export" { (l.t("audit-export")) }
            p { (l.t("audit-export-help")) }
            form #bundle-export data-case=(case) data-csrf=(who.csrf) {
                label for="auditor-card" { (l.t("field-auditor-card")) }
                input #auditor-card type="file";
                button type="submit" { (l.t("audit-export-button")) }
                p #bundle-status aria-live="polite" {}
            }
        }
    };
    let title = format!(
        "{} {}",
        l.t("audit-title"),
        case.chars().take(8).collect::<String>()
    );
    c.page(&who, "/cases", &title, body)
}

/// The inclusion proof of one entry (c2sp.org/tlog-proof), as text an auditor checks offline
/// (`rogatory audit verify-proof`).
pub(super) async fn proof(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    Path(case): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    let l = who.lang;
    let index: u64 = q.get("index").and_then(|i| i.parse().ok()).unwrap_or(0);
    let p: ProofText = c
        .get(
            &who,
            &format!("/v1/audit/{}/prove?index={index}", enc(&case)),
        )
        .await?;
    let body = html! {
        p { a href={ "/cases/" (case) "/audit" } { (l.t("case-audit")) } }
        pre #proof { (p.proof) }
    };
    let title = l.t_with("proof-of", &[("n", index.to_string())]);
    c.page(&who, "/cases", &title, body)
}

/// Exports the case's bundle, its content disclosed to the auditor whose card is the body (or
/// to nobody, with an empty body); answers where to download it.
pub(super) async fn export(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    Path(case): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Page {
    csrf_header(&who, &headers)?;
    room(&headers, &c.data, MAX_CARD)?;
    let card = fresh(&c.data, "card")?;
    let size = {
        let _turn = SAVING
            .acquire()
            .await
            .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        save(body, card.clone(), MAX_CARD).await?
    };
    let out = fresh(&c.data, "bundle")?;
    let mut req = json!({"out": out});
    if size > 0 {
        req["for_auditor"] = json!(card);
    }
    let answer: Result<Exported, Failure> = c
        .call(
            &who,
            Method::POST,
            &format!("/v1/cases/{}/export", enc(&case)),
            Some(req),
        )
        .await;
    let _ = std::fs::remove_file(&card);
    let e = answer?;
    let name = format!("{}-{}.bundle", c.agency, case);
    let link = c.offer(&who, e.out, &name, "application/cbor")?;
    Ok(axum::Json(json!({
        "download": link,
        "name": name,
        "bytes": e.bytes,
        "sha256": e.sha256,
        "disclosed": e.disclosed,
        "auditor": e.auditor,
    }))
    .into_response())
}

/// Fetches a download made for this session, once.
pub(super) async fn download(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    still(&c, &who, crate::people::Permission::Read).await?;
    match c.take(&who, &id) {
        Some(d) => Ok(stream(d)),
        None => Err(Failure(
            StatusCode::NOT_FOUND,
            "no such download for this session (each is fetched once, within 10 minutes)".into(),
        )),
    }
}

/// The page where an auditor uploads one bundle, or both sides' bundles of a case.
pub(super) async fn verify_page(State(c): State<Arc<Console>>, Signed(who): Signed) -> Page {
    let l = who.lang;
    still(&c, &who, crate::people::Permission::Audit).await?;
    let body = html! {
        p { (l.t("verify-help")) }
        form #verify-form data-csrf=(who.csrf) {
            label for="bundles" { (l.t("field-bundles")) }
            input #bundles type="file" multiple required;
            button type="submit" { (l.t("verify-button")) }
            p #verify-status aria-live="polite" {}
        }
    };
    c.page(&who, "/verify", &l.t("nav-verify"), body)
}

/// Keeps one uploaded bundle for this session's verification; answers its id.
pub(super) async fn verify_upload(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    headers: HeaderMap,
    body: Body,
) -> Page {
    csrf_header(&who, &headers)?;
    still(&c, &who, crate::people::Permission::Audit).await?;
    room(&headers, &c.data, MAX_BUNDLE)?;
    let path = fresh(&c.data, "verify")?;
    {
        let _turn = SAVING
            .acquire()
            .await
            .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        save(body, path.clone(), MAX_BUNDLE).await?;
    }
    let link = c.offer(&who, path, "bundle", "application/cbor")?;
    let id = link.rsplit('/').next().unwrap_or("").to_string();
    Ok(axum::Json(json!({"id": id})).into_response())
}

/// Verifies the uploaded bundles (one, or both sides' of a case) as `rogatory-verify` does,
/// and shows its HTML report; the files are deleted afterwards.
pub(super) async fn verify_report(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Failure> {
    let ids: Vec<&str> = q
        .get("ids")
        .map(|s| s.split(',').collect())
        .unwrap_or_default();
    let mut files = Vec::new();
    for id in ids.iter().take(2) {
        match c.take(&who, id) {
            Some(d) => files.push(d.path().to_path_buf()),
            None => {
                return Err(Failure(
                    StatusCode::NOT_FOUND,
                    "no such uploaded bundle for this session: upload it again".into(),
                ));
            }
        }
    }
    if files.is_empty() {
        return Err(Failure(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no bundle given".into(),
        ));
    }
    let _turn = VERIFYING
        .acquire()
        .await
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let user = who.user.clone();
    let report = tokio::task::spawn_blocking(move || {
        let mut v = rogatory_proto::bundle::Verifier::new(None, &[], None, files.len());
        let mut result = Ok(());
        for f in &files {
            if let Err(e) = v.add_file(f) {
                result = Err(format!("{e}"));
                break;
            }
        }
        let verdict = result.and_then(|()| v.finish().map_err(|e| e.to_string()));
        for f in &files {
            let _ = std::fs::remove_file(f);
        }
        verdict.map(|v| {
            tracing::info!(%user, case = %v.case_id, ok = v.ok(), "console: bundles verified");
            rogatory_proto::bundle::report_html(&v)
        })
    })
    .await
    .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| {
        Failure(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the bundle cannot be read: {e}"),
        )
    })?;
    let mut r = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], report).into_response();
    // The report is the verifier's own self-contained page: its styles are inline, it has no
    // script and loads nothing.
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    );
    Ok(r)
}
