//! Arbitrary bytes as a message body of each type (CBOR, strict), and as JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rogatory_proto::message::{Message, MessageType};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let kind = MessageType::ALL[usize::from(selector) % MessageType::ALL.len()];
    if let Ok(m) = Message::from_cbor(kind, body, 1 << 20) {
        // Whatever decodes re-encodes to exactly the same bytes.
        assert_eq!(m.to_cbor().expect("encode"), body);
    }
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Ok(m) = Message::from_json(kind, &json) {
            let _ = m.problems();
        }
    }
});
