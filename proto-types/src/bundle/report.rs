//! The verifier's reports: text for a terminal, and a self-contained HTML page a court clerk
//! can open in any browser (no script, no outside resource, printable).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Event, Verdict};
use crate::time::format_unix;

/// The verdict as text for people: what was verified, every finding, the timeline.
pub fn report_text(v: &Verdict) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "Case {}", v.case_id);
    for b in &v.bundles {
        let _ = writeln!(
            out,
            "  bundle of {} exported {}: {} entries, {} envelopes sent and {} received, {} checkpoints ({} cosigned), {} partner checkpoints witnessed, {} inclusion proofs",
            b.exporter,
            crate::time::format_unix(b.exported_at),
            b.entries,
            b.sent,
            b.received,
            b.checkpoints,
            b.cosigned,
            b.witnessed,
            b.proofs
        );
        for (id, fp) in &b.cards {
            let _ = writeln!(
                out,
                "    card {id}: fingerprint {fp} (compare with the one obtained from the agency)"
            );
        }
    }
    for b in &v.bundles {
        if let Some((id, fp)) = &b.auditor {
            let _ = writeln!(
                out,
                "  {}'s bundle discloses the content of {} envelopes to the auditor {id} (card fingerprint {fp})",
                b.exporter, b.disclosed
            );
        }
    }
    if !v.content.is_empty() {
        let _ = writeln!(
            out,
            "\nContent disclosed to the auditor ({} messages, each checked against its sender's signature and its envelope):",
            v.content.len()
        );
        for m in &v.content {
            let text = m.content.to_string();
            let cut: String = text.chars().take(160).collect();
            let _ = writeln!(
                out,
                "  {}  {} → {}  {}  envelope {}\n    {}{}",
                format_unix(m.sent_at),
                m.from,
                m.to,
                m.message_type,
                &m.envelope[..16.min(m.envelope.len())],
                cut,
                if cut.len() < text.len() { " …" } else { "" }
            );
            if let Some(who) = officials(m) {
                let _ = writeln!(out, "    {who}");
            }
        }
    }
    let _ = writeln!(
        out,
        "\nMessages ({}), each with the sender's key that signed it:",
        v.envelopes.len()
    );
    for e in v.envelopes.iter().take(MAX_ROWS) {
        let _ = writeln!(
            out,
            "  {}  {} → {} #{}  envelope {}  key {} ({})  {}",
            format_unix(e.sent_at),
            e.from,
            e.to,
            e.sequence,
            &e.id[..16.min(e.id.len())],
            &e.key[..16.min(e.key.len())],
            e.key_state,
            e.receipt
                .as_ref()
                .map(|r| format!("receipt: {}", r.event))
                .unwrap_or_else(|| "no receipt yet".into())
        );
    }
    if v.envelopes.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "  … and {} more (--json lists them all)",
            v.envelopes.len() - MAX_ROWS
        );
    }
    let _ = writeln!(out, "\nTimeline ({} entries):", v.timeline_entries);
    for e in &v.timeline {
        let mut line = format!(
            "  {}  {:<18} #{:<4} {}",
            crate::time::format_unix(e.time),
            e.agency,
            e.seq,
            e.event
        );
        if let Some(p) = &e.peer {
            let _ = write!(line, " ({p})");
        }
        if let Some(t) = &e.transition {
            let _ = write!(line, " {t}");
        }
        if let Some(env) = &e.envelope {
            let _ = write!(line, "  envelope {}", &env.to_hex()[..16]);
        }
        if let Some(u) = &e.user {
            let _ = write!(line, "  by {u}");
        }
        let _ = writeln!(out, "{line}");
    }
    if v.ok() {
        let _ = writeln!(out, "\nVERIFIED. What this proves:");
        for p in &v.proved {
            let _ = writeln!(out, "  - {p}");
        }
    } else {
        let _ = writeln!(out, "\nNOT VERIFIED: {} check(s) failed:", v.findings.len());
        for f in &v.findings {
            let _ = writeln!(out, "  [{}] {}: {}", f.check, f.at, f.problem);
        }
        if !v.proved.is_empty() {
            let _ = writeln!(out, "What still holds:");
            for p in &v.proved {
                let _ = writeln!(out, "  - {p}");
            }
        }
    }
    out
}

/// Most rows a table of the HTML report lists; the JSON report (`--json`) has them all.
const MAX_ROWS: usize = 5_000;
/// Above this many events the chart shows each agency's activity as a density strip instead
/// of one mark per event.
const MAX_MARKS: usize = 2_000;
/// Above this many envelopes the chart draws no line per envelope.
const MAX_LINES: usize = 500;

