//! # rogatory-proto
//!
//! The Rogatory protocol without I/O: agency ids and keys, the signed agency card, the message
//! types with their validation, deterministic CBOR, the triple-wrapped COSE envelope, and
//! receipts. spec/PROTOCOL.md is the normative text; this crate implements it.
//!
//! This crate performs no network or storage I/O and depends on no async runtime: an auditor's
//! verifier needs nothing else. The only things it asks of the operating system are random
//! bytes (for keys, ephemeral keys and nonces) and, in [`ids::CaseId::generate`], the clock.
//!
//! ```
//! use rogatory_proto::{card::*, envelope::*, ids::*, keys::*, message::*};
//!
//! let issue = |id: &str, keys: &AgencySecretKeys| {
//!     AgencyCard::issue(CardDetails {
//!         id: AgencyId::new(id).unwrap(),
//!         name: id.into(),
//!         roles: vec![Role::PoliceLiaison],
//!         addresses: vec![],
//!         languages: vec!["en".into()],
//!         legal_bases: vec![],
//!         issued_at: 1_700_000_000,
//!     }, keys).unwrap()
//! };
//! let (fr_keys, de_keys) = (AgencySecretKeys::generate(), AgencySecretKeys::generate());
//! let (fr, de) = (issue("FR.OCRVP", &fr_keys), issue("DE.BKA-SO12", &de_keys));
//!
//! let message = Message::Liaison(LiaisonMessage {
//!     subject: "Account takeover".into(),
//!     body: "Please call back.".into(),
//!     handling: Handling { codes: vec![HandlingCode::H2], ..Default::default() },
//!     ..Default::default()
//! });
//! let params = SealParams {
//!     case_id: CaseId::v7(1_700_000_000_000, &[1; 10]),
//!     message_id: MessageId::v7(1_700_000_000_000, &[2; 10]),
//!     sent_at: 1_700_000_100,
//!     checkpoint: None,
//! };
//! let sealed = seal(
//!     &Sender { card: &fr, keys: &fr_keys },
//!     &[Addressee { card: &de, chain: ChainLink::FIRST, consistency: None }],
//!     &message, &params, &Limits::default(),
//! ).unwrap();
//!
//! let opened = open(&sealed[0].bytes, &Recipient { card: &de, keys: &de_keys },
//!                   &vec![fr.clone()], &Limits::default()).unwrap();
//! assert_eq!(opened.message, message);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod audit;
pub mod bundle;
pub mod card;
pub mod case;
pub mod cbor;
mod cose;
pub mod envelope;
pub mod evidence;
pub mod ids;
pub mod keyhist;
pub mod keys;
pub mod message;
pub mod officer;
pub mod reason;
pub mod receipt;
pub mod stats;
pub mod time;
#[cfg(feature = "cli")]
pub mod verify_cli;

pub use cose::CoseError;
pub use cose::label as header_label;
