//! Human tables by default, JSON with `--json`.

use enlace_node::config::Initialized;
use enlace_proto::v1::{self as pb, PeerOutcome};
use serde_json::{json, Value};

/// Output settings.
pub(crate) struct Out {
    pub(crate) json: bool,
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Prints rows as an aligned table.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c}{}", " ".repeat(widths[i] - c.chars().count())))
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(headers.iter().map(|h| (*h).to_owned()).collect());
    line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for r in rows {
        line(r.clone());
    }
}

pub(crate) fn init(out: &Out, done: &Initialized) -> anyhow::Result<()> {
    let home = &done.home;
    if out.json {
        return print_json(&json!({
            "home": home.root(),
            "config": home.config(),
            "directory_entry": home.entry(),
            "admin_token_file": home.admin_token(),
        }));
    }
    println!("Node directory created: {}", home.root().display());
    println!("  configuration      {}", home.config().display());
    println!(
        "  directory entry    {}  (give this file to your peers)",
        home.entry().display()
    );
    println!(
        "  admin token        {}  (keep it secret)",
        home.admin_token().display()
    );
    println!(
        "Start the node with: enlace --home {} node",
        home.root().display()
    );
    Ok(())
}

pub(crate) fn status(out: &Out, s: &pb::StatusResponse) -> anyhow::Result<()> {
    let v = json!({
        "node_id": s.node_id, "serving": s.serving, "cases": s.cases, "persons": s.persons,
        "peers": s.peers, "agreements": s.agreements, "audit_records": s.audit_records, "user": s.user,
        "data_key": {"version": s.data_key_version, "rotating": s.data_key_rotating,
                     "resealed": s.data_values_resealed, "source": s.data_key_source},
    });
    if out.json {
        return print_json(&v);
    }
    println!(
        "node {}  {}",
        s.node_id,
        if s.serving {
            "SERVING"
        } else {
            "NOT SERVING (storage failure; restart required)"
        }
    );
    println!(
        "  cases {}  persons {}  peers {}  agreements {}  audit records {}",
        s.cases, s.persons, s.peers, s.agreements, s.audit_records
    );
    println!(
        "  data key version {} ({}){}",
        s.data_key_version,
        if s.data_key_source == "environment" {
            "ENLACE_DATA_KEY"
        } else {
            "keys/data.key"
        },
        if s.data_key_rotating {
            format!(
                ", rotating: {} values re-encrypted so far",
                s.data_values_resealed
            )
        } else {
            String::new()
        }
    );
    println!("  you are {}", s.user);
    Ok(())
}

fn peer_json(p: &pb::PeerSummary) -> Value {
    json!({"node_id": p.node_id, "endpoint": p.endpoint, "tls_pin_sha256": p.tls_pin_hex, "key_ids": p.key_ids, "authority": p.authority})
}

pub(crate) fn peer(out: &Out, p: &pb::PeerSummary) -> anyhow::Result<()> {
    if out.json {
        return print_json(&peer_json(p));
    }
    println!(
        "pinned {} at {} (TLS pin {}…, key {})",
        p.node_id,
        p.endpoint,
        &p.tls_pin_hex[..16.min(p.tls_pin_hex.len())],
        p.key_ids.join(", ")
    );
    Ok(())
}

pub(crate) fn peers(out: &Out, ps: &[pb::PeerSummary]) -> anyhow::Result<()> {
    if out.json {
        return print_json(&Value::Array(ps.iter().map(peer_json).collect()));
    }
    let rows: Vec<Vec<String>> = ps
        .iter()
        .map(|p| {
            vec![
                p.node_id.clone(),
                p.endpoint.clone(),
                format!("{}…", &p.tls_pin_hex[..16.min(p.tls_pin_hex.len())]),
                p.authority.clone(),
            ]
        })
        .collect();
    table(&["PEER", "ENDPOINT", "TLS PIN", "AUTHORITY"], &rows);
    Ok(())
}

