//! What this node requires of partners' officials' signatures (spec/PEOPLE.md §5), checked on
//! each opened envelope before it is applied.

use rogatory_proto::envelope;

/// Which partners' messages must carry officials' signatures (`[approval] partners_signed`,
/// `partners_validated`; spec/PEOPLE.md §5): a message of such a type without them is refused
/// with `officer-not-valid`, the reason in its receipt.
#[derive(Debug, Clone, Default)]
pub struct SignaturePolicy {
    /// Types that must carry an issuer's signature (an issuing authority or liaison officer).
    pub signed: Vec<rogatory_proto::message::MessageType>,
    /// Types that must also carry a validating authority's countersignature.
    pub validated: Vec<rogatory_proto::message::MessageType>,
}

impl SignaturePolicy {
    /// Whether an opened envelope carries the signatures its type requires here.
    pub fn check(&self, o: &envelope::Opened) -> Result<(), envelope::OpenError> {
        use rogatory_proto::keyhist::OfficerRole;
        let kind = o.message.kind();
        let from = &o.info.from;
        if (self.signed.contains(&kind) || self.validated.contains(&kind)) && o.officers.is_empty()
        {
            return Err(envelope::OpenError::OfficerNotValid(format!(
                "this node accepts a {kind} only signed by one of {from}'s officials in their own name (spec/PEOPLE.md §5); it carries no such signature"
            )));
        }
        if self.validated.contains(&kind)
            && !o
                .officers
                .iter()
                .any(|s| s.role == OfficerRole::ValidatingAuthority)
        {
            return Err(envelope::OpenError::OfficerNotValid(format!(
                "this node accepts a {kind} only validated by a validating authority of {from} (EIO Directive Art. 2(c)(ii); spec/PEOPLE.md §5); it carries no validation"
            )));
        }
        Ok(())
    }
}
