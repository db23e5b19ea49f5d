//! The demo's officials (spec/PEOPLE.md): BR.MJSP-DRCI makes accounts for a clerk and a
//! prosecutor, its root certifies the prosecutor's key, the clerk's MLA request waits as a
//! draft until the prosecutor approves it, and FR.DACG reads who issued it.

use std::time::Duration;

use anyhow::{Context, Result};

use super::{AGENCIES, Demo, step};
use crate::api::wire::{DraftRow, MessageView, Sent};

const BR: usize = 2;

pub(super) fn run(demo: &Demo, n: u32) -> Result<()> {
    step(
        n,
        "BR.MJSP-DRCI's officials: a clerk drafts an MLA request to FR.DACG, a prosecutor approves and signs it in their own name (spec/PEOPLE.md)",
    );
    let dir = demo.dir(BR).display().to_string();
    let token = |name: &str| demo.root.join(format!("br-{name}.token"));
    for (name, role) in [("clerk", "clerk"), ("prosecutor", "issuing-authority")] {
        let out = demo.cli(
            &[
                "user",
                "add",
                name,
                "--role",
                role,
                "--token-out",
                &token(name).display().to_string(),
                "--data-dir",
                &dir,
            ],
            true,
        )?;
        print_indented(&out, 2);
    }
    // The root certifies the prosecutor's key in BR's key history, which its partners take up
    // as they take up any change of its keys; the node restarts on the longer history.
    let out = demo.cli(&["user", "certify", "prosecutor", "--data-dir", &dir], true)?;
    print_indented(&out, 2);

    // The clerk sends: an MLA request needs an issuing authority's approval, so it is held.
    let body = demo.root.join("br-mla-request.json");
    crate::files::write_atomic(
        &body,
        super::mla_request_between(AGENCIES[BR].0, AGENCIES[0].0)?.as_bytes(),
        false,
        true,
    )?;
    let held = demo.cli_as(
        &token("clerk"),
        &[
            "send",
            "--to",
            AGENCIES[0].0,
            "--case",
            "new",
            "--type",
            "mla-request",
            "--body",
            &body.display().to_string(),
            "--data-dir",
            &dir,
            "--json",
        ],
    )?;
    let held: Sent = serde_json::from_str(&held).context("the answer to the clerk's send")?;
    let draft = held.draft.context("the clerk's MLA request was not held")?;
    println!(
        "  held as draft {}… ({}), drafted by {}: nothing was sealed",
        &draft.id[..16],
        draft.state,
        draft.drafted_by
    );
    let id = draft.id[..16].to_string();
    // A clerk may not approve, not even another clerk's draft.
    match demo.cli_as(
        &token("clerk"),
        &["request", "approve", &id, "--data-dir", &dir],
    ) {
        Ok(_) => anyhow::bail!("a clerk approved a draft"),
        Err(e) => println!(
            "  the clerk's own approval is refused: {}",
            reason(&format!("{e:#}"))
        ),
    }
    let approved = demo.cli_as(
        &token("prosecutor"),
        &["request", "approve", &id, "--data-dir", &dir, "--json"],
    )?;
    let approved: DraftRow =
        serde_json::from_str(&approved).context("the answer to the approval")?;
    let envelope = approved
        .envelopes
        .first()
        .context("the approved draft was not sealed")?
        .clone();
    println!(
        "  approved by {}: sealed with that official's signature, then BR.MJSP-DRCI's (envelope {}…)",
        approved.decided_by.as_deref().unwrap_or_default(),
        &envelope[..16]
    );
    // FR.DACG may not have taken up the longer key history yet: it then leaves the envelope
    // unanswered, asks for the history, and takes it at the next attempt (PEOPLE.md §5.4).
    let row = demo.settled(BR, &envelope, Duration::from_secs(90))?;
    println!("  delivered to FR.DACG: {}", row.state);
    println!(
        "$ rogatory message show {} --data-dir {}",
        &envelope[..16],
        demo.dir(0).display()
    );
    let m: MessageView = demo.api(0)?.get(&format!("/v1/messages/{envelope}"))?;
    let words: Vec<String> = m
        .signed_by
        .iter()
        .map(|o| {
            let did = match o.role.as_str() {
                "validating-authority" => "validated",
                _ => "issued",
            };
            format!("{did} by {} of {}", o.name, m.from)
        })
        .collect();
    anyhow::ensure!(
        !words.is_empty(),
        "FR.DACG does not see who signed the request"
    );
    println!(
        "  FR.DACG reads an {} {}, the official's signature verified against {}'s key history",
        m.kind.unwrap_or_default(),
        words.join(", "),
        m.from
    );
    Ok(())
}

fn print_indented(text: &str, by: usize) {
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        println!("{:by$}{line}", "");
    }
}

/// What a failed command said, without the command line before it.
fn reason(text: &str) -> &str {
    text.rsplit("error: ").next().unwrap_or(text).trim()
}