fn agreement_json(a: &pb::AgreementSummary) -> Value {
    json!({"id": a.id, "version": a.version, "peer": a.peer, "purposes": a.purposes, "query_kinds": a.query_kinds,
           "valid_from": a.valid_from, "valid_until": a.valid_until, "active": a.active, "instruments": a.instrument,
           "status": a.status, "signed_by": a.signed_by, "handling": a.handling, "retention_days": a.retention_days})
}

pub(crate) fn agreement(out: &Out, a: &pb::AgreementSummary) -> anyhow::Result<()> {
    if out.json {
        return print_json(&agreement_json(a));
    }
    println!(
        "agreement {} v{} with {}: {} (signed by {})",
        a.id,
        a.version,
        a.peer,
        a.status,
        a.signed_by.join(", ")
    );
    Ok(())
}

/// Writes a signed agreement (DSSE JSON) to `to`, or prints it.
pub(crate) fn signed_agreement(
    to: Option<&std::path::Path>,
    envelope_json: &str,
    what: &str,
) -> anyhow::Result<()> {
    match to {
        Some(path) => {
            std::fs::write(path, format!("{envelope_json}\n"))
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
            eprintln!("agreement {what}: wrote {}", path.display());
        }
        None => println!("{envelope_json}"),
    }
    Ok(())
}

pub(crate) fn agreement_detail(out: &Out, r: &pb::ShowAgreementResponse) -> anyhow::Result<()> {
    let summary = r.summary.clone().unwrap_or_default();
    let terms: Value = serde_json::from_str(&r.agreement_json).unwrap_or(Value::Null);
    if out.json {
        return print_json(&json!({
            "summary": agreement_json(&summary),
            "terms": terms,
            "envelope": serde_json::from_str::<Value>(&r.envelope_json).unwrap_or(Value::Null),
            "revoked": (r.revoked_at_ms != 0).then(|| json!({
                "at_ms": r.revoked_at_ms, "by": r.revoked_by, "reason": r.revoked_reason,
            })),
        }));
    }
    agreement(out, &summary)?;
    if r.revoked_at_ms != 0 {
        println!(
            "revoked by {} at {} ms: {}",
            r.revoked_by, r.revoked_at_ms, r.revoked_reason
        );
    }
    println!("{}", r.agreement_json);
    Ok(())
}

fn withheld_json(d: &pb::DecisionSummary) -> Value {
    json!({
        "agreement": d.agreement_id, "version": d.agreement_version,
        "fields_released": d.fields_released,
        "fields_withheld": d.fields_withheld.iter().map(|w| json!({"field": w.field, "reason": w.reason})).collect::<Vec<_>>(),
    })
}

pub(crate) fn explanation(out: &Out, r: &pb::AdminExplainResponse) -> anyhow::Result<()> {
    let e = r.explanation.clone().unwrap_or_default();
    let header = e.header.clone().unwrap_or_default();
    let step2 = e.step2.clone().unwrap_or_default();
    if out.json {
        return print_json(&json!({
            "responder": header.responder,
            "allowed": e.allowed,
            "denial": e.denial,
            "decision": header.decision.as_ref().map(withheld_json),
            "query_kinds": e.query_kinds,
            "step2": {"permitted": step2.permitted, "denial": step2.denial, "classes": step2.classes, "fields": step2.fields},
            "rate_limits": {"per_minute": e.per_minute, "per_day": e.per_day},
            "handling": e.handling,
            "retention_days": e.retention_days,
            "statistics_threshold": e.statistics_threshold,
            "audit_index": header.receipt.as_ref().map(|x| x.index),
        }));
    }
    println!(
        "explained by {} (signed, audit leaf {})",
        header.responder,
        header
            .receipt
            .as_ref()
            .map_or(String::from("?"), |x| x.index.to_string())
    );
    if !e.allowed {
        println!("step 1: DENIED ({})", e.denial);
        return Ok(());
    }
    if let Some(d) = &header.decision {
        println!(
            "step 1: allowed under {} v{}",
            d.agreement_id, d.agreement_version
        );
        println!("  released: {}", d.fields_released.join(", "));
        for w in &d.fields_withheld {
            println!("  withheld: {} ({})", w.field, w.reason);
        }
    }
    println!("  query kinds: {}", e.query_kinds.join(", "));
    if step2.permitted {
        println!(
            "step 2: an approver may release classes [{}] and fields [{}]; victim identifiers also need the record's consent and approval each time",
            step2.classes.join(", "),
            step2.fields.join(", ")
        );
    } else {
        println!("step 2: not permitted ({})", step2.denial);
    }
    println!(
        "limits: {} per minute, {} per day; handling {}; retention {} days; statistics threshold {}",
        e.per_minute, e.per_day, e.handling, e.retention_days, e.statistics_threshold
    );
    Ok(())
}

