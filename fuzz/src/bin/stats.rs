//! Statistics tables: specifications (`TableSpec::parse`, what a peer sends
//! in `StatisticsRequest.spec_json`) and protected tables (what a peer
//! answers in `StatisticsResponse.table_json`, parsed by the requester before
//! it combines them). A specification that parses is counted over two fixed
//! cases, protected, serialized, parsed back and combined; a table that
//! parses is combined with itself and re-serialized.

use enlace_node::{
    identity::NodeId,
    model::Case,
    statistics::released_about,
    stats::{self, ProtectedTable, Protection, TableSpec},
};

fn regional(table: &ProtectedTable) {
    let nodes = ["MEX", "GTM"].map(|n| NodeId::parse(n).expect("a valid node id"));
    let tables = nodes.iter().map(|n| (n.clone(), table.clone())).collect();
    if let Ok(r) = stats::combine(tables) {
        let header = r.header();
        assert!(!header.is_empty());
        for row in r.rows() {
            let _ = row;
        }
        let _ = stats::conviction_shares(&r);
    }
}

fn main() {
    let cases: Vec<Case> = [
        include_str!("../cases/full.json"),
        include_str!("../cases/small.json"),
    ]
    .iter()
    .map(|j| Case::parse(j).expect("the fixed cases parse"))
    .collect();
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(spec) = TableSpec::parse(text) {
            let json = serde_json::to_string(&spec).expect("a spec serializes");
            assert_eq!(TableSpec::parse(&json).as_ref(), Ok(&spec));
            assert!(released_about(&spec).len() >= 2);
            if let Ok(raw) = stats::count(&spec, &cases) {
                for threshold in [1, 5] {
                    let protection = Protection::new(threshold, 5).expect("valid protection");
                    let table = stats::protect(&raw, &protection);
                    assert_eq!(table.spec(), &spec);
                    let json = serde_json::to_string(&table).expect("a table serializes");
                    let back: ProtectedTable =
                        serde_json::from_str(&json).expect("own table JSON parses");
                    assert_eq!(back, table);
                    regional(&table);
                }
            }
        }
        if let Ok(table) = serde_json::from_str::<ProtectedTable>(text) {
            let json = serde_json::to_string(&table).expect("a table serializes");
            let back: ProtectedTable = serde_json::from_str(&json).expect("own table JSON parses");
            assert_eq!(back, table);
            for (key, cell) in table.entries() {
                assert_eq!(table.get(&key), Some(cell));
            }
            regional(&table);
        }
    });
}
