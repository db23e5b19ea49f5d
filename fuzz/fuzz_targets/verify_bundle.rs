//! Arbitrary bytes as a case export bundle: read as a stream, twice, and verified (spec/BUNDLE.md
//! §3): an error or a verdict, never a panic, and memory bounded by the item limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rogatory_proto::bundle::Verifier;

fuzz_target!(|data: &[u8]| {
    let mut v = Verifier::new(None, &[], None, 1);
    if v.add_bytes(data.to_vec()).is_ok() {
        let _ = v.finish();
    }
});
