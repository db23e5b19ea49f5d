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

fn example(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../spec/examples/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn statistics_fields_are_checked_against_their_lists() {
    let mut v = example("mla-request");
    assert!(
        Message::from_json(MessageType::MlaRequest, &v)
            .unwrap()
            .problems()
            .is_empty()
    );
    v["offences"][0]["iccs"] = "3022".into();
    v["persons"][1]["age_band"] = "10-12".into();
    v["persons"][1]["gender"] = "f".into();
    let p = Message::from_json(MessageType::MlaRequest, &v)
        .unwrap()
        .problems();
    for field in [
        "offences[0].iccs",
        "persons[1].age_band",
        "persons[1].gender",
    ] {
        assert!(p.mentions(field), "{field} not reported:\n{p}");
    }
    for (code, ok) in [
        ("0302", true),
        ("03022", true),
        ("030221", true),
        ("11", true),
        ("12", false),
        ("00", false),
        ("030", false),
        ("0302211", false),
        ("03a2", false),
    ] {
        assert_eq!(iccs_valid(code), ok, "{code}");
    }
    // Refusal grounds come from the fixed list, only with a refusal, once each.
    let refusal = |status: &str, grounds: serde_json::Value| {
        Message::from_json(
            MessageType::MlaStatus,
            &serde_json::json!({"status": status, "effective_at": "2026-12-01T10:00:00Z",
                "grounds": ["not an offence here"], "refusal_grounds": grounds}),
        )
    };
    assert!(
        refusal("refused", serde_json::json!(["dual-criminality"]))
            .unwrap()
            .problems()
            .is_empty()
    );
    assert!(refusal("refused", serde_json::json!(["bank-secrecy"])).is_err());
    let twice = refusal(
        "refused",
        serde_json::json!(["ne-bis-in-idem", "ne-bis-in-idem"]),
    );
    assert!(twice.unwrap().problems().mentions("refusal_grounds"));
    let m = Message::from_json(
        MessageType::MlaStatus,
        &serde_json::json!({"status": "executed", "effective_at": "2026-12-01T10:00:00Z",
            "refusal_grounds": ["other"]}),
    )
    .unwrap();
    assert!(m.problems().mentions("refusal_grounds"));
    // A refusal of an earlier node, without the codes, still reads.
    let earlier = Message::from_json(
        MessageType::MlaStatus,
        &serde_json::json!({"status": "refused", "effective_at": "2026-12-01T10:00:00Z",
            "grounds": ["not an offence here"]}),
    );
    assert!(earlier.unwrap().problems().is_empty());
}
