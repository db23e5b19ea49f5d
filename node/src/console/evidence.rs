//! A case's evidence in the console: the items with their state and transfer progress, adding a
//! file (uploaded, hashed and sealed as it arrives, with progress), sending the manifest, and
//! downloading an item's content once verified.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use rogatory_proto::message::{Acquisition, EvidenceItem, TransferMode};
use serde_json::json;

use super::files::{BodyReader, csrf_header, fresh, stream};
use super::render::{Page, csrf, enc, short};
use super::{Console, Failure, Signed, Who, form, see_other};
use crate::api::wire::{AddEvidence, AddItem, Added, EvidenceExported, EvidenceRow, ManifestSent};
use crate::people::Permission;

/// The largest item uploaded through the console (64 GiB).
const MAX_ITEM: u64 = 64 << 30;
/// Uploads hashed at once, across sessions.
static UPLOADS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
/// Items exported for download at once, across sessions.
static EXPORTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// The evidence section of a case page.
pub(super) fn section(who: &Who, case: &str, peer: &str, rows: &[EvidenceRow]) -> Markup {
    let l = who.lang;
    let staged = rows
        .iter()
        .any(|r| r.direction == "outgoing" && r.state == "staged");
    let moving = rows
        .iter()
        .any(|r| r.direction == "incoming" && matches!(r.state.as_str(), "listed" | "expected"));
    html! {
        section aria-labelledby="h-evidence" data-refresh=[moving.then_some("3")] {
            h2 id="h-evidence" { (l.t("case-evidence")) }
            @if rows.is_empty() { p { (l.t("none")) } } @else {
                table #evidence {
                    thead { tr {
                        th scope="col" { (l.t("col-item")) } th scope="col" { (l.t("col-description")) }
                        th scope="col" { (l.t("col-direction")) } th scope="col" { (l.t("col-state")) }
                        th scope="col" { (l.t("col-size")) } th scope="col" { (l.t("col-progress")) }
                        th scope="col" { "SHA-256" } th scope="col" { (l.t("col-action")) }
                    } }
                    tbody { @for r in rows {
                        tr data-item=(r.item_id) {
                            th scope="row" { (r.item_id) }
                            td {
                                (r.description)
                                @if let Some(chain) = r.custody.as_array().filter(|c| !c.is_empty()) {
                                    details {
                                        summary { (l.t_with("custody-n", &[("n", chain.len().to_string())])) }
                                        ol.custody { @for e in chain {
                                            li {
                                                (e.get("at").and_then(|x| x.as_str()).map(|t| l.time(t)).unwrap_or_default()) " — "
                                                (e.get("actor").and_then(|x| x.as_str()).unwrap_or("")) ": "
                                                (e.get("action").and_then(|x| x.as_str()).unwrap_or(""))
                                            }
                                        } }
                                    }
                                }
                            }
                            td { (r.direction) }
                            td.state { (r.state) @if let Some(p) = &r.problem { ": " (p) } }
                            td { (crate::evidence::human_size(r.size)) }
                            td { @if r.direction == "incoming" && r.chunks > 0 {
                                progress max=(r.chunks) value=(r.chunks_done) { (r.chunks_done) "/" (r.chunks) }
                            } }
                            td { @if let Some(h) = &r.sha256 { (short(h)) } }
                            td { @if r.held_here && (r.direction == "outgoing" || r.state == "verified") && who.may(Permission::Content) {
                                form.download method="post" action={ "/cases/" (case) "/evidence/content" } {
                                    (csrf(who))
                                    input type="hidden" name="item" value=(r.item_id);
                                    button type="submit" aria-label={ (l.t("download")) " " (r.item_id) } { (l.t("download")) }
                                }
                            } }
                        }
                    } }
                }
            }
            @if staged && who.may(Permission::Send) {
                form method="post" action={ "/cases/" (case) "/evidence/send" } {
                    (csrf(who))
                    button type="submit" #send-manifest { (l.t_with("evidence-send", &[("partner", peer.to_string())])) }
                }
            }
            @if who.may(Permission::Send) {
                form #evidence-add data-case=(case) data-csrf=(who.csrf) {
                    h3 { (l.t("evidence-add")) }
                    p {
                        label for="evidence-file" { (l.t("field-file")) }
                        input #evidence-file type="file" required;
                    }
                    p {
                        label for="evidence-description" { (l.t("col-description")) }
                        input #evidence-description;
                    }
                    p {
                        label for="evidence-mode" { (l.t("field-transfer")) }
                        select #evidence-mode {
                            option value="send" { (l.t("transfer-send")) }
                            option value="hash-only" { (l.t("transfer-hash-only")) }
                        }
                    }
                    p {
                        label for="evidence-method" { (l.t("field-acquisition")) }
                        input #evidence-method value="seized";
                    }
                    button type="submit" { (l.t("evidence-add-button")) }
                    progress #evidence-progress max="100" value="0" hidden {}
                    p #evidence-status aria-live="polite" {}
                }
            }
            p { a href={ "/cases/" (case) "/audit" } { (l.t("case-audit")) } }
        }
    }
}

/// `?name=&size=&mode=&description=&method=` of an upload.
#[derive(Debug, serde::Deserialize)]
pub(super) struct Upload {
    name: String,
    size: u64,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    method: Option<String>,
}

