//! Witnessing peers' audit logs, and serving our own log to peers.
//!
//! Every node watches every pinned peer's log: it fetches the peer's latest
//! checkpoint, checks the signature, checks it is consistent with the last
//! checkpoint it verified (a consistency proof; same size must mean same root;
//! sizes never shrink), compares it with what the other peers have witnessed
//! (split-view detection), then cosigns it and hands the cosignature to the
//! peer. Anything wrong raises an alarm: logged loudly, stored, and recorded as
//! a leaf in our own audit log.

use std::{sync::Arc, time::Duration};

use enlace_proto::v1::{self as pb, exchange_client::ExchangeClient};
use serde::{Deserialize, Serialize};

use crate::{
    audit::{self, Record},
    checkpoint::{self, Checkpoint, Note},
    error::{code_name, ServiceError},
    federation::peer_checkpoint,
    identity::{NodeId, Peer},
    merkle,
    node::{now_ms, Node},
    store::{Batch, Tree},
    tls::PeerConnection,
};

/// Time allowed for each witness call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What witnessing one peer's log found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// The peer whose log was witnessed.
    pub peer: String,
    /// `cosigned`, `unchanged`, `unreachable` or the alarm kind.
    pub outcome: String,
    /// Tree size seen (0 when none).
    pub size: u64,
    /// Details (no personal data: sizes, hashes, reasons).
    pub detail: String,
}

/// A stored alarm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    /// When, ms since the epoch.
    pub time_ms: i64,
    /// The peer whose log misbehaved.
    pub peer: String,
    /// `bad_checkpoint`, `rollback`, `fork`, `inconsistent`, `split_view`.
    pub kind: String,
    /// What was seen.
    pub detail: String,
}

fn call<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(CALL_TIMEOUT);
    r
}

fn status_text(s: &tonic::Status) -> String {
    format!(
        "{}: {}",
        code_name(s.code()),
        s.message().chars().take(200).collect::<String>()
    )
}

