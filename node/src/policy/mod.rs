//! Information-sharing agreements and the policy engine.
//!
//! Every answer a node gives a peer is decided here, field by field:
//! [`decide`] takes the agreements the node holds, what the request asks
//! ([`RequestContext`]) and, for a record, who it concerns ([`Subject`]), and
//! returns a [`Decision`] naming the agreement and version applied, the
//! fields released and the fields withheld with the rule that withheld each —
//! or a [`Denial`] with a stable code. Default deny: no signed, unrevoked
//! agreement in force that permits the purpose, step, instrument and query
//! kinds, no answer.
//!
//! The **victim firewall** holds here whatever an agreement says: a field of
//! the victim-identifier class is never released in step 1, and in step 2
//! only if the agreement releases it for the purpose, the record's consent
//! to international sharing is recorded as given, and an approver approved
//! that field. (Agreements that try to release victim identifiers in step 1
//! are refused at activation too: [`Agreement::validate`].)
//!
//! Pure: no I/O, no clock (the time is part of the context).

mod agreement;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

pub use agreement::{
    known_purpose, verify_signed, Agreement, AgreementError, Handling, Held, Instrument,
    PurposeTerms, RateLimits, Release, Revocation, Validity, AGREEMENT_PAYLOAD_TYPE,
    MAX_AGREEMENT_BYTES, PURPOSES,
};

use crate::{
    identity::NodeId,
    model::{fields, Role, Sensitivity},
};

/// Kinds of step-1 query items.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryKind {
    /// Document, phone or e-mail.
    Identifier,
    /// Names and date of birth.
    NameDob,
}

impl QueryKind {
    /// The name used in agreements and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryKind::Identifier => "identifier",
            QueryKind::NameDob => "name_dob",
        }
    }

    /// Parses [`QueryKind::as_str`].
    pub fn parse(s: &str) -> Option<QueryKind> {
        [QueryKind::Identifier, QueryKind::NameDob]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// The two steps of an exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Automated hit/no-hit: no personal data.
    One,
    /// A cooperation request decided by a person.
    Two,
}

impl Step {
    /// `step1` or `step2`, as in agreements.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::One => "step1",
            Step::Two => "step2",
        }
    }
}

/// Fields of the case model a step-1 hit can carry (each released only if
/// the agreement's `step1` rule releases it). All are case facts.
pub const STEP1_FIELDS: [&str; 5] = [
    "iccs_code",
    "year",
    "procedural_status",
    "jurisdiction",
    "persons[].role",
];

/// Parts of every hit that carry no record data and are always released:
/// the opaque hit reference, the match band and the per-peer subject token.
pub const HIT_FIELDS: [&str; 3] = ["hit_reference", "match_band", "subject_token"];

/// What a request asks, as far as the decision is concerned.
#[derive(Clone, Debug)]
pub struct RequestContext<'a> {
    /// This node.
    pub me: &'a NodeId,
    /// The authenticated peer.
    pub peer: &'a NodeId,
    /// Purpose code.
    pub purpose: &'a str,
    /// Agreement id the request cites.
    pub agreement_id: &'a str,
    /// Instrument the request cites.
    pub instrument: &'a str,
    /// Step 1 (search, explain) or step 2 (cooperation).
    pub step: Step,
    /// Kinds of query items in the request (step 1).
    pub kinds: &'a [QueryKind],
    /// Step 2: the fields or classes asked for (field paths or class names).
    pub requested: &'a [String],
    /// Step 2: the fields an approver approved (none before a decision).
    pub approved: &'a BTreeSet<String>,
    /// Current time, ms since the epoch.
    pub now_ms: i64,
}

/// Who a record is about, as far as the decision is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subject {
    /// The person's role in the case.
    pub role: Role,
    /// The recorded consent to disclosure to foreign authorities.
    pub international_consent: Option<bool>,
}

