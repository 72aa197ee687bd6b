//! Outbound calls to peers: pinned mTLS channels and the step-1 fan-out with a
//! deadline and partial results.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use enlace_proto::v1::{self as pb, exchange_client::ExchangeClient, PeerOutcome, SignedEnvelope};
use hyper_util::rt::TokioIo;
use prost::Message;
use rand::RngCore;
use tonic::transport::{Channel, Endpoint};

use crate::{
    audit::{self, Record},
    checkpoint,
    envelope::{self, SEARCH_REQUEST, SEARCH_RESPONSE},
    error::{code_name, ServiceError},
    identity::{NodeId, Peer, TlsIdentity},
    merkle,
    node::{now_ms, parse_items, Node},
    policy,
    store::{Batch, Tree},
    tls,
};

/// Opens a lazily-connected channel to a peer over pinned mutual TLS.
/// Deadlines are per call (`tonic::Request::set_timeout`); `connect_timeout`
/// bounds opening a connection: TCP connect and TLS handshake.
pub fn channel(
    identity: &TlsIdentity,
    peer: &Peer,
    connect_timeout: Duration,
) -> Result<Channel, rustls::Error> {
    let config = Arc::new(tls::client_config(identity, peer.tls_pin)?);
    let endpoint_addr = peer.endpoint.clone();
    let server_name = rustls::pki_types::ServerName::try_from(peer.node_id.tls_name())
        .map_err(|_| rustls::Error::General("bad server name".into()))?;
    let connector = tower::service_fn(move |_uri: tonic::codegen::http::Uri| {
        let config = config.clone();
        let addr = endpoint_addr.clone();
        let server_name = server_name.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(server_name, tcp)
                .await?;
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    });
    // The URI is not dialled (the connector is); it only names the authority.
    let endpoint = Endpoint::from_static("http://peer.enlace.invalid")
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(false);
    Ok(endpoint.connect_with_connector_lazy(connector))
}

/// Verifiers of a peer's audit-log checkpoint signatures (one per signing key).
pub fn log_verifiers(peer: &Peer) -> Vec<checkpoint::NoteVerifier> {
    let origin = audit::origin(&peer.node_id);
    peer.keys
        .iter()
        .filter_map(|(_, key)| {
            checkpoint::NoteVerifier::new(&origin, *key, checkpoint::SignatureKind::Ed25519).ok()
        })
        .collect()
}

/// Opens a checkpoint note of `peer`'s log: signed by the peer, right origin.
pub fn peer_checkpoint(
    peer: &Peer,
    note: &str,
) -> Result<checkpoint::Checkpoint, checkpoint::NoteError> {
    let (cp, signers) = checkpoint::open_checkpoint(note.as_bytes(), &log_verifiers(peer))?;
    let origin = audit::origin(&peer.node_id);
    if cp.origin != origin || !signers.iter().any(|s| s.name == origin) {
        return Err(checkpoint::NoteError::MalformedSignature);
    }
    Ok(cp)
}

/// Checks a peer's signed answer of `payload_type`: signed by a pinned key
/// of that peer, decodable, bound to our request (`request_id` and the
/// request's `digest`) and naming that peer as responder. Returns the
/// decoded message.
pub(crate) fn verify_answer<M: Message + Default>(
    peer: &Peer,
    env: &SignedEnvelope,
    payload_type: &'static str,
    request_id: &str,
    digest: &[u8; 32],
    header: impl Fn(&M) -> Option<&pb::ResponseHeader>,
) -> Result<M, &'static str> {
    envelope::verify(env, payload_type, |kid| {
        peer.keys
            .iter()
            .find(|(k, _)| k == kid)
            .map(|(_, key)| *key)
    })
    .map_err(|_| "signature does not verify under the peer's pinned keys")?;
    let m = M::decode(env.payload.as_slice()).map_err(|_| "payload does not decode")?;
    let h = header(&m).ok_or("no header")?;
    if h.request_digest != digest || h.request_id != request_id {
        return Err("not bound to our request");
    }
    if h.responder != peer.node_id.as_str() {
        return Err("names another responder");
    }
    Ok(m)
}

