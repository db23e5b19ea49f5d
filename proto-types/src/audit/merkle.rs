//! RFC 6962 / RFC 9162 §2.1 Merkle tree math: leaf and node hashes, roots, inclusion and
//! consistency proofs — generated from stored subtree hashes, and verified.
//!
//! Storage model: a log stores the hash of every *perfect* subtree, addressed by (level, index):
//! node (l, i) covers leaves `[i·2^l, (i+1)·2^l)`. Appending leaf `n` adds node (0, n) and the
//! nodes it completes (on average one more), computed from the log's right frontier, so an
//! append needs no reads. Any range hash the proofs need is a perfect node or, on the right
//! border of a tree, a fold of at most log2(n) perfect nodes, so proofs cost O(log n) reads.

use sha2::{Digest, Sha256};

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// Why a proof did not verify, or could not be produced.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// Index or sizes out of range (e.g. index ≥ size, size1 > size2, size1 = 0).
    #[error("invalid request: {0}")]
    Range(String),
    /// A hash is not 32 bytes.
    #[error("a hash in the proof is {0} bytes, not 32")]
    HashLength(usize),
    /// The proof has the wrong number of hashes.
    #[error("the proof has the wrong number of hashes")]
    Length,
    /// The recomputed root differs.
    #[error("the proof does not lead to the expected root")]
    Mismatch,
}

/// `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Reads stored perfect-subtree hashes.
pub trait NodeSource {
    /// Storage error.
    type Error;
    /// The hash of node (level, index); it must exist.
    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// Largest power of two strictly less than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// MTH of leaves `[start, end)`, where `start` is aligned as in RFC 9162's recursion: a perfect
/// range is one stored node; otherwise its largest perfect left part and the rest.
pub fn range_hash<S: NodeSource>(s: &S, start: u64, end: u64) -> Result<Hash, S::Error> {
    let n = end - start;
    if n.is_power_of_two() {
        let level = n.trailing_zeros();
        return s.node(level, start >> level);
    }
    let k = split(n);
    let left = s.node(k.trailing_zeros(), start >> k.trailing_zeros())?;
    let right = range_hash(s, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// The root of the first `size` leaves (the empty root for 0).
pub fn root<S: NodeSource>(s: &S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(s, 0, size)
}

/// The audit path `PATH(index, D[0:size])` of RFC 9162 §2.1.3.1, leaf's sibling first.
pub fn inclusion_proof<S: NodeSource>(
    s: &S,
    index: u64,
    size: u64,
) -> Result<Result<Vec<Hash>, ProofError>, S::Error> {
    if index >= size {
        return Ok(Err(ProofError::Range(format!(
            "leaf {index} is not in a tree of size {size}"
        ))));
    }
    let mut out = Vec::new();
    path(s, index, 0, size, &mut out)?;
    Ok(Ok(out))
}

fn path<S: NodeSource>(
    s: &S,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(s, m, start, start + k, out)?;
        out.push(range_hash(s, start + k, end)?);
    } else {
        path(s, m - k, start + k, end, out)?;
        out.push(range_hash(s, start, start + k)?);
    }
    Ok(())
}

/// The consistency proof `PROOF(size1, D[0:size2])` of RFC 9162 §2.1.4.1.
pub fn consistency_proof<S: NodeSource>(
    s: &S,
    size1: u64,
    size2: u64,
) -> Result<Result<Vec<Hash>, ProofError>, S::Error> {
    if size1 == 0 || size1 > size2 {
        return Ok(Err(ProofError::Range(format!(
            "no consistency proof from size {size1} to size {size2}"
        ))));
    }
    let mut out = Vec::new();
    if size1 < size2 {
        subproof(s, size1, 0, size2, true, &mut out)?;
    }
    Ok(Ok(out))
}

fn subproof<S: NodeSource>(
    s: &S,
    m: u64,
    start: u64,
    end: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if m == n {
        if !whole {
            out.push(range_hash(s, start, end)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(s, m, start, start + k, whole, out)?;
        out.push(range_hash(s, start + k, end)?);
    } else {
        subproof(s, m - k, start + k, end, false, out)?;
        out.push(range_hash(s, start, start + k)?);
    }
    Ok(())
}

fn hash32(b: &[u8]) -> Result<Hash, ProofError> {
    b.try_into().map_err(|_| ProofError::HashLength(b.len()))
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2). The leaf hash, the proof hashes and the root
/// must be 32 bytes.
pub fn verify_inclusion<P: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf: &[u8],
    proof: &[P],
    root: &[u8],
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::Range(format!(
            "leaf {index} is not in a tree of size {size}"
        )));
    }
    let mut r = hash32(leaf)?;
    let root = hash32(root)?;
    let (mut fnode, mut snode) = (index, size - 1);
    for p in proof {
        let p = hash32(p.as_ref())?;
        if snode == 0 {
            return Err(ProofError::Length);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(&p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, &p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::Length);
    }
    if r != root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2).
///
/// Decisions (spec/PROTOCOL.md §6.3): a proof from size 0 is refused (there is nothing to be
/// consistent with; the first checkpoint seen from a log is taken on first use instead); for
/// equal sizes the proof must be empty and the roots are compared as byte strings (of any
/// length); every hash that enters a computation must be 32 bytes.
pub fn verify_consistency<P: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    proof: &[P],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), ProofError> {
    if size1 == 0 {
        return Err(ProofError::Range(
            "a consistency proof from the empty tree proves nothing".into(),
        ));
    }
    if size1 > size2 {
        return Err(ProofError::Range(format!(
            "size {size1} is larger than size {size2}"
        )));
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::Length);
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::Length);
    }
    let first = hash32(root1)?;
    let second = hash32(root2)?;
    let mut hashes = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        hashes.push(first);
    }
    for p in proof {
        hashes.push(hash32(p.as_ref())?);
    }
    let (mut fnode, mut snode) = (size1 - 1, size2 - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (hashes[0], hashes[0]);
    for c in &hashes[1..] {
        if snode == 0 {
            return Err(ProofError::Length);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::Length);
    }
    if fr != first || sr != second {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

/// The right frontier of a tree: the roots of its perfect subtrees, largest (leftmost) first —
/// one per set bit of the size. Enough to append without reading anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    /// Rebuilds a frontier from its size and hashes (as stored); checks they fit.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Option<Self> {
        (hashes.len() == size.count_ones() as usize).then_some(Self { size, hashes })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect-subtree roots, largest first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// The tree's root.
    pub fn root(&self) -> Hash {
        match self.hashes.split_last() {
            None => empty_root(),
            Some((last, rest)) => rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc)),
        }
    }

    /// Appends a leaf hash (what [`Frontier::append`] does, keeping nothing of the nodes).
    pub fn push(&mut self, leaf: Hash) {
        let index = self.size;
        let mut h = leaf;
        let mut level = 0u32;
        while (index >> level) & 1 == 1 {
            let left = self.hashes.pop().unwrap_or_default();
            h = node_hash(&left, &h);
            level += 1;
        }
        self.hashes.push(h);
        self.size += 1;
    }

    /// Appends a leaf hash; returns the nodes to store: (level, index, hash), the leaf first.
    pub fn append(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let index = self.size;
        let mut new = vec![(0, index, leaf)];
        let mut h = leaf;
        let mut level = 0u32;
        // Each trailing one bit of the old size is a perfect subtree that now merges.
        while (index >> level) & 1 == 1 {
            let left = self.hashes.pop().unwrap_or_default();
            h = node_hash(&left, &h);
            level += 1;
            new.push((level, index >> level, h));
        }
        self.hashes.push(h);
        self.size += 1;
        new
    }
}