pub(crate) fn agreements(out: &Out, list: &[pb::AgreementSummary]) -> anyhow::Result<()> {
    if out.json {
        return print_json(&Value::Array(list.iter().map(agreement_json).collect()));
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            vec![
                a.id.clone(),
                a.version.to_string(),
                a.peer.clone(),
                a.purposes.join(","),
                format!("{}..{}", a.valid_from, a.valid_until),
                if a.active { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    table(
        &["AGREEMENT", "V", "PEER", "PURPOSES", "VALIDITY", "IN FORCE"],
        &rows,
    );
    Ok(())
}

pub(crate) fn imported(out: &Out, cases: u64, persons: u64, skipped: u64) -> anyhow::Result<()> {
    if out.json {
        return print_json(
            &json!({"cases": cases, "persons": persons, "skipped_invalid": skipped}),
        );
    }
    println!(
        "imported {cases} cases ({persons} persons){}",
        if skipped > 0 {
            format!(", skipped {skipped} invalid")
        } else {
            String::new()
        }
    );
    Ok(())
}

/// A short name for an outcome.
pub(crate) fn outcome_name(o: PeerOutcome) -> &'static str {
    match o {
        PeerOutcome::Answered => "answered",
        PeerOutcome::Refused => "refused",
        PeerOutcome::Unreachable => "unreachable",
        PeerOutcome::TimedOut => "timed out",
        PeerOutcome::InvalidResponse => "invalid response",
        PeerOutcome::NoAgreement => "no agreement (not asked)",
        PeerOutcome::Unspecified => "?",
    }
}

fn describe(item: &pb::QueryItem) -> String {
    use pb::query_item::Kind;
    match &item.kind {
        Some(Kind::Identifier(i)) => match pb::IdentifierKind::try_from(i.kind) {
            Ok(pb::IdentifierKind::Document) => {
                format!("document {}:{}", i.issuing_country, i.value)
            }
            Ok(pb::IdentifierKind::Phone) => format!("phone {}", i.value),
            Ok(pb::IdentifierKind::Email) => format!("email {}", i.value),
            _ => "identifier".into(),
        },
        Some(Kind::Name(n)) => format!(
            "name {} / {} / {}",
            n.given_names.join(" "),
            n.surnames.join(" "),
            n.date_of_birth
        ),
        None => String::new(),
    }
}

pub(crate) fn search_json(r: &pb::OutboundSearchResponse) -> Value {
    Value::Array(
        r.peers
            .iter()
            .map(|p| {
                json!({
                    "peer": p.peer,
                    "outcome": outcome_name(p.outcome()),
                    "status": p.status_code,
                    "message": p.message,
                    "elapsed_ms": p.elapsed_ms,
                    "request_id": p.request_id,
                    "receipt_id": p.receipt_id,
                    "peer_audit_index": p.peer_audit_index,
                    "decision": p.decision.as_ref().map(withheld_json),
                    "results": p.results.iter().map(|i| json!({
                        "item": i.item_id,
                        "hit": i.hit,
                        "hits": i.hits.iter().map(|h| json!({
                            "hit_reference": h.hit_reference, "iccs_code": h.iccs_code,
                            "case_year": h.case_year, "match_band": h.match_band,
                            "procedural_status": h.procedural_status, "jurisdiction": h.jurisdiction,
                            "role": h.role, "subject_token": h.subject_token,
                        })).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

pub(crate) fn search(
    out: &Out,
    items: &[pb::QueryItem],
    r: &pb::OutboundSearchResponse,
) -> anyhow::Result<()> {
    if out.json {
        return print_json(&json!({"peers": search_json(r)}));
    }
    search_table(items, r);
    Ok(())
}

/// One hit as the search table shows it: only what the peer released.
fn hit_text(h: &pb::Hit) -> String {
    let mut parts = vec![format!("HIT {}", h.match_band)];
    if !h.iccs_code.is_empty() {
        parts.push(format!("ICCS {}", h.iccs_code));
    }
    if h.case_year != 0 {
        parts.push(format!("({})", h.case_year));
    }
    for v in [&h.procedural_status, &h.jurisdiction, &h.role] {
        if !v.is_empty() {
            parts.push(v.clone());
        }
    }
    parts.push(format!("ref {}", h.hit_reference));
    parts.join(" ")
}

/// The per-peer, per-item table of a search.
pub(crate) fn search_table(items: &[pb::QueryItem], r: &pb::OutboundSearchResponse) {
    let mut rows = Vec::new();
    for p in &r.peers {
        if p.outcome() != PeerOutcome::Answered {
            let why = if p.status_code.is_empty() {
                p.message.clone()
            } else {
                format!("{} {}", p.status_code, p.message)
            };
            rows.push(vec![
                p.peer.clone(),
                outcome_name(p.outcome()).into(),
                String::new(),
                why.trim().to_owned(),
            ]);
            continue;
        }
        for res in &p.results {
            let item = items
                .iter()
                .find(|i| i.item_id == res.item_id)
                .map(describe)
                .unwrap_or_default();
            let detail = if res.hit {
                res.hits.iter().map(hit_text).collect::<Vec<_>>().join("; ")
            } else {
                "no hit".into()
            };
            rows.push(vec![
                p.peer.clone(),
                format!("answered in {} ms", p.elapsed_ms),
                item,
                detail,
            ]);
        }
    }
    table(&["PEER", "OUTCOME", "QUERY", "RESULT"], &rows);
    for p in &r.peers {
        let Some(d) = &p.decision else { continue };
        if d.fields_withheld.is_empty() {
            continue;
        }
        println!(
            "  {} decided under {} v{}: withheld {}",
            p.peer,
            d.agreement_id,
            d.agreement_version,
            d.fields_withheld
                .iter()
                .map(|w| format!("{} ({})", w.field, w.reason))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

pub(crate) fn audit(out: &Out, records: &[Value]) -> anyhow::Result<()> {
    if out.json {
        return print_json(&Value::Array(records.to_vec()));
    }
    audit_table(records);
    Ok(())
}

/// The audit records as a table (oldest first).
pub(crate) fn audit_table(records: &[Value]) {
    let s = |r: &Value, k: &str| {
        r.get(k)
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            })
            .unwrap_or_default()
    };
    let rows: Vec<Vec<String>> = records
        .iter()
        .rev()
        .map(|r| {
            let when = r
                .get("time_ms")
                .and_then(Value::as_i64)
                .and_then(|ms| time::OffsetDateTime::from_unix_timestamp(ms / 1000).ok())
                .map(|t| format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second()))
                .unwrap_or_default();
            vec![
                s(r, "index"),
                when,
                s(r, "direction"),
                s(r, "action"),
                s(r, "peer"),
                s(r, "user"),
                s(r, "decision"),
                s(r, "reason"),
                s(r, "agreement"),
            ]
        })
        .collect();
    table(
        &[
            "#",
            "TIME",
            "DIR",
            "ACTION",
            "PEER",
            "USER",
            "DECISION",
            "REASON",
            "AGREEMENT",
        ],
        &rows,
    );
}
