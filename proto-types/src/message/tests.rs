use super::*;

#[test]
fn empty_mla_request_lists_every_essential_element() {
    let m = Message::from_json(MessageType::MlaRequest, &serde_json::json!({})).unwrap();
    let problems = m.problems();
    for field in [
        "requesting_authority.name",
        "requesting_authority.country",
        "proceedings.subject",
        "summary_of_facts",
        "assistance",
        "purpose",
        "legal_basis.kind",
        "offences",
    ] {
        assert!(
            problems.mentions(field),
            "{field} not reported:\n{problems}"
        );
    }
}
