//! A request signed by an official whom the partner has not heard of yet (spec/PEOPLE.md §5.4):
//! the partner leaves it unanswered and asks for the sender's key history, so the sender's next
//! attempt is accepted; once the partner holds a history confirmed after the envelope was
//! sealed, an official it does not name is refused for good.

use rogatory_proto::card::AgencyCard;
use rogatory_proto::envelope::{Addressee, ChainLink, Limits, SealParams, Sender, seal_signed};
use rogatory_proto::ids::{CaseId, MessageId, Sha256Digest};
use rogatory_proto::keyhist::OfficerRole;
use rogatory_proto::keys::SigningKey;
use rogatory_proto::message::{Message, MessageType};
use rogatory_proto::officer::Officer;
use rogatory_proto::receipt::{ReasonCode, ReceiptEvent, verify_receipt};
use rogatory_tests::{Cluster, deliver, example, load_keys, run_line};

use crate::people::officials;

#[test]
fn a_request_signed_by_an_official_the_partner_has_not_heard_of_waits_for_the_key_history() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    run_line(
        root,
        "user add ivan --role issuing-authority --token-out ivan.token --data-dir xa.moj-ca",
    )
    .ok();
    // XA certifies ivan while its node is stopped: XB holds XA's history without him.
    c.stop(0);
    run_line(root, "user certify ivan --data-dir xa.moj-ca").ok();
    assert!(officials(root, "xb.doj-ca", "XA.MOJ-CA").is_empty());

    let dir = root.join("xa.moj-ca");
    let xa = load_keys(&dir);
    let token = std::fs::read_to_string(root.join("ivan.token")).unwrap();
    let ivan = rogatory_node::people::officer_key(&dir, "ivan", token.trim()).unwrap();
    let stranger = SigningKey::generate();
    let xb: AgencyCard =
        rogatory_node::keydir::load_card(&root.join("xb.doj-ca").join("card.cose")).unwrap();
    let request =
        Message::from_json(MessageType::MlaRequest, &example("mla-request.json")).unwrap();
    let sent_at = rogatory_proto::time::now_unix();
    // Each in a case of its own, signed by ivan or by a key XA never certified.
    let seal = |official: &SigningKey| {
        seal_signed(
            &Sender {
                card: &xa.card,
                keys: &xa.keys,
            },
            &[Officer {
                role: OfficerRole::IssuingAuthority,
                key: official,
            }],
            &[Addressee {
                card: &xb,
                chain: ChainLink::FIRST,
                consistency: None,
            }],
            &request,
            &SealParams {
                case_id: CaseId::generate(),
                message_id: MessageId::generate(),
                sent_at,
                checkpoint: None,
            },
            &Limits::default(),
        )
        .unwrap()
        .remove(0)
        .bytes
    };
    let (by_ivan, by_stranger) = (seal(&ivan), seal(&stranger));

    // Neither is answered: XB cannot tell yet whether XA certified them.
    for e in [&by_ivan, &by_stranger] {
        if let Ok(receipt) = deliver(&xa, &xb, e.clone()) {
            let r = verify_receipt(&receipt, &xb, Some(&Sha256Digest::of(e))).unwrap();
            panic!(
                "answered before XB heard of the official: {:?} {:?}",
                r.receipt.event, r.receipt.reason
            );
        }
    }
    let inbox = run_line(root, "inbox --json --data-dir xb.doj-ca").ok();
    assert_eq!(inbox.stdout.trim(), "[]", "nothing was taken in");

    // XA's node runs again: XB takes its longer history, confirmed after the envelopes (times
    // are in seconds: a later second than theirs).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    c.start(0);
    crate::people::eventually("XB learns XA's official", || {
        officials(root, "xb.doj-ca", "XA.MOJ-CA").len() == 1
    });
    c.stop(0);
    let answer = |e: &Vec<u8>| {
        let receipt = deliver(&xa, &xb, e.clone()).unwrap();
        let r = verify_receipt(&receipt, &xb, Some(&Sha256Digest::of(e))).unwrap();
        (r.receipt.event, r.receipt.reason)
    };
    assert_eq!(answer(&by_ivan), (ReceiptEvent::Accepted, None));
    assert_eq!(
        answer(&by_stranger),
        (ReceiptEvent::Rejected, Some(ReasonCode::OfficerNotValid))
    );
    let shown = run_line(
        root,
        &format!(
            "message show {} --data-dir xb.doj-ca",
            Sha256Digest::of(&by_ivan).to_hex()
        ),
    )
    .ok();
    assert!(
        shown.stdout.contains("issued by ivan of XA.MOJ-CA"),
        "{}",
        shown.stdout
    );
}