/// Adds an uploaded file to the case: its content is hashed, and for a `send` item sealed into
/// the staging directory, as it arrives (the plaintext is never written to the node's disk);
/// then the node records the item, as `rogatory evidence add` does.
pub(super) async fn upload(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    Path(case): Path<String>,
    Query(u): Query<Upload>,
    headers: HeaderMap,
    body: Body,
) -> Page {
    csrf_header(&who, &headers)?;
    if !who.may(Permission::Send) {
        return Err(Failure(
            StatusCode::FORBIDDEN,
            format!("{} may not add evidence", who.user),
        ));
    }
    let bad = |m: String| Failure(StatusCode::UNPROCESSABLE_ENTITY, m);
    let mode = match u.mode.as_deref().unwrap_or("send") {
        "send" => TransferMode::Send,
        "hash-only" => TransferMode::HashOnly,
        other => return Err(bad(format!("{other}: the mode is send or hash-only"))),
    };
    let announced = super::files::room(&headers, &c.data, MAX_ITEM)?;
    if announced != u.size {
        return Err(bad(format!(
            "the upload is {announced} bytes, not {}",
            u.size
        )));
    }
    // The case must be one this node holds before anything is read.
    let _: serde_json::Value = c.get(&who, &format!("/v1/cases/{}", enc(&case))).await?;
    // A few at once: each holds a thread while it hashes.
    let _turn = UPLOADS
        .acquire()
        .await
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut reader = BodyReader::new(body, u.size);
    let data = c.data.clone();
    let send = mode == TransferMode::Send;
    let size = u.size;
    let hashed = tokio::task::spawn_blocking(move || {
        crate::evidence::hash_and_seal_from(
            &mut reader,
            size,
            send.then_some(data.as_path()),
            &|_| {},
        )
    })
    .await
    .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| bad(format!("{e:#}")))?;
    let name: String = u.name.chars().take(200).collect();
    let item = EvidenceItem {
        item_id: String::new(),
        description: u
            .description
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| name.clone()),
        media_type: crate::evidence::media_type(std::path::Path::new(&name)).to_string(),
        size: hashed.size,
        sha256: Some(hashed.sha256),
        transfer: Some(mode),
        acquisition: Acquisition {
            method: u
                .method
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| "seized".into()),
            seized_from: None,
            seized_at: None,
            acquired_by: None,
            tool: None,
        },
        custody: Vec::new(),
        handling: None,
        perceptual_hashes: Vec::new(),
        content_key: None,
        out_of_band: None,
    };
    let (staged, content_key) = match &hashed.sealed {
        Some((staged, key)) => (Some(staged.clone()), Some(hex::encode(key.as_bytes()))),
        None => (None, None),
    };
    let add = AddEvidence {
        items: vec![AddItem {
            item: serde_json::to_value(&item)
                .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
            staged,
            content_key,
        }],
    };
    let added: Added = match c
        .call(
            &who,
            Method::POST,
            &format!("/v1/evidence/{}", enc(&case)),
            Some(serde_json::to_value(&add).unwrap_or_default()),
        )
        .await
    {
        Ok(a) => a,
        Err(e) => {
            // Refused: the sealed copy staged for it goes.
            if let Some((staged, _)) = &hashed.sealed
                && let Ok(d) = crate::evidence::dir(&c.data)
            {
                let _ = std::fs::remove_file(d.join(crate::evidence::STAGING).join(staged));
            }
            return Err(e);
        }
    };
    Ok(axum::Json(json!({
        "items": added.items,
        "sha256": hashed.sha256.to_hex(),
        "size": hashed.size,
    }))
    .into_response())
}

/// Sends the manifest of the items not yet sent to the case's partner.
pub(super) async fn send(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    Path(case): Path<String>,
    body: axum::body::Bytes,
) -> Page {
    form(&who, &body)?;
    let view: crate::api::wire::CaseView =
        c.get(&who, &format!("/v1/cases/{}", enc(&case))).await?;
    let sent: ManifestSent = c
        .call(
            &who,
            Method::POST,
            &format!("/v1/evidence/{}/send", enc(&case)),
            Some(json!({"to": view.summary.peer})),
        )
        .await?;
    c.flash(&who, "manifest-sent", Some(sent.items.len().to_string()));
    Ok(see_other(&format!("/cases/{}", enc(&case))))
}

/// Downloads an item's content: exported by the node (verified against its hash, logged), then
/// streamed to the browser and deleted from the node's working directory.
pub(super) async fn content(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    Path(case): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Failure> {
    let f = form(&who, &body)?;
    let item = super::field(&f, "item").to_string();
    // A few at once: each writes a plaintext copy until it is streamed.
    let _turn = EXPORTS
        .acquire()
        .await
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let out = fresh(&c.data, "evidence")?;
    let done: EvidenceExported = c
        .call(
            &who,
            Method::POST,
            &format!("/v1/evidence/{}/export", enc(&case)),
            Some(json!({"item": item, "out": out})),
        )
        .await?;
    let name = item.rsplit('/').next().unwrap_or("evidence").to_string();
    let d = c.offer(&who, done.out, &name, "application/octet-stream")?;
    let id = d.rsplit('/').next().unwrap_or("");
    match c.take(&who, id) {
        Some(d) => Ok(stream(d)),
        None => Err(Failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the export vanished".into(),
        )),
    }
}