/// The officials who signed a disclosed message, in words: "issued by …, validated by …".
fn officials(m: &super::DisclosedMessage) -> Option<String> {
    if m.signed_by.is_empty() {
        return None;
    }
    let words: Vec<String> = m
        .signed_by
        .iter()
        .map(|o| {
            let done = match o.role.as_str() {
                "issuing-authority" => "issued by",
                "validating-authority" => "validated by",
                _ => "signed by",
            };
            let revoked = o
                .revoked_since
                .as_deref()
                .map(|r| format!("; certificate revoked since: {r}"))
                .unwrap_or_default();
            format!(
                "{done} {} ({}, key {}…{revoked})",
                o.name,
                o.role,
                &o.key[..16.min(o.key.len())]
            )
        })
        .collect();
    Some(format!(
        "{}; each signature verified against {}'s key history",
        words.join(", "),
        m.from
    ))
}

/// HTML-escapes text for element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The colour class of an event in the chart and the timeline.
fn category(event: &str) -> &'static str {
    match event {
        "envelope-sent" => "sent",
        "envelope-received" => "received",
        "receipt-sent" | "receipt-received" => "receipt",
        "status-changed" | "case-created" | "draft-approved" => "status",
        "envelope-rejected"
        | "peer-log-inconsistent"
        | "evidence-quarantined"
        | "evidence-refused" => "alert",
        e if e.starts_with("evidence-") => "evidence",
        "content-accessed" | "bundle-exported" => "access",
        _ => "other",
    }
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#1b1b1b;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92em}
table{border-collapse:collapse;width:100%;font-size:.9em}th,td{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}
.verdict{font-size:1.3em;font-weight:700;padding:.6em 1em;border-radius:4px}
.ok{background:#e3f4e6;color:#0b5d1e;border:1px solid #7cc68a}.fail{background:#fbe4e4;color:#8a1010;border:1px solid #e08a8a}
.note{color:#555;font-size:.9em}
pre.message{background:#f6f6f6;border:1px solid #ddd;padding:.6em;white-space:pre-wrap;font-size:.85em}
svg text{font-family:system-ui,sans-serif;font-size:11px;fill:#333}
.sent{fill:#1f5fbf}.received{fill:#1e8a3c}.receipt{fill:#0f8b8d}.status{fill:#d97a00}.evidence{fill:#7b3fb5}.access{fill:#8c8c8c}.alert{fill:#c21b1b}.other{fill:#444}
line.msg{stroke:#1f5fbf;stroke-opacity:.45;stroke-width:1}
.legend span{display:inline-block;margin-right:1.2em}.legend i{display:inline-block;width:.8em;height:.8em;border-radius:50%;margin-right:.3em;vertical-align:middle}
.legend .sent{background:#1f5fbf}.legend .received{background:#1e8a3c}.legend .receipt{background:#0f8b8d}.legend .status{background:#d97a00}.legend .evidence{background:#7b3fb5}.legend .access{background:#8c8c8c}.legend .alert{background:#c21b1b}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}tr{break-inside:avoid}}
";

/// The verdict as one self-contained HTML page: the verdict, the parties with their card
/// fingerprints, a chart of the case's timeline (one lane per agency, a line per envelope from
/// its sealing to its receipt), what the checks prove, every finding, the messages with their
/// receipts, and the merged timeline.
pub fn report_html(v: &Verdict) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Rogatory case verification: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&v.case_id)
    );
    let _ = writeln!(
        o,
        "<header>\n<h1>Case verification report</h1>\n<p>Case <code id=\"case\">{}</code>, \
         from {} export bundle(s), checked offline: signatures, receipts, inclusion proofs, \
         checkpoints and cosignatures, message chains, and both sides against each other \
         (spec/BUNDLE.md §4).</p>",
        esc(&v.case_id),
        v.bundles.len()
    );
    if v.ok() {
        let _ = writeln!(
            o,
            "<p id=\"verdict\" class=\"verdict ok\">VERIFIED: every check held.</p>"
        );
    } else {
        let _ = writeln!(
            o,
            "<p id=\"verdict\" class=\"verdict fail\">NOT VERIFIED: {} check(s) failed.</p>",
            v.findings.len()
        );
    }
    o.push_str("</header>\n");

    // Parties.
    o.push_str(
        "<section id=\"parties\">\n<h2>Parties and bundles</h2>\n<table>\n<thead><tr>\
         <th>Exported by</th><th>Exported at (UTC)</th><th>Log entries</th><th>Envelopes sent</th>\
         <th>Envelopes received</th><th>Checkpoints (cosigned)</th><th>Partner checkpoints witnessed</th>\
         <th>Inclusion proofs</th></tr></thead>\n<tbody>\n",
    );
    for b in &v.bundles {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td></tr>",
            esc(&b.exporter),
            format_unix(b.exported_at),
            b.entries,
            b.sent,
            b.received,
            b.checkpoints,
            b.cosigned,
            b.witnessed,
            b.proofs
        );
    }
    o.push_str("</tbody>\n</table>\n");
    let mut cards: BTreeMap<&str, &str> = BTreeMap::new();
    for b in &v.bundles {
        for (id, fp) in &b.cards {
            cards.insert(id, fp);
        }
    }
    o.push_str(
        "<h3>Agency cards</h3>\n<table id=\"cards\">\n<thead><tr><th>Agency</th><th>Card fingerprint</th></tr></thead>\n<tbody>\n",
    );
    for (id, fp) in &cards {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td><code>{}</code></td></tr>",
            esc(id),
            esc(fp)
        );
    }
    o.push_str(
        "</tbody>\n</table>\n<p class=\"note\">The signatures prove what each card's keys signed. \
         That a card belongs to the agency it names is proved only by comparing its fingerprint \
         with the one obtained from the agency itself.</p>\n</section>\n",
    );

    // Chart.
    o.push_str("<section id=\"chart\">\n<h2>Timeline chart</h2>\n");
    chart(&mut o, v);
    o.push_str(
        "<p class=\"legend\"><span><i class=\"sent\"></i>envelope sent</span>\
         <span><i class=\"received\"></i>envelope received</span><span><i class=\"receipt\"></i>receipt</span>\
         <span><i class=\"status\"></i>case opened or status changed</span><span><i class=\"evidence\"></i>evidence</span>\
         <span><i class=\"access\"></i>content read or exported locally</span><span><i class=\"alert\"></i>refusal or alert</span></p>\n\
         <p class=\"note\">Each lane is one agency's audit log. A line joins an envelope's sealing \
         (its sender's signed time) to the addressee's signed time of receipt.</p>\n</section>\n",
    );

    // Results.
    o.push_str("<section id=\"results\">\n<h2>Verification results</h2>\n");
    if !v.findings.is_empty() {
        let _ = writeln!(
            o,
            "<h3>Failed checks ({})</h3>\n<table id=\"findings\">\n<thead><tr><th>Check</th><th>Where</th><th>Problem</th></tr></thead>\n<tbody>",
            v.findings.len()
        );
        for f in v.findings.iter().take(MAX_ROWS) {
            let _ = writeln!(
                o,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(f.check),
                esc(&f.at),
                esc(&f.problem)
            );
        }
        o.push_str("</tbody>\n</table>\n");
        more(&mut o, v.findings.len());
    }
    let _ = writeln!(
        o,
        "<h3>{}</h3>\n<ul id=\"proved\">",
        if v.ok() {
            "What this proves"
        } else {
            "What still holds"
        }
    );
    for p in &v.proved {
        let _ = writeln!(o, "<li>{}</li>", esc(p));
    }
    o.push_str("</ul>\n</section>\n");

    // Content, for the auditor it was disclosed to.
    if !v.content.is_empty() {
        let _ = writeln!(
            o,
            "<section id=\"content\">\n<h2>Messages disclosed to the auditor ({})</h2>\n\
             <p class=\"note\">Read with the auditor's key; each is the content its envelope \
             carries, signed by its sender.</p>",
            v.content.len()
        );
        for m in v.content.iter().take(MAX_ROWS) {
            let body = serde_json::to_string_pretty(&m.content).unwrap_or_default();
            let _ = writeln!(
                o,
                "<h3>{} · {} → {} · {}</h3>",
                format_unix(m.sent_at),
                esc(&m.from),
                esc(&m.to),
                esc(&m.message_type),
            );
            if let Some(who) = officials(m) {
                let _ = writeln!(o, "<p class=\"officials\">{}</p>", esc(&who));
            }
            let _ = writeln!(o, "<pre class=\"message\">{}</pre>", esc(&body));
        }
        more(&mut o, v.content.len());
        o.push_str("</section>\n");
    }

    // Envelopes and receipts.
    let _ = writeln!(
        o,
        "<section id=\"envelopes\">\n<h2>Messages and receipts ({})</h2>\n<table>\n<thead><tr>\
         <th>Sealed (UTC)</th><th>From</th><th>To</th><th>Chain #</th><th>Envelope</th><th>Signed with</th><th>Receipt</th>\
         <th>Received (UTC)</th><th>Held by</th></tr></thead>\n<tbody>",
        v.envelopes.len()
    );
    for e in v.envelopes.iter().take(MAX_ROWS) {
        let (receipt, at) = match &e.receipt {
            Some(r) => (
                match &r.reason {
                    Some(why) => format!("{} ({why})", r.event),
                    None => r.event.clone(),
                },
                format_unix(r.received_at),
            ),
            None => ("none yet".to_string(), String::new()),
        };
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code> {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            format_unix(e.sent_at),
            esc(&e.from),
            esc(&e.to),
            e.sequence,
            esc(&e.id[..16.min(e.id.len())]),
            esc(&e.key[..16.min(e.key.len())]),
            esc(&e.key_state),
            esc(&receipt),
            at,
            esc(&e.held_by.join(", "))
        );
    }
    o.push_str("</tbody>\n</table>\n");
    more(&mut o, v.envelopes.len());
    o.push_str("</section>\n");

    // Timeline.
    let _ = writeln!(
        o,
        "<section id=\"timeline\">\n<h2>Timeline ({} log entries)</h2>\n<table>\n<thead><tr>\
         <th>Time (UTC)</th><th>Log of</th><th>Entry</th><th>Event</th><th>Other agency</th><th>Detail</th></tr></thead>\n<tbody>",
        v.timeline_entries
    );
    for e in v.timeline.iter().take(MAX_ROWS) {
        let mut detail = Vec::new();
        if let Some(t) = &e.transition {
            detail.push(esc(t));
        }
        if let Some(env) = &e.envelope {
            detail.push(format!("envelope <code>{}</code>", &env.to_hex()[..16]));
        }
        if let Some(u) = &e.user {
            detail.push(format!("by {}", esc(u)));
        }
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><span class=\"{}\">&#9679;</span> {}</td><td>{}</td><td>{}</td></tr>",
            format_unix(e.time),
            esc(&e.agency),
            e.seq,
            category(&e.event),
            esc(&e.event),
            esc(e.peer.as_deref().unwrap_or("")),
            detail.join("; ")
        );
    }
    o.push_str("</tbody>\n</table>\n");
    more(&mut o, v.timeline.len());
    o.push_str("</section>\n<footer>\n<p class=\"note\">");
    if v.content.is_empty() {
        o.push_str(
            "Envelopes stay encrypted to their addressees: this report proves who sent what to \
             whom and when, that it was received, and that no log was rewritten, but not what \
             the messages say. ",
        );
    } else {
        o.push_str(
            "The messages above were disclosed to the auditor whose key read them; every other \
             check needs no key. ",
        );
    }
    o.push_str(
        "Made by the Rogatory offline verifier, which needs no node, no network and no \
         agency secret.</p>\n</footer>\n</body>\n</html>\n",
    );
    o
}

fn more(o: &mut String, n: usize) {
    if n > MAX_ROWS {
        let _ = writeln!(
            o,
            "<p class=\"note\">The first {MAX_ROWS} of {n} rows; the JSON report (<code>--json</code>) lists them all.</p>"
        );
    }
}

/// The timeline chart as inline SVG.
fn chart(o: &mut String, v: &Verdict) {
    let mut lanes: Vec<String> = v.bundles.iter().map(|b| b.exporter.clone()).collect();
    for e in &v.envelopes {
        for a in [&e.from, &e.to] {
            if !lanes.contains(a) {
                lanes.push(a.clone());
            }
        }
    }
    let times = v
        .timeline
        .iter()
        .map(|e| e.time)
        .chain(v.envelopes.iter().map(|e| e.sent_at))
        .chain(
            v.envelopes
                .iter()
                .filter_map(|e| e.receipt.as_ref().map(|r| r.received_at)),
        );
    let (lo, hi) = times.fold((u64::MAX, 0), |(lo, hi), t| (lo.min(t), hi.max(t)));
    if lanes.is_empty() || lo > hi {
        o.push_str("<p>No events to chart.</p>\n");
        return;
    }
    let (left, right, top, lane_h) = (150.0, 980.0, 30.0, 70.0);
    let width = 1000.0;
    let height = top + lane_h * lanes.len() as f64 + 40.0;
    let span = (hi - lo).max(1) as f64;
    let x = |t: u64| left + (t.saturating_sub(lo)) as f64 / span * (right - left);
    let y = |agency: &str| {
        let i = lanes.iter().position(|l| l == agency).unwrap_or(0);
        top + lane_h * i as f64 + lane_h / 2.0
    };
    let _ = writeln!(
        o,
        "<svg id=\"timeline-chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" \
         width=\"100%\" role=\"img\" aria-label=\"Timeline of case {}\">",
        esc(&v.case_id)
    );
    for l in &lanes {
        let ly = y(l);
        let _ = writeln!(
            o,
            "<line x1=\"{left}\" y1=\"{ly}\" x2=\"{right}\" y2=\"{ly}\" stroke=\"#bbb\"/>\
             <text x=\"10\" y=\"{:.1}\">{}</text>",
            ly + 4.0,
            esc(l)
        );
    }
    // Ticks: five dates along the bottom.
    let axis = top + lane_h * lanes.len() as f64 + 5.0;
    let _ = writeln!(
        o,
        "<line x1=\"{left}\" y1=\"{axis}\" x2=\"{right}\" y2=\"{axis}\" stroke=\"#666\"/>"
    );
    for k in 0..5u64 {
        // In u128: a hostile bundle may state times near u64::MAX.
        let t = lo + (u128::from(hi - lo) * u128::from(k) / 4) as u64;
        let tx = x(t);
        let anchor = match k {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = writeln!(
            o,
            "<line x1=\"{tx:.1}\" y1=\"{axis}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#666\"/>\
             <text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            axis + 5.0,
            axis + 18.0,
            format_unix(t)
        );
    }
    if v.envelopes.len() <= MAX_LINES {
        for e in &v.envelopes {
            let Some(r) = &e.receipt else { continue };
            let _ = writeln!(
                o,
                "<line class=\"msg\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"><title>{} → {} #{}: sealed {}, {} {}</title></line>",
                x(e.sent_at),
                y(&e.from),
                x(r.received_at),
                y(&e.to),
                esc(&e.from),
                esc(&e.to),
                e.sequence,
                format_unix(e.sent_at),
                esc(&r.event),
                format_unix(r.received_at)
            );
        }
    }
    if v.timeline.len() <= MAX_MARKS {
        for e in &v.timeline {
            marker(o, e, x(e.time), y(&e.agency));
        }
    } else {
        density(o, v, &lanes, lo, span, (left, right), |a| y(a));
        let _ = writeln!(
            o,
            "<text x=\"{left}\" y=\"16\">{} events: each lane shows how many fell in each period (darker is more)</text>",
            v.timeline.len()
        );
    }
    o.push_str("</svg>\n");
}

fn marker(o: &mut String, e: &Event, cx: f64, cy: f64) {
    let _ = writeln!(
        o,
        "<circle class=\"ev {}\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"4\"><title>{} {} #{}: {}{}</title></circle>",
        category(&e.event),
        format_unix(e.time),
        esc(&e.agency),
        e.seq,
        esc(&e.event),
        e.peer
            .as_deref()
            .map(|p| format!(" ({})", esc(p)))
            .unwrap_or_default()
    );
}

/// Each lane's events counted in 200 periods, drawn as bars of varying opacity.
fn density(
    o: &mut String,
    v: &Verdict,
    lanes: &[String],
    lo: u64,
    span: f64,
    (left, right): (f64, f64),
    y: impl Fn(&str) -> f64,
) {
    const BUCKETS: usize = 200;
    let mut counts = vec![vec![0u32; BUCKETS]; lanes.len()];
    for e in &v.timeline {
        let lane = lanes.iter().position(|l| l == &e.agency).unwrap_or(0);
        let b = (((e.time - lo) as f64 / span) * (BUCKETS - 1) as f64) as usize;
        counts[lane][b.min(BUCKETS - 1)] += 1;
    }
    let max = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    let w = (right - left) / BUCKETS as f64;
    for (lane, row) in lanes.iter().zip(&counts) {
        let ly = y(lane);
        for (i, &c) in row.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let _ = writeln!(
                o,
                "<rect class=\"sent\" x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.2}\" height=\"24\" fill-opacity=\"{:.2}\"><title>{c} events</title></rect>",
                left + w * i as f64,
                ly - 12.0,
                0.15 + 0.85 * f64::from(c) / max
            );
        }
    }
}
