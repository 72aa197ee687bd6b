//! Information-sharing agreements and the (minimal) decision on a request.
//!
//! Default deny: a peer's request is answered only if an active agreement
//! between this node and that peer names the request's purpose, the legal
//! basis it cites and every kind of query item it carries. Pure: no I/O.

use serde::{Deserialize, Serialize};

use crate::identity::NodeId;
use crate::model::parse_date;

/// Purposes an agreement may permit.
pub const PURPOSES: &[&str] = &[
    "investigation",
    "prosecution",
    "victim_identification",
    "missing_persons",
    "statistics",
];

/// Kinds of step-1 query items.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// An information-sharing agreement between two nodes, as loaded by both.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agreement {
    /// Identifier shared by both parties, e.g. `MEX-GTM-2026-01`.
    pub id: String,
    /// Version, starting at 1.
    pub version: u32,
    /// The two parties' node ids.
    pub parties: [NodeId; 2],
    /// Legal instruments the agreement rests on; a request cites one of them.
    pub instruments: Vec<String>,
    /// Permitted purposes, from [`PURPOSES`].
    pub purposes: Vec<String>,
    /// Permitted query kinds.
    pub query_kinds: Vec<QueryKind>,
    /// First day of validity (UTC), `YYYY-MM-DD`.
    pub valid_from: String,
    /// Last day of validity (UTC, inclusive), `YYYY-MM-DD`.
    pub valid_until: String,
    /// How much the peer may ask (defaults apply when absent).
    #[serde(default)]
    pub rate_limits: RateLimits,
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

/// Why an agreement document was refused.
#[derive(Debug, thiserror::Error)]
#[error("agreement: {0}")]
pub struct AgreementError(pub String);

impl Agreement {
    /// Parses and validates an agreement document (JSON).
    pub fn parse(json: &str) -> Result<Agreement, AgreementError> {
        let a: Agreement = serde_json::from_str(json).map_err(|e| AgreementError(e.to_string()))?;
        a.validate()?;
        Ok(a)
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), AgreementError> {
        let bad = |m: &str| Err(AgreementError(m.to_owned()));
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
                .any(|i| i.trim().is_empty() || i.len() > 200)
        {
            return bad("at least one legal instrument, each 1 to 200 bytes");
        }
        if self.purposes.is_empty() {
            return bad("at least one purpose");
        }
        for p in &self.purposes {
            if !PURPOSES.contains(&p.as_str()) {
                return Err(AgreementError(format!(
                    "unknown purpose {p:?} (known: {})",
                    PURPOSES.join(", ")
                )));
            }
        }
        if self.query_kinds.is_empty() {
            return bad("at least one query kind");
        }
        if self.rate_limits.per_minute == 0
            || self.rate_limits.per_day < self.rate_limits.per_minute
        {
            return bad("rate_limits: per_minute at least 1 and per_day at least per_minute");
        }
        let from = parse_date(&self.valid_from).map_err(AgreementError)?;
        let until = parse_date(&self.valid_until).map_err(AgreementError)?;
        if until < from {
            return bad("valid_until is before valid_from");
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

    /// True on days `valid_from..=valid_until` (UTC) of `now_ms`.
    pub fn in_force(&self, now_ms: i64) -> bool {
        let Ok(now) =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms) * 1_000_000)
        else {
            return false;
        };
        let today = now.date();
        matches!((parse_date(&self.valid_from), parse_date(&self.valid_until)),
            (Ok(from), Ok(until)) if from <= today && today <= until)
    }
}

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
    /// Kinds of query items in the request.
    pub kinds: &'a [QueryKind],
    /// Current time, ms since the epoch.
    pub now_ms: i64,
}

/// Why a request is not permitted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// No agreement with that peer carries the cited id.
    #[error("no agreement {0:?} with this peer")]
    NoAgreement(String),
    /// The agreement is outside its validity period.
    #[error("agreement not in force")]
    NotInForce,
    /// The purpose is not permitted.
    #[error("purpose not permitted")]
    Purpose,
    /// The cited instrument is not one of the agreement's.
    #[error("legal instrument not covered")]
    Instrument,
    /// A query kind is not permitted.
    #[error("query kind {0} not permitted")]
    QueryKind(&'static str),
}

impl Denial {
    /// A short stable code for audit records.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::NoAgreement(_) => "no_agreement",
            Denial::NotInForce => "agreement_not_in_force",
            Denial::Purpose => "purpose_not_permitted",
            Denial::Instrument => "instrument_not_covered",
            Denial::QueryKind(_) => "query_kind_not_permitted",
        }
    }
}

/// Decides whether an inbound request is permitted; returns the agreement used.
pub fn decide<'a>(
    agreements: &'a [Agreement],
    ctx: &RequestContext<'_>,
) -> Result<&'a Agreement, Denial> {
    let mut cited = agreements
        .iter()
        .filter(|a| a.id == ctx.agreement_id && a.peer_of(ctx.me) == Some(ctx.peer))
        .peekable();
    if cited.peek().is_none() {
        return Err(Denial::NoAgreement(
            ctx.agreement_id.chars().take(64).collect(),
        ));
    }
    // The newest version in force governs, exactly as `outbound` chooses it.
    let agreement = cited
        .filter(|a| a.in_force(ctx.now_ms))
        .max_by_key(|a| a.version)
        .ok_or(Denial::NotInForce)?;
    // Step-1 searches never serve the statistics purpose: statistics leave a
    // node only as protected aggregates.
    if ctx.purpose == "statistics" || !agreement.purposes.iter().any(|p| p == ctx.purpose) {
        return Err(Denial::Purpose);
    }
    if !agreement.instruments.iter().any(|i| i == ctx.instrument) {
        return Err(Denial::Instrument);
    }
    if let Some(k) = ctx
        .kinds
        .iter()
        .find(|k| !agreement.query_kinds.contains(k))
    {
        return Err(Denial::QueryKind(k.as_str()));
    }
    Ok(agreement)
}

