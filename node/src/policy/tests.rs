use std::collections::BTreeSet;

use ed25519_dalek::SigningKey;
use proptest::prelude::*;

use super::*;
use crate::envelope::{self, Signer};

const JAN_2026: i64 = 1_767_225_600_000 + 86_400_000 * 10;

fn id(s: &str) -> NodeId {
    NodeId::parse(s).unwrap()
}

fn doc() -> serde_json::Value {
    serde_json::json!({
        "id": "MEX-GTM-1", "version": 1, "parties": ["MEX", "GTM"],
        "instruments": [{"name": "MoU MEX-GTM 2025", "citation": "DOF 2025-03-01"}],
        "valid_from": "2025-01-01", "valid_until": "2027-12-31",
        "purposes": {
            "investigation": {
                "query_kinds": ["identifier"],
                "step1": {"classes": [], "fields": ["iccs_code", "year"]},
                "step2": {"classes": ["case_fact", "suspect_identifier", "victim_identifier"], "fields": []}
            },
            "statistics": {}
        },
        "handling": "restricted",
        "retention_days": 365
    })
}

fn agreement() -> Agreement {
    Agreement::parse(&doc().to_string()).unwrap()
}

fn held(a: Agreement) -> Held {
    Held {
        signed_by: a.parties.iter().cloned().collect(),
        terms: a,
        revoked: None,
    }
}

struct Ctx {
    me: NodeId,
    peer: NodeId,
    approved: BTreeSet<String>,
    requested: Vec<String>,
}

impl Ctx {
    fn new() -> Ctx {
        Ctx {
            me: id("GTM"),
            peer: id("MEX"),
            approved: BTreeSet::new(),
            requested: Vec::new(),
        }
    }
    fn get(&self) -> RequestContext<'_> {
        RequestContext {
            me: &self.me,
            peer: &self.peer,
            purpose: "investigation",
            agreement_id: "MEX-GTM-1",
            instrument: "MoU MEX-GTM 2025",
            step: Step::One,
            kinds: &[QueryKind::Identifier],
            requested: &self.requested,
            approved: &self.approved,
            now_ms: JAN_2026,
        }
    }
}

#[test]
fn every_denial_reason() {
    let c = Ctx::new();
    let ctx = c.get();
    let all = vec![held(agreement())];
    let code = |all: &[Held], ctx: &RequestContext<'_>| decide(all, ctx, None).unwrap_err().code();
    assert!(decide(&all, &ctx, None).is_ok());
    let other = id("COL");
    assert_eq!(
        code(
            &all,
            &RequestContext {
                peer: &other,
                ..ctx.clone()
            }
        ),
        "no_agreement"
    );
    assert_eq!(code(&[], &ctx), "no_agreement");
    assert_eq!(
        code(
            &all,
            &RequestContext {
                agreement_id: "X",
                ..ctx.clone()
            }
        ),
        "no_agreement"
    );
    let mut one_side = held(agreement());
    one_side.signed_by.remove(&id("GTM"));
    assert_eq!(code(&[one_side], &ctx), "agreement_not_signed");
    let mut revoked = held(agreement());
    revoked.revoked = Some(Revocation {
        at_ms: 1,
        by: "op".into(),
        reason: "ended".into(),
    });
    assert_eq!(code(&[revoked], &ctx), "agreement_revoked");
    assert_eq!(
        code(
            &all,
            &RequestContext {
                now_ms: 0,
                ..ctx.clone()
            }
        ),
        "agreement_not_yet_valid"
    );
    assert_eq!(
        code(
            &all,
            &RequestContext {
                now_ms: JAN_2026 * 2,
                ..ctx.clone()
            }
        ),
        "agreement_expired"
    );
    assert_eq!(
        code(
            &all,
            &RequestContext {
                purpose: "prosecution",
                ..ctx.clone()
            }
        ),
        "purpose_not_permitted"
    );
    assert_eq!(
        code(
            &all,
            &RequestContext {
                purpose: "statistics",
                ..ctx.clone()
            }
        ),
        "purpose_not_permitted"
    );
    assert_eq!(
        code(
            &all,
            &RequestContext {
                instrument: "x",
                ..ctx.clone()
            }
        ),
        "instrument_not_covered"
    );
    assert_eq!(
        code(
            &all,
            &RequestContext {
                kinds: &[QueryKind::Identifier, QueryKind::NameDob],
                ..ctx.clone()
            }
        ),
        "query_kind_not_permitted"
    );
    let mut no_step2 = doc();
    no_step2["purposes"]["investigation"]
        .as_object_mut()
        .unwrap()
        .remove("step2");
    let no_step2 = held(Agreement::parse(&no_step2.to_string()).unwrap());
    assert_eq!(
        code(
            &[no_step2],
            &RequestContext {
                step: Step::Two,
                kinds: &[],
                ..ctx.clone()
            }
        ),
        "step_not_permitted"
    );
}