fn hashes(list: &[Vec<u8>]) -> Option<Vec<[u8; 32]>> {
    list.iter()
        .map(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
        .collect()
}

impl Node {
    /// Answers `GetCheckpoint`: the latest checkpoint of our log with its cosignatures.
    pub fn serve_checkpoint(&self) -> Result<pb::CheckpointResponse, ServiceError> {
        self.ensure_serving()?;
        let size = self.audit().durable_size();
        if size > 0 {
            self.checkpoint_covering(size - 1)?;
        }
        let note = self
            .audit()
            .latest_with_cosignatures()
            .map_err(|e| self.fail_audit(e))?;
        Ok(pb::CheckpointResponse {
            note: note.unwrap_or_default(),
        })
    }

    /// Answers `GetInclusionProof`.
    pub fn serve_inclusion_proof(
        &self,
        r: &pb::InclusionProofRequest,
    ) -> Result<pb::ProofResponse, ServiceError> {
        self.ensure_serving()?;
        if r.index >= r.tree_size || r.tree_size > self.audit().durable_size() {
            return Err(ServiceError::InvalidArgument(
                "index must be below tree_size, and tree_size at most the log size".into(),
            ));
        }
        let (proof, leaf) = self
            .audit()
            .inclusion_proof(r.index, r.tree_size)
            .map_err(|e| self.fail_audit(e))?;
        Ok(pb::ProofResponse {
            hashes: proof.iter().map(|h| h.to_vec()).collect(),
            leaf_hash: leaf.to_vec(),
        })
    }

    /// Answers `GetConsistencyProof`.
    pub fn serve_consistency_proof(
        &self,
        r: &pb::ConsistencyProofRequest,
    ) -> Result<pb::ProofResponse, ServiceError> {
        self.ensure_serving()?;
        if r.old_size == 0 || r.old_size > r.new_size || r.new_size > self.audit().durable_size() {
            return Err(ServiceError::InvalidArgument(
                "need 0 < old_size ≤ new_size ≤ log size".into(),
            ));
        }
        let proof = self
            .audit()
            .consistency_proof(r.old_size, r.new_size)
            .map_err(|e| self.fail_audit(e))?;
        Ok(pb::ProofResponse {
            hashes: proof.iter().map(|h| h.to_vec()).collect(),
            leaf_hash: Vec::new(),
        })
    }

    /// Answers `Cosign`: keeps a pinned peer's cosignature of our checkpoint.
    pub fn accept_cosignature(
        &self,
        conn: Option<PeerConnection>,
        r: &pb::CosignRequest,
    ) -> Result<(), ServiceError> {
        self.ensure_serving()?;
        let conn = conn.ok_or(ServiceError::Unauthenticated("no pinned TLS identity"))?;
        let peer = self
            .peers()
            .get(&conn.node)
            .ok_or(ServiceError::Unauthenticated("peer no longer pinned"))?;
        if r.checkpoint.len() > 4096 || r.cosignature.len() > 1024 {
            return Err(ServiceError::InvalidArgument(
                "checkpoint or cosignature too large".into(),
            ));
        }
        let name = audit::witness_name(&peer.node_id);
        let mut accepted = false;
        for (_, key) in &peer.keys {
            match self
                .audit()
                .add_cosignature(&r.checkpoint, &r.cosignature, &name, *key)
            {
                Ok(()) => {
                    accepted = true;
                    break;
                }
                // A storage failure is not the witness's fault: fail closed.
                Err(crate::audit::AuditError::Store(e)) => return Err(self.fail(e)),
                Err(_) => {}
            }
        }
        if !accepted {
            return Err(ServiceError::InvalidArgument(
                "cosignature does not verify for one of our checkpoints".into(),
            ));
        }
        tracing::info!(witness = %peer.node_id, "cosignature stored");
        Ok(())
    }

    /// Answers `GetWitnessed`: the latest checkpoint of `origin` we verified and cosigned.
    pub fn serve_witnessed(&self, origin: &str) -> Result<pb::CheckpointResponse, ServiceError> {
        self.ensure_serving()?;
        if origin.len() > 200 {
            return Err(ServiceError::InvalidArgument("origin too long".into()));
        }
        let note = self
            .store()
            .get(Tree::Witnessed, origin.as_bytes())
            .map_err(|e| self.fail(e))?
            .and_then(|v| String::from_utf8(v).ok())
            .unwrap_or_default();
        Ok(pb::CheckpointResponse { note })
    }

    /// Stored witness alarms, newest first.
    pub fn alarms(&self, limit: usize) -> Result<Vec<Alarm>, ServiceError> {
        let entries = self
            .store()
            .last(Tree::Alarms, limit)
            .map_err(|e| self.fail(e))?;
        Ok(entries
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect())
    }

    /// Every log we witness: origin and the latest checkpoint we verified.
    pub fn witnessed(&self) -> Result<Vec<(String, String)>, ServiceError> {
        let entries = self
            .store()
            .scan_prefix(Tree::Witnessed, b"", 10_000)
            .map_err(|e| self.fail(e))?;
        Ok(entries
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect())
    }

    async fn raise(&self, peer: &NodeId, kind: &str, detail: String) -> Observation {
        tracing::error!(peer = %peer, alarm = kind, %detail, "AUDIT LOG ALARM: a peer's transparency log misbehaves");
        let now = now_ms();
        let alarm = Alarm {
            time_ms: now,
            peer: peer.to_string(),
            kind: kind.to_owned(),
            detail: detail.clone(),
        };
        let mut key = now.to_be_bytes().to_vec();
        key.extend_from_slice(peer.as_str().as_bytes());
        let mut effects = Batch::new();
        effects.put(
            Tree::Alarms,
            key,
            serde_json::to_vec(&alarm).unwrap_or_default(),
        );
        let record = Record {
            time_ms: now,
            direction: "local".into(),
            peer: peer.to_string(),
            action: "witness_alarm".into(),
            decision: kind.to_owned(),
            reason: detail.chars().take(300).collect(),
            ..Default::default()
        };
        if let Err(e) = self.record(record, effects).await {
            tracing::error!(error = %e, "could not record the alarm");
        }
        Observation {
            peer: peer.to_string(),
            outcome: kind.to_owned(),
            size: 0,
            detail,
        }
    }

    /// Witnesses every pinned peer's log once.
    pub async fn witness_once(self: &Arc<Self>) -> Vec<Observation> {
        let mut out = Vec::new();
        for peer in self.peers().all() {
            out.push(self.witness_peer(&peer).await);
        }
        out
    }

    async fn witness_peer(self: &Arc<Self>, peer: &Peer) -> Observation {
        let name = peer.node_id.clone();
        let unreachable = |detail: String| Observation {
            peer: name.to_string(),
            outcome: "unreachable".into(),
            size: 0,
            detail,
        };
        let mut client = match self.federation.client(self.tls(), peer) {
            Ok(c) => c,
            Err(e) => return unreachable(e.to_string()),
        };
        let note = match client
            .get_checkpoint(call(pb::GetCheckpointRequest {}))
            .await
        {
            Ok(r) => r.into_inner().note,
            Err(s) => return unreachable(status_text(&s)),
        };
        if note.is_empty() {
            return Observation {
                peer: name.to_string(),
                outcome: "empty".into(),
                size: 0,
                detail: "no checkpoint yet".into(),
            };
        }
        let cp = match peer_checkpoint(peer, &note) {
            Ok(cp) => cp,
            Err(e) => {
                return self
                    .raise(
                        &name,
                        "bad_checkpoint",
                        format!("checkpoint does not verify: {e}"),
                    )
                    .await
            }
        };
        let origin = audit::origin(&name);
        // Consistency with what we verified before.
        let previous = self
            .store()
            .get(Tree::Witnessed, origin.as_bytes())
            .ok()
            .flatten()
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|n| peer_checkpoint(peer, &n).ok());
        if let Some(prev) = &previous {
            if let Some(obs) = self.check_consistency(&mut client, &name, prev, &cp).await {
                return obs;
            }
            if prev.size == cp.size {
                return Observation {
                    peer: name.to_string(),
                    outcome: "unchanged".into(),
                    size: cp.size,
                    detail: String::new(),
                };
            }
        }
        // Split view: compare with what the other peers witnessed of this log.
        for other in self.peers().all() {
            if other.node_id == name {
                continue;
            }
            let Ok(mut oc) = self.federation.client(self.tls(), &other) else {
                continue;
            };
            let Ok(r) = oc
                .get_witnessed(call(pb::GetWitnessedRequest {
                    origin: origin.clone(),
                }))
                .await
            else {
                continue;
            };
            let seen = r.into_inner().note;
            if seen.is_empty() {
                continue;
            }
            let Ok(theirs) = peer_checkpoint(peer, &seen) else {
                continue;
            };
            let (older, newer) = if theirs.size <= cp.size {
                (&theirs, &cp)
            } else {
                (&cp, &theirs)
            };
            if let Some(obs) = self
                .check_consistency(&mut client, &name, older, newer)
                .await
            {
                let detail = format!("{} (view witnessed by {})", obs.detail, other.node_id);
                return self.raise(&name, "split_view", detail).await;
            }
        }
        // Cosign and hand the cosignature to the log.
        let body = match Note::parse(note.as_bytes()) {
            Ok(n) => n.body().to_owned(),
            Err(e) => return self.raise(&name, "bad_checkpoint", e.to_string()).await,
        };
        let witness = audit::witness_name(self.id());
        let line = match checkpoint::cosign_note(
            &body,
            &witness,
            self.signer().signing_key(),
            (now_ms() / 1000).max(0) as u64,
        ) {
            Ok(l) => l,
            Err(e) => return self.raise(&name, "bad_checkpoint", e.to_string()).await,
        };
        if let Err(s) = client
            .cosign(call(pb::CosignRequest {
                checkpoint: body.clone(),
                cosignature: line.clone(),
            }))
            .await
        {
            tracing::warn!(peer = %name, status = %status_text(&s), "peer refused our cosignature");
        }
        let kept = format!(
            "{body}\n{}{line}",
            signature_lines(&note, &audit::origin(&name))
        );
        if let Err(e) = self
            .store()
            .insert(Tree::Witnessed, origin.as_bytes(), kept.as_bytes())
        {
            self.fail(e);
        }
        Observation {
            peer: name.to_string(),
            outcome: "cosigned".into(),
            size: cp.size,
            detail: hex::encode(cp.root),
        }
    }

    /// Checks that `newer` extends `older` (same log). Returns an alarm
    /// observation when it does not.
    async fn check_consistency(
        &self,
        client: &mut ExchangeClient<tonic::transport::Channel>,
        peer: &NodeId,
        older: &Checkpoint,
        newer: &Checkpoint,
    ) -> Option<Observation> {
        if newer.size < older.size {
            return Some(
                self.raise(
                    peer,
                    "rollback",
                    format!("tree shrank from {} to {} leaves", older.size, newer.size),
                )
                .await,
            );
        }
        if newer.size == older.size {
            if newer.root != older.root {
                return Some(
                    self.raise(
                        peer,
                        "fork",
                        format!(
                            "two roots for size {}: {} and {}",
                            newer.size,
                            hex::encode(older.root),
                            hex::encode(newer.root)
                        ),
                    )
                    .await,
                );
            }
            return None;
        }
        if older.size == 0 {
            return None;
        }
        let proof = match client
            .get_consistency_proof(call(pb::ConsistencyProofRequest {
                old_size: older.size,
                new_size: newer.size,
            }))
            .await
        {
            Ok(p) => p.into_inner(),
            Err(s) => {
                return Some(
                    self.raise(
                        peer,
                        "inconsistent",
                        format!(
                            "no consistency proof {}→{}: {}",
                            older.size,
                            newer.size,
                            status_text(&s)
                        ),
                    )
                    .await,
                )
            }
        };
        let Some(path) = hashes(&proof.hashes) else {
            return Some(
                self.raise(peer, "inconsistent", "malformed consistency proof".into())
                    .await,
            );
        };
        match merkle::verify_consistency(older.size, newer.size, &older.root, &newer.root, &path) {
            Ok(()) => None,
            Err(e) => Some(
                self.raise(
                    peer,
                    "inconsistent",
                    format!(
                        "tree of {} leaves does not extend the one of {}: {e}",
                        newer.size, older.size
                    ),
                )
                .await,
            ),
        }
    }

    /// Witnesses all peers every `interval` until the task is dropped.
    pub async fn witness_forever(self: Arc<Self>, interval: Duration) {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.is_serving() {
                for obs in self.witness_once().await {
                    tracing::debug!(peer = %obs.peer, outcome = %obs.outcome, size = obs.size, "witnessed");
                }
            }
        }
    }
}

/// The signature lines of `note` made under `name` (the log's own signature).
fn signature_lines(note: &str, name: &str) -> String {
    Note::parse(note.as_bytes())
        .map(|n| {
            n.signatures()
                .iter()
                .filter(|s| s.name() == name)
                .map(|s| s.to_line())
                .collect()
        })
        .unwrap_or_default()
}
