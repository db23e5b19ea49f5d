//! The figures as a table, CSV, SDMX-CSV and a self-contained HTML report (spec/STATS.md §6).

use std::fmt::Write as _;

use super::{Counts, DURATIONS, Figures};

/// How figures are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Format {
    /// Aligned text for a terminal.
    Table,
    /// The figures as JSON (format rogatory-stats/1).
    Json,
    /// One row per figure: figure,breakdown,category,value,status.
    Csv,
    /// SDMX-CSV 1.0, one observation per row, for a statistics office.
    Sdmx,
}

/// The figures written in `format`.
pub fn render(f: &Figures, format: Format) -> String {
    match format {
        Format::Table => text(f),
        Format::Json => serde_json::to_string_pretty(f).unwrap_or_default() + "\n",
        Format::Csv => csv(f),
        Format::Sdmx => sdmx_csv(f),
    }
}

/// The breakdowns of cases, with their titles and SDMX breakdown codes.
const CASE_BREAKDOWNS: [(&str, &str, &str); 8] = [
    ("by_direction", "Cases by direction", "DIRECTION"),
    ("by_partner", "Cases by partner", "PARTNER"),
    ("by_kind", "Cases by kind", "KIND"),
    ("by_offence", "Cases by offence (ICCS)", "OFFENCE_ICCS"),
    ("by_measure", "Cases by measure requested", "MEASURE"),
    ("by_emergency", "Cases by urgency", "URGENCY"),
    ("by_outcome", "Cases by outcome", "OUTCOME"),
    (
        "by_refusal_ground",
        "Refused requests by ground",
        "REFUSAL_GROUND",
    ),
];

const MESSAGE_BREAKDOWNS: [(&str, &str, &str); 3] = [
    ("by_direction", "Messages by direction", "DIRECTION"),
    ("by_partner", "Messages by partner", "PARTNER"),
    ("by_type", "Messages by type", "TYPE"),
];

fn case_counts<'a>(f: &'a Figures, key: &str) -> &'a Counts {
    let c = &f.cases;
    match key {
        "by_direction" => &c.by_direction,
        "by_partner" => &c.by_partner,
        "by_kind" => &c.by_kind,
        "by_offence" => &c.by_offence,
        "by_measure" => &c.by_measure,
        "by_emergency" => &c.by_emergency,
        "by_outcome" => &c.by_outcome,
        _ => &c.by_refusal_ground,
    }
}

fn message_counts<'a>(f: &'a Figures, key: &str) -> &'a Counts {
    let m = &f.messages;
    match key {
        "by_direction" => &m.by_direction,
        "by_partner" => &m.by_partner,
        _ => &m.by_type,
    }
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn shown(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "·".into())
}

