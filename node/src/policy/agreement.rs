//! The agreement document, its validation (including the victim firewall's
//! activation rule) and its signed form: a DSSE envelope over the exact JSON
//! bytes, signed by both parties. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::VerifyingKey;
use enlace_proto::v1::SignedEnvelope;
use serde::{Deserialize, Serialize};

use super::{QueryKind, Step, STEP1_FIELDS};
use crate::{
    envelope,
    identity::NodeId,
    model::{fields, parse_date, Sensitivity},
};

/// Payload type of a signed agreement (DSSE JSON envelope, `docs/agreements.md`).
pub const AGREEMENT_PAYLOAD_TYPE: &str = "application/vnd.enlace.agreement+json";

/// Largest agreement document accepted.
pub const MAX_AGREEMENT_BYTES: usize = 64 * 1024;

/// Purposes with a standard code. Nationally defined purposes are written
/// `x_` followed by lowercase letters, digits or `_` (e.g. `x_labour_inspection`).
pub const PURPOSES: &[&str] = &[
    "investigation",
    "prosecution",
    "victim_identification",
    "missing_persons",
    "statistics",
];

/// True for a standard purpose code or a national extension (`x_…`).
pub fn known_purpose(p: &str) -> bool {
    PURPOSES.contains(&p)
        || p.strip_prefix("x_").is_some_and(|rest| {
            (1..=40).contains(&rest.len())
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// An information-sharing agreement between two nodes: the terms both sign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agreement {
    /// Identifier shared by both parties, e.g. `MEX-GTM-2026-01`.
    pub id: String,
    /// Version, starting at 1.
    pub version: u32,
    /// The two parties' node ids.
    pub parties: [NodeId; 2],
    /// Legal instruments the agreement rests on; a request cites one by name.
    pub instruments: Vec<Instrument>,
    /// First day of validity (UTC), `YYYY-MM-DD`.
    pub valid_from: String,
    /// Last day of validity (UTC, inclusive), `YYYY-MM-DD`.
    pub valid_until: String,
    /// Permitted purposes, each with its query kinds and disclosure rules.
    pub purposes: BTreeMap<String, PurposeTerms>,
    /// How much the peer may ask (defaults apply when absent).
    #[serde(default)]
    pub rate_limits: RateLimits,
    /// Smallest count a statistics answer may release (cells below are suppressed).
    #[serde(default = "default_threshold")]
    pub statistics_threshold: u32,
    /// Whether the receiver may pass data on without the holder's permission.
    pub handling: Handling,
    /// Days the receiver keeps what it receives, at most.
    pub retention_days: u32,
}

fn default_threshold() -> u32 {
    11
}

/// A legal instrument: the name a request cites, and where it is published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instrument {
    /// The name a request cites in `legal_basis.instrument`, byte for byte.
    pub name: String,
    /// Citation (treaty series, gazette, registry reference).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub citation: String,
}

/// What an agreement permits for one purpose.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeTerms {
    /// Kinds of step-1 query items the peer may send for this purpose.
    #[serde(default)]
    pub query_kinds: Vec<QueryKind>,
    /// What a step-1 (hit/no-hit) answer may carry.
    #[serde(default)]
    pub step1: Release,
    /// What an approved step-2 disclosure may carry (cooperation requests).
    /// Absent: no step-2 request is accepted for this purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step2: Option<Release>,
    /// Step 2 needs two different approvers to approve the same decision.
    #[serde(default, skip_serializing_if = "is_false")]
    pub dual_control: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Classes and named fields released.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// Whole sensitivity classes.
    #[serde(default)]
    pub classes: Vec<Sensitivity>,
    /// Named fields (paths of the field table, `docs/data-model.md`).
    #[serde(default)]
    pub fields: Vec<String>,
}

impl Release {
    /// True if this rule releases `field` of class `class`.
    pub fn releases(&self, field: &str, class: Sensitivity) -> bool {
        self.classes.contains(&class) || self.fields.iter().any(|f| f == field)
    }
}

/// Handling code for onward sharing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handling {
    /// May not be passed to a third party without the holder's permission.
    Restricted,
    /// May be passed on to the receiver's competent authorities and partners.
    Permitted,
}

impl Handling {
    /// The code as written in agreements and disclosures.
    pub fn as_str(self) -> &'static str {
        match self {
            Handling::Restricted => "restricted",
            Handling::Permitted => "permitted",
        }
    }
}

/// Per-peer limits of an agreement, enforced by the responder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Requests answered per rolling minute window.
    pub per_minute: u32,
    /// Requests answered per UTC day (counted durably).
    pub per_day: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_minute: 600,
            per_day: 50_000,
        }
    }
}

/// Why an agreement document or its signatures were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("agreement: {0}")]
pub struct AgreementError(pub String);