/// Purposes a step-1 search may serve (every purpose but `statistics`).
pub fn search_purpose(purpose: &str) -> bool {
    purpose != "statistics" && PURPOSES.contains(&purpose)
}

/// The agreement this node would cite when asking `peer` for `purpose`.
pub fn outbound<'a>(
    agreements: &'a [Agreement],
    me: &NodeId,
    peer: &NodeId,
    purpose: &str,
    now_ms: i64,
) -> Option<&'a Agreement> {
    agreements
        .iter()
        .filter(|a| {
            a.peer_of(me) == Some(peer)
                && a.in_force(now_ms)
                && a.purposes.iter().any(|p| p == purpose)
        })
        .max_by_key(|a| a.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreement() -> Agreement {
        Agreement::parse(
            r#"{"id":"MEX-GTM-1","version":1,"parties":["MEX","GTM"],
                "instruments":["MoU MEX-GTM 2025"],"purposes":["investigation"],
                "query_kinds":["identifier"],"valid_from":"2025-01-01","valid_until":"2027-12-31"}"#,
        )
        .unwrap()
    }

    const JAN_2026: i64 = 1_767_225_600_000 + 86_400_000 * 10;

    #[test]
    fn decisions() {
        let me = NodeId::parse("GTM").unwrap();
        let peer = NodeId::parse("MEX").unwrap();
        let other = NodeId::parse("COL").unwrap();
        let all = vec![agreement()];
        let ctx = RequestContext {
            me: &me,
            peer: &peer,
            purpose: "investigation",
            agreement_id: "MEX-GTM-1",
            instrument: "MoU MEX-GTM 2025",
            kinds: &[QueryKind::Identifier],
            now_ms: JAN_2026,
        };
        assert!(decide(&all, &ctx).is_ok());
        assert_eq!(
            decide(
                &all,
                &RequestContext {
                    peer: &other,
                    ..ctx.clone()
                }
            )
            .unwrap_err()
            .code(),
            "no_agreement"
        );
        assert_eq!(
            decide(
                &all,
                &RequestContext {
                    purpose: "statistics",
                    ..ctx.clone()
                }
            ),
            Err(Denial::Purpose)
        );
        assert_eq!(
            decide(
                &all,
                &RequestContext {
                    instrument: "x",
                    ..ctx.clone()
                }
            ),
            Err(Denial::Instrument)
        );
        assert_eq!(
            decide(
                &all,
                &RequestContext {
                    kinds: &[QueryKind::NameDob],
                    ..ctx.clone()
                }
            ),
            Err(Denial::QueryKind("name_dob"))
        );
        assert_eq!(
            decide(
                &all,
                &RequestContext {
                    now_ms: 0,
                    ..ctx.clone()
                }
            ),
            Err(Denial::NotInForce)
        );
        assert!(decide(&[], &ctx).is_err());
        assert!(outbound(&all, &peer, &me, "investigation", JAN_2026).is_some());
        assert!(outbound(&all, &peer, &me, "prosecution", JAN_2026).is_none());
    }

    #[test]
    fn newest_version_in_force_governs_and_statistics_never_searches() {
        let me = NodeId::parse("GTM").unwrap();
        let peer = NodeId::parse("MEX").unwrap();
        let v1 = agreement();
        let mut future = agreement();
        future.version = 2;
        future.valid_from = "2099-01-01".into();
        future.valid_until = "2099-12-31".into();
        let mut stats = agreement();
        stats.purposes = vec!["statistics".into()];
        let ctx = RequestContext {
            me: &me,
            peer: &peer,
            purpose: "investigation",
            agreement_id: "MEX-GTM-1",
            instrument: "MoU MEX-GTM 2025",
            kinds: &[QueryKind::Identifier],
            now_ms: JAN_2026,
        };
        let all = vec![v1.clone(), future.clone()];
        assert_eq!(decide(&all, &ctx).unwrap().version, 1);
        assert_eq!(
            outbound(&all, &peer, &me, "investigation", JAN_2026)
                .unwrap()
                .version,
            1
        );
        assert_eq!(decide(&[future], &ctx), Err(Denial::NotInForce));
        assert_eq!(
            decide(
                &[stats],
                &RequestContext {
                    purpose: "statistics",
                    ..ctx.clone()
                }
            ),
            Err(Denial::Purpose)
        );
        assert!(
            !search_purpose("statistics")
                && search_purpose("investigation")
                && !search_purpose("x")
        );
    }

    #[test]
    fn invalid_documents_are_refused() {
        for bad in [
            r#"{"id":"A","version":1,"parties":["MEX","MEX"],"instruments":["x"],"purposes":["investigation"],"query_kinds":["identifier"],"valid_from":"2025-01-01","valid_until":"2026-01-01"}"#,
            r#"{"id":"A","version":1,"parties":["MEX","GTM"],"instruments":["x"],"purposes":["spying"],"query_kinds":["identifier"],"valid_from":"2025-01-01","valid_until":"2026-01-01"}"#,
            r#"{"id":"A","version":1,"parties":["MEX","GTM"],"instruments":["x"],"purposes":["investigation"],"query_kinds":["identifier"],"valid_from":"2026-01-01","valid_until":"2025-01-01"}"#,
            r#"{"id":"A","version":0,"parties":["MEX","GTM"],"instruments":["x"],"purposes":["investigation"],"query_kinds":["identifier"],"valid_from":"2025-01-01","valid_until":"2026-01-01"}"#,
        ] {
            assert!(Agreement::parse(bad).is_err(), "{bad}");
        }
    }
}