/// A whole tree in memory: for tests, vectors and verification of exported entries.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
    frontier: Frontier,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the leaf for `data`.
    pub fn push(&mut self, data: &[u8]) {
        self.push_hash(leaf_hash(data));
    }

    /// Appends a leaf hash.
    pub fn push_hash(&mut self, leaf: Hash) {
        for (level, index, h) in self.frontier.append(leaf) {
            let level = level as usize;
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            debug_assert_eq!(self.levels[level].len() as u64, index);
            self.levels[level].push(h);
        }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Current root.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }
}

/// A node that is not stored (a bug or a damaged store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingNode {
    /// Level.
    pub level: u32,
    /// Index.
    pub index: u64,
}

impl NodeSource for MemoryTree {
    type Error = MissingNode;
    fn node(&self, level: u32, index: u64) -> Result<Hash, MissingNode> {
        self.levels
            .get(level as usize)
            .and_then(|l| l.get(index as usize))
            .copied()
            .ok_or(MissingNode { level, index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MTH by the RFC's recursive definition, straight from the leaves.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn stored_nodes_agree_with_the_recursive_definition() {
        let mut t = MemoryTree::new();
        let mut leaves = Vec::new();
        for i in 0..70u32 {
            t.push(&i.to_be_bytes());
            leaves.push(leaf_hash(&i.to_be_bytes()));
            let n = leaves.len() as u64;
            assert_eq!(t.root(), mth(&leaves));
            assert_eq!(root(&t, n).unwrap(), mth(&leaves));
            for m in 1..=n {
                assert_eq!(root(&t, m).unwrap(), mth(&leaves[..m as usize]));
            }
        }
        for size in 1..=70u64 {
            let r = root(&t, size).unwrap();
            for index in 0..size {
                let p = inclusion_proof(&t, index, size).unwrap().unwrap();
                verify_inclusion(index, size, &leaves[index as usize], &p, &r).unwrap();
                assert!(
                    verify_inclusion(index, size, &leaves[(index as usize + 1) % 70], &p, &r)
                        .is_err()
                );
            }
            for size1 in 1..=size {
                let p = consistency_proof(&t, size1, size).unwrap().unwrap();
                let r1 = root(&t, size1).unwrap();
                verify_consistency(size1, size, &p, &r1, &r).unwrap();
                if size1 < size {
                    assert!(verify_consistency(size1, size, &p, &r, &r1).is_err());
                }
            }
        }
    }
}