/// Why a request is not permitted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// No agreement with that peer carries the cited id.
    #[error("no agreement {0:?} with this peer")]
    NoAgreement(String),
    /// No version of the cited agreement is signed by both parties.
    #[error("agreement not signed by both parties")]
    NotSigned,
    /// Every signed version has been revoked.
    #[error("agreement revoked")]
    Revoked,
    /// Before the first day of validity.
    #[error("agreement not yet valid")]
    NotYetValid,
    /// After the last day of validity.
    #[error("agreement expired")]
    Expired,
    /// The purpose is not permitted.
    #[error("purpose not permitted")]
    Purpose,
    /// The agreement permits no step-2 request for the purpose.
    #[error("step 2 not permitted for this purpose")]
    Step,
    /// The cited instrument is not one of the agreement's.
    #[error("legal instrument not covered")]
    Instrument,
    /// A query kind is not permitted.
    #[error("query kind {0} not permitted")]
    QueryKind(&'static str),
}

impl Denial {
    /// A short stable code for statuses and audit records.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::NoAgreement(_) => "no_agreement",
            Denial::NotSigned => "agreement_not_signed",
            Denial::Revoked => "agreement_revoked",
            Denial::NotYetValid => "agreement_not_yet_valid",
            Denial::Expired => "agreement_expired",
            Denial::Purpose => "purpose_not_permitted",
            Denial::Step => "step_not_permitted",
            Denial::Instrument => "instrument_not_covered",
            Denial::QueryKind(_) => "query_kind_not_permitted",
        }
    }
}

/// Why a field was withheld.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// The agreement's rule for the purpose and step does not release it.
    NotReleased,
    /// A victim identifier asked in step 1: never released.
    VictimFirewallStep1,
    /// A victim identifier in step 2 without recorded consent to international sharing.
    VictimFirewallConsent,
    /// Step 2: no approver approved this field.
    NotApproved,
}

impl Rule {
    /// The stable code carried in responses and audit records.
    pub fn code(self) -> &'static str {
        match self {
            Rule::NotReleased => "not_released_by_agreement",
            Rule::VictimFirewallStep1 => "victim_firewall_step1",
            Rule::VictimFirewallConsent => "victim_firewall_no_consent",
            Rule::NotApproved => "not_approved",
        }
    }
}

/// A field withheld, and the rule that withheld it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Withheld {
    /// Field path.
    pub field: String,
    /// The rule.
    pub rule: Rule,
}

/// What may be released, under which agreement, and why the rest is not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Agreement id applied.
    pub agreement_id: String,
    /// Its version.
    pub agreement_version: u32,
    /// The step decided.
    pub step: Step,
    /// Field paths released, in the order considered.
    pub released: Vec<String>,
    /// Field paths withheld with their rules.
    pub withheld: Vec<Withheld>,
}

impl Decision {
    /// True if `field` is released.
    pub fn releases(&self, field: &str) -> bool {
        self.released.iter().any(|f| f == field)
    }

    /// `field: rule` lines, as in audit records.
    pub fn withheld_lines(&self) -> Vec<String> {
        self.withheld
            .iter()
            .map(|w| format!("{}: {}", w.field, w.rule.code()))
            .collect()
    }
}

/// Finds the agreement that governs a request, or denies with a coded reason.
///
/// Among the held versions of the cited id whose other party is the peer:
/// those signed by both, then those not revoked, then those in force; the
/// highest version left governs. Its purpose, step, instrument and query
/// kinds are then checked, in that order.
pub fn authorize<'a>(agreements: &'a [Held], ctx: &RequestContext<'_>) -> Result<&'a Held, Denial> {
    let held = governing(agreements, ctx)?;
    // Statistics leave a node only as protected aggregates, never in step 1 or 2.
    let terms = match held.terms.terms(ctx.purpose) {
        Some(t) if ctx.purpose != "statistics" => t,
        _ => return Err(Denial::Purpose),
    };
    if terms.release(ctx.step).is_none() {
        return Err(Denial::Step);
    }
    if !held.terms.covers_instrument(ctx.instrument) {
        return Err(Denial::Instrument);
    }
    if let Some(k) = ctx.kinds.iter().find(|k| !terms.query_kinds.contains(k)) {
        return Err(Denial::QueryKind(k.as_str()));
    }
    Ok(held)
}

