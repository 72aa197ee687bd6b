//! `enlace cooperation …`: step-2 requests (docs/cooperation.md). Investigators
//! file, fetch and withdraw; approvers list the inbox, review and decide.

use clap::Subcommand;
use enlace_proto::v1 as pb;
use serde_json::{json, Value};

use crate::{
    client::{refused, Admin},
    output::{table, Out},
};

#[derive(Subcommand)]
pub(crate) enum CooperationCmd {
    /// File a cooperation request with a peer, citing hit references it gave you.
    Request {
        /// The peer that gave the hits.
        #[arg(long)]
        peer: String,
        /// Hit reference (h1_…); repeatable.
        #[arg(long = "hit", required = true)]
        hits: Vec<String>,
        /// Field path or class wanted (e.g. persons[].surnames, case_fact); repeatable.
        #[arg(long = "field", required = true)]
        fields: Vec<String>,
        /// Why the information is needed (kept in the peer's inbox, never in an audit log).
        #[arg(long)]
        justification: String,
        /// life_at_risk, urgent or routine.
        #[arg(long, default_value = "routine")]
        urgency: String,
        /// Purpose code.
        #[arg(long, default_value = "investigation")]
        purpose: String,
        /// Your case reference.
        #[arg(long, default_value = "")]
        case_ref: String,
        /// Your pseudonymous official reference.
        #[arg(long, default_value = "")]
        official: String,
        /// When the information stops being useful, in hours from now (0: never).
        #[arg(long, default_value_t = 0)]
        deadline_hours: u32,
    },
    /// List the inbox (requests from peers) and the outbox (requests you filed).
    List {
        /// inbox or outbox (default: both).
        #[arg(long = "box", default_value = "")]
        which: String,
    },
    /// Show one request; an approver opening an inbox request puts it in review
    /// and sees what the policy engine would release and why it withholds the rest.
    Show {
        /// Tracking id.
        id: String,
        /// in (inbox) or out (outbox); default: whichever holds it.
        #[arg(long, default_value = "")]
        direction: String,
    },
    /// Approve fields of an inbox request (approver).
    Approve {
        /// Tracking id.
        id: String,
        /// Field path or class approved; repeatable.
        #[arg(long = "field", required = true)]
        fields: Vec<String>,
        /// Reliability of the source: A, B, C, D or X.
        #[arg(long)]
        source: String,
        /// Credibility of the information: 1 to 4.
        #[arg(long)]
        information: String,
    },
    /// Deny an inbox request with a reason (approver).
    Deny {
        /// Tracking id.
        id: String,
        /// Why (sent to the requester).
        #[arg(long)]
        reason: String,
    },
    /// Withdraw an outbox request before a decision, or close it after delivery.
    Withdraw {
        /// Tracking id.
        id: String,
    },
    /// Ask the peer for the status of an outbox request and collect the signed disclosure.
    Fetch {
        /// Tracking id.
        id: String,
    },
}

pub(crate) async fn run(admin: &mut Admin, out: &Out, cmd: &CooperationCmd) -> anyhow::Result<()> {
    let view = match cmd {
        CooperationCmd::Request {
            peer,
            hits,
            fields,
            justification,
            urgency,
            purpose,
            case_ref,
            official,
            deadline_hours,
        } => admin
            .file_cooperation(pb::FileCooperationRequest {
                peer: peer.clone(),
                purpose: purpose.clone(),
                case_reference: case_ref.clone(),
                official_reference: official.clone(),
                hit_references: hits.clone(),
                requested: fields.clone(),
                justification: justification.clone(),
                urgency: urgency.clone(),
                requested_deadline_ms: if *deadline_hours == 0 {
                    0
                } else {
                    enlace_node::node::now_ms() + i64::from(*deadline_hours) * 3_600_000
                },
            })
            .await
            .map_err(refused)?
            .into_inner(),
        CooperationCmd::List { which } => {
            let list = admin
                .list_cooperation(pb::ListCooperationRequest {
                    r#box: which.clone(),
                })
                .await
                .map_err(refused)?
                .into_inner()
                .items;
            return list_out(out, &list);
        }
        CooperationCmd::Show { id, direction } => {
            let show = |direction: &str| pb::CooperationRef {
                direction: direction.to_owned(),
                tracking_id: id.clone(),
            };
            if direction.is_empty() {
                // The inbox first; a request this node filed is in the outbox.
                match admin.show_cooperation(show("in")).await {
                    Ok(v) => v.into_inner(),
                    Err(s)
                        if s.code() == tonic::Code::InvalidArgument
                            || s.code() == tonic::Code::PermissionDenied =>
                    {
                        admin
                            .show_cooperation(show("out"))
                            .await
                            .map_err(refused)?
                            .into_inner()
                    }
                    Err(s) => return Err(refused(s)),
                }
            } else {
                admin
                    .show_cooperation(show(direction))
                    .await
                    .map_err(refused)?
                    .into_inner()
            }
        }
        CooperationCmd::Approve {
            id,
            fields,
            source,
            information,
        } => admin
            .decide_cooperation(pb::DecideCooperationRequest {
                tracking_id: id.clone(),
                approve: fields.clone(),
                deny_reason: String::new(),
                source_reliability: source.clone(),
                information_credibility: information.clone(),
            })
            .await
            .map_err(refused)?
            .into_inner(),
        CooperationCmd::Deny { id, reason } => admin
            .decide_cooperation(pb::DecideCooperationRequest {
                tracking_id: id.clone(),
                deny_reason: reason.clone(),
                ..Default::default()
            })
            .await
            .map_err(refused)?
            .into_inner(),
        CooperationCmd::Withdraw { id } => admin
            .withdraw_cooperation(pb::CooperationRef {
                direction: "out".into(),
                tracking_id: id.clone(),
            })
            .await
            .map_err(refused)?
            .into_inner(),
        CooperationCmd::Fetch { id } => admin
            .fetch_cooperation(pb::CooperationRef {
                direction: "out".into(),
                tracking_id: id.clone(),
            })
            .await
            .map_err(refused)?
            .into_inner(),
    };
    view_out(out, &view)
}