/// Time allowed to open a TCP connection to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Cached channels to peers, keyed by node id.
#[derive(Default)]
pub struct Clients {
    channels: Mutex<HashMap<NodeId, Channel>>,
}

impl Clients {
    /// The channel to `peer`, created on first use.
    fn get(&self, identity: &TlsIdentity, peer: &Peer) -> Result<Channel, ServiceError> {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(&peer.node_id) {
            return Ok(c.clone());
        }
        let c = channel(identity, peer, CONNECT_TIMEOUT).map_err(|e| {
            tracing::error!(error = %e, "client TLS configuration");
            ServiceError::Internal
        })?;
        map.insert(peer.node_id.clone(), c.clone());
        Ok(c)
    }

    /// An Exchange client to `peer` over its cached channel.
    pub(crate) fn client(
        &self,
        identity: &TlsIdentity,
        peer: &Peer,
    ) -> Result<ExchangeClient<Channel>, ServiceError> {
        Ok(ExchangeClient::new(self.get(identity, peer)?))
    }

    /// Drops the cached channel of a peer (after its entry changed).
    pub fn forget(&self, peer: &NodeId) {
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(peer);
    }
}

/// An outbound search as the investigator asked it.
#[derive(Clone, Debug)]
pub struct OutboundSearch {
    /// Purpose code.
    pub purpose: String,
    /// The requesting case reference.
    pub case_reference: String,
    /// Pseudonymous reference of the official.
    pub official_reference: String,
    /// Query items.
    pub items: Vec<pb::QueryItem>,
    /// Overall deadline.
    pub deadline: Duration,
    /// Restrict to these peers (empty: all).
    pub peers: Vec<String>,
}

/// A receipt: the signed request and the signed response that answered it.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredReceipt {
    peer: String,
    request_id: String,
    time_ms: i64,
    request_b64: String,
    response_b64: String,
}

fn outcome(
    peer: &str,
    o: PeerOutcome,
    code: &str,
    message: impl Into<String>,
    elapsed: Duration,
) -> pb::PeerResult {
    pb::PeerResult {
        peer: peer.to_owned(),
        outcome: o as i32,
        status_code: code.to_owned(),
        message: message.into(),
        elapsed_ms: elapsed.as_millis().min(u128::from(u32::MAX)) as u32,
        ..Default::default()
    }
}

