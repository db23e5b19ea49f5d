//! The new MLA request page: a form built from the request schema, what is still missing
//! (UNTOC Art. 18(15), the message's own validation) shown as the clerk types, and sending it
//! (kept as a draft when the clerk may only draft it).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{Method, StatusCode};
use maud::{Markup, html};
use rogatory_proto::message::{AGE_BANDS, GENDERS, Message, MessageType};
use serde_json::{Value, json};

use super::render::{Page, csrf, enc, layout, page_html};
use super::{Console, Failure, Fields, Signed, Who, field, form, see_other};
use crate::api::wire::{Sent, Status};

/// The form of a new MLA request, with what the clerk typed and what is still missing.
/// The repeatable groups of the form: their fields (the first names the group).
const OFFENCE: [&str; 3] = ["offence", "legal_classification", "iccs"];
const VICTIM: [&str; 3] = ["victim", "age_band", "gender"];
const MEASURE: [&str; 3] = ["measure", "measure_description", "target"];

/// The rows of a repeatable group the form holds (`offence.0`, `offence.1`, …): at least one.
fn rows(f: &Fields, group: &[&str]) -> Vec<usize> {
    let mut n: Vec<usize> = f
        .iter()
        .filter_map(|(k, _)| k.split_once('.'))
        .filter(|(name, _)| group.contains(name))
        .filter_map(|(_, i)| i.parse().ok())
        .filter(|i| *i < 32)
        .collect();
    n.sort_unstable();
    n.dedup();
    if n.is_empty() {
        n.push(0);
    }
    n
}

fn request_form(who: &Who, partners: &[String], f: &Fields, problems: Option<Markup>) -> Markup {
    let l = who.lang;
    let v = |k: &str| field(f, k).to_string();
    let text = |name: &str, key: &str, required: bool| {
        html! { p {
            label for=(name) { (l.t(key)) @if required { " *" } }
            input id=(name) name=(name) value=(v(name));
        } }
    };
    let area = |name: &str, key: &str| {
        html! { p {
            label for=(name) { (l.t(key)) " *" }
            textarea id=(name) name=(name) rows="3" { (v(name)) }
        } }
    };
    let choice = |name: &str, key: &str, options: &[&str]| {
        html! { p {
            label for=(name) { (l.t(key)) }
            select id=(name) name=(name) {
                option value="" { "—" }
                @for o in options { option value=(o) selected[v(name) == *o] { (o) } }
            }
        } }
    };
    let measures: Vec<&str> = rogatory_proto::message::AssistanceKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    // A repeatable group: its rows, and a button (the page's script) that adds one.
    let group = |name: &str, legend: &str, add: &str, row: &dyn Fn(usize) -> Markup| {
        html! {
            div.group data-group=(name) {
                @for i in rows(f, match name { "offence" => &OFFENCE, "victim" => &VICTIM, _ => &MEASURE }) {
                    fieldset.row {
                        legend { (l.t(legend)) " " (i + 1) }
                        (row(i))
                    }
                }
                button.add type="button" data-add=(name) { (l.t(add)) }
            }
        }
    };
    let offence = |i: usize| {
        html! {
            (text(&format!("offence.{i}"), "field-offence", true))
            (text(&format!("legal_classification.{i}"), "field-legal-classification", true))
            (text(&format!("iccs.{i}"), "field-iccs", false))
        }
    };
    let victim = |i: usize| {
        html! {
            (text(&format!("victim.{i}"), "field-victim-pseudonym", false))
            (choice(&format!("age_band.{i}"), "field-age-band", &AGE_BANDS))
            (choice(&format!("gender.{i}"), "field-gender", &GENDERS))
        }
    };
    let measure = |i: usize| {
        html! {
            (choice(&format!("measure.{i}"), "field-measure", &measures))
            (text(&format!("measure_description.{i}"), "field-measure-description", true))
            (text(&format!("target.{i}"), "field-target", true))
        }
    };
    html! {
        form #new-request method="post" action="/new" {
            (csrf(who))
            div #problems aria-live="polite" { @if let Some(p) = problems { (p) } }
            fieldset {
                legend { (l.t("new-parties")) }
                p {
                    label for="to" { (l.t("field-to")) " *" }
                    select id="to" name="to" {
                        @for p in partners { option value=(p) selected[v("to") == *p] { (p) } }
                    }
                }
                (text("requesting_name", "field-requesting-name", true))
                (text("requested_name", "field-requested-name", true))
                (choice("legal_kind", "field-legal-kind", &["treaty", "reciprocity", "domestic-law"]))
                (text("instrument", "field-instrument", false))
            }
            fieldset {
                legend { (l.t("new-facts")) }
                (choice("proceedings_kind", "field-proceedings-kind", &["investigation", "prosecution", "trial", "appeal", "execution-of-sentence", "asset-recovery"]))
                (text("subject", "field-subject", true))
                (area("facts", "field-facts"))
                (group(OFFENCE[0], "field-offence", "add-offence", &offence))
            }
            fieldset {
                legend { (l.t("new-victim")) }
                (group(VICTIM[0], "field-victim-pseudonym", "add-victim", &victim))
            }
            fieldset {
                legend { (l.t("new-assistance")) }
                (group(MEASURE[0], "field-measure", "add-measure", &measure))
                (area("purpose", "field-purpose"))
                (choice("urgency", "field-urgency", &["routine", "urgent", "emergency"]))
                (text("urgency_reason", "field-urgency-reason", false))
                (text("language", "field-language", true))
            }
            button type="submit" name="action" value="send" { (l.t("new-send")) }
        }
    }
}

