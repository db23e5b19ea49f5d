//! Small-count suppression of a two-way table with its totals (spec/STATS.md §5).
//!
//! Every count from 1 to `threshold − 1` is hidden, totals included (primary suppression).
//! Then, so that no hidden count can be worked out from what is shown, more counts are hidden
//! (secondary suppression):
//! 1. until every hidden entry lies on a cycle of hidden entries: seen as a graph whose vertices
//!    are the table's lines (rows and columns, the totals' row and column among them) and whose
//!    edges are the hidden entries, no hidden entry is a bridge. Then for every hidden entry
//!    there is another table, equal in everything shown and in every total, in which it differs:
//!    add and subtract one alternately around the cycle, with totals counted negatively (see
//!    the spec);
//! 2. and until the attack of [`exposed`] — each line's equation, with every hidden entry known
//!    to be at least 1 (zero is always shown, so a reader knows that much) — narrows no hidden
//!    entry to a single value (two 1s hidden in a row whose other entries are shown would be).
//!
//! Zero is shown as zero.

use serde::{Deserialize, Serialize};

/// A table as published: `None` where a count is suppressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// The rows' names.
    pub rows: Vec<String>,
    /// The columns' names.
    pub columns: Vec<String>,
    /// The counts, row by row.
    pub cells: Vec<Vec<Option<u64>>>,
    /// Each row's total.
    pub row_totals: Vec<Option<u64>>,
    /// Each column's total.
    pub column_totals: Vec<Option<u64>>,
    /// The grand total.
    pub total: Option<u64>,
    /// How many entries (cells and totals) are suppressed.
    pub suppressed: u64,
}

/// The extended table: `counts` with a totals column and a totals row.
fn extended(counts: &[Vec<u64>], cols: usize) -> Vec<Vec<u64>> {
    let mut m: Vec<Vec<u64>> = counts
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.resize(cols, 0);
            let t = r.iter().sum();
            r.push(t);
            r
        })
        .collect();
    let totals = (0..=cols).map(|c| m.iter().map(|r| r[c]).sum()).collect();
    m.push(totals);
    m
}

/// Whether hidden entry `(r, c)` is a bridge of the graph of hidden entries (rows are
/// vertices `0..R`, columns `R..R+C`).
fn is_bridge(hidden: &[Vec<bool>], r: usize, c: usize) -> bool {
    let (nr, nc) = (hidden.len(), hidden[0].len());
    let mut seen = vec![false; nr + nc];
    let mut stack = vec![r];
    seen[r] = true;
    while let Some(v) = stack.pop() {
        let next: Vec<usize> = if v < nr {
            (0..nc)
                .filter(|&j| hidden[v][j] && (v, j) != (r, c))
                .map(|j| nr + j)
                .collect()
        } else {
            let j = v - nr;
            (0..nr)
                .filter(|&i| hidden[i][j] && (i, j) != (r, c))
                .collect()
        };
        for w in next {
            if !seen[w] {
                seen[w] = true;
                stack.push(w);
            }
        }
    }
    !seen[nr + c]
}

