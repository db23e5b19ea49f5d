//! `rogatory stats` on real nodes (spec/STATS.md): what one request and its refusal count as
//! on each side, a refusal's classified grounds, victims suppressed, the formats, and the
//! refusals of a bad period. The seeded 300-case workload and the independent recomputation
//! are `tests/stats/run.sh`.

use std::time::Duration;

use rogatory_tests::{Cluster, run_line, verify_bin};
use serde_json::Value;

fn figures(root: &std::path::Path, dir: &str, extra: &str) -> Value {
    let out = run_line(root, &format!("stats --data-dir {dir} --json {extra}"))
        .ok()
        .stdout;
    serde_json::from_str(&out).unwrap()
}

#[test]
fn one_refused_request_counts_on_both_sides_and_its_single_victim_is_never_shown() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    // XB's agency suppresses more: counts from 1 to 9.
    let cfg = root.join("xb.doj-ca/rogatory.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("\nthreshold = 5\n"), "{text}");
    std::fs::write(
        &cfg,
        text.replace("\nthreshold = 5\n", "\nthreshold = 10\n"),
    )
    .unwrap();
    c.start(0);
    c.start(1);
    let case = c.first_request();
    // A ground outside the fixed list is refused before anything is sealed.
    let r = run_line(
        root,
        &format!(
            "case update {case} refused --grounds x --ground bank-secrecy --data-dir xb.doj-ca"
        ),
    )
    .failed();
    assert!(r.stderr.contains("not a refusal ground"), "{}", r.stderr);
    run_line(
        root,
        &format!(
            "case update {case} refused --grounds not-an-offence-in-XB --ground dual-criminality --ground ne-bis-in-idem --data-dir xb.doj-ca"
        ),
    )
    .ok();
    c.wait_settled(1, 1, Duration::from_secs(60));

    let a = figures(root, "xa.moj-ca", "");
    let b = figures(root, "xb.doj-ca", "");
    assert_eq!(a["format"], "rogatory-stats/1");
    assert_eq!(a["cases"]["total"], 1);
    assert_eq!(a["cases"]["by_direction"]["outgoing"], 1, "{a}");
    assert_eq!(b["cases"]["by_direction"]["incoming"], 1, "{b}");
    assert_eq!(a["cases"]["by_partner"]["XB.DOJ-CA"], 1);
    assert_eq!(b["cases"]["by_partner"]["XA.MOJ-CA"], 1);
    for f in [&a, &b] {
        assert_eq!(f["cases"]["by_kind"]["mla"], 1, "{f}");
        assert_eq!(f["cases"]["by_offence"]["0302"], 1, "{f}");
        assert_eq!(f["cases"]["by_measure"]["subscriber-data"], 1, "{f}");
        assert_eq!(f["cases"]["by_measure"]["traffic-data"], 1, "{f}");
        assert_eq!(f["cases"]["by_emergency"]["routine"], 1, "{f}");
        assert_eq!(f["cases"]["by_outcome"]["mla:refused"], 1, "{f}");
        assert_eq!(
            f["cases"]["by_refusal_ground"]["dual-criminality"], 1,
            "{f}"
        );
        assert_eq!(f["cases"]["by_refusal_ground"]["ne-bis-in-idem"], 1, "{f}");
        assert_eq!(f["messages"]["total"], 2, "{f}");
        assert_eq!(f["durations"]["acknowledgement"]["count"], 1, "{f}");
        assert_eq!(f["durations"]["registration"]["count"], 0, "{f}");
        assert!(f["durations"]["registration"]["median"].is_null(), "{f}");
        // One victim (6-11, female): its cell, its row and column totals and the grand total
        // would all show 1; all are hidden.
        let v = &f["victims"];
        assert!(v["cells"][1][0].is_null(), "{v}");
        assert!(v["total"].is_null(), "{v}");
        assert_eq!(v["cells"][2][1], 0, "zero is shown as zero: {v}");
        let list = |k: &str| v[k].as_array().unwrap().clone();
        let shown: Vec<u64> = list("cells")
            .iter()
            .flat_map(|r| r.as_array().unwrap().clone())
            .chain(list("row_totals"))
            .chain(list("column_totals"))
            .chain([v["total"].clone()])
            .filter_map(|x| x.as_u64())
            .collect();
        assert!(shown.iter().all(|n| *n == 0 || *n >= 5), "{v}");
    }
    assert_eq!(
        (a["threshold"].as_u64(), b["threshold"].as_u64()),
        (Some(5), Some(10))
    );
    let r = run_line(root, "stats --data-dir xb.doj-ca --threshold 5").failed();
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("at least 10"), "{}", r.stderr);
    assert_eq!(
        figures(root, "xa.moj-ca", "--threshold 20")["threshold"],
        20
    );
    assert_eq!(a["messages"]["by_direction"]["sent"], 1);
    assert_eq!(a["messages"]["by_direction"]["received"], 1);

    // A period that holds none of it, and the formats.
    let none = figures(root, "xa.moj-ca", "--until 2020-01-01");
    assert_eq!(none["cases"]["total"], 0);
    assert_eq!(none["until"], "2020-01-01T23:59:59Z");
    let csv = run_line(root, "stats --data-dir xa.moj-ca --format csv")
        .ok()
        .stdout;
    assert!(
        csv.starts_with("figure,breakdown,category,value,status\n"),
        "{csv}"
    );
    assert!(
        csv.contains("cases,by_refusal_ground,dual-criminality,1,"),
        "{csv}"
    );
    assert!(
        csv.contains("victims,age_band_gender,6-11|female,,suppressed"),
        "{csv}"
    );
    let sdmx = run_line(root, "stats --data-dir xa.moj-ca --format sdmx")
        .ok()
        .stdout;
    assert!(
        sdmx.lines()
            .any(|l| l.contains(",VICTIMS,AGE_BAND_GENDER,6-11|female,,NUM,C")),
        "{sdmx}"
    );
    let table = run_line(root, "stats --data-dir xa.moj-ca").ok().stdout;
    assert!(table.contains("Cases begun in the period: 1"), "{table}");
    run_line(
        root,
        &format!(
            "stats --data-dir xa.moj-ca --html {}",
            root.join("s.html").display()
        ),
    )
    .ok();
    let html = std::fs::read_to_string(root.join("s.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("<script"), "{html}");

    // A bad period is the request's fault (exit 3), said in words.
    let r = run_line(root, "stats --data-dir xa.moj-ca --from 2026-13-01").failed();
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("YYYY-MM-DD"), "{}", r.stderr);
    let r = run_line(
        root,
        "stats --data-dir xa.moj-ca --from 2026-06-01 --until 2026-01-01",
    )
    .failed();
    assert!(r.stderr.contains("ends before it starts"), "{}", r.stderr);
    // From the bundles, a statistics office gets the node's figures (for the same period), and
    // nothing from bundles of two agencies mixed or of one case twice.
    run_line(
        root,
        "keygen --agency XO.STATS --name Office --role court --out office",
    )
    .ok();
    let mut bundles = Vec::new();
    for (dir, name) in [
        ("xa.moj-ca", "xa"),
        ("xb.doj-ca", "xb"),
        ("xa.moj-ca", "xa-again"),
    ] {
        let p = root.join(format!("{name}.bundle"));
        run_line(
            root,
            &format!(
                "case export {case} --out {} --for-auditor office/card.cose --data-dir {dir}",
                p.display()
            ),
        )
        .ok();
        bundles.push(p.display().to_string());
    }
    let until = a["until"].as_str().unwrap().to_string();
    let verify = |files: &[&String]| {
        let mut args = vec!["--stats", "--key", "office", "--json", "--until", &until];
        args.extend(files.iter().map(|f| f.as_str()));
        std::process::Command::new(verify_bin())
            .args(&args)
            .current_dir(root)
            .output()
            .unwrap()
    };
    let at_until = figures(root, "xa.moj-ca", &format!("--until {until}"));
    let out = verify(&[&bundles[0]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_bundle: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_bundle, at_until);
    let out = verify(&[&bundles[0], &bundles[1]]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give one agency's bundles"));
    let out = verify(&[&bundles[0], &bundles[2]]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a second bundle of case"));
    // The recomputation reads disclosed content: without the auditor's key it refuses.
    let out = std::process::Command::new(verify_bin())
        .args(["--stats", "x.bundle"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key"));
}
