//! Arbitrary bytes as a key history file, a key statement, and a history offered to extend a
//! held one (spec/KEYS.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rogatory_proto::keyhist::{KeyHistory, decode_history, statement};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = KeyHistory::from_file(data) {
        // What verified re-encodes to the same file, and offering it to itself changes nothing.
        assert_eq!(h.to_file(), data);
        let mut again = h.clone();
        assert_eq!(again.extend_from(h.statements()).ok(), Some(0));
    }
    if let Ok(p) = statement::parse(data) {
        assert!(p.signatures.len() <= statement::MAX_SIGNERS);
    }
    let _ = decode_history(data);
});
