//! The per-case audit log, sans-IO: RFC 6962 Merkle math ([`merkle`]), C2SP signed notes,
//! checkpoints, cosignatures, proofs and policies ([`note`]), the audit entry ([`entry`]) and
//! mutual witnessing between agencies ([`witness`]).
//! The node stores logs; an auditor verifies them with this module alone.

pub mod entry;
pub mod merkle;
pub mod note;
pub mod witness;
