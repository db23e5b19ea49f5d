//! `rogatory case …`, `rogatory extradition update`, `rogatory deadlines`: case tracking, through
//! the running node's local API.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use rogatory_proto::message::{
    ExtraditionDecision, ExtraditionStage, ExtraditionStatusUpdate, MlaStatus, MlaStatusUpdate,
};
use serde_json::{Value, json};

use super::online::Common;
use crate::client::Client;

/// `rogatory case` subcommands.
#[derive(Debug, Subcommand)]
pub enum CaseCommand {
    /// The cases this node knows: kind, this agency's side, partner, status, overdue deadlines.
    List {
        /// Only cases in this status (MLA) or stage (extradition).
        #[arg(long)]
        status: Option<String>,
        /// Only cases with an overdue deadline.
        #[arg(long)]
        overdue: bool,
        /// Only emergency cases.
        #[arg(long)]
        emergency: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Open a case before its first message (this agency is the requesting side); prints its id.
    New {
        /// mla, extradition, liaison or preservation.
        #[arg(long)]
        kind: String,
        /// The partner agency.
        #[arg(long)]
        to: String,
        /// This agency's own reference for the case.
        #[arg(long)]
        reference: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// One case as a timeline: who said what, when, with receipts; and its deadlines.
    Show {
        /// The case id.
        case: String,
        /// Wait up to this many seconds until the requested side has confirmed (or refused)
        /// every update this agency proposed (spec/CASES.md §4).
        #[arg(long, value_name = "SECS", default_value_t = 0)]
        wait: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Report a new status of an MLA request to the partner (refused here if the case's
    /// lifecycle does not allow it from this side).
    Update(UpdateArgs),
    /// Write the case's export bundle (spec/BUNDLE.md): this agency's audit log of the case,
    /// its signed checkpoints with the partners' cosignatures, the envelopes (still
    /// encrypted) and receipts, the partners' checkpoints witnessed here, inclusion proofs,
    /// the agency cards and a tlog-policy. An auditor checks it with `rogatory audit verify`
    /// or `rogatory-verify`, offline. With `--for-auditor CARD`, the content of the messages
    /// is disclosed to that auditor alone (each envelope's content key encrypted for its card),
    /// so that it can read them and an auditor without that key still verifies the rest. The
    /// export is logged before the file is written (`bundle-exported`, with the bundle's
    /// SHA-256, and the auditor as the other agency).
    Export {
        /// The case id.
        case: String,
        /// The bundle file to write (a new file).
        #[arg(long)]
        out: PathBuf,
        /// The auditor's card (from `rogatory keygen` or `card export`): disclose the content
        /// to it.
        #[arg(long, value_name = "CARD")]
        for_auditor: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
}

/// Arguments of `rogatory case update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The case id.
    pub case: String,
    /// The new status: registered, returned-deficient, under-review, more-information-requested,
    /// information-provided, accepted, executing, partially-executed, executed, postponed,
    /// refused, withdrawn, closed.
    pub status: String,
    /// The national reference (with `registered`).
    #[arg(long)]
    pub reference: Option<String>,
    /// Grounds for refusal (repeatable; required with `refused`).
    #[arg(long)]
    pub grounds: Vec<String>,
    /// Postponed until (YYYY-MM-DD; required with `postponed`).
    #[arg(long)]
    pub until: Option<String>,
    /// The reason (required with `postponed`).
    #[arg(long)]
    pub reason: Option<String>,
    /// A deficiency or a question (repeatable; with `returned-deficient` and
    /// `more-information-requested`).
    #[arg(long = "item")]
    pub items: Vec<String>,
    /// A note for the partner.
    #[arg(long)]
    pub note: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

/// `rogatory extradition` subcommands.
#[derive(Debug, Subcommand)]
pub enum ExtraditionCommand {
    /// Report the stage an extradition reached (refused here if it cannot follow the current
    /// stage, or is not this side's to report). The case is created by its first stage.
    Update(StageArgs),
}

/// Arguments of `rogatory extradition update`.
#[derive(Debug, Args)]
pub struct StageArgs {
    /// The case id, or `new` (with --to) for a new extradition case.
    pub case: String,
    /// The stage: provisional-arrest-requested, arrested, consent-given,
    /// formal-request-received, hearing-scheduled, hearing-held, judicial-decision,
    /// executive-decision, appeal-lodged, appeal-decided, surrender-scheduled, surrendered,
    /// released, discharged, withdrawn.
    pub stage: String,
    /// The date the stage was reached (YYYY-MM-DD); deadlines run from it.
    #[arg(long)]
    pub date: String,
    /// The partner (for a new case).
    #[arg(long)]
    pub to: Option<String>,
    /// The person sought, by the reference both sides use (default: the case's last one).
    #[arg(long)]
    pub person: Option<String>,
    /// The outcome, for decision stages: granted or refused.
    #[arg(long)]
    pub decision: Option<String>,
    /// The scheduled date, for hearing-scheduled and surrender-scheduled (YYYY-MM-DD).
    #[arg(long)]
    pub scheduled_for: Option<String>,
    /// A note for the partner.
    #[arg(long)]
    pub note: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

/// Arguments of `rogatory deadlines`.
#[derive(Debug, Args)]
pub struct DeadlinesArgs {
    /// How far ahead: days, as `7d` or `7` (overdue ones are always listed).
    #[arg(long, default_value = "7d")]
    pub within: String,
    #[command(flatten)]
    pub common: Common,
}

pub(crate) fn client(c: &Common) -> Result<Client> {
    Client::connect(&super::init::data_dir(c.data_dir.clone())?)
}

pub(crate) fn print_json(v: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub(crate) fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

pub(crate) fn parse_enum<T: serde::de::DeserializeOwned>(value: &str, what: &str) -> Result<T> {
    serde_json::from_value(Value::from(value))
        .with_context(|| format!("`{value}` is not a {what} (see --help)"))
}

fn send_update(
    c: &Client,
    case: &str,
    to: &str,
    kind: &str,
    body: Value,
    json_out: bool,
) -> Result<ExitCode> {
    let r = c.post(
        "/v1/send",
        &json!({ "to": [to], "case": case, "type": kind, "body": body }),
    )?;
    if json_out {
        print_json(&r)?;
    } else {
        println!(
            "case {}: {kind} sealed for {to} and queued (envelope {})",
            s(&r["case_id"]),
            s(&r["queued"][0]["envelope_id"])
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn case(c: CaseCommand) -> Result<ExitCode> {
    match c {
        CaseCommand::List {
            status,
            overdue,
            emergency,
            common,
        } => {
            let list = client(&common)?.get("/v1/cases")?;
            let rows: Vec<&Value> = list
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| status.as_deref().is_none_or(|st| r["status"] == st))
                .filter(|r| !overdue || r["overdue"].as_u64().unwrap_or(0) > 0)
                .filter(|r| !emergency || r["emergency"] == true)
                .collect();
            if common.json {
                return print_json(&Value::Array(rows.into_iter().cloned().collect()))
                    .map(|()| ExitCode::SUCCESS);
            }
            if rows.is_empty() {
                println!("No case matches.");
            }
            for r in rows {
                println!(
                    "{}  {:<12} {:<11} {:<20} {:<28}{}{}",
                    s(&r["case_id"]),
                    s(&r["kind"]),
                    s(&r["our_side"]),
                    s(&r["peer"]),
                    s(&r["status"]),
                    if r["emergency"] == true {
                        " EMERGENCY"
                    } else {
                        ""
                    },
                    match r["overdue"].as_u64() {
                        Some(n) if n > 0 => format!(" {n} OVERDUE"),
                        _ => r["next_due"]
                            .as_str()
                            .map(|d| format!(" next due {d}"))
                            .unwrap_or_default(),
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CaseCommand::New {
            kind,
            to,
            reference,
            common,
        } => {
            let r = client(&common)?.post(
                "/v1/cases",
                &json!({ "kind": kind, "to": to, "reference": reference }),
            )?;
            if common.json {
                return print_json(&r).map(|()| ExitCode::SUCCESS);
            }
            println!("{}", s(&r["case_id"]));
            eprintln!(
                "opened {} case {} with {}; send its request with `rogatory request send {} FILE`",
                s(&r["kind"]),
                s(&r["case_id"]),
                s(&r["peer"]),
                s(&r["case_id"])
            );
            Ok(ExitCode::SUCCESS)
        }
        CaseCommand::Export {
            case,
            out,
            for_auditor,
            common,
        } => {
            let out = std::path::absolute(&out)
                .with_context(|| format!("cannot resolve {}", out.display()))?;
            let for_auditor = for_auditor
                .map(|c| {
                    std::path::absolute(&c)
                        .with_context(|| format!("cannot resolve {}", c.display()))
                })
                .transpose()?;
            let r = client(&common)?.post(
                &format!("/v1/cases/{case}/export"),
                &serde_json::json!({ "out": out, "for_auditor": for_auditor }),
            )?;
            if common.json {
                return print_json(&r).map(|()| ExitCode::SUCCESS);
            }
            println!(
                "case {} exported to {} ({} bytes, SHA-256 {}): {} log entries, {} envelopes, {} checkpoints, {} inclusion proofs",
                s(&r["case_id"]),
                s(&r["out"]),
                r["bytes"],
                s(&r["sha256"]),
                r["entries"],
                r["envelopes"],
                r["checkpoints"],
                r["proofs"]
            );
            if let Some(a) = r["auditor"].as_str() {
                println!(
                    "the content of {} envelopes is disclosed to {a}: only that auditor's key reads it",
                    r["disclosed"]
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CaseCommand::Show { case, wait, common } => {
            let r = client(&common)?.get(&format!("/v1/cases/{case}?wait={wait}"))?;
            if common.json {
                return print_json(&r).map(|()| ExitCode::SUCCESS);
            }
            println!(
                "Case {} — {} case, this agency is the {} side, partner {}",
                s(&r["case_id"]),
                s(&r["kind"]),
                s(&r["our_side"]),
                s(&r["peer"])
            );
            println!(
                "  status: {}{}",
                s(&r["status"]),
                if r["emergency"] == true {
                    "  (EMERGENCY)"
                } else {
                    ""
                }
            );
            println!("  timeline:");
            for m in r["messages"].as_array().into_iter().flatten() {
                let receipt = match &m["receipt"] {
                    Value::String(t) => t.clone(),
                    Value::Object(o) => format!(
                        "receipt: {} at {}",
                        o.get("event").and_then(Value::as_str).unwrap_or_default(),
                        o.get("received_at")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                    ),
                    _ => format!("{} (no receipt yet)", s(&m["state"])),
                };
                println!(
                    "    {}  {} → {}  {}  {}…  {receipt}",
                    s(&m["at"]),
                    s(&m["from"]),
                    s(&m["to"]),
                    m["type"].as_str().unwrap_or("(sent)"),
                    &s(&m["envelope_id"])[..16.min(s(&m["envelope_id"]).len())],
                );
            }
            let name = |u: &Value| {
                u["status"]
                    .as_str()
                    .or(u["stage"].as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            println!("  status updates (the order both sides agree on):");
            for u in r["updates"].as_array().into_iter().flatten() {
                println!("    {}  {:<20} {}", s(&u["at"]), s(&u["by"]), name(u));
            }
            for u in r["pending"].as_array().into_iter().flatten() {
                println!(
                    "    {}  {:<20} {}  (proposed; awaiting the requested side's confirmation)",
                    s(&u["at"]),
                    s(&u["by"]),
                    name(u)
                );
            }
            for u in r["refused"].as_array().into_iter().flatten() {
                println!(
                    "    {}  {:<20} {}  REFUSED by the requested side: {}",
                    s(&u["at"]),
                    s(&u["by"]),
                    name(u),
                    s(&u["reason"])
                );
            }
            let dl = r["deadlines"].as_array().cloned().unwrap_or_default();
            if !dl.is_empty() {
                println!("  deadlines:");
                for d in &dl {
                    let state = if let Some(m) = d["met"].as_str() {
                        format!("met {m}")
                    } else if d["overdue"] == true {
                        "OVERDUE".into()
                    } else {
                        format!("{} day(s) left", d["days_left"])
                    };
                    println!(
                        "    due {}  {:<20} {state}: {} ({})",
                        s(&d["due"]),
                        s(&d["rule"]),
                        s(&d["what"]),
                        s(&d["source"])
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CaseCommand::Update(a) => {
            let status: MlaStatus = parse_enum(&a.status, "status")?;
            let c = client(&a.common)?;
            let case = c.get(&format!("/v1/cases/{}", a.case))?;
            let update = MlaStatusUpdate {
                status: Some(status),
                request: None,
                effective_at: rogatory_proto::time::format_unix(rogatory_proto::time::now_unix()),
                reference: a.reference,
                reason: a.reason,
                until: a.until,
                grounds: a.grounds,
                items: a.items,
                note: a.note,
                confirms: None,
            };
            send_update(
                &c,
                &a.case,
                s(&case["peer"]),
                "mla-status",
                serde_json::to_value(&update)?,
                a.common.json,
            )
        }
    }
}

pub(crate) fn extradition(c: ExtraditionCommand) -> Result<ExitCode> {
    let ExtraditionCommand::Update(a) = c;
    let stage: ExtraditionStage = parse_enum(&a.stage, "stage")?;
    let decision: Option<ExtraditionDecision> = a
        .decision
        .as_deref()
        .map(|d| parse_enum(d, "decision (granted or refused)"))
        .transpose()?;
    let c = client(&a.common)?;
    let (to, last_person) = if a.case == "new" {
        let to =
            a.to.clone()
                .context("a new extradition case needs --to PARTNER")?;
        (to, None)
    } else {
        let case = c.get(&format!("/v1/cases/{}", a.case))?;
        let person = ["pending", "updates"]
            .iter()
            .filter_map(|k| case[*k].as_array().and_then(|u| u.last()))
            .find_map(|u| u["update"]["person_reference"].as_str())
            .map(str::to_string);
        (s(&case["peer"]).to_string(), person)
    };
    let Some(person) = a.person.or(last_person) else {
        bail!("say which person this concerns: --person REFERENCE");
    };
    let update = ExtraditionStatusUpdate {
        stage: Some(stage),
        person_reference: person,
        effective_date: a.date,
        decision,
        scheduled_for: a.scheduled_for,
        note: a.note,
        ..Default::default()
    };
    send_update(
        &c,
        &a.case,
        &to,
        "extradition-status",
        serde_json::to_value(&update)?,
        a.common.json,
    )
}

pub(crate) fn deadlines(a: DeadlinesArgs) -> Result<ExitCode> {
    let days: i64 = a
        .within
        .trim_end_matches('d')
        .parse()
        .with_context(|| format!("--within {}: give days, e.g. 7d", a.within))?;
    let list = client(&a.common)?.get(&format!("/v1/deadlines?within={days}"))?;
    if a.common.json {
        return print_json(&list).map(|()| ExitCode::SUCCESS);
    }
    let rows = list.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        println!("No deadline is due within {days} day(s), and none is overdue.");
    }
    for d in &rows {
        println!(
            "{}  {}  case {}  {:<20} {}: {} ({})",
            s(&d["due"]),
            if d["overdue"] == true {
                "OVERDUE ".to_string()
            } else {
                format!("{:>2} day(s)", d["days_left"])
            },
            s(&d["case_id"]),
            s(&d["peer"]),
            s(&d["rule"]),
            s(&d["what"]),
            s(&d["source"])
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `rogatory request send`.
#[derive(Debug, Args)]
pub struct RequestSendArgs {
    /// The case (from `rogatory case new`).
    pub case: String,
    /// The request as JSON (start from `rogatory request template`).
    pub file: std::path::PathBuf,
    /// The message type, if not an MLA request (e.g. preservation-request).
    #[arg(long = "type", default_value = "mla-request")]
    pub kind: String,
    #[command(flatten)]
    pub common: Common,
}

/// `rogatory request send CASE FILE`: the request goes to the case's partner.
pub(crate) fn request_send(a: RequestSendArgs) -> Result<ExitCode> {
    let raw = crate::files::read_limited(&a.file, crate::files::MAX_INPUT_BYTES)?;
    let body: Value = serde_json::from_slice(&raw)
        .with_context(|| format!("{} is not valid JSON", a.file.display()))?;
    let c = client(&a.common)?;
    let case = c.get(&format!("/v1/cases/{}", a.case))?;
    send_update(&c, &a.case, s(&case["peer"]), &a.kind, body, a.common.json)
}