impl Node {
    /// The header of a request to `peer`: a fresh UUIDv7 and nonce, this
    /// node's outbound lifetime, the purpose and the legal basis cited.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn request_header(
        &self,
        peer: &NodeId,
        purpose: &str,
        agreement_id: &str,
        instrument: &str,
        case_reference: String,
        official_reference: String,
        now: i64,
    ) -> pb::RequestHeader {
        let mut nonce = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        pb::RequestHeader {
            request_id: uuid::Uuid::now_v7().hyphenated().to_string(),
            from_node: self.id().to_string(),
            to_node: peer.to_string(),
            issued_at_ms: now,
            expires_at_ms: now + self.config().limits.outbound_request_lifetime_ms,
            nonce: nonce.to_vec(),
            purpose: purpose.to_owned(),
            legal_basis: Some(pb::LegalBasis {
                agreement_id: agreement_id.to_owned(),
                instrument: instrument.to_owned(),
            }),
            case_reference,
            official_reference,
        }
    }

    /// Signs one request per peer whose agreement permits the purpose, sends
    /// them concurrently, verifies and stores every answer, and reports each
    /// peer's outcome. Never waits past the deadline.
    pub async fn outbound_search(
        self: &Arc<Self>,
        user: &str,
        search: OutboundSearch,
    ) -> Result<Vec<pb::PeerResult>, ServiceError> {
        self.ensure_serving()?;
        if !policy::search_purpose(&search.purpose) {
            return Err(ServiceError::InvalidArgument(format!(
                "purpose {:?} cannot be searched (known: investigation, prosecution, victim_identification, missing_persons)",
                search.purpose.chars().take(40).collect::<String>()
            )));
        }
        parse_items(&search.items, self.config().limits.max_query_items)?;
        let now = now_ms();
        let agreements = self.agreements();
        let mut results = Vec::new();
        let mut tasks = Vec::new();
        for peer in self.peers().all() {
            if !search.peers.is_empty() && !search.peers.iter().any(|p| p == peer.node_id.as_str())
            {
                continue;
            }
            let Some(agreement) =
                policy::outbound(&agreements, self.id(), &peer.node_id, &search.purpose, now)
            else {
                results.push(outcome(
                    peer.node_id.as_str(),
                    PeerOutcome::NoAgreement,
                    "",
                    "no agreement covers this purpose",
                    Duration::ZERO,
                ));
                continue;
            };
            let request = pb::SearchRequest {
                header: Some(
                    self.request_header(
                        &peer.node_id,
                        &search.purpose,
                        &agreement.id,
                        agreement
                            .instruments
                            .first()
                            .map_or("", |i| i.name.as_str()),
                        search.case_reference.clone(),
                        search.official_reference.clone(),
                        now,
                    ),
                ),
                items: search.items.clone(),
            };
            let env = self.signer().seal_message(SEARCH_REQUEST, &request);
            let node = self.clone();
            let deadline = search.deadline;
            let agreement_label = format!("{}@{}", agreement.id, agreement.version);
            let user = user.to_owned();
            let purpose = search.purpose.clone();
            tasks.push(tokio::spawn(async move {
                node.send_search(
                    &user,
                    &peer,
                    env,
                    request,
                    deadline,
                    agreement_label,
                    purpose,
                )
                .await
            }));
        }
        for t in tasks {
            match t.await {
                Ok(Ok(r)) => results.push(r),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(ServiceError::Internal),
            }
        }
        results.sort_by(|a, b| a.peer.cmp(&b.peer));
        Ok(results)
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_search(
        &self,
        user: &str,
        peer: &Peer,
        env: SignedEnvelope,
        request: pb::SearchRequest,
        deadline: Duration,
        agreement: String,
        purpose: String,
    ) -> Result<pb::PeerResult, ServiceError> {
        let started = Instant::now();
        let header = request.header.clone().unwrap_or_default();
        let name = peer.node_id.as_str();
        let digest = envelope::digest(&env);
        let channel = self.federation.get(self.tls(), peer)?;
        let mut client = ExchangeClient::new(channel)
            .max_decoding_message_size(self.config().limits.max_message_bytes)
            .max_encoding_message_size(self.config().limits.max_message_bytes);
        let mut call = tonic::Request::new(env.clone());
        call.set_timeout(deadline);
        let answer = tokio::time::timeout(deadline, client.search(call)).await;
        let elapsed = started.elapsed();
        let mut result = match answer {
            Err(_) => outcome(
                name,
                PeerOutcome::TimedOut,
                "DEADLINE_EXCEEDED",
                "no answer within the deadline",
                elapsed,
            ),
            // A deadline the transport enforced shows as DEADLINE_EXCEEDED or CANCELLED.
            Ok(Err(status))
                if matches!(
                    status.code(),
                    tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
                ) =>
            {
                outcome(
                    name,
                    PeerOutcome::TimedOut,
                    "DEADLINE_EXCEEDED",
                    "no answer within the deadline",
                    elapsed,
                )
            }
            Ok(Err(status))
                if status.code() == tonic::Code::Unavailable
                    && std::error::Error::source(&status).is_some() =>
            {
                outcome(
                    name,
                    PeerOutcome::Unreachable,
                    "UNAVAILABLE",
                    "could not connect",
                    elapsed,
                )
            }
            Ok(Err(status)) => outcome(
                name,
                PeerOutcome::Refused,
                code_name(status.code()),
                status.message().chars().take(200).collect::<String>(),
                elapsed,
            ),
            Ok(Ok(response)) => {
                let response = response.into_inner();
                match self.verify_response(peer, &response, &request, &digest) {
                    Ok(decoded) => {
                        let mut r = outcome(name, PeerOutcome::Answered, "OK", "", elapsed);
                        r.peer_audit_index = decoded
                            .header
                            .as_ref()
                            .and_then(|h| h.receipt.as_ref())
                            .map_or(0, |x| x.index);
                        r.results = decoded.results;
                        r.decision = decoded.header.as_ref().and_then(|h| h.decision.clone());
                        r.receipt_id = header.request_id.clone();
                        self.store_receipt(peer, &header.request_id, &env, &response)?;
                        r
                    }
                    Err(why) => {
                        tracing::warn!(peer = %peer.node_id, request = %header.request_id, reason = why, "invalid signed response");
                        outcome(name, PeerOutcome::InvalidResponse, "", why, elapsed)
                    }
                }
            }
        };
        result.request_id = header.request_id.clone();
        let hits = result.results.iter().filter(|r| r.hit).count() as u32;
        let record = Record {
            time_ms: now_ms(),
            direction: "outbound".into(),
            peer: name.to_owned(),
            user: user.to_owned(),
            action: "search".into(),
            request_id: header.request_id.clone(),
            request_digest: hex::encode(digest),
            purpose,
            agreement,
            legal_basis: request
                .header
                .as_ref()
                .and_then(|h| h.legal_basis.as_ref())
                .map(|l| l.instrument.clone())
                .unwrap_or_default(),
            decision: PeerOutcome::try_from(result.outcome)
                .map(|o| {
                    o.as_str_name()
                        .trim_start_matches("PEER_OUTCOME_")
                        .to_ascii_lowercase()
                })
                .unwrap_or_default(),
            reason: result.status_code.clone(),
            items: request.items.len() as u32,
            hits,
            ..Default::default()
        };
        self.record(record, Batch::new()).await?;
        Ok(result)
    }

    /// Checks a peer's signed response: signature by that peer's key, payload
    /// type, binding to our request, responder, and item ids.
    fn verify_response(
        &self,
        peer: &Peer,
        response: &SignedEnvelope,
        request: &pb::SearchRequest,
        digest: &[u8; 32],
    ) -> Result<pb::SearchResponse, &'static str> {
        envelope::verify(response, SEARCH_RESPONSE, |kid| {
            peer.keys
                .iter()
                .find(|(k, _)| k == kid)
                .map(|(_, key)| *key)
        })
        .map_err(|_| "response signature does not verify under the peer's pinned keys")?;
        let decoded = pb::SearchResponse::decode(response.payload.as_slice())
            .map_err(|_| "response payload does not decode")?;
        let header = decoded.header.as_ref().ok_or("response has no header")?;
        if header.request_digest != digest {
            return Err("response is not bound to our request (digest mismatch)");
        }
        let request_id = request
            .header
            .as_ref()
            .map_or("", |h| h.request_id.as_str());
        if header.request_id != request_id {
            return Err("response names another request id");
        }
        if header.responder != peer.node_id.as_str() {
            return Err("response names another responder");
        }
        let asked = request.items.iter().map(|i| i.item_id.as_str());
        if !decoded.results.iter().map(|r| r.item_id.as_str()).eq(asked) {
            return Err("response results do not match the items asked, in order");
        }
        if decoded.results.iter().any(|r| r.hit == r.hits.is_empty()) {
            return Err("response marks a hit without references, or references without a hit");
        }
        let receipt = header
            .receipt
            .as_ref()
            .ok_or("response has no audit receipt")?;
        let checkpoint = peer_checkpoint(peer, &receipt.checkpoint)
            .map_err(|_| "the receipt's checkpoint is not signed by the peer's log")?;
        if checkpoint.size <= receipt.index || receipt.leaf_hash.len() != 32 {
            return Err("the receipt's checkpoint does not cover its leaf");
        }
        Ok(decoded)
    }

    fn store_receipt(
        &self,
        peer: &Peer,
        request_id: &str,
        request: &SignedEnvelope,
        response: &SignedEnvelope,
    ) -> Result<(), ServiceError> {
        use base64::{engine::general_purpose::STANDARD, Engine as _};
        let receipt = StoredReceipt {
            peer: peer.node_id.to_string(),
            request_id: request_id.to_owned(),
            time_ms: now_ms(),
            request_b64: STANDARD.encode(request.encode_to_vec()),
            response_b64: STANDARD.encode(response.encode_to_vec()),
        };
        let json = serde_json::to_vec(&receipt).map_err(|_| ServiceError::Internal)?;
        self.store()
            .insert(Tree::Receipts, request_id.as_bytes(), &json)
            .map_err(|e| self.fail(e))
    }

    /// Re-verifies a stored receipt: the request we signed and the peer's
    /// signed response bound to it. Returns the peer and the decoded response.
    pub fn verify_receipt(&self, request_id: &str) -> Result<(String, pb::SearchResponse), String> {
        use base64::{engine::general_purpose::STANDARD, Engine as _};
        let raw = self
            .store()
            .get(Tree::Receipts, request_id.as_bytes())
            .map_err(|e| e.to_string())?
            .ok_or("no such receipt")?;
        let r: StoredReceipt = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
        let decode = |b64: &str| -> Result<SignedEnvelope, String> {
            let bytes = STANDARD.decode(b64).map_err(|e| e.to_string())?;
            SignedEnvelope::decode(bytes.as_slice()).map_err(|e| e.to_string())
        };
        let request = decode(&r.request_b64)?;
        let response = decode(&r.response_b64)?;
        envelope::verify(&request, SEARCH_REQUEST, |kid| {
            (kid == self.signer().key_id()).then(|| self.signer().verifying_key())
        })
        .map_err(|e| format!("our request: {e}"))?;
        let decoded_request =
            pb::SearchRequest::decode(request.payload.as_slice()).map_err(|e| e.to_string())?;
        if decoded_request
            .header
            .as_ref()
            .map(|h| h.request_id.as_str())
            != Some(request_id)
        {
            return Err("receipt holds another request".into());
        }
        let peer_id = NodeId::parse(&r.peer).map_err(|e| e.to_string())?;
        let peer = self.peers().get(&peer_id).ok_or("peer no longer pinned")?;
        let decoded = self
            .verify_response(
                &peer,
                &response,
                &decoded_request,
                &envelope::digest(&request),
            )
            .map_err(str::to_owned)?;
        Ok((r.peer, decoded))
    }

    /// Verifies a stored receipt and proves, online, that the peer's audit log
    /// includes the leaf it names: fetches the inclusion proof for the
    /// receipt's checkpoint and checks it against the signed root. Returns the
    /// peer, the leaf index and the checkpoint's tree size.
    pub async fn prove_receipt(&self, request_id: &str) -> Result<(String, u64, u64), String> {
        let (peer_name, decoded) = self.verify_receipt(request_id)?;
        let receipt = decoded
            .header
            .and_then(|h| h.receipt)
            .ok_or("receipt without audit receipt")?;
        let peer = NodeId::parse(&peer_name)
            .ok()
            .and_then(|id| self.peers().get(&id))
            .ok_or("peer no longer pinned")?;
        let cp = peer_checkpoint(&peer, &receipt.checkpoint).map_err(|e| e.to_string())?;
        let channel = self
            .federation
            .get(self.tls(), &peer)
            .map_err(|e| e.to_string())?;
        let mut client = ExchangeClient::new(channel);
        let mut call = tonic::Request::new(pb::InclusionProofRequest {
            index: receipt.index,
            tree_size: cp.size,
        });
        call.set_timeout(Duration::from_secs(10));
        let proof = client
            .get_inclusion_proof(call)
            .await
            .map_err(|s| format!("{}: {}", code_name(s.code()), s.message()))?
            .into_inner();
        let leaf: [u8; 32] = receipt
            .leaf_hash
            .as_slice()
            .try_into()
            .map_err(|_| "bad leaf hash")?;
        if proof.leaf_hash != leaf {
            return Err("the peer's log holds another leaf at that index".into());
        }
        let path = proof
            .hashes
            .iter()
            .map(|h| <[u8; 32]>::try_from(h.as_slice()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "malformed proof")?;
        merkle::verify_inclusion(receipt.index, cp.size, &leaf, &path, &cp.root)
            .map_err(|e| format!("inclusion proof: {e}"))?;
        Ok((peer_name, receipt.index, cp.size))
    }
}
