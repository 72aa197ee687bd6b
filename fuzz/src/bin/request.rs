//! Peer request payloads, as `Node::admit` decodes them after the signature
//! verified: prost decoding of every signed request type (a selector byte
//! picks the type), the re-encoding round trip, and the node's pure content
//! checks that run before the store is touched: `parse_items` and the name
//! matcher it feeds (search), query kinds (explain), field paths, classes and
//! urgency (cooperation), the table specification and privacy parameters
//! (statistics).
//!
//! Not reachable from here: the header checks and the private
//! `check_request`/`parse_kinds`/`statistics::check` wrappers inside
//! `Node::admit`, which need a running node; their pieces are called below.

use enlace_fuzz::selector;
use enlace_node::{
    cooperation::{Urgency, MAX_HIT_REFERENCES},
    matching::{self, Candidate, Thresholds},
    model::{fields, Sensitivity},
    node::parse_items,
    policy::QueryKind,
    statistics::{released_about, RESOLUTION},
    stats::{Privacy, TableSpec},
};
use enlace_proto::v1 as pb;
use prost::Message;

/// Decodes `data` as `M`; a message that decodes re-encodes to bytes that
/// decode and re-encode to the same bytes (compared as bytes: a NaN
/// `epsilon` is not equal to itself).
fn decode<M: Message + Default>(data: &[u8]) -> Option<M> {
    let m = M::decode(data).ok()?;
    let wire = m.encode_to_vec();
    let again = M::decode(wire.as_slice()).expect("own encoding decodes");
    assert_eq!(again.encode_to_vec(), wire);
    Some(m)
}

fn search(r: &pb::SearchRequest) {
    // The node's default limit and a permissive one.
    for max in [16, 64] {
        let Ok(queries) = parse_items(&r.items, max) else {
            continue;
        };
        assert!(!queries.is_empty() && queries.len() <= max);
        for q in &queries {
            assert!(!q.item_id.is_empty() && q.item_id.len() <= 64);
            if let Some(name) = &q.name {
                // What lookup_name does with a peer's name before and after the index.
                let probes = matching::probes(name);
                let _ = probes.len();
                let candidate = Candidate {
                    given_names: vec!["María José".into()],
                    surnames: vec!["Núñez".into(), "de la Cruz".into()],
                    dob: matching::Dob::parse("1990-05-17"),
                    sex: None,
                    nationalities: vec!["GTM".into()],
                };
                let m = matching::score(name, &candidate, &Thresholds::default());
                assert!((0.0..=1.0).contains(&m.score), "score {}", m.score);
                let self_match = matching::score(name, name, &Thresholds::default());
                assert!((0.0..=1.0).contains(&self_match.score));
                let _ = matching::blocking_keys(name);
            }
        }
    }
}

fn explain(r: &pb::ExplainRequest) {
    for k in &r.query_kinds {
        if let Some(kind) = QueryKind::parse(k) {
            assert_eq!(kind.as_str(), k);
        }
    }
}

fn cooperation(r: &pb::CooperationRequest) {
    if r.hit_references.len() > MAX_HIT_REFERENCES {
        return;
    }
    for f in r.requested.iter().take(64) {
        if let Some(field) = fields::field(f) {
            let _ = field;
        } else if let Some(class) = Sensitivity::parse(f) {
            assert_eq!(class.as_str(), f);
        }
    }
    if let Some(u) = Urgency::parse(&r.urgency) {
        assert_eq!(u.as_str(), r.urgency);
    }
}

fn statistics(r: &pb::StatisticsRequest) {
    let Ok(spec) = TableSpec::parse(&r.spec_json) else {
        return;
    };
    let about = released_about(&spec);
    assert!(about.len() >= 2);
    let privacy = match r.mode.as_str() {
        "laplace" => Some(Privacy::laplace(r.epsilon, RESOLUTION)),
        "gaussian" => Some(Privacy::gaussian(r.epsilon, r.delta, RESOLUTION)),
        _ => None,
    };
    if let Some(Ok(p)) = privacy {
        assert!(p.epsilon().is_finite() && p.epsilon() > 0.0);
        let _ = p.check(&spec);
    }
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((which, payload)) = selector(data) else {
            return;
        };
        match which % 6 {
            0 => {
                if let Some(r) = decode::<pb::SearchRequest>(payload) {
                    search(&r);
                }
            }
            1 => {
                if let Some(r) = decode::<pb::ExplainRequest>(payload) {
                    explain(&r);
                }
            }
            2 => {
                if let Some(r) = decode::<pb::CooperationRequest>(payload) {
                    cooperation(&r);
                }
            }
            3 => {
                if let Some(r) = decode::<pb::StatisticsRequest>(payload) {
                    statistics(&r);
                }
            }
            4 => {
                let _ = decode::<pb::GetCooperationRequest>(payload);
            }
            _ => {
                let _ = decode::<pb::UpdateCooperationRequest>(payload);
            }
        }
    });
}