/// The first hidden entry (in row-major order) whose value a reader can work out from what the
/// table shows: every line (row or column of the extended table) says that its entries sum to
/// its last one; each hidden entry is at least 1 (only non-zero entries are hidden) and has no
/// upper bound. Each hidden entry's interval is narrowed by every line in turn (rows, then
/// columns), again and again until nothing changes (at most 1,000 rounds); an entry narrowed
/// to one value is exposed. Integer arithmetic, so that any implementation of the spec finds
/// the same.
pub fn exposed(m: &[Vec<u64>], hidden: &[Vec<bool>]) -> Option<(usize, usize)> {
    let (nr, nc) = (m.len(), m[0].len());
    // Bounds of the hidden entries; `None` above: unbounded.
    let mut lo = vec![vec![1i128; nc]; nr];
    let mut hi: Vec<Vec<Option<i128>>> = vec![vec![None; nc]; nr];
    let mut lines: Vec<Vec<(usize, usize)>> =
        (0..nr).map(|r| (0..nc).map(|c| (r, c)).collect()).collect();
    lines.extend((0..nc).map(|c| (0..nr).map(|r| (r, c)).collect::<Vec<_>>()));
    for _ in 0..1000 {
        let mut changed = false;
        for line in &lines {
            // Σ a·x = 0 with a = +1 for every entry but the last, −1 for the last.
            let coef = |i: usize| if i + 1 == line.len() { -1i128 } else { 1 };
            let mut shown = 0i128;
            for (i, &(r, c)) in line.iter().enumerate() {
                if !hidden[r][c] {
                    shown += coef(i) * i128::from(m[r][c]);
                }
            }
            for (i, &(r, c)) in line.iter().enumerate() {
                if !hidden[r][c] {
                    continue;
                }
                // a_h·x_h = −shown − T, T = Σ_{g≠h} a_g·x_g in [tmin, tmax] (None: infinite).
                let (mut tmin, mut tmax) = (Some(0i128), Some(0i128));
                for (j, &(q, d)) in line.iter().enumerate() {
                    if j == i || !hidden[q][d] {
                        continue;
                    }
                    let (a, b) = if coef(j) > 0 {
                        (Some(lo[q][d]), hi[q][d])
                    } else {
                        (hi[q][d].map(|h| -h), Some(-lo[q][d]))
                    };
                    tmin = tmin.zip(a).map(|(x, y)| x + y);
                    tmax = tmax.zip(b).map(|(x, y)| x + y);
                }
                let s = -shown;
                let (low, high) = if coef(i) > 0 {
                    (tmax.map(|t| s - t), tmin.map(|t| s - t))
                } else {
                    (tmin.map(|t| t - s), tmax.map(|t| t - s))
                };
                if let Some(v) = low
                    && v > lo[r][c]
                {
                    lo[r][c] = v;
                    changed = true;
                }
                if let Some(v) = high
                    && hi[r][c].is_none_or(|h| v < h)
                {
                    hi[r][c] = Some(v);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    (0..nr)
        .flat_map(|r| (0..nc).map(move |c| (r, c)))
        .find(|&(r, c)| hidden[r][c] && hi[r][c] == Some(lo[r][c]))
}

/// Which entries of the extended table to hide.
pub fn pattern(m: &[Vec<u64>], threshold: u64) -> Vec<Vec<bool>> {
    let mut hidden: Vec<Vec<bool>> = m
        .iter()
        .map(|r| r.iter().map(|&v| v > 0 && v < threshold).collect())
        .collect();
    let (nr, nc) = (m.len(), m[0].len());
    loop {
        let bridge = (0..nr)
            .flat_map(|r| (0..nc).map(move |c| (r, c)))
            .find(|&(r, c)| hidden[r][c] && is_bridge(&hidden, r, c));
        let Some((r, c)) = bridge.or_else(|| exposed(m, &hidden)) else {
            return hidden;
        };
        // Hide the smallest shown non-zero entry of its row or column.
        let candidate = (0..nc)
            .map(|j| (r, j))
            .chain((0..nr).map(|i| (i, c)))
            .filter(|&(i, j)| !hidden[i][j] && m[i][j] > 0)
            .min_by_key(|&(i, j)| (m[i][j], i, j));
        match candidate {
            Some((i, j)) => hidden[i][j] = true,
            // Nothing left to hide beside it: hide every non-zero entry.
            None => {
                for (i, row) in m.iter().enumerate() {
                    for (j, v) in row.iter().enumerate() {
                        hidden[i][j] |= *v > 0;
                    }
                }
                return hidden;
            }
        }
    }
}

impl Table {
    /// `counts` (rows × columns) published with its totals, small counts suppressed.
    pub fn suppressed(
        rows: &[&str],
        columns: &[&str],
        counts: &[Vec<u64>],
        threshold: u64,
    ) -> Self {
        let (nr, nc) = (rows.len(), columns.len());
        let m = extended(counts, nc);
        let hidden = pattern(&m, threshold);
        let show = |i: usize, j: usize| (!hidden[i][j]).then_some(m[i][j]);
        Table {
            rows: rows.iter().map(|s| s.to_string()).collect(),
            columns: columns.iter().map(|s| s.to_string()).collect(),
            cells: (0..nr)
                .map(|i| (0..nc).map(|j| show(i, j)).collect())
                .collect(),
            row_totals: (0..nr).map(|i| show(i, nc)).collect(),
            column_totals: (0..nc).map(|j| show(nr, j)).collect(),
            total: show(nr, nc),
            suppressed: hidden.iter().flatten().filter(|h| **h).count() as u64,
        }
    }

    /// The published table as the extended table, `None` where hidden.
    pub fn extended(&self) -> Vec<Vec<Option<u64>>> {
        let mut m: Vec<Vec<Option<u64>>> = self
            .cells
            .iter()
            .zip(&self.row_totals)
            .map(|(r, t)| {
                let mut r = r.clone();
                r.push(*t);
                r
            })
            .collect();
        let mut last = self.column_totals.clone();
        last.push(self.total);
        m.push(last);
        m
    }
}