/// The MLA request the form describes, as the API takes it (only what was given: an empty
/// field or row is left out, and the validation says what is missing).
fn request_body(me: &str, f: &Fields) -> Value {
    let v = |k: &str| field(f, k).trim().to_string();
    let country = |a: &str| a.split('.').next().unwrap_or("").to_string();
    let language = if v("language").is_empty() {
        "en".to_string()
    } else {
        v("language")
    };
    let mut legal = json!({});
    if !v("legal_kind").is_empty() {
        legal["kind"] = json!(v("legal_kind"));
    }
    if !v("instrument").is_empty() {
        legal["instrument"] = json!(v("instrument"));
    }
    let mut proceedings = json!({"subject": v("subject")});
    if !v("proceedings_kind").is_empty() {
        proceedings["kind"] = json!(v("proceedings_kind"));
    }
    let at = |name: &str, i: usize| v(&format!("{name}.{i}"));
    let given = |group: &[&str], i: usize| group.iter().any(|n| !at(n, i).is_empty());
    let mut offences = Vec::new();
    for i in rows(f, &OFFENCE)
        .into_iter()
        .filter(|i| given(&OFFENCE, *i))
    {
        let mut o = json!({"description": at("offence", i), "legal_classification": at("legal_classification", i)});
        if !at("iccs", i).is_empty() {
            o["iccs"] = json!(at("iccs", i));
        }
        offences.push(o);
    }
    let mut persons = Vec::new();
    for i in rows(f, &VICTIM)
        .into_iter()
        .filter(|i| !at("victim", *i).is_empty())
    {
        let mut p = json!({"role": "victim", "pseudonym": at("victim", i)});
        if !at("age_band", i).is_empty() {
            p["age_band"] = json!(at("age_band", i));
        }
        if !at("gender", i).is_empty() {
            p["gender"] = json!(at("gender", i));
        }
        persons.push(p);
    }
    let mut assistance = Vec::new();
    for i in rows(f, &MEASURE)
        .into_iter()
        .filter(|i| given(&MEASURE, *i))
    {
        let mut m = json!({"description": at("measure_description", i), "targets": []});
        if !at("measure", i).is_empty() {
            m["kind"] = json!(at("measure", i));
        }
        if !at("target", i).is_empty() {
            m["targets"] = json!([{"kind": "account", "identifier": at("target", i)}]);
        }
        assistance.push(m);
    }
    let mut urgency = json!({"level": if v("urgency").is_empty() { "routine".to_string() } else { v("urgency") }});
    if !v("urgency_reason").is_empty() {
        urgency["reason"] = json!(v("urgency_reason"));
    }
    json!({
        "requesting_authority": {"agency": me, "name": v("requesting_name"), "country": country(me), "contacts": [], "languages": [language]},
        "requested_authority": {"agency": v("to"), "name": v("requested_name"), "country": country(&v("to")), "contacts": [], "languages": []},
        "legal_basis": legal,
        "proceedings": proceedings,
        "summary_of_facts": v("facts"),
        "offences": offences,
        "persons": persons,
        "assistance": assistance,
        "purpose": v("purpose"),
        "urgency": urgency,
        "language": language,
    })
}

