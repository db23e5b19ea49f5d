use super::suppress::{Table, pattern};

/// What an attacker can learn of each hidden entry from what is shown: the interval each
/// hidden entry must lie in, from every line's equation (cells sum to the line's total, in
/// the extended table) and non-negativity, propagated until nothing changes; and whether the
/// linear system alone fixes it (Gaussian elimination over the rationals). Returns the hidden
/// entries whose value is thereby known.
fn recoverable(t: &Table) -> Vec<(usize, usize)> {
    let m = t.extended();
    let (nr, nc) = (m.len(), m[0].len());
    let hidden: Vec<(usize, usize)> = (0..nr)
        .flat_map(|i| (0..nc).map(move |j| (i, j)))
        .filter(|&(i, j)| m[i][j].is_none())
        .collect();
    let idx = |i: usize, j: usize| hidden.iter().position(|h| *h == (i, j));
    // Each line: Σ cells − total = 0, as coefficients over hidden entries and a constant.
    let mut eqs: Vec<(Vec<f64>, f64)> = Vec::new();
    let line = |cells: Vec<(usize, usize)>, total: (usize, usize)| {
        let mut a = vec![0.0; hidden.len()];
        let mut k = 0.0;
        for (i, j) in cells {
            match idx(i, j) {
                Some(h) => a[h] += 1.0,
                None => k -= m[i][j].unwrap() as f64,
            }
        }
        match idx(total.0, total.1) {
            Some(h) => a[h] -= 1.0,
            None => k += m[total.0][total.1].unwrap() as f64,
        }
        (a, k)
    };
    for i in 0..nr {
        eqs.push(line((0..nc - 1).map(|j| (i, j)).collect(), (i, nc - 1)));
    }
    for j in 0..nc {
        eqs.push(line((0..nr - 1).map(|i| (i, j)).collect(), (nr - 1, j)));
    }
    let mut known = Vec::new();
    // Linear determinacy: entry h is fixed iff e_h lies in the row space of the equations.
    let rank = |rows: &Vec<Vec<f64>>| {
        let mut r = rows.clone();
        let mut rank = 0;
        let cols = r.first().map_or(0, |x| x.len());
        for c in 0..cols {
            let Some(p) = (rank..r.len()).find(|&i| r[i][c].abs() > 1e-9) else {
                continue;
            };
            r.swap(rank, p);
            let pivot = r[rank].clone();
            for (i, row) in r.iter_mut().enumerate() {
                if i != rank {
                    let f = row[c] / pivot[c];
                    for (x, p) in row.iter_mut().zip(&pivot) {
                        *x -= f * p;
                    }
                }
            }
            rank += 1;
        }
        rank
    };
    let rows: Vec<Vec<f64>> = eqs.iter().map(|(a, _)| a.clone()).collect();
    let base = rank(&rows);
    for (h, at) in hidden.iter().enumerate() {
        let mut with = rows.clone();
        let mut e = vec![0.0; hidden.len()];
        e[h] = 1.0;
        with.push(e);
        if rank(&with) == base {
            known.push(*at);
        }
    }
    // Interval propagation: a reader knows every hidden entry is at least 1 (zero is always
    // shown); in a line a·x = k, an entry is bounded by what the others can take.
    let mut lo = vec![1.0f64; hidden.len()];
    let mut hi = vec![f64::INFINITY; hidden.len()];
    for _ in 0..50 {
        for (a, k) in &eqs {
            for h in 0..hidden.len() {
                if a[h] == 0.0 {
                    continue;
                }
                // a[h]·x_h = k − Σ_{g≠h} a[g]·x_g
                let (mut min, mut max) = (*k, *k);
                for g in (0..hidden.len()).filter(|&g| g != h && a[g] != 0.0) {
                    let (l, u) = (a[g] * lo[g], a[g] * hi[g]);
                    min -= l.max(u);
                    max -= l.min(u);
                }
                let (l, u) = if a[h] > 0.0 {
                    (min / a[h], max / a[h])
                } else {
                    (max / a[h], min / a[h])
                };
                if l.is_finite() {
                    lo[h] = lo[h].max(l);
                }
                if u.is_finite() {
                    hi[h] = hi[h].min(u);
                }
            }
        }
    }
    for (h, at) in hidden.iter().enumerate() {
        if (hi[h] - lo[h]).abs() < 0.5 && !known.contains(at) {
            known.push(*at);
        }
    }
    known
}

fn check(counts: &[Vec<u64>], threshold: u64) -> Table {
    let rows: Vec<String> = (0..counts.len()).map(|i| format!("r{i}")).collect();
    let cols: Vec<String> = (0..counts[0].len()).map(|j| format!("c{j}")).collect();
    let r: Vec<&str> = rows.iter().map(String::as_str).collect();
    let c: Vec<&str> = cols.iter().map(String::as_str).collect();
    let t = Table::suppressed(&r, &c, counts, threshold);
    for row in t.extended() {
        for v in row.into_iter().flatten() {
            assert!(v == 0 || v >= threshold, "{v} shown in {t:?}");
        }
    }
    let known = recoverable(&t);
    assert!(
        known.is_empty(),
        "{known:?} recoverable in {t:?} from {counts:?}"
    );
    t
}

