//! An extradition case's next stages, as forms on its page: only those the stage machine allows
//! after the current stage (and its decision), and that this side reports (spec/CASES.md §2).

use std::sync::Arc;

use axum::extract::{Path, State};
use maud::{Markup, html};
use rogatory_proto::case::Side;
use rogatory_proto::case::extradition::{FIRST, next, reported_by};
use rogatory_proto::message::{ExtraditionDecision, ExtraditionStage};
use serde_json::{Value, json};

use super::render::{Page, csrf};
use super::{Console, Signed, Who, field, form};
use crate::api::wire::CaseView;

fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(Value::from(s)).ok()
}

/// The stages this side may report next.
pub(super) fn next_stages(v: &CaseView) -> Vec<ExtraditionStage> {
    if v.summary.kind != "extradition" {
        return Vec::new();
    }
    let side = match v.summary.our_side.as_str() {
        "requested" => Side::Requested,
        _ => Side::Requesting,
    };
    let options = match (
        parse::<ExtraditionStage>(&v.summary.status),
        v.updates.last(),
    ) {
        (Some(stage), last) => {
            let decision = last
                .and_then(|u| u.update.get("decision"))
                .and_then(|d| d.as_str())
                .and_then(parse::<ExtraditionDecision>);
            next(stage, decision)
        }
        (None, _) => FIRST.to_vec(),
    };
    options
        .into_iter()
        .filter(|s| reported_by(*s).contains(&side))
        .collect()
}

/// The forms of the next stages.
pub(super) fn forms(who: &Who, v: &CaseView, stages: &[ExtraditionStage]) -> Markup {
    let l = who.lang;
    let today =
        rogatory_proto::time::format_unix(rogatory_proto::time::now_unix())[..10].to_string();
    let person = v
        .updates
        .last()
        .and_then(|u| u.update.get("person_reference"))
        .and_then(|p| p.as_str())
        .unwrap_or("")
        .to_string();
    html! {
        @if !stages.is_empty() {
            section aria-labelledby="h-stages" {
                h2 id="h-stages" { (l.t("case-next-stage")) }
                div.next {
                    @for s in stages {
                        @let id = |f: &str| format!("{}-{f}", s.as_str());
                        form method="post" action={ "/cases/" (v.summary.case_id) "/stage" } {
                            (csrf(who))
                            input type="hidden" name="stage" value=(s.as_str());
                            label for=(id("date")) { (l.t("field-effective-date")) }
                            input id=(id("date")) name="effective_date" type="date" required value=(today);
                            label for=(id("person")) { (l.t("field-person")) }
                            input id=(id("person")) name="person_reference" required value=(person);
                            @if s.needs_decision() {
                                label for=(id("decision")) { (l.t("field-decision")) }
                                select id=(id("decision")) name="decision" {
                                    option value="granted" { "granted" }
                                    option value="refused" { "refused" }
                                }
                            }
                            @if matches!(s, ExtraditionStage::HearingScheduled | ExtraditionStage::SurrenderScheduled) {
                                label for=(id("scheduled")) { (l.t("field-scheduled-for")) }
                                input id=(id("scheduled")) name="scheduled_for" type="date" required;
                            }
                            button type="submit" data-stage=(s.as_str()) { (s.as_str()) }
                        }
                    }
                }
            }
        }
    }
}

/// Reports the next stage of an extradition: an `extradition-status` message to the partner.
pub(super) async fn stage(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Page {
    let f = form(&who, &body)?;
    let stage = field(&f, "stage");
    let u = stage_update(&f, &["decision", "scheduled_for", "note"]);
    c.tell_partner(&who, &id, "extradition-status", u, stage)
        .await
}

/// An `extradition-status` message from a stage form: the stage, the person, the date, and
/// those of `optional` the clerk filled in.
fn stage_update(f: &super::Fields, optional: &[&str]) -> serde_json::Value {
    let mut u = json!({
        "stage": field(f, "stage"),
        "person_reference": field(f, "person_reference").trim(),
        "effective_date": field(f, "effective_date").trim(),
    });
    for k in optional {
        let x = field(f, k).trim();
        if !x.is_empty() {
            u[*k] = json!(x);
        }
    }
    u
}

/// The form that opens an extradition case with its first stage (the requesting side's).
pub(super) fn new_form(who: &Who, partners: &[String]) -> Markup {
    let l = who.lang;
    let today =
        rogatory_proto::time::format_unix(rogatory_proto::time::now_unix())[..10].to_string();
    html! {
        section aria-labelledby="h-new-extradition" {
            h2 id="h-new-extradition" { (l.t("new-extradition")) }
            form #new-extradition method="post" action="/new/extradition" {
                (csrf(who))
                p {
                    label for="x-to" { (l.t("field-to")) }
                    select id="x-to" name="to" { @for p in partners { option value=(p) { (p) } } }
                }
                p {
                    label for="x-stage" { (l.t("field-first-stage")) }
                    select id="x-stage" name="stage" {
                        @for s in FIRST { @if reported_by(s).contains(&Side::Requesting) {
                            option value=(s.as_str()) { (s.as_str()) }
                        } }
                    }
                }
                p {
                    label for="x-date" { (l.t("field-effective-date")) }
                    input id="x-date" name="effective_date" type="date" required value=(today);
                }
                p {
                    label for="x-person" { (l.t("field-person")) }
                    input id="x-person" name="person_reference" required;
                }
                p {
                    label for="x-treaty" { (l.t("field-instrument")) }
                    input id="x-treaty" name="treaty" value="European Convention on Extradition";
                }
                button type="submit" { (l.t("new-extradition-button")) }
            }
        }
    }
}

/// Opens an extradition case: its first stage, sent to the partner (a proposal the requested
/// side confirms, spec/CASES.md §4.1).
pub(super) async fn open(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    body: axum::body::Bytes,
) -> Page {
    let f = form(&who, &body)?;
    let stage = field(&f, "stage");
    let u = stage_update(&f, &["treaty"]);
    let sent: crate::api::wire::Sent = c
        .call(
            &who,
            axum::http::Method::POST,
            "/v1/send",
            Some(json!({"to": [field(&f, "to")], "case": "new", "type": "extradition-status", "body": u})),
        )
        .await?;
    c.flash(&who, "status-sent", Some(stage.to_string()));
    Ok(super::see_other(&format!(
        "/cases/{}",
        super::render::enc(&sent.case_id)
    )))
}
