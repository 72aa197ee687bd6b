//! `enlace.v1.Admin`, the local operator service (admin port, loopback by default).
//!
//! Every call carries `authorization: Bearer <user>:<token>`; the interceptor
//! admits configured users only and passes the user to the handler, which
//! checks the role and names the user in the audit record.

use std::{sync::Arc, time::Duration};

use enlace_proto::v1::{self as pb, admin_server};
use tonic::{Request, Response, Status};

use crate::{
    agreements,
    config::{token_hash, User, UserRole},
    cooperation,
    error::ServiceError,
    federation::OutboundSearch,
    identity::NodeId,
    node::{now_ms, Node},
};

/// The authenticated local user of an Admin call.
#[derive(Clone, Debug)]
pub struct AdminUser {
    /// Name recorded in the audit log.
    pub name: String,
    /// Role.
    pub role: UserRole,
}

/// Checks the bearer token of an Admin call against the configured users.
pub fn authenticate(users: &[User], request: &mut Request<()>) -> Result<(), Status> {
    let denied = || Status::unauthenticated("missing or invalid Admin token");
    let value = request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(denied)?;
    let token = value.strip_prefix("Bearer ").ok_or_else(denied)?;
    let (name, secret) = token.split_once(':').ok_or_else(denied)?;
    let hash = token_hash(secret);
    let user = users
        .iter()
        .find(|u| u.name == name && constant_time_eq(u.token_sha256.as_bytes(), hash.as_bytes()))
        .ok_or_else(denied)?;
    request.extensions_mut().insert(AdminUser {
        name: user.name.clone(),
        role: user.role,
    });
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn user<T>(request: &Request<T>, allowed: &[UserRole]) -> Result<AdminUser, Status> {
    let user = request
        .extensions()
        .get::<AdminUser>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("missing or invalid Admin token"))?;
    if user.role == UserRole::Operator || allowed.contains(&user.role) {
        Ok(user)
    } else {
        Err(ServiceError::PermissionDenied(format!("role {:?} may not do this", user.role)).into())
    }
}

/// Logs up to this many leaves export every checkpoint; larger ones are thinned.
const FULL_CHECKPOINT_EXPORT: u64 = 100_000;

/// The Admin service over a node.
#[derive(Clone, Debug)]
pub struct Admin {
    node: Arc<Node>,
}

impl Admin {
    /// Serves `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Admin { node }
    }

    /// A cooperation record as Admin shows it (`preview`: the approver's
    /// view of what approving every requested field would release).
    fn view(&self, r: &cooperation::CoopRecord, preview: bool) -> pb::CooperationView {
        use base64::{engine::general_purpose::STANDARD, Engine as _};
        use prost::Message as _;
        let disclosure = (!r.disclosure_b64.is_empty())
            .then(|| STANDARD.decode(&r.disclosure_b64).ok())
            .flatten()
            .and_then(|b| pb::SignedEnvelope::decode(b.as_slice()).ok())
            .and_then(|e| pb::Disclosure::decode(e.payload.as_slice()).ok());
        pb::CooperationView {
            direction: r.direction.clone(),
            tracking_id: r.tracking_id.clone(),
            peer: r.peer.clone(),
            purpose: r.purpose.clone(),
            agreement: r.agreement_id.clone(),
            state: r.state.as_str().to_owned(),
            created_ms: r.created_ms,
            deadline_ms: r.deadline_ms,
            overdue: r.overdue(now_ms()),
            urgency: r.urgency.as_str().to_owned(),
            hit_references: r.hit_references.clone(),
            requested: r.requested.clone(),
            justification: r.justification.clone(),
            history: r
                .history
                .iter()
                .map(|t| pb::CooperationTransition {
                    state: t.state.as_str().to_owned(),
                    at_ms: t.at_ms,
                    by: t.by.clone(),
                    audit_index: t.audit_index,
                })
                .collect(),
            preview: if preview && r.state.open() {
                self.node.cooperation_preview(r)
            } else {
                Vec::new()
            },
            approved_by: r.approvals.iter().map(|a| a.user.clone()).collect(),
            approvals_needed: r.approvals_needed,
            denial_reason: r.denial_reason.clone(),
            disclosure,
            case_reference: r.case_reference.clone(),
            pending: r.pending.clone(),
        }
    }
}