#[test]
fn step1_releases_what_the_rule_names_and_withholds_the_rest() {
    let c = Ctx::new();
    let d = decide(&[held(agreement())], &c.get(), None).unwrap();
    assert_eq!(
        (d.agreement_id.as_str(), d.agreement_version),
        ("MEX-GTM-1", 1)
    );
    assert_eq!(d.released, vec!["iccs_code", "year"]);
    assert_eq!(
        d.withheld_lines(),
        vec![
            "procedural_status: not_released_by_agreement",
            "jurisdiction: not_released_by_agreement",
            "persons[].role: not_released_by_agreement"
        ]
    );
    assert!(d.releases("year") && !d.releases("jurisdiction"));
}

#[test]
fn step2_victim_identifiers_need_rule_consent_and_approval() {
    let mut c = Ctx::new();
    c.requested = vec!["persons[].surnames".into(), "iccs_code".into()];
    let all = vec![held(agreement())];
    let victim = |consent| Subject {
        role: Role::Victim,
        international_consent: consent,
    };
    let step2 = |c: &Ctx, s| {
        decide(
            &all,
            &RequestContext {
                step: Step::Two,
                kinds: &[],
                ..c.get()
            },
            Some(s),
        )
        .unwrap()
    };
    // Nothing approved yet.
    let d = step2(&c, victim(Some(true)));
    assert!(d.released.is_empty());
    assert!(d.withheld.iter().all(|w| w.rule == Rule::NotApproved));
    // Approved, but consent not recorded or refused.
    c.approved = ["persons[].surnames".to_string(), "iccs_code".to_string()].into();
    for consent in [None, Some(false)] {
        let d = step2(&c, victim(consent));
        assert_eq!(d.released, vec!["iccs_code"]);
        assert_eq!(
            d.withheld_lines(),
            vec!["persons[].surnames: victim_firewall_no_consent"]
        );
    }
    // Every condition holds.
    let d = step2(&c, victim(Some(true)));
    assert_eq!(d.released, vec!["iccs_code", "persons[].surnames"]);
    // A suspect's surname is a suspect identifier: no consent needed.
    let d = step2(
        &c,
        Subject {
            role: Role::Suspect,
            international_consent: None,
        },
    );
    assert_eq!(d.released.len(), 2);
    // Classes expand into fields.
    c.requested = vec!["quasi_identifier".into()];
    let d = step2(&c, victim(Some(true)));
    assert!(d.released.is_empty());
    assert!(d
        .withheld
        .iter()
        .any(|w| w.field == "persons[].date_of_birth" && w.rule == Rule::NotReleased));
}

