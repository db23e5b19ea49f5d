//! `rogatory case …`, `rogatory extradition update`, `rogatory deadlines`: case tracking, through
//! the running node's local API.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use rogatory_proto::message::{
    ExtraditionDecision, ExtraditionStage, ExtraditionStatusUpdate, MlaStatus, MlaStatusUpdate,
};
use serde_json::Value;

use super::online::{Common, print_json};
use crate::api::wire::{
    CaseSummary, CaseView, DeadlineRow, ExportCase, Exported, NewCase, SendBody, Sent, UpdateRow,
};
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
    /// Grounds for refusal in words (repeatable; required with `refused`).
    #[arg(long)]
    pub grounds: Vec<String>,
    /// A ground for refusal from the fixed list, for statistics (repeatable; with `refused`):
    /// immunity-or-privilege, national-security, sovereignty-or-public-order,
    /// measure-not-available, ne-bis-in-idem, territoriality, fundamental-rights,
    /// dual-criminality, offence-threshold, formal-non-conformity, contrary-to-legal-system,
    /// political-offence, other.
    #[arg(long = "ground", value_name = "GROUND")]
    pub refusal_grounds: Vec<String>,
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
    let r: Sent = c.post(
        "/v1/send",
        &SendBody {
            to: vec![to.to_string()],
            case: case.to_string(),
            kind: kind.to_string(),
            body,
        },
    )?;
    if json_out {
        print_json(&r)?;
    } else if let Some(d) = &r.draft {
        super::online::print_held(&r.case_id, d);
    } else {
        println!(
            "case {}: {kind} sealed for {to} and queued (envelope {})",
            r.case_id,
            r.queued
                .first()
                .map(|q| q.envelope_id.as_str())
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn update_name(u: &UpdateRow) -> &str {
    u.status
        .as_deref()
        .or(u.stage.as_deref())
        .unwrap_or_default()
}

fn show(r: &CaseView) {
    let c = &r.summary;
    println!(
        "Case {} — {} case, this agency is the {} side, partner {}",
        c.case_id, c.kind, c.our_side, c.peer
    );
    println!(
        "  status: {}{}",
        c.status,
        if c.emergency { "  (EMERGENCY)" } else { "" }
    );
    println!("  timeline:");
    for m in &r.messages {
        let receipt = match (&m.receipt, m.direction.as_str()) {
            (Some(rc), _) => format!("receipt: {} at {}", rc.event, rc.received_at),
            (None, "received") => "accepted (receipt sent by this node)".to_string(),
            (None, _) => format!("{} (no receipt yet)", m.state),
        };
        println!(
            "    {}  {} → {}  {}  {}…  {receipt}",
            m.at,
            m.from,
            m.to,
            m.kind.as_deref().unwrap_or("(sent)"),
            &m.envelope_id[..16.min(m.envelope_id.len())],
        );
    }
    println!("  status updates (the order both sides agree on):");
    for u in &r.updates {
        println!("    {}  {:<20} {}", u.at, u.by, update_name(u));
    }
    for u in &r.proposals {
        println!(
            "    {}  {:<20} {}  (proposed; awaiting the requested side's confirmation)",
            u.at,
            u.by,
            update_name(u)
        );
    }
    for u in &r.refused {
        println!(
            "    {}  {:<20} {}  REFUSED by the requested side: {}",
            u.at,
            u.by,
            update_name(u),
            u.reason.as_deref().unwrap_or_default()
        );
    }
    if !r.deadlines.is_empty() {
        println!("  deadlines:");
        for d in &r.deadlines {
            let state = if let Some(m) = &d.met {
                format!("met {m}")
            } else if d.overdue {
                "OVERDUE".into()
            } else {
                format!("{} day(s) left", d.days_left.unwrap_or_default())
            };
            println!(
                "    due {}  {:<20} {state}: {} ({})",
                d.due, d.rule, d.what, d.source
            );
        }
    }
}

pub(crate) fn case(c: CaseCommand) -> Result<ExitCode> {
    match c {
        CaseCommand::List {
            status,
            overdue,
            emergency,
            common,
        } => {
            let list: Vec<CaseSummary> = client(&common)?.get("/v1/cases")?;
            let rows: Vec<&CaseSummary> = list
                .iter()
                .filter(|r| status.as_deref().is_none_or(|st| r.status == st))
                .filter(|r| !overdue || r.overdue > 0)
                .filter(|r| !emergency || r.emergency)
                .collect();
            if common.json {
                return print_json(&rows).map(|()| ExitCode::SUCCESS);
            }
            if rows.is_empty() {
                println!("No case matches.");
            }
            for r in rows {
                println!(
                    "{}  {:<12} {:<11} {:<20} {:<28}{}{}",
                    r.case_id,
                    r.kind,
                    r.our_side,
                    r.peer,
                    r.status,
                    if r.emergency { " EMERGENCY" } else { "" },
                    if r.overdue > 0 {
                        format!(" {} OVERDUE", r.overdue)
                    } else {
                        r.next_due
                            .as_deref()
                            .map(|d| format!(" next due {d}"))
                            .unwrap_or_default()
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
            let r: CaseSummary = client(&common)?.post(
                "/v1/cases",
                &NewCase {
                    kind,
                    to,
                    reference,
                },
            )?;
            if common.json {
                return print_json(&r).map(|()| ExitCode::SUCCESS);
            }
            println!("{}", r.case_id);
            eprintln!(
                "opened {} case {} with {}; send its request with `rogatory request send {} FILE`",
                r.kind, r.case_id, r.peer, r.case_id
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
            let r: Exported = client(&common)?.post(
                &format!("/v1/cases/{case}/export"),
                &ExportCase { out, for_auditor },
            )?;
            if common.json {
                return print_json(&r).map(|()| ExitCode::SUCCESS);
            }
            println!(
                "case {} exported to {} ({} bytes, SHA-256 {}): {} log entries, {} envelopes, {} checkpoints, {} inclusion proofs",
                r.case_id,
                r.out.display(),
                r.bytes,
                r.sha256,
                r.entries,
                r.envelopes,
                r.checkpoints,
                r.proofs
            );
            if let Some(a) = &r.auditor {
                println!(
                    "the content of {} envelopes is disclosed to {a}: only that auditor's key reads it",
                    r.disclosed
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CaseCommand::Show { case, wait, common } => {
            let r: CaseView = client(&common)?.get(&format!("/v1/cases/{case}?wait={wait}"))?;
            if common.json {
                return print_json(&r).map(|()| ExitCode::SUCCESS);
            }
            show(&r);
            Ok(ExitCode::SUCCESS)
        }
        CaseCommand::Update(a) => {
            let status: MlaStatus = parse_enum(&a.status, "status")?;
            let c = client(&a.common)?;
            let case: CaseView = c.get(&format!("/v1/cases/{}", a.case))?;
            let update = MlaStatusUpdate {
                status: Some(status),
                request: None,
                effective_at: rogatory_proto::time::format_unix(rogatory_proto::time::now_unix()),
                reference: a.reference,
                reason: a.reason,
                until: a.until,
                grounds: a.grounds,
                refusal_grounds: a
                    .refusal_grounds
                    .iter()
                    .map(|g| parse_enum(g, "refusal ground"))
                    .collect::<Result<_>>()?,
                items: a.items,
                note: a.note,
                confirms: None,
            };
            send_update(
                &c,
                &a.case,
                &case.summary.peer,
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
        let case: CaseView = c.get(&format!("/v1/cases/{}", a.case))?;
        let person = [&case.proposals, &case.updates]
            .iter()
            .filter_map(|u| u.last())
            .find_map(|u| u.update["person_reference"].as_str())
            .map(str::to_string);
        (case.summary.peer, person)
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
    let rows: Vec<DeadlineRow> = client(&a.common)?.get(&format!("/v1/deadlines?within={days}"))?;
    if a.common.json {
        return print_json(&rows).map(|()| ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("No deadline is due within {days} day(s), and none is overdue.");
    }
    for d in &rows {
        println!(
            "{}  {}  case {}  {:<20} {}: {} ({})",
            d.due,
            if d.overdue {
                "OVERDUE ".to_string()
            } else {
                format!("{:>2} day(s)", d.days_left.unwrap_or_default())
            },
            d.case_id,
            d.peer,
            d.rule,
            d.what,
            d.source
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
    let case: CaseView = c.get(&format!("/v1/cases/{}", a.case))?;
    send_update(
        &c,
        &a.case,
        &case.summary.peer,
        &a.kind,
        body,
        a.common.json,
    )
}