#[test]
fn a_lone_small_count_is_hidden_with_enough_others_that_totals_do_not_give_it_away() {
    let t = check(&[vec![10, 3, 20], vec![8, 12, 30], vec![0, 0, 0]], 5);
    assert_eq!(t.cells[0][1], None);
    assert!(t.suppressed >= 4, "{t:?}");
    // A table with nothing small is shown whole.
    let t = check(&[vec![10, 6], vec![8, 12]], 5);
    assert_eq!(t.suppressed, 0);
    assert_eq!(t.total, Some(36));
}

#[test]
fn totals_under_the_threshold_are_hidden_too() {
    let t = check(&[vec![2, 0], vec![0, 0]], 5);
    assert_eq!(t.total, None);
    assert_eq!(t.row_totals[0], None);
    assert_eq!(t.cells[1][1], Some(0));
}

#[test]
fn random_tables_never_show_a_small_count_nor_let_one_be_worked_out() {
    // A fixed pseudo-random sequence (xorshift), so the test is repeatable.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..400 {
        let (nr, nc) = (1 + next() % 6, 1 + next() % 4);
        let counts: Vec<Vec<u64>> = (0..nr)
            .map(|_| {
                (0..nc)
                    .map(|_| match next() % 4 {
                        0 => 0,
                        1 => 1 + next() % 4,
                        _ => next() % 40,
                    })
                    .collect()
            })
            .collect();
        check(&counts, 5);
    }
}

#[test]
fn the_pattern_hides_nothing_with_threshold_one() {
    let m = vec![vec![1, 2, 3], vec![1, 2, 3]];
    assert!(pattern(&m, 1).iter().flatten().all(|h| !h));
}

#[test]
fn two_ones_hidden_in_a_row_are_not_given_away_by_knowing_they_are_not_zero() {
    // Row a: 1, 1, 10 (total 12). Knowing both hidden entries are at least 1, 12 − 10 = 2
    // would give each away: a third one is hidden.
    let t = check(&[vec![1, 1, 10], vec![6, 7, 8], vec![9, 5, 6]], 5);
    assert!(
        t.cells[0][2].is_none() || t.row_totals[0].is_none(),
        "{t:?}"
    );
}

#[test]
fn the_attack_recovers_a_count_hidden_alone() {
    // Primary suppression only: the attack must find the hidden 3 from its row's total.
    let t = Table {
        rows: vec!["a".into(), "b".into()],
        columns: vec!["x".into(), "y".into()],
        cells: vec![vec![Some(10), None], vec![Some(8), Some(12)]],
        row_totals: vec![Some(13), Some(20)],
        column_totals: vec![Some(18), Some(15)],
        total: Some(33),
        suppressed: 1,
    };
    assert_eq!(recoverable(&t), vec![(0, 1)]);
    // Two hidden in one row, but the column gives each away.
    let t = Table {
        cells: vec![vec![None, None], vec![Some(8), Some(12)]],
        suppressed: 2,
        ..t
    };
    assert_eq!(recoverable(&t).len(), 2);
}

fn message(kind: &str, json: serde_json::Value) -> crate::message::Message {
    crate::message::Message::from_json(kind.parse().unwrap(), &json).unwrap()
}

#[test]
fn the_log_orders_a_case_when_a_reply_is_sealed_in_the_second_of_its_request() {
    use super::{CaseMessages, Params, StatMessage, compute};
    use crate::ids::{AgencyId, CaseId};
    let dir = format!("{}/../spec/examples", env!("CARGO_MANIFEST_DIR"));
    let request: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/mla-request.json")).unwrap())
            .unwrap();
    let (xa, xb) = (
        AgencyId::new("XA.MOJ-CA").unwrap(),
        AgencyId::new("XB.DOJ-CA").unwrap(),
    );
    let refusal = serde_json::json!({"status": "refused", "effective_at": "2026-12-01T10:00:00Z",
        "grounds": ["not an offence"], "refusal_grounds": ["dual-criminality"]});
    // Both sealed in second 1000; the reply's addressee sorts first, its position is later.
    let case = CaseMessages {
        case_id: CaseId::generate(),
        messages: vec![
            StatMessage {
                from: xb.clone(),
                to: xa.clone(),
                sent_at: 1000,
                position: 4,
                message: message("mla-status", refusal),
            },
            StatMessage {
                from: xa.clone(),
                to: xb.clone(),
                sent_at: 1000,
                position: 1,
                message: message("mla-request", request),
            },
        ],
    };
    for (agency, direction) in [(xa, "outgoing"), (xb, "incoming")] {
        let f = compute(
            std::slice::from_ref(&case),
            &Params {
                agency,
                from: 0,
                until: 2000,
                threshold: 5,
            },
        );
        assert_eq!(f.cases.by_direction.get(direction), Some(&1), "{f:?}");
        assert_eq!(f.cases.by_outcome.get("mla:refused"), Some(&1), "{f:?}");
        assert_eq!(f.cases.by_refusal_ground.get("dual-criminality"), Some(&1));
        assert_eq!(f.durations["acknowledgement"].median, Some(0));
        assert_eq!(f.victims.total, None, "one victim: hidden");
    }
    // Out of the period: nothing counts.
    let f = compute(
        &[case],
        &Params {
            agency: AgencyId::new("XA.MOJ-CA").unwrap(),
            from: 1001,
            until: 2000,
            threshold: 5,
        },
    );
    assert_eq!((f.cases.total, f.messages.total), (0, 0));
}