#[test]
fn activation_rules_and_the_firewall_refuse_documents() {
    type Edit = fn(&mut serde_json::Value);
    let cases: Vec<(Edit, &str)> = vec![
        (
            |d| d["parties"] = serde_json::json!(["MEX", "MEX"]),
            "parties must differ",
        ),
        (|d| d["version"] = 0.into(), "version starts at 1"),
        (
            |d| d["valid_until"] = "2024-01-01".into(),
            "before valid_from",
        ),
        (
            |d| d["purposes"] = serde_json::json!({"spying": {"query_kinds": ["identifier"]}}),
            "unknown purpose",
        ),
        (
            |d| d["purposes"] = serde_json::json!({}),
            "at least one purpose",
        ),
        (
            |d| d["purposes"]["investigation"]["query_kinds"] = serde_json::json!([]),
            "at least one query kind",
        ),
        (
            |d| {
                d["purposes"]["investigation"]["step1"]["classes"] =
                    serde_json::json!(["victim_identifier"])
            },
            "victim firewall",
        ),
        (
            |d| {
                d["purposes"]["investigation"]["step1"]["fields"] =
                    serde_json::json!(["persons[].surnames"])
            },
            "victim firewall",
        ),
        (
            |d| {
                d["purposes"]["investigation"]["step1"]["fields"] =
                    serde_json::json!(["persons[].identifiers[phone]"])
            },
            "victim firewall",
        ),
        (
            |d| {
                d["purposes"]["investigation"]["step1"]["classes"] =
                    serde_json::json!(["quasi_identifier"])
            },
            "personal data",
        ),
        (
            |d| {
                d["purposes"]["investigation"]["step1"]["fields"] =
                    serde_json::json!(["persons[].date_of_birth"])
            },
            "not carried by a step-1 answer",
        ),
        (
            |d| d["purposes"]["investigation"]["step1"]["fields"] = serde_json::json!(["nope"]),
            "unknown field",
        ),
        (
            |d| d["purposes"]["investigation"]["step2"]["fields"] = serde_json::json!(["nope"]),
            "unknown field",
        ),
        (
            |d| d["purposes"]["statistics"] = serde_json::json!({"query_kinds": ["identifier"]}),
            "aggregates only",
        ),
        (|d| d["retention_days"] = 0.into(), "retention_days"),
        (
            |d| d["statistics_threshold"] = 0.into(),
            "statistics_threshold",
        ),
        (|d| d["handling"] = "anything".into(), "unknown variant"),
        (
            |d| d["instruments"] = serde_json::json!([]),
            "legal instrument",
        ),
        (
            |d| d["rate_limits"] = serde_json::json!({"per_minute": 30, "per_day": 20}),
            "rate_limits",
        ),
        (|d| d["extra"] = 1.into(), "unknown field"),
    ];
    for (edit, expect) in cases {
        let mut d = doc();
        edit(&mut d);
        let err = Agreement::parse(&d.to_string()).unwrap_err().to_string();
        assert!(err.contains(expect), "{err} should mention {expect}");
    }
    let mut national = doc();
    national["purposes"]["x_labour_inspection"] =
        serde_json::json!({"query_kinds": ["identifier"]});
    assert!(Agreement::parse(&national.to_string()).is_ok());
    assert!(!known_purpose("x_") && !known_purpose("x_Bad") && known_purpose("x_a1"));
}

#[test]
fn newest_signed_version_in_force_governs_and_outbound_agrees() {
    let c = Ctx::new();
    let v1 = agreement();
    let mut v2 = agreement();
    v2.version = 2;
    v2.valid_from = "2099-01-01".into();
    v2.valid_until = "2099-12-31".into();
    let mut v3 = agreement();
    v3.version = 3;
    let mut v3_one_side = held(v3);
    v3_one_side.signed_by.remove(&id("MEX"));
    let all = vec![held(v1), held(v2), v3_one_side];
    assert_eq!(decide(&all, &c.get(), None).unwrap().agreement_version, 1);
    let out = outbound(&all, &c.peer, &c.me, "investigation", JAN_2026).unwrap();
    assert_eq!(out.version, 1);
    assert!(outbound(&all, &c.peer, &c.me, "prosecution", JAN_2026).is_none());
    assert!(
        !search_purpose("statistics") && search_purpose("investigation") && !search_purpose("x")
    );
}

#[test]
fn explain_reports_both_steps_without_data() {
    let c = Ctx::new();
    let all = vec![held(agreement())];
    let e = explain(&all, &c.get());
    assert_eq!(
        e.step1.as_ref().unwrap().released,
        vec!["iccs_code", "year"]
    );
    assert!(e
        .step2
        .as_ref()
        .unwrap()
        .classes
        .contains(&Sensitivity::VictimIdentifier));
    assert_eq!(e.query_kinds, vec![QueryKind::Identifier]);
    let e = explain(
        &all,
        &RequestContext {
            purpose: "missing_persons",
            ..c.get()
        },
    );
    assert_eq!(e.step1, Err(Denial::Purpose));
    assert!(e.terms.is_none());
}