fn bad<T>(m: impl Into<String>) -> Result<T, AgreementError> {
    Err(AgreementError(m.into()))
}

impl Agreement {
    /// Parses and validates an agreement document (JSON).
    pub fn parse(json: &str) -> Result<Agreement, AgreementError> {
        if json.len() > MAX_AGREEMENT_BYTES {
            return bad(format!("document larger than {MAX_AGREEMENT_BYTES} bytes"));
        }
        let a: Agreement = serde_json::from_str(json).map_err(|e| AgreementError(e.to_string()))?;
        a.validate()?;
        Ok(a)
    }

    /// The exact bytes both parties sign: the document re-serialized with
    /// members in declaration order, two-space indentation.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("an Agreement always serializes")
    }

    /// Checks every member, and the victim firewall: no victim identifier, and
    /// no personal data at all, may be released in step 1.
    pub fn validate(&self) -> Result<(), AgreementError> {
        if self.id.is_empty()
            || self.id.len() > 64
            || !self.id.bytes().all(|b| b.is_ascii_graphic())
        {
            return bad("id must be 1 to 64 printable ASCII characters");
        }
        if self.version == 0 {
            return bad("version starts at 1");
        }
        if self.parties[0] == self.parties[1] {
            return bad("the two parties must differ");
        }
        if self.instruments.is_empty()
            || self
                .instruments
                .iter()
                .any(|i| i.name.trim().is_empty() || i.name.len() > 200 || i.citation.len() > 500)
        {
            return bad(
                "at least one legal instrument, each name 1 to 200 bytes (citation up to 500)",
            );
        }
        let from = parse_date(&self.valid_from).map_err(AgreementError)?;
        let until = parse_date(&self.valid_until).map_err(AgreementError)?;
        if until < from {
            return bad("valid_until is before valid_from");
        }
        if self.purposes.is_empty() {
            return bad("at least one purpose");
        }
        for (p, terms) in &self.purposes {
            if !known_purpose(p) {
                return bad(format!(
                    "unknown purpose {p:?} (known: {}, or x_<name> for a national purpose)",
                    PURPOSES.join(", ")
                ));
            }
            terms
                .validate(p)
                .map_err(|AgreementError(m)| AgreementError(format!("purposes.{p}: {m}")))?;
        }
        if self.rate_limits.per_minute == 0
            || self.rate_limits.per_day < self.rate_limits.per_minute
        {
            return bad("rate_limits: per_minute at least 1 and per_day at least per_minute");
        }
        if self.statistics_threshold == 0 {
            return bad("statistics_threshold must be at least 1");
        }
        if self.retention_days == 0 || self.retention_days > 36_500 {
            return bad("retention_days must be 1 to 36500");
        }
        Ok(())
    }

    /// The other party, if `me` is one of the two.
    pub fn peer_of(&self, me: &NodeId) -> Option<&NodeId> {
        match &self.parties {
            [a, b] if a == me => Some(b),
            [a, b] if b == me => Some(a),
            _ => None,
        }
    }

    /// The terms for `purpose`, if permitted.
    pub fn terms(&self, purpose: &str) -> Option<&PurposeTerms> {
        self.purposes.get(purpose)
    }

    /// True if a request may cite `name`.
    pub fn covers_instrument(&self, name: &str) -> bool {
        self.instruments.iter().any(|i| i.name == name)
    }

    /// Where `now_ms` falls relative to the validity period (UTC days).
    pub fn validity(&self, now_ms: i64) -> Validity {
        let Ok(now) =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms) * 1_000_000)
        else {
            return Validity::Expired;
        };
        let today = now.date();
        match (parse_date(&self.valid_from), parse_date(&self.valid_until)) {
            (Ok(from), _) if today < from => Validity::NotYetValid,
            (_, Ok(until)) if today > until => Validity::Expired,
            (Ok(_), Ok(_)) => Validity::InForce,
            _ => Validity::Expired,
        }
    }

    /// True on days `valid_from..=valid_until` (UTC) of `now_ms`.
    pub fn in_force(&self, now_ms: i64) -> bool {
        self.validity(now_ms) == Validity::InForce
    }
}

/// Where a moment falls relative to an agreement's validity period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// Before `valid_from`.
    NotYetValid,
    /// Within the period.
    InForce,
    /// After `valid_until`.
    Expired,
}