fn peer_summary(p: &crate::identity::Peer) -> pb::PeerSummary {
    pb::PeerSummary {
        node_id: p.node_id.to_string(),
        endpoint: p.endpoint.clone(),
        tls_pin_hex: hex::encode(p.tls_pin),
        key_ids: p.keys.iter().map(|(k, _)| k.clone()).collect(),
        authority: p.contact.authority.clone(),
    }
}

#[tonic::async_trait]
impl admin_server::Admin for Admin {
    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let user = user(
            &request,
            &[
                UserRole::Investigator,
                UserRole::Approver,
                UserRole::Auditor,
            ],
        )?;
        let serving = self.node.is_serving();
        let (cases, persons) = if serving { self.node.counts()? } else { (0, 0) };
        let keys = self.node.data_key_status();
        Ok(Response::new(pb::StatusResponse {
            node_id: self.node.id().to_string(),
            serving,
            cases,
            persons,
            peers: self.node.peers().all().len() as u64,
            agreements: self.node.agreements().len() as u64,
            audit_records: self.node.audit().len(),
            user: user.name,
            data_key_version: u32::from(keys.version),
            data_key_rotating: keys.rotating,
            data_values_resealed: keys.resealed,
            data_key_source: match keys.source {
                crate::config::KeySource::File(_) => "file".into(),
                crate::config::KeySource::Environment => "environment".into(),
            },
        }))
    }

    async fn add_peer(
        &self,
        request: Request<pb::AddPeerRequest>,
    ) -> Result<Response<pb::PeerSummary>, Status> {
        let user = user(&request, &[])?;
        let entry = request
            .into_inner()
            .entry
            .ok_or_else(|| Status::invalid_argument("entry is required"))?;
        let peer = self.node.add_peer(&user.name, entry).await?;
        Ok(Response::new(peer_summary(&peer)))
    }

    async fn remove_peer(
        &self,
        request: Request<pb::RemovePeerRequest>,
    ) -> Result<Response<pb::RemovePeerResponse>, Status> {
        let user = user(&request, &[])?;
        let node = NodeId::parse(&request.get_ref().node_id)
            .map_err(|e| ServiceError::InvalidArgument(format!("node_id: {e}")))?;
        self.node.remove_peer(&user.name, &node).await?;
        Ok(Response::new(pb::RemovePeerResponse {}))
    }

    async fn list_peers(
        &self,
        request: Request<pb::ListPeersRequest>,
    ) -> Result<Response<pb::ListPeersResponse>, Status> {
        user(&request, &[UserRole::Investigator, UserRole::Auditor])?;
        let peers = self
            .node
            .peers()
            .all()
            .iter()
            .map(|p| peer_summary(p))
            .collect();
        Ok(Response::new(pb::ListPeersResponse { peers }))
    }

    async fn propose_agreement(
        &self,
        request: Request<pb::ProposeAgreementRequest>,
    ) -> Result<Response<pb::SignedAgreement>, Status> {
        let user = user(&request, &[])?;
        let envelope_json = self
            .node
            .propose_agreement(&user.name, &request.into_inner().agreement_json)
            .await?;
        Ok(Response::new(pb::SignedAgreement { envelope_json }))
    }

    async fn sign_agreement(
        &self,
        request: Request<pb::SignedAgreement>,
    ) -> Result<Response<pb::SignedAgreement>, Status> {
        let user = user(&request, &[])?;
        let envelope_json = self
            .node
            .sign_agreement(&user.name, &request.into_inner().envelope_json)
            .await?;
        Ok(Response::new(pb::SignedAgreement { envelope_json }))
    }

    async fn activate_agreement(
        &self,
        request: Request<pb::SignedAgreement>,
    ) -> Result<Response<pb::AgreementSummary>, Status> {
        let user = user(&request, &[])?;
        let held = self
            .node
            .activate_agreement(&user.name, &request.into_inner().envelope_json)
            .await?;
        Ok(Response::new(agreements::summary(
            &held,
            self.node.id(),
            now_ms(),
        )))
    }

    async fn revoke_agreement(
        &self,
        request: Request<pb::RevokeAgreementRequest>,
    ) -> Result<Response<pb::ListAgreementsResponse>, Status> {
        let user = user(&request, &[])?;
        let r = request.into_inner();
        let revoked = self
            .node
            .revoke_agreement(&user.name, &r.id, r.version, &r.reason)
            .await?;
        let now = now_ms();
        Ok(Response::new(pb::ListAgreementsResponse {
            agreements: revoked
                .iter()
                .map(|h| agreements::summary(h, self.node.id(), now))
                .collect(),
        }))
    }

    async fn list_agreements(
        &self,
        request: Request<pb::ListAgreementsRequest>,
    ) -> Result<Response<pb::ListAgreementsResponse>, Status> {
        user(
            &request,
            &[
                UserRole::Investigator,
                UserRole::Approver,
                UserRole::Auditor,
            ],
        )?;
        let now = now_ms();
        let agreements = self
            .node
            .agreements()
            .iter()
            .map(|h| agreements::summary(h, self.node.id(), now))
            .collect();
        Ok(Response::new(pb::ListAgreementsResponse { agreements }))
    }

    async fn show_agreement(
        &self,
        request: Request<pb::ShowAgreementRequest>,
    ) -> Result<Response<pb::ShowAgreementResponse>, Status> {
        user(
            &request,
            &[
                UserRole::Investigator,
                UserRole::Approver,
                UserRole::Auditor,
            ],
        )?;
        let r = request.into_inner();
        let (held, envelope_json) = self.node.show_agreement(&r.id, r.version)?;
        let revoked = held.revoked.clone().unwrap_or(crate::policy::Revocation {
            at_ms: 0,
            by: String::new(),
            reason: String::new(),
        });
        Ok(Response::new(pb::ShowAgreementResponse {
            summary: Some(agreements::summary(&held, self.node.id(), now_ms())),
            agreement_json: String::from_utf8_lossy(&held.terms.canonical_bytes()).into_owned(),
            envelope_json,
            revoked_by: revoked.by,
            revoked_reason: revoked.reason,
            revoked_at_ms: revoked.at_ms,
        }))
    }

    async fn explain(
        &self,
        request: Request<pb::AdminExplainRequest>,
    ) -> Result<Response<pb::AdminExplainResponse>, Status> {
        let user = user(
            &request,
            &[
                UserRole::Investigator,
                UserRole::Approver,
                UserRole::Auditor,
            ],
        )?;
        let r = request.into_inner();
        let peer = NodeId::parse(&r.peer)
            .map_err(|e| ServiceError::InvalidArgument(format!("peer: {e}")))?;
        let (explanation, envelope) = if r.remote {
            self.node
                .explain_remote(
                    &user.name,
                    &peer,
                    &r.purpose,
                    &r.query_kinds,
                    &r.agreement_id,
                )
                .await?
        } else {
            self.node
                .explain_local(
                    &user.name,
                    &peer,
                    &r.purpose,
                    &r.query_kinds,
                    &r.agreement_id,
                )
                .await?
        };
        Ok(Response::new(pb::AdminExplainResponse {
            explanation: Some(explanation),
            envelope: Some(envelope),
        }))
    }

    async fn file_cooperation(
        &self,
        request: Request<pb::FileCooperationRequest>,
    ) -> Result<Response<pb::CooperationView>, Status> {
        let user = user(&request, &[UserRole::Investigator])?;
        let rec = self
            .node
            .file_cooperation(&user.name, request.get_ref())
            .await?;
        Ok(Response::new(self.view(&rec, false)))
    }

    async fn list_cooperation(
        &self,
        request: Request<pb::ListCooperationRequest>,
    ) -> Result<Response<pb::ListCooperationResponse>, Status> {
        let user = user(
            &request,
            &[
                UserRole::Investigator,
                UserRole::Approver,
                UserRole::Auditor,
            ],
        )?;
        let direction = match request.get_ref().r#box.as_str() {
            "inbox" => "in",
            "outbox" => "out",
            "" => "",
            _ => {
                return Err(Status::invalid_argument(
                    "box must be inbox, outbox or empty",
                ))
            }
        };
        // Investigators see the outbox, approvers the inbox.
        let items = self
            .node
            .cooperation_list(direction)?
            .iter()
            .filter(|r| match user.role {
                UserRole::Investigator => r.direction == "out",
                UserRole::Approver => r.direction == "in",
                _ => true,
            })
            .map(|r| self.view(r, false))
            .collect();
        Ok(Response::new(pb::ListCooperationResponse { items }))
    }

    async fn show_cooperation(
        &self,
        request: Request<pb::CooperationRef>,
    ) -> Result<Response<pb::CooperationView>, Status> {
        let user = user(
            &request,
            &[
                UserRole::Investigator,
                UserRole::Approver,
                UserRole::Auditor,
            ],
        )?;
        let r = request.into_inner();
        let allowed = match (user.role, r.direction.as_str()) {
            (UserRole::Investigator, "out") | (UserRole::Approver, "in") => true,
            (UserRole::Operator | UserRole::Auditor, "in" | "out") => true,
            (_, "in" | "out") => false,
            _ => return Err(Status::invalid_argument("direction must be in or out")),
        };
        if !allowed {
            return Err(ServiceError::PermissionDenied(format!(
                "role {:?} may not do this",
                user.role
            ))
            .into());
        }
        // An approver (or operator) opening an inbox request puts it in review.
        let rec = if r.direction == "in"
            && matches!(user.role, UserRole::Approver | UserRole::Operator)
        {
            self.node
                .review_cooperation(&user.name, &r.tracking_id)
                .await?
        } else {
            self.node.cooperation(&r.direction, &r.tracking_id)?
        };
        Ok(Response::new(self.view(&rec, r.direction == "in")))
    }

    async fn decide_cooperation(
        &self,
        request: Request<pb::DecideCooperationRequest>,
    ) -> Result<Response<pb::CooperationView>, Status> {
        let user = user(&request, &[UserRole::Approver])?;
        // A person with the approver role decides; the operator runs the node.
        if user.role != UserRole::Approver {
            return Err(ServiceError::PermissionDenied(
                "only a user with the approver role decides cooperation requests".into(),
            )
            .into());
        }
        let r = request.into_inner();
        let rec = self
            .node
            .decide_cooperation(
                &user.name,
                &r.tracking_id,
                &r.approve,
                &r.deny_reason,
                &r.source_reliability,
                &r.information_credibility,
            )
            .await?;
        Ok(Response::new(self.view(&rec, false)))
    }

    async fn withdraw_cooperation(
        &self,
        request: Request<pb::CooperationRef>,
    ) -> Result<Response<pb::CooperationView>, Status> {
        let user = user(&request, &[UserRole::Investigator])?;
        let rec = self
            .node
            .withdraw_cooperation(&user.name, &request.get_ref().tracking_id)
            .await?;
        Ok(Response::new(self.view(&rec, false)))
    }

    async fn fetch_cooperation(
        &self,
        request: Request<pb::CooperationRef>,
    ) -> Result<Response<pb::CooperationView>, Status> {
        let user = user(&request, &[UserRole::Investigator])?;
        let rec = self
            .node
            .fetch_cooperation(&user.name, &request.get_ref().tracking_id)
            .await?;
        Ok(Response::new(self.view(&rec, false)))
    }

    async fn statistics(
        &self,
        request: Request<pb::AdminStatisticsRequest>,
    ) -> Result<Response<pb::AdminStatisticsResponse>, Status> {
        let user = user(&request, &[UserRole::Investigator, UserRole::Auditor])?;
        let parts = self
            .node
            .outbound_statistics(&user.name, request.get_ref())
            .await?;
        Ok(Response::new(pb::AdminStatisticsResponse { parts }))
    }

    async fn import_cases(
        &self,
        request: Request<pb::ImportCasesRequest>,
    ) -> Result<Response<pb::ImportCasesResponse>, Status> {
        let user = user(&request, &[])?;
        let (cases, persons) = self
            .node
            .import_cases(&user.name, &request.into_inner().case_json)
            .await?;
        Ok(Response::new(pb::ImportCasesResponse { cases, persons }))
    }

    async fn rotate_data_key(
        &self,
        request: Request<pb::RotateDataKeyRequest>,
    ) -> Result<Response<pb::RotateDataKeyResponse>, Status> {
        let user = user(&request, &[])?;
        let version = self.node.rotate_data_key(&user.name).await?;
        Ok(Response::new(pb::RotateDataKeyResponse {
            version: u32::from(version),
        }))
    }

    async fn export_cases(
        &self,
        request: Request<pb::ExportCasesRequest>,
    ) -> Result<Response<pb::ExportCasesResponse>, Status> {
        let user = user(&request, &[])?;
        let r = request.into_inner();
        let (case_json, more) = self
            .node
            .export_cases(&user.name, r.offset, r.limit)
            .await?;
        Ok(Response::new(pb::ExportCasesResponse { case_json, more }))
    }

    async fn search(
        &self,
        request: Request<pb::OutboundSearchRequest>,
    ) -> Result<Response<pb::OutboundSearchResponse>, Status> {
        let user = user(&request, &[UserRole::Investigator])?;
        let r = request.into_inner();
        let default = self.node.config().limits.search_deadline_ms;
        let deadline_ms = if r.deadline_ms == 0 {
            default
        } else {
            u64::from(r.deadline_ms).min(60_000)
        };
        let peers = self
            .node
            .outbound_search(
                &user.name,
                OutboundSearch {
                    purpose: r.purpose,
                    case_reference: r.case_reference,
                    official_reference: r.official_reference,
                    items: r.items,
                    deadline: Duration::from_millis(deadline_ms),
                    peers: r.peers,
                },
            )
            .await?;
        Ok(Response::new(pb::OutboundSearchResponse { peers }))
    }

    async fn audit_tail(
        &self,
        request: Request<pb::AuditTailRequest>,
    ) -> Result<Response<pb::AuditTailResponse>, Status> {
        user(&request, &[UserRole::Auditor])?;
        self.node.ensure_serving()?;
        let limit = request.into_inner().limit.clamp(1, 1000) as usize;
        let records = self.node.audit().tail(limit).map_err(|e| {
            tracing::error!(error = %e, "audit tail");
            Status::from(ServiceError::Internal)
        })?;
        let records_json = records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap_or_default())
            .collect();
        Ok(Response::new(pb::AuditTailResponse { records_json }))
    }

    type ExportAuditStream =
        std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::AuditChunk, Status>> + Send>>;

    async fn export_audit(
        &self,
        request: Request<pb::ExportAuditRequest>,
    ) -> Result<Response<Self::ExportAuditStream>, Status> {
        let user = user(&request, &[UserRole::Auditor])?;
        self.node.ensure_serving()?;
        // The export itself is an audited action; the bundle then includes it.
        let record = self.node.local_record(&user.name, "export_audit", "");
        self.node.record(record, crate::store::Batch::new()).await?;
        let size = self.node.audit().durable_size();
        if size > 0 {
            self.node.checkpoint_covering(size - 1)?;
        }
        let node = self.node.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let fail = |e: crate::audit::AuditError| {
                tracing::error!(error = %e, "audit export");
                Status::from(ServiceError::Internal)
            };
            let mut next = 0u64;
            while next < size {
                let leaves = match node.audit().leaves(next, 2048) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = tx.send(Err(fail(e))).await;
                        return;
                    }
                };
                let leaves: Vec<pb::AuditLeaf> = leaves
                    .into_iter()
                    .take_while(|(i, _)| *i < size)
                    .map(|(index, data)| pb::AuditLeaf { index, data })
                    .collect();
                if leaves.is_empty() {
                    break;
                }
                next = leaves.last().map_or(size, |l| l.index + 1);
                if tx
                    .send(Ok(pb::AuditChunk {
                        leaves,
                        ..Default::default()
                    }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            // Checkpoints up to the exported size only, in pages; thinned on
            // large logs (every one kept on smaller ones, so a verifier can
            // name a bad leaf exactly).
            let mut from = 1u64;
            loop {
                let page = match node.audit().checkpoints_page(
                    from,
                    size,
                    1000,
                    size > FULL_CHECKPOINT_EXPORT,
                ) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.send(Err(fail(e))).await;
                        return;
                    }
                };
                let Some(last_size) = page
                    .last()
                    .and_then(|n| crate::checkpoint::Note::parse(n.as_bytes()).ok())
                    .and_then(|n| {
                        crate::checkpoint::Checkpoint::parse_body(n.body().as_bytes())
                            .ok()
                            .map(|c| c.size)
                    })
                else {
                    break;
                };
                let chunk = pb::AuditChunk {
                    checkpoints: page,
                    ..Default::default()
                };
                if tx.send(Ok(chunk)).await.is_err() {
                    return;
                }
                if last_size >= size {
                    break;
                }
                from = last_size + 1;
            }
            let checkpoints = Vec::new();
            let mut witness_keys: Vec<pb::PublicKey> = node
                .peers()
                .all()
                .iter()
                .flat_map(|p| {
                    let name = crate::audit::witness_name(&p.node_id);
                    p.keys.iter().map(move |(_, k)| pb::PublicKey {
                        name: name.clone(),
                        key: k.to_bytes().to_vec(),
                    })
                })
                .collect();
            for a in &node.config().auditors {
                if let Ok(key) = hex::decode(&a.public_key) {
                    witness_keys.push(pb::PublicKey {
                        name: a.name.clone(),
                        key,
                    });
                }
            }
            let last = pb::AuditChunk {
                leaves: Vec::new(),
                last: true,
                checkpoints,
                origin: node.audit().origin().to_owned(),
                log_key: Some(pb::PublicKey {
                    name: node.audit().origin().to_owned(),
                    key: node.signer().verifying_key().to_bytes().to_vec(),
                }),
                witness_keys,
            };
            let _ = tx.send(Ok(last)).await;
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn latest_checkpoint(
        &self,
        request: Request<pb::LatestCheckpointRequest>,
    ) -> Result<Response<pb::LatestCheckpointResponse>, Status> {
        user(&request, &[UserRole::Auditor, UserRole::Investigator])?;
        let response = self.node.serve_checkpoint()?;
        Ok(Response::new(pb::LatestCheckpointResponse {
            note: response.note,
        }))
    }

    async fn add_cosignature(
        &self,
        request: Request<pb::AddCosignatureRequest>,
    ) -> Result<Response<pb::AddCosignatureResponse>, Status> {
        let user = user(&request, &[UserRole::Auditor])?;
        self.node.ensure_serving()?;
        let r = request.into_inner();
        let auditor = self
            .node
            .config()
            .auditors
            .iter()
            .find(|a| a.name == r.name)
            .ok_or_else(|| {
                ServiceError::PermissionDenied(format!(
                    "{:?} is not a configured auditor",
                    r.name.chars().take(64).collect::<String>()
                ))
            })?;
        let key = hex::decode(&auditor.public_key)
            .ok()
            .and_then(|k| crate::envelope::parse_public_key(&k).ok())
            .ok_or(ServiceError::Internal)?;
        self.node
            .audit()
            .add_cosignature(&r.checkpoint, &r.cosignature, &auditor.name, key)
            .map_err(|e| ServiceError::InvalidArgument(format!("cosignature refused: {e}")))?;
        let record = self.node.local_record(&user.name, "add_cosignature", "");
        self.node.record(record, crate::store::Batch::new()).await?;
        Ok(Response::new(pb::AddCosignatureResponse {}))
    }

    async fn witness_status(
        &self,
        request: Request<pb::WitnessStatusRequest>,
    ) -> Result<Response<pb::WitnessStatusResponse>, Status> {
        user(&request, &[UserRole::Auditor])?;
        let logs = self
            .node
            .witnessed()?
            .into_iter()
            .map(|(origin, note)| pb::WitnessedLog { origin, note })
            .collect();
        let alarms_json = self
            .node
            .alarms(1000)?
            .iter()
            .map(|a| serde_json::to_string(a).unwrap_or_default())
            .collect();
        Ok(Response::new(pb::WitnessStatusResponse {
            logs,
            alarms_json,
        }))
    }
}