fn signer(seed: u8) -> Signer {
    Signer::new(SigningKey::from_bytes(&[seed; 32]))
}

#[test]
fn signed_agreements_verify_only_with_both_parties_keys() {
    let (mex, gtm, col) = (signer(1), signer(2), signer(3));
    let resolve = |k: &str| {
        [(&mex, "MEX"), (&gtm, "GTM"), (&col, "COL")]
            .into_iter()
            .find(|(s, _)| s.key_id() == k)
            .map(|(s, n)| (id(n), s.verifying_key()))
    };
    let bytes = agreement().canonical_bytes();
    let mut env = mex.seal(AGREEMENT_PAYLOAD_TYPE, bytes.clone());
    let h = verify_signed(&env, resolve).unwrap();
    assert!(!h.fully_signed());
    gtm.cosign(&mut env);
    assert!(verify_signed(&env, resolve).unwrap().fully_signed());
    // A third node's signature, a duplicate, a tampered byte, a wrong type.
    let mut third = env.clone();
    third.signatures.truncate(1);
    col.cosign(&mut third);
    assert!(verify_signed(&third, resolve)
        .unwrap_err()
        .0
        .contains("not a party"));
    let mut twice = mex.seal(AGREEMENT_PAYLOAD_TYPE, bytes.clone());
    mex.cosign(&mut twice);
    assert!(verify_signed(&twice, resolve)
        .unwrap_err()
        .0
        .contains("twice"));
    let mut tampered = env.clone();
    let at = tampered.payload.len() / 2;
    tampered.payload[at] ^= 1;
    assert!(verify_signed(&tampered, resolve).is_err());
    let mut retyped = env.clone();
    retyped.payload_type = envelope::SEARCH_REQUEST.into();
    assert!(verify_signed(&retyped, resolve)
        .unwrap_err()
        .0
        .contains("payloadType"));
    let unknown = signer(9).seal(AGREEMENT_PAYLOAD_TYPE, bytes);
    assert!(verify_signed(&unknown, resolve)
        .unwrap_err()
        .0
        .contains("unknown key"));
}

// ---- property tests ----

fn any_class() -> impl Strategy<Value = Sensitivity> {
    prop_oneof![
        Just(Sensitivity::VictimIdentifier),
        Just(Sensitivity::QuasiIdentifier),
        Just(Sensitivity::CaseFact),
        Just(Sensitivity::SuspectIdentifier),
    ]
}

fn any_field() -> impl Strategy<Value = String> {
    (0..fields::FIELDS.len()).prop_map(|i| fields::FIELDS[i].path.to_owned())
}

fn any_release() -> impl Strategy<Value = Release> {
    (
        proptest::collection::vec(any_class(), 0..4),
        proptest::collection::vec(any_field(), 0..8),
    )
        .prop_map(|(classes, fields)| Release { classes, fields })
}

const TEST_PURPOSES: [&str; 4] = [
    "investigation",
    "prosecution",
    "victim_identification",
    "statistics",
];

/// Agreements as an adversary would write them: not validated, so that the
/// engine itself is shown to hold the firewall.
fn any_held() -> impl Strategy<Value = Held> {
    (
        proptest::collection::btree_map(
            (0..TEST_PURPOSES.len()).prop_map(|i| TEST_PURPOSES[i].to_owned()),
            (
                proptest::collection::vec(
                    prop_oneof![Just(QueryKind::Identifier), Just(QueryKind::NameDob)],
                    0..3,
                ),
                any_release(),
                proptest::option::of(any_release()),
            )
                .prop_map(|(query_kinds, step1, step2)| PurposeTerms {
                    query_kinds,
                    step1,
                    step2,
                    dual_control: false,
                }),
            0..4,
        ),
        1u32..4,
        0u8..4,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(purposes, version, period, sign_mex, revoked)| {
            let mut a = agreement();
            a.purposes = purposes;
            a.version = version;
            (a.valid_from, a.valid_until) = match period {
                0 => ("2020-01-01".into(), "2024-12-31".into()),
                1 => ("2090-01-01".into(), "2099-12-31".into()),
                _ => ("2025-01-01".into(), "2027-12-31".into()),
            };
            let mut h = held(a);
            if !sign_mex {
                h.signed_by.remove(&id("MEX"));
            }
            if revoked && version == 1 {
                h.revoked = Some(Revocation {
                    at_ms: 0,
                    by: "op".into(),
                    reason: "test".into(),
                });
            }
            h
        })
}