/// What is missing or wrong in the request the form describes (UNTOC Art. 18(15) and the
/// request schema), in words; empty when it may be sent.
fn problems(me: &str, f: &Fields, l: super::Lang) -> Vec<(String, String)> {
    match Message::from_json(MessageType::MlaRequest, &request_body(me, f)) {
        Ok(m) => m
            .problems()
            .0
            .into_iter()
            .map(|p| (p.field, p.message))
            .collect(),
        Err(e) => vec![(String::new(), format!("{}: {e}", l.t("new-unreadable")))],
    }
}

fn problems_list(l: super::Lang, p: &[(String, String)]) -> Markup {
    html! {
        @if p.is_empty() {
            p.ok { (l.t("new-complete")) }
        } @else {
            div.missing role="alert" {
                p { strong { (l.t_with("new-missing", &[("n", p.len().to_string())])) } }
                ul { @for (f, m) in p { li data-field=(f) { @if !f.is_empty() { code { (f) } ": " } (m) } } }
            }
        }
    }
}

async fn partner_ids(c: &Console, who: &Who) -> Result<Vec<String>, Failure> {
    let status: Status = c.get(who, "/v1/status").await?;
    Ok(status.peers.into_iter().map(|p| p.agency).collect())
}

/// A new MLA request.
pub(super) async fn new_request(State(c): State<Arc<Console>>, Signed(who): Signed) -> Page {
    let l = who.lang;
    let partners = partner_ids(&c, &who).await?;
    let body = html! {
        p { (l.t("new-help")) }
        (request_form(&who, &partners, &Vec::new(), None))
        (super::extradition::new_form(&who, &partners))
    };
    c.page(&who, "/new", &l.t("nav-new"), body)
}

/// What is missing, for the page's script as the clerk types (an HTML fragment).
pub(super) async fn check_request(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    body: axum::body::Bytes,
) -> Page {
    let f = form(&who, &body)?;
    let p = problems(&c.agency, &f, who.lang);
    Ok(page_html(problems_list(who.lang, &p)))
}

/// Sends the request (as a draft for approval, when the clerk may only draft it), or shows the
/// form again with what is missing.
pub(super) async fn send_request(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    body: axum::body::Bytes,
) -> Page {
    let l = who.lang;
    let f = form(&who, &body)?;
    let p = problems(&c.agency, &f, l);
    if !p.is_empty() {
        let partners = partner_ids(&c, &who).await?;
        let body = html! { (request_form(&who, &partners, &f, Some(problems_list(l, &p)))) };
        let mut r = page_html(layout(&who, &c.agency, "/new", &l.t("nav-new"), body));
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(r);
    }
    let sent: Sent = c
        .call(
            &who,
            Method::POST,
            "/v1/send",
            Some(json!({"to": [field(&f, "to")], "case": "new", "type": "mla-request", "body": request_body(&c.agency, &f)})),
        )
        .await?;
    Ok(match sent.draft {
        Some(d) => {
            c.flash(&who, "draft-kept", Some(d.id.chars().take(8).collect()));
            see_other("/drafts")
        }
        None => {
            c.flash(&who, "request-sent", None);
            see_other(&format!("/cases/{}", enc(&sent.case_id)))
        }
    })
}