/// Finds the agreement that governs a statistics request: the version is
/// chosen as by [`authorize`], then the purpose must be `statistics` and the
/// instrument covered. Only protected aggregates are answered under it.
pub fn authorize_statistics<'a>(
    agreements: &'a [Held],
    ctx: &RequestContext<'_>,
) -> Result<&'a Held, Denial> {
    let held = governing(agreements, ctx)?;
    if ctx.purpose != "statistics" || held.terms.terms("statistics").is_none() {
        return Err(Denial::Purpose);
    }
    if !held.terms.covers_instrument(ctx.instrument) {
        return Err(Denial::Instrument);
    }
    Ok(held)
}

/// The version that governs a request: the cited id with this peer, signed
/// by both, not revoked, in force, highest version.
fn governing<'a>(agreements: &'a [Held], ctx: &RequestContext<'_>) -> Result<&'a Held, Denial> {
    let cited: Vec<&Held> = agreements
        .iter()
        .filter(|h| h.terms.id == ctx.agreement_id && h.terms.peer_of(ctx.me) == Some(ctx.peer))
        .collect();
    if cited.is_empty() {
        return Err(Denial::NoAgreement(
            ctx.agreement_id.chars().take(64).collect(),
        ));
    }
    let signed: Vec<&Held> = cited.into_iter().filter(|h| h.fully_signed()).collect();
    if signed.is_empty() {
        return Err(Denial::NotSigned);
    }
    let live: Vec<&Held> = signed.into_iter().filter(|h| h.revoked.is_none()).collect();
    if live.is_empty() {
        return Err(Denial::Revoked);
    }
    let Some(held) = live
        .iter()
        .copied()
        .filter(|h| h.terms.in_force(ctx.now_ms))
        .max_by_key(|h| h.terms.version)
    else {
        // Not yet valid if any version is still to come, else expired.
        return Err(
            if live
                .iter()
                .any(|h| h.terms.validity(ctx.now_ms) == Validity::NotYetValid)
            {
                Denial::NotYetValid
            } else {
                Denial::Expired
            },
        );
    };
    Ok(held)
}

/// Decides a request: the governing agreement ([`authorize`]) and, field by
/// field, what the answer may carry about `subject` (`None`: the decision for
/// the request as a whole, every field taken at its most protected class).
pub fn decide(
    agreements: &[Held],
    ctx: &RequestContext<'_>,
    subject: Option<Subject>,
) -> Result<Decision, Denial> {
    let held = authorize(agreements, ctx)?;
    Ok(disclose(&held.terms, ctx, subject))
}