/// Seconds in words: `42 s`, `3 h 05 min`, `12 d 4 h`.
pub fn seconds(s: u64) -> String {
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        3600..86_400 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The figures for a person at a terminal.
pub fn text(f: &Figures) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Statistics of {}, {} to {}", f.agency, f.from, f.until);
    let _ = writeln!(o, "\nCases begun in the period: {}", f.cases.total);
    for (key, title, _) in CASE_BREAKDOWNS {
        let c = case_counts(f, key);
        if c.is_empty() {
            continue;
        }
        let _ = writeln!(o, "  {title}:");
        for (k, v) in c {
            let _ = writeln!(o, "    {k:<36} {v:>7}");
        }
    }
    let _ = writeln!(o, "\nMessages in the period: {}", f.messages.total);
    for (key, title, _) in MESSAGE_BREAKDOWNS {
        let _ = writeln!(o, "  {title}:");
        for (k, v) in message_counts(f, key) {
            let _ = writeln!(o, "    {k:<36} {v:>7}");
        }
    }
    let t = &f.victims;
    let _ = writeln!(
        o,
        "\nVictims by age band and gender (· suppressed: counts from 1 to {} are never shown):",
        f.threshold.saturating_sub(1)
    );
    let _ = write!(o, "    {:<10}", "");
    for c in &t.columns {
        let _ = write!(o, "{c:>9}");
    }
    let _ = writeln!(o, "{:>9}", "total");
    for (i, r) in t.rows.iter().enumerate() {
        let _ = write!(o, "    {r:<10}");
        for v in &t.cells[i] {
            let _ = write!(o, "{:>9}", shown(*v));
        }
        let _ = writeln!(o, "{:>9}", shown(t.row_totals[i]));
    }
    let _ = write!(o, "    {:<10}", "total");
    for v in &t.column_totals {
        let _ = write!(o, "{:>9}", shown(*v));
    }
    let _ = writeln!(o, "{:>9}", shown(t.total));
    let _ = writeln!(o, "\nMLA requests, time from the request to:");
    let _ = writeln!(
        o,
        "    {:<18}{:>7}{:>16}{:>16}{:>16}",
        "", "count", "median", "p90", "max"
    );
    for name in DURATIONS {
        let d = f.durations.get(name).cloned().unwrap_or_default();
        let w = |v: Option<u64>| v.map(seconds).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            o,
            "    {name:<18}{:>7}{:>16}{:>16}{:>16}",
            d.count,
            w(d.median),
            w(d.p90),
            w(d.max)
        );
    }
    let e = &f.extradition_deadlines;
    let g = |k: &str| e.get(k).copied().unwrap_or(0);
    let _ = writeln!(
        o,
        "\nExtradition deadlines: {} met, {} missed, {} open",
        g("met"),
        g("missed"),
        g("open")
    );
    o
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Every figure as one CSV row: `figure,breakdown,category,value,status` (`suppressed`, with
/// no value, where a victim count is hidden).
pub fn csv(f: &Figures) -> String {
    let mut o = String::from("figure,breakdown,category,value,status\n");
    let mut row = |fig: &str, b: &str, c: &str, v: Option<u64>| {
        let status = if v.is_none() && fig == "victims" {
            "suppressed"
        } else {
            ""
        };
        let _ = writeln!(o, "{fig},{b},{},{},{status}", csv_field(c), opt(v));
    };
    row("cases", "total", "", Some(f.cases.total));
    for (key, _, _) in CASE_BREAKDOWNS {
        for (k, v) in case_counts(f, key) {
            row("cases", key, k, Some(*v));
        }
    }
    row("messages", "total", "", Some(f.messages.total));
    for (key, _, _) in MESSAGE_BREAKDOWNS {
        for (k, v) in message_counts(f, key) {
            row("messages", key, k, Some(*v));
        }
    }
    for_victims(f, |cat, v| row("victims", "age_band_gender", cat, v));
    for name in DURATIONS {
        let d = f.durations.get(name).cloned().unwrap_or_default();
        row("durations", name, "count", Some(d.count));
        row("durations", name, "median", d.median);
        row("durations", name, "p90", d.p90);
        row("durations", name, "max", d.max);
    }
    for (k, v) in &f.extradition_deadlines {
        row("extradition_deadlines", "state", k, Some(*v));
    }
    o
}

/// Every entry of the victims' table: `BAND|GENDER`, `BAND|_T`, `_T|GENDER`, `_T|_T`.
fn for_victims(f: &Figures, mut each: impl FnMut(&str, Option<u64>)) {
    let t = &f.victims;
    for (i, r) in t.rows.iter().enumerate() {
        for (j, c) in t.columns.iter().enumerate() {
            each(&format!("{r}|{c}"), t.cells[i][j]);
        }
        each(&format!("{r}|_T"), t.row_totals[i]);
    }
    for (j, c) in t.columns.iter().enumerate() {
        each(&format!("_T|{c}"), t.column_totals[j]);
    }
    each("_T|_T", t.total);
}

/// The SDMX dataflow the SDMX-CSV file names.
pub const DATAFLOW: &str = "ROGATORY:COOPERATION_STATS(1.0)";

/// The figures as SDMX-CSV (SDMX-CSV 1.0 for SDMX 2.1): one observation per row, dimensions
/// `REPORTING_AGENCY`, `TIME_PERIOD` (the period as an ISO 8601 interval), `INDICATOR`,
/// `BREAKDOWN`, `CATEGORY`; the value `OBS_VALUE`; attributes `UNIT_MEASURE` (`NUM` or `S`)
/// and `CONF_STATUS` (`F` free, `C` confidential: suppressed, no value). The indicators and
/// their codes are listed in spec/STATS.md §6.
pub fn sdmx_csv(f: &Figures) -> String {
    let mut o = String::from(
        "DATAFLOW,REPORTING_AGENCY,TIME_PERIOD,INDICATOR,BREAKDOWN,CATEGORY,OBS_VALUE,UNIT_MEASURE,CONF_STATUS\n",
    );
    let period = format!("{}/{}", f.from, f.until);
    let mut obs = |ind: &str, b: &str, c: &str, v: Option<u64>, unit: &str| {
        let _ = writeln!(
            o,
            "{DATAFLOW},{},{period},{ind},{b},{},{},{unit},{}",
            csv_field(&f.agency),
            csv_field(c),
            opt(v),
            if v.is_some() { "F" } else { "C" }
        );
    };
    obs("CASES", "_T", "_T", Some(f.cases.total), "NUM");
    for (key, _, code) in CASE_BREAKDOWNS {
        for (k, v) in case_counts(f, key) {
            obs("CASES", code, k, Some(*v), "NUM");
        }
    }
    obs("MESSAGES", "_T", "_T", Some(f.messages.total), "NUM");
    for (key, _, code) in MESSAGE_BREAKDOWNS {
        for (k, v) in message_counts(f, key) {
            obs("MESSAGES", code, k, Some(*v), "NUM");
        }
    }
    for_victims(f, |cat, v| obs("VICTIMS", "AGE_BAND_GENDER", cat, v, "NUM"));
    for name in DURATIONS {
        let d = f.durations.get(name).cloned().unwrap_or_default();
        let code = name.to_uppercase();
        obs("MLA_TIME_COUNT", "EVENT", &code, Some(d.count), "NUM");
        if d.count > 0 {
            obs("MLA_TIME_MEDIAN", "EVENT", &code, d.median, "S");
            obs("MLA_TIME_P90", "EVENT", &code, d.p90, "S");
            obs("MLA_TIME_MAX", "EVENT", &code, d.max, "S");
        }
    }
    for (k, v) in &f.extradition_deadlines {
        obs("EXTRADITION_DEADLINES", "STATE", k, Some(*v), "NUM");
    }
    o
}

fn bars(o: &mut String, title: &str, counts: &Counts) {
    let _ = writeln!(o, "<section><h2>{}</h2>", crate::bundle::esc(title));
    if counts.is_empty() {
        let _ = writeln!(o, "<p>None in the period.</p></section>");
        return;
    }
    let max = counts.values().copied().max().unwrap_or(1).max(1);
    let (row, label, width) = (22u64, 260u64, 420u64);
    let h = row * counts.len() as u64 + 4;
    let _ = writeln!(
        o,
        "<svg role=\"img\" aria-label=\"{}\" width=\"{}\" height=\"{h}\" viewBox=\"0 0 {} {h}\">",
        crate::bundle::esc(title),
        label + width + 70,
        label + width + 70
    );
    for (i, (k, v)) in counts.iter().enumerate() {
        let y = 2 + row * i as u64;
        let w = (width * v).div_ceil(max).max(1);
        let _ = writeln!(
            o,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect class=\"bar\" x=\"{label}\" y=\"{}\" width=\"{w}\" height=\"{}\"><title>{}: {v}</title></rect><text x=\"{}\" y=\"{}\">{v}</text>",
            label - 6,
            y + 15,
            crate::bundle::esc(k),
            y + 2,
            row - 6,
            crate::bundle::esc(k),
            label + w + 6,
            y + 15
        );
    }
    let _ = writeln!(o, "</svg></section>");
}

/// A self-contained HTML report with SVG bar charts: no script, no outside resource (its
/// Content-Security-Policy allows none).
pub fn html(f: &Figures) -> String {
    let e = crate::bundle::esc;
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n<title>Statistics of {} — {} to {}</title>\n<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}svg text{{font-size:13px}}rect.bar{{fill:#2b6cb0}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:.2em .6em;text-align:right}}th{{background:#eee}}.sup{{color:#777}}</style></head><body>\n<h1>Statistics of {}</h1>\n{}</body></html>\n",
        e(&f.agency),
        e(&f.from),
        e(&f.until),
        e(&f.agency),
        html_body(f)
    )
}

/// The report's content (headings, charts, tables) without the document around it: what the
/// console's statistics page shows inside its own frame.
pub fn html_body(f: &Figures) -> String {
    let e = crate::bundle::esc;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<p>Statistics of {}, from {} to {} (UTC). {} cases begun, {} messages sent or received. Computed by the node from its audit logs and case records (spec/STATS.md); a recomputation from the export bundles (<code>rogatory-verify --stats</code>) gives the same figures.</p>",
        e(&f.agency),
        e(&f.from),
        e(&f.until),
        f.cases.total,
        f.messages.total
    );
    for (key, title, _) in CASE_BREAKDOWNS {
        bars(&mut o, title, case_counts(f, key));
    }
    for (key, title, _) in MESSAGE_BREAKDOWNS {
        bars(&mut o, title, message_counts(f, key));
    }
    let t = &f.victims;
    let _ = writeln!(
        o,
        "<section><h2>Victims by age band and gender</h2><p>Aggregates only. Counts from 1 to {} are never shown (<span class=\"sup\">·</span>), nor any count from which one could be worked out.</p><table><caption>Victims named in the requests of the period's cases</caption><tr><th scope=\"col\">age band</th>",
        f.threshold.saturating_sub(1)
    );
    for c in &t.columns {
        let _ = write!(o, "<th scope=\"col\">{}</th>", e(c));
    }
    let _ = writeln!(o, "<th scope=\"col\">total</th></tr>");
    let cell = |v: Option<u64>| match v {
        Some(v) => format!("<td>{v}</td>"),
        None => "<td class=\"sup\" title=\"suppressed\">·</td>".into(),
    };
    for (i, r) in t.rows.iter().enumerate() {
        let _ = write!(o, "<tr><th scope=\"row\">{}</th>", e(r));
        for v in &t.cells[i] {
            o.push_str(&cell(*v));
        }
        let _ = writeln!(o, "{}</tr>", cell(t.row_totals[i]));
    }
    let _ = write!(o, "<tr><th scope=\"row\">total</th>");
    for v in &t.column_totals {
        o.push_str(&cell(*v));
    }
    let _ = writeln!(o, "{}</tr></table></section>", cell(t.total));
    let _ = writeln!(
        o,
        "<section><h2>Time from an MLA request to…</h2><table><tr><th scope=\"col\">event</th><th scope=\"col\">cases</th><th scope=\"col\">median</th><th scope=\"col\">90th percentile</th><th scope=\"col\">longest</th></tr>"
    );
    for name in DURATIONS {
        let d = f.durations.get(name).cloned().unwrap_or_default();
        let w = |v: Option<u64>| v.map(seconds).unwrap_or_else(|| "–".into());
        let _ = writeln!(
            o,
            "<tr><th scope=\"row\">{name}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            d.count,
            w(d.median),
            w(d.p90),
            w(d.max)
        );
    }
    let _ = writeln!(o, "</table></section>");
    bars(
        &mut o,
        "Extradition deadlines (ECE Art. 16(4), 18(4); CETS 209 Art. 7)",
        &f.extradition_deadlines,
    );
    o
}