fn any_subject() -> impl Strategy<Value = Option<Subject>> {
    proptest::option::of(
        (
            prop_oneof![Just(Role::Victim), Just(Role::Suspect), Just(Role::Witness)],
            proptest::option::of(any::<bool>()),
        )
            .prop_map(|(role, international_consent)| Subject {
                role,
                international_consent,
            }),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Step 1 never releases a victim identifier, nor anything the governing
    /// agreement does not release, nor anything outside the step-1 catalogue;
    /// and only a signed, unrevoked agreement in force allows.
    #[test]
    fn step1_firewall_holds(
        agreements in proptest::collection::vec(any_held(), 0..4),
        subject in any_subject(),
        purpose in (0..TEST_PURPOSES.len()).prop_map(|i| TEST_PURPOSES[i]),
        kinds in proptest::collection::vec(prop_oneof![Just(QueryKind::Identifier), Just(QueryKind::NameDob)], 0..3),
    ) {
        let c = Ctx::new();
        let ctx = RequestContext { purpose, kinds: &kinds, ..c.get() };
        // The oracle: the highest active version governs, if it permits.
        let governing = agreements.iter().filter(|h| h.active(JAN_2026)).max_by_key(|h| h.terms.version);
        let permits = governing
            .and_then(|g| g.terms.terms(purpose))
            .filter(|t| purpose != "statistics" && kinds.iter().all(|k| t.query_kinds.contains(k)));
        match (decide(&agreements, &ctx, subject), permits) {
            (Ok(d), Some(terms)) => {
                prop_assert_eq!(Some(d.agreement_version), governing.map(|g| g.terms.version));
                for f in &d.released {
                    prop_assert!(STEP1_FIELDS.contains(&f.as_str()));
                    let field = fields::field(f).expect("a model field");
                    for role in [Role::Victim, Role::Witness, Role::Suspect] {
                        prop_assert_ne!(field.class.for_role(Some(role)), Sensitivity::VictimIdentifier);
                    }
                    let class = field.class.for_role(subject.map(|s| s.role));
                    prop_assert!(terms.step1.releases(f, class), "{} released without a rule", f);
                }
                prop_assert_eq!(d.released.len() + d.withheld.len(), STEP1_FIELDS.len());
            }
            (Err(_), None) => {}
            (result, oracle) => prop_assert!(false, "decision {:?}, oracle {:?}", result, oracle),
        }
    }

    /// Step 2 releases a victim identifier only with a rule, consent and
    /// approval; never a field not requested, not approved or not released.
    #[test]
    fn step2_firewall_holds(
        agreements in proptest::collection::vec(any_held(), 1..3),
        subject in any_subject(),
        requested in proptest::collection::vec(prop_oneof![any_field(), any_class().prop_map(|c| c.as_str().to_owned())], 0..6),
        approved in proptest::collection::btree_set(any_field(), 0..8),
    ) {
        let mut c = Ctx::new();
        c.requested = requested;
        c.approved = approved;
        let ctx = RequestContext { step: Step::Two, kinds: &[], ..c.get() };
        if let Ok(d) = decide(&agreements, &ctx, subject) {
            // Between equal versions the last held governs, as in `authorize`.
            let governing = agreements.iter()
                .filter(|h| h.active(JAN_2026))
                .max_by_key(|h| h.terms.version)
                .expect("governed by an active version");
            prop_assert_eq!(governing.terms.version, d.agreement_version);
            let rule = governing.terms.terms("investigation").and_then(|t| t.step2.as_ref()).expect("step 2 permitted");
            for f in &d.released {
                let field = fields::field(f).expect("a model field");
                let class = field.class.for_role(subject.map(|s| s.role));
                prop_assert!(c.approved.contains(f));
                prop_assert!(rule.releases(f, class));
                prop_assert!(c.requested.iter().any(|r| r == f || r == class.as_str()));
                if class == Sensitivity::VictimIdentifier {
                    prop_assert_eq!(subject.and_then(|s| s.international_consent), Some(true));
                }
            }
        }
    }

    /// The agreement parser never panics and never accepts a document that
    /// releases victim identifiers in step 1.
    #[test]
    fn parser_never_accepts_a_firewall_breach(
        classes in proptest::collection::vec(any_class(), 0..3),
        fields in proptest::collection::vec(any_field(), 0..3),
        junk in "\\PC{0,40}",
    ) {
        let mut d = doc();
        d["purposes"]["investigation"]["step1"] = serde_json::json!({"classes": classes, "fields": fields});
        if let Ok(a) = Agreement::parse(&d.to_string()) {
            let r = &a.purposes["investigation"].step1;
            prop_assert!(r.classes.iter().all(|c| *c == Sensitivity::CaseFact));
            for f in &r.fields {
                let field = crate::model::fields::field(f).expect("known");
                prop_assert_ne!(field.class.for_role(None), Sensitivity::VictimIdentifier);
            }
        }
        let _ = Agreement::parse(&junk);
    }
}

/// `interop/vectors/agreement.json`, written by an independent Python
/// implementation: the canonical bytes, both signatures and the envelope.
#[test]
fn agreement_known_answer_vectors() {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("../../../interop/vectors/agreement.json")).unwrap();
    let terms = Agreement::parse(v["written_json"].as_str().unwrap()).unwrap();
    let canonical = v["canonical_payload_text"].as_str().unwrap();
    assert_eq!(
        String::from_utf8(terms.canonical_bytes()).unwrap(),
        canonical
    );
    let signers: Vec<(NodeId, Signer)> = v["parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let seed: [u8; 32] = hex::decode(p["seed_hex"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            let s = Signer::new(SigningKey::from_bytes(&seed));
            assert_eq!(s.key_id(), p["key_id"].as_str().unwrap());
            (id(p["node"].as_str().unwrap()), s)
        })
        .collect();
    let mut env = signers[0]
        .1
        .seal(AGREEMENT_PAYLOAD_TYPE, terms.canonical_bytes());
    signers[1].1.cosign(&mut env);
    let expected = envelope::from_json(&v["envelope_json"].to_string()).unwrap();
    assert_eq!(env, expected, "signatures are deterministic (RFC 8032)");
    let resolve = |k: &str| {
        signers
            .iter()
            .find(|(_, s)| s.key_id() == k)
            .map(|(n, s)| (n.clone(), s.verifying_key()))
    };
    let held = verify_signed(&expected, resolve).unwrap();
    assert!(held.fully_signed());
    assert_eq!(held.terms, terms);
}

#[test]
fn statistics_are_authorized_only_for_the_statistics_purpose() {
    let c = Ctx::new();
    let all = vec![held(agreement())];
    let stats = RequestContext {
        purpose: "statistics",
        ..c.get()
    };
    assert_eq!(authorize_statistics(&all, &stats).unwrap().terms.version, 1);
    // Never through the step-1/2 door, and never for another purpose.
    assert_eq!(authorize(&all, &stats).unwrap_err(), Denial::Purpose);
    assert_eq!(
        authorize_statistics(&all, &c.get()).unwrap_err(),
        Denial::Purpose
    );
    assert_eq!(
        authorize_statistics(
            &all,
            &RequestContext {
                instrument: "x",
                ..stats.clone()
            }
        )
        .unwrap_err(),
        Denial::Instrument
    );
    let mut revoked = held(agreement());
    revoked.revoked = Some(Revocation {
        at_ms: 1,
        by: "op".into(),
        reason: "r".into(),
    });
    assert_eq!(
        authorize_statistics(&[revoked], &stats).unwrap_err(),
        Denial::Revoked
    );
}