fn records_json(records: &[pb::DisclosedRecord]) -> Value {
    Value::Array(
        records
            .iter()
            .map(|r| {
                json!({
                    "hit_reference": r.hit_reference,
                    "source_reliability": r.source_reliability,
                    "information_credibility": r.information_credibility,
                    "fields": r.fields.iter().map(|f| json!({
                        "field": f.field,
                        "value": serde_json::from_str::<Value>(&f.value_json).unwrap_or(Value::Null),
                    })).collect::<Vec<_>>(),
                    "withheld": r.withheld.iter().map(|w| json!({"field": w.field, "reason": w.reason})).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

pub(crate) fn view_json(v: &pb::CooperationView) -> Value {
    json!({
        "direction": v.direction,
        "tracking_id": v.tracking_id,
        "peer": v.peer,
        "purpose": v.purpose,
        "agreement": v.agreement,
        "state": v.state,
        "urgency": v.urgency,
        "created_ms": v.created_ms,
        "deadline_ms": v.deadline_ms,
        "overdue": v.overdue,
        "case_reference": v.case_reference,
        "hit_references": v.hit_references,
        "requested": v.requested,
        "justification": v.justification,
        "approved_by": v.approved_by,
        "approvals_needed": v.approvals_needed,
        "denial_reason": v.denial_reason,
        "pending": v.pending,
        "history": v.history.iter().map(|t| json!({
            "state": t.state, "at_ms": t.at_ms, "by": t.by, "audit_index": t.audit_index,
        })).collect::<Vec<_>>(),
        "preview": records_json(&v.preview),
        "disclosure": v.disclosure.as_ref().map(|d| json!({
            "handling": d.handling,
            "approvals": d.approvals,
            "decided_at_ms": d.decided_at_ms,
            "records": records_json(&d.records),
        })),
    })
}

fn print_records(title: &str, records: &[pb::DisclosedRecord], values: bool) {
    for r in records {
        if values {
            println!(
                "  {title} for {} (source {}, information {}):",
                r.hit_reference, r.source_reliability, r.information_credibility
            );
        } else {
            println!("  {title} for {}:", r.hit_reference);
        }
        for f in &r.fields {
            if values {
                println!("    released  {} = {}", f.field, f.value_json);
            } else {
                println!("    would release  {}", f.field);
            }
        }
        for w in &r.withheld {
            println!("    withheld  {} ({})", w.field, w.reason);
        }
    }
}

pub(crate) fn view_out(out: &Out, v: &pb::CooperationView) -> anyhow::Result<()> {
    if out.json {
        println!("{}", serde_json::to_string_pretty(&view_json(v))?);
        return Ok(());
    }
    println!(
        "cooperation {} ({}box, peer {}): {}{}",
        v.tracking_id,
        v.direction,
        v.peer,
        v.state,
        if v.overdue { " — OVERDUE" } else { "" }
    );
    println!(
        "  purpose {} under {}; urgency {}; requested {}",
        v.purpose,
        v.agreement,
        v.urgency,
        v.requested.join(", ")
    );
    println!(
        "  hits {}; requester's case {}; deadline {}",
        v.hit_references.join(", "),
        if v.case_reference.is_empty() {
            "-"
        } else {
            &v.case_reference
        },
        time::OffsetDateTime::from_unix_timestamp(v.deadline_ms / 1000)
            .map(|t| t.date().to_string())
            .unwrap_or_default()
    );
    if !v.justification.is_empty() {
        println!("  justification: {}", v.justification);
    }
    if !v.denial_reason.is_empty() {
        println!("  denied: {}", v.denial_reason);
    }
    if !v.pending.is_empty() {
        println!(
            "  {} queued: the peer is unreachable; resent automatically",
            v.pending
        );
    }
    if v.approvals_needed > 1 {
        println!(
            "  approvals: {} of {} ({})",
            v.approved_by.len(),
            v.approvals_needed,
            v.approved_by.join(", ")
        );
    }
    print_records("an approval of everything requested", &v.preview, false);
    if let Some(d) = &v.disclosure {
        println!(
            "  disclosure (handling {}, {} approval(s)):",
            d.handling, d.approvals
        );
        print_records("record", &d.records, true);
    }
    for t in &v.history {
        println!(
            "  {:<20} by {:<12} audit leaf {}",
            t.state, t.by, t.audit_index
        );
    }
    Ok(())
}

fn list_out(out: &Out, list: &[pb::CooperationView]) -> anyhow::Result<()> {
    if out.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&Value::Array(list.iter().map(view_json).collect()))?
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|v| {
            vec![
                v.tracking_id.clone(),
                v.direction.clone(),
                v.peer.clone(),
                v.state.clone(),
                v.urgency.clone(),
                if v.overdue { "OVERDUE" } else { "" }.into(),
            ]
        })
        .collect();
    table(
        &["TRACKING ID", "BOX", "PEER", "STATE", "URGENCY", ""],
        &rows,
    );
    Ok(())
}