impl PurposeTerms {
    fn validate(&self, purpose: &str) -> Result<(), AgreementError> {
        if purpose == "statistics" {
            if !self.query_kinds.is_empty()
                || self.step1 != Release::default()
                || self.step2.is_some()
            {
                return bad(
                    "statistics releases protected aggregates only: no query_kinds, step1 or step2",
                );
            }
            return Ok(());
        }
        if self.query_kinds.is_empty() {
            return bad("at least one query kind");
        }
        // The victim firewall, and step 1's promise of no personal data.
        for class in &self.step1.classes {
            match class {
                Sensitivity::CaseFact => {}
                Sensitivity::VictimIdentifier => {
                    return bad(
                        "step1: the victim firewall forbids releasing victim identifiers in step 1",
                    )
                }
                other => {
                    return bad(format!(
                        "step1: class {} is personal data; step 1 releases case facts only",
                        other.as_str()
                    ))
                }
            }
        }
        for f in &self.step1.fields {
            let Some(field) = fields::field(f) else {
                return bad(format!("step1: unknown field {f:?}"));
            };
            let classes = [
                field.class.for_role(Some(crate::model::Role::Victim)),
                field.class.for_role(Some(crate::model::Role::Suspect)),
            ];
            if classes.contains(&Sensitivity::VictimIdentifier) {
                return bad(format!(
                    "step1: the victim firewall forbids releasing {f:?} in step 1 (a victim identifier)"
                ));
            }
            if !STEP1_FIELDS.contains(&field.path) {
                return bad(format!(
                    "step1: {f:?} is not carried by a step-1 answer (step-1 fields: {})",
                    STEP1_FIELDS.join(", ")
                ));
            }
        }
        if let Some(step2) = &self.step2 {
            for f in &step2.fields {
                if fields::field(f).is_none() {
                    return bad(format!("step2: unknown field {f:?}"));
                }
            }
        }
        Ok(())
    }

    /// The rule of `step`, if that step is permitted.
    pub fn release(&self, step: Step) -> Option<&Release> {
        match step {
            Step::One => Some(&self.step1),
            Step::Two => self.step2.as_ref(),
        }
    }
}

/// A revocation of an agreement version by this node's operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// The local user who revoked.
    pub by: String,
    /// Why (free text, no personal data).
    pub reason: String,
}

/// An agreement as a node holds it: the terms, who signed the exact bytes,
/// and whether this node has revoked it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The terms.
    pub terms: Agreement,
    /// Parties whose signature over the terms verified.
    pub signed_by: BTreeSet<NodeId>,
    /// Set once revoked; a revoked agreement never allows again.
    pub revoked: Option<Revocation>,
}

impl Held {
    /// Signed by both parties.
    pub fn fully_signed(&self) -> bool {
        self.terms
            .parties
            .iter()
            .all(|p| self.signed_by.contains(p))
    }

    /// Signed by both, not revoked and in force at `now_ms`.
    pub fn active(&self, now_ms: i64) -> bool {
        self.fully_signed() && self.revoked.is_none() && self.terms.in_force(now_ms)
    }
}

/// Checks the signatures of a signed agreement (DSSE envelope over the
/// agreement's bytes). `resolve` maps a key id to its owner and key. Every
/// signature must be by a party's key and verify; at most one per party.
/// Returns the parsed terms and the parties that signed.
pub fn verify_signed<F>(env: &SignedEnvelope, resolve: F) -> Result<Held, AgreementError>
where
    F: Fn(&str) -> Option<(NodeId, VerifyingKey)>,
{
    if env.payload_type != AGREEMENT_PAYLOAD_TYPE {
        return bad(format!("payloadType must be {AGREEMENT_PAYLOAD_TYPE}"));
    }
    if env.payload.len() > MAX_AGREEMENT_BYTES {
        return bad(format!("document larger than {MAX_AGREEMENT_BYTES} bytes"));
    }
    if env.signatures.is_empty() || env.signatures.len() > 2 {
        return bad("a signed agreement carries one or two signatures");
    }
    // Signatures first, over the bytes as received; then the terms.
    let mut signers = Vec::new();
    for s in &env.signatures {
        let key_id: String = s.key_id.chars().take(80).collect();
        let Some((owner, key)) = resolve(&s.key_id) else {
            return bad(format!(
                "signature by unknown key {key_id} (pin the party first)"
            ));
        };
        envelope::verify_signature(&env.payload_type, &env.payload, s, &key)
            .map_err(|e| AgreementError(format!("signature of {owner}: {e}")))?;
        signers.push(owner);
    }
    let text = std::str::from_utf8(&env.payload)
        .map_err(|_| AgreementError("payload is not UTF-8".into()))?;
    let terms = Agreement::parse(text)?;
    let mut signed_by = BTreeSet::new();
    for owner in signers {
        if !terms.parties.contains(&owner) {
            return bad(format!("signature by {owner}, which is not a party"));
        }
        if !signed_by.insert(owner.clone()) {
            return bad(format!("{owner} signed twice"));
        }
    }
    Ok(Held {
        terms,
        signed_by,
        revoked: None,
    })
}