/// The fields a request asks for: the step-1 catalogue, or in step 2 the
/// requested fields and classes expanded into field paths (unknown names
/// are ignored: they can release nothing).
pub fn candidate_fields(ctx: &RequestContext<'_>, subject: Option<Subject>) -> Vec<&'static str> {
    match ctx.step {
        Step::One => STEP1_FIELDS.to_vec(),
        Step::Two => {
            let role = subject.map(|s| s.role);
            let mut out: Vec<&'static str> = Vec::new();
            for f in fields::FIELDS {
                let class = f.class.for_role(role);
                let wanted = ctx
                    .requested
                    .iter()
                    .any(|r| r == f.path || Sensitivity::parse(r).is_some_and(|c| c == class));
                if wanted && !out.contains(&f.path) {
                    out.push(f.path);
                }
            }
            out
        }
    }
}

/// The field-level decision under one agreement (already authorized).
pub fn disclose(
    agreement: &Agreement,
    ctx: &RequestContext<'_>,
    subject: Option<Subject>,
) -> Decision {
    let rule = agreement
        .terms(ctx.purpose)
        .and_then(|t| t.release(ctx.step));
    let mut released = Vec::new();
    let mut withheld = Vec::new();
    for path in candidate_fields(ctx, subject) {
        let Some(field) = fields::field(path) else {
            continue;
        };
        // Without a subject, identifiers take their most protected class.
        let class = field.class.for_role(subject.map(|s| s.role));
        let verdict = if class == Sensitivity::VictimIdentifier && ctx.step == Step::One {
            Err(Rule::VictimFirewallStep1)
        } else if !rule.is_some_and(|r| r.releases(path, class)) {
            Err(Rule::NotReleased)
        } else if class == Sensitivity::VictimIdentifier
            && subject.and_then(|s| s.international_consent) != Some(true)
        {
            Err(Rule::VictimFirewallConsent)
        } else if ctx.step == Step::Two && !ctx.approved.contains(path) {
            Err(Rule::NotApproved)
        } else {
            Ok(())
        };
        match verdict {
            Ok(()) => released.push(path.to_owned()),
            Err(rule) => withheld.push(Withheld {
                field: path.to_owned(),
                rule,
            }),
        }
    }
    Decision {
        agreement_id: agreement.id.clone(),
        agreement_version: agreement.version,
        step: ctx.step,
        released,
        withheld,
    }
}

/// Purposes a step-1 search may serve (every known purpose but `statistics`).
pub fn search_purpose(purpose: &str) -> bool {
    purpose != "statistics" && known_purpose(purpose)
}

/// The agreement this node would cite when asking `peer` for `purpose`:
/// among those signed by both, not revoked, in force and permitting the
/// purpose, the highest version.
pub fn outbound<'a>(
    agreements: &'a [Held],
    me: &NodeId,
    peer: &NodeId,
    purpose: &str,
    now_ms: i64,
) -> Option<&'a Agreement> {
    agreements
        .iter()
        .filter(|h| {
            h.active(now_ms)
                && h.terms.peer_of(me) == Some(peer)
                && h.terms.terms(purpose).is_some()
        })
        .map(|h| &h.terms)
        .max_by_key(|a| a.version)
}

/// What a peer would get for a purpose and query kinds, without any data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The step-1 decision, or the denial a search would meet.
    pub step1: Result<Decision, Denial>,
    /// Step 2 under the same agreement: the rule (classes and fields that an
    /// approver may release), or why no cooperation request is accepted.
    pub step2: Result<Release, Denial>,
    /// Query kinds the agreement permits for the purpose.
    pub query_kinds: Vec<QueryKind>,
    /// Limits, handling and retention of the agreement applied (when allowed).
    pub terms: Option<Agreement>,
}

/// Explains, without data, what a request for `ctx.purpose` with `ctx.kinds`
/// citing `ctx.agreement_id` would be given.
pub fn explain(agreements: &[Held], ctx: &RequestContext<'_>) -> Explanation {
    let one = RequestContext {
        step: Step::One,
        ..ctx.clone()
    };
    let step1 = decide(agreements, &one, None);
    let two = RequestContext {
        step: Step::Two,
        kinds: &[],
        ..ctx.clone()
    };
    let step2 = authorize(agreements, &two).and_then(|h| {
        h.terms
            .terms(ctx.purpose)
            .and_then(|t| t.step2.clone())
            .ok_or(Denial::Step)
    });
    let held = authorize(
        agreements,
        &RequestContext {
            kinds: &[],
            ..one.clone()
        },
    )
    .ok();
    Explanation {
        query_kinds: held
            .and_then(|h| h.terms.terms(ctx.purpose))
            .map(|t| t.query_kinds.clone())
            .unwrap_or_default(),
        terms: held.map(|h| h.terms.clone()),
        step1,
        step2,
    }
}

#[cfg(test)]
mod tests;
