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
    let mut u = json!({
        "stage": stage,
        "person_reference": field(&f, "person_reference").trim(),
        "effective_date": field(&f, "effective_date").trim(),
    });
    for k in ["decision", "scheduled_for", "note"] {
        let x = field(&f, k).trim();
        if !x.is_empty() {
            u[k] = json!(x);
        }
    }
    c.tell_partner(&who, &id, "extradition-status", u, stage)
        .await
}
