//! Statistics across real nodes: protected tables, the agreement's purpose,
//! the privacy budget, and a regional combination that keeps every marker.

use enlace_node::stats::{self, ProtectedTable, Regional};
use enlace_proto::v1 as pb;
use enlace_tests::*;
use tonic::Code;

/// `n` cases, each with one victim: sex alternates female/male with every
/// third male replaced by "unknown", year 2024 or 2025.
fn cases(country: &str, n: usize, males: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            let sex = if i < males { "male" } else { "female" };
            serde_json::json!({
                "id": format!("{country}-S-{i}"),
                "iccs_code": "02041",
                "year": 2024 + (i % 2),
                "persons": [{"role": "victim", "sex_gender": sex, "age_at_trafficking": 17 + (i % 20),
                             "given_names": ["Ana"], "surnames": [format!("Test{i}")]}],
            })
        })
        .collect()
}

fn spec() -> String {
    serde_json::json!({
        "unit": "victims",
        "period": {"from": "2024", "to": "2025"},
        "dimensions": ["sex", "year"],
    })
    .to_string()
}

async fn federation() -> Running {
    let fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .node("COL")
        .agreement("MEX", "GTM", &["statistics"])
        .agreement("MEX", "COL", &["statistics"])
        .agreement("GTM", "COL", &["investigation"])
        .start()
        .await
        .unwrap();
    fed.import("MEX", &cases("MEX", 80, 30)).await.unwrap();
    fed.import("GTM", &cases("GTM", 60, 3)).await.unwrap();
    fed.import("COL", &cases("COL", 40, 15)).await.unwrap();
    fed
}

fn request(mode: &str, epsilon: f64) -> pb::AdminStatisticsRequest {
    pb::AdminStatisticsRequest {
        spec_json: spec(),
        peers: vec![],
        include_self: true,
        mode: mode.into(),
        epsilon,
        delta: 0.0,
        budget_period: String::new(),
        deadline_ms: 10_000,
    }
}

#[tokio::test]
async fn a_regional_table_of_protected_tables_keeps_every_suppression_marker() {
    let fed = federation().await;
    let mut admin = fed.admin("MEX").await.unwrap();
    let parts = admin
        .statistics(request("", 0.0))
        .await
        .unwrap()
        .into_inner()
        .parts;
    let outcomes: Vec<(&str, &str)> = parts
        .iter()
        .map(|p| (p.node.as_str(), p.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("COL", "answered"),
            ("GTM", "answered"),
            ("MEX", "answered")
        ]
    );
    let tables: Vec<(enlace_node::identity::NodeId, ProtectedTable)> = parts
        .iter()
        .map(|p| {
            (
                enlace_node::identity::NodeId::parse(&p.node).unwrap(),
                serde_json::from_str(&p.table_json).unwrap(),
            )
        })
        .collect();
    // GTM's 3 male victims (2 in one year, 1 in the other) are under the threshold: suppressed.
    let gtm = &tables.iter().find(|(n, _)| n.as_str() == "GTM").unwrap().1;
    assert_eq!(
        gtm.get(&[Some("male"), Some("2024")]),
        Some(stats::Cell::Suppressed)
    );
    // No released count, cell or total, lies under the threshold.
    for (node, t) in &tables {
        for (key, cell) in t.entries() {
            if let stats::Cell::Count(n) = cell {
                assert!(n == 0 || n >= 11, "{node} released {n} at {key:?}");
            }
        }
    }
    let regional = stats::combine(tables).unwrap();
    let male_2024 = regional.get(&[Some("male"), Some("2024")]).unwrap();
    assert!(
        matches!(male_2024.region, Regional::AtLeast(_)),
        "a suppressed part is never counted as zero: {:?}",
        male_2024.region
    );
    // The responder recorded the release: the specification and rules, no counts.
    let rec = fed.get("GTM").node.audit().tail(1).unwrap().remove(0);
    assert_eq!(
        (rec.action.as_str(), rec.decision.as_str()),
        ("statistics", "allow")
    );
    assert!(
        rec.reason
            .starts_with("protected: counts of 1 to 10 suppressed"),
        "{}",
        rec.reason
    );
    assert_eq!(
        rec.fields_released,
        vec![
            "unit:victims",
            "period:2024..2025",
            "dimension:sex",
            "dimension:year"
        ]
    );
    fed.stop().await;
}

#[tokio::test]
async fn statistics_need_a_statistics_agreement() {
    let fed = federation().await;
    // GTM and COL agreed on investigations only.
    let mut admin = fed.admin("GTM").await.unwrap();
    let parts = admin
        .statistics(pb::AdminStatisticsRequest {
            peers: vec!["COL".into()],
            include_self: false,
            ..request("", 0.0)
        })
        .await
        .unwrap()
        .into_inner()
        .parts;
    assert_eq!(
        (parts[0].node.as_str(), parts[0].outcome.as_str()),
        ("COL", "no_agreement")
    );
    // Sent anyway, under the investigation agreement: refused with the purpose code.
    let header = fed
        .search_request("GTM", "COL", vec![])
        .header
        .map(|mut h| {
            h.purpose = "statistics".into();
            h
        });
    let env = fed.get("GTM").node.signer().seal_message(
        enlace_node::envelope::STATISTICS_REQUEST,
        &pb::StatisticsRequest {
            header,
            spec_json: spec(),
            ..Default::default()
        },
    );
    let s = fed
        .exchange("GTM", "COL")
        .unwrap()
        .statistics(env)
        .await
        .unwrap_err();
    assert_eq!(
        (s.code(), s.message()),
        (Code::PermissionDenied, "purpose_not_permitted")
    );
    // A malformed specification is refused before any counting.
    let header = fed
        .search_request("MEX", "GTM", vec![])
        .header
        .map(|mut h| {
            h.purpose = "statistics".into();
            h
        });
    let env = fed.get("MEX").node.signer().seal_message(
        enlace_node::envelope::STATISTICS_REQUEST,
        &pb::StatisticsRequest {
            header,
            spec_json: r#"{"unit":"victims","period":{"from":"2024","to":"2025"},"dimensions":["sex","sex"]}"#.into(),
            ..Default::default()
        },
    );
    let s = fed
        .exchange("MEX", "GTM")
        .unwrap()
        .statistics(env)
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().starts_with("spec: "), "{}", s.message());
    fed.stop().await;
}

/// MEX asks GTM for the table with Laplace noise at ε = 0.8.
async fn ask_private(fed: &Running) -> pb::StatisticsPart {
    fed.admin("MEX")
        .await
        .unwrap()
        .statistics(pb::AdminStatisticsRequest {
            peers: vec!["GTM".into()],
            include_self: false,
            ..request("laplace", 0.8)
        })
        .await
        .unwrap()
        .into_inner()
        .parts
        .remove(0)
}

#[tokio::test]
async fn the_privacy_budget_is_enforced_and_survives_a_restart() {
    let mut fed = federation().await;
    // A budget of 2.0 per peer and period: two releases at 0.8, not a third.
    assert_eq!(ask_private(&fed).await.outcome, "answered");
    assert_eq!(ask_private(&fed).await.outcome, "answered");
    fed.restart("GTM", |_| {}).await.unwrap();
    let third = ask_private(&fed).await;
    assert_eq!(third.outcome, "refused");
    assert_eq!(
        third.message,
        "RESOURCE_EXHAUSTED: privacy budget of this period exhausted"
    );
    fed.stop().await;
}
