//! `enlace.v1.Exchange`, the peer-facing service (federation port, pinned mTLS).

use std::sync::Arc;

use enlace_proto::v1::{self as pb, exchange_server, NodeInfoRequest, SignedEnvelope};
use tonic::{Request, Response, Status};

use crate::{node::Node, tls::PeerConnection};

/// The Exchange service over a node.
#[derive(Clone, Debug)]
pub struct Exchange {
    node: Arc<Node>,
    entry: SignedEnvelope,
}

impl Exchange {
    /// Serves `node`, publishing `entry` (its signed directory entry) in `NodeInfo`.
    pub fn new(node: Arc<Node>, entry: SignedEnvelope) -> Self {
        Exchange { node, entry }
    }
}

#[tonic::async_trait]
impl exchange_server::Exchange for Exchange {
    async fn search(
        &self,
        request: Request<SignedEnvelope>,
    ) -> Result<Response<SignedEnvelope>, Status> {
        let conn = request.extensions().get::<PeerConnection>().cloned();
        let envelope = request.into_inner();
        Ok(Response::new(self.node.search(conn, envelope).await?))
    }

    async fn explain(
        &self,
        request: Request<SignedEnvelope>,
    ) -> Result<Response<SignedEnvelope>, Status> {
        let conn = request.extensions().get::<PeerConnection>().cloned();
        let envelope = request.into_inner();
        Ok(Response::new(self.node.explain(conn, envelope).await?))
    }

    async fn request_cooperation(
        &self,
        request: Request<SignedEnvelope>,
    ) -> Result<Response<SignedEnvelope>, Status> {
        let conn = request.extensions().get::<PeerConnection>().cloned();
        let envelope = request.into_inner();
        Ok(Response::new(
            self.node.request_cooperation(conn, envelope).await?,
        ))
    }

    async fn get_cooperation(
        &self,
        request: Request<SignedEnvelope>,
    ) -> Result<Response<SignedEnvelope>, Status> {
        let conn = request.extensions().get::<PeerConnection>().cloned();
        let envelope = request.into_inner();
        Ok(Response::new(
            self.node.get_cooperation(conn, envelope).await?,
        ))
    }

    async fn update_cooperation(
        &self,
        request: Request<SignedEnvelope>,
    ) -> Result<Response<SignedEnvelope>, Status> {
        let conn = request.extensions().get::<PeerConnection>().cloned();
        let envelope = request.into_inner();
        Ok(Response::new(
            self.node.update_cooperation(conn, envelope).await?,
        ))
    }

    async fn statistics(
        &self,
        request: Request<SignedEnvelope>,
    ) -> Result<Response<SignedEnvelope>, Status> {
        let conn = request.extensions().get::<PeerConnection>().cloned();
        let envelope = request.into_inner();
        Ok(Response::new(self.node.statistics(conn, envelope).await?))
    }

    async fn node_info(
        &self,
        _request: Request<NodeInfoRequest>,
    ) -> Result<Response<SignedEnvelope>, Status> {
        Ok(Response::new(self.entry.clone()))
    }

    async fn get_checkpoint(
        &self,
        _request: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::CheckpointResponse>, Status> {
        Ok(Response::new(self.node.serve_checkpoint()?))
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<pb::InclusionProofRequest>,
    ) -> Result<Response<pb::ProofResponse>, Status> {
        Ok(Response::new(
            self.node.serve_inclusion_proof(request.get_ref())?,
        ))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<pb::ConsistencyProofRequest>,
    ) -> Result<Response<pb::ProofResponse>, Status> {
        Ok(Response::new(
            self.node.serve_consistency_proof(request.get_ref())?,
        ))
    }

    async fn cosign(
        &self,
        request: Request<pb::CosignRequest>,
    ) -> Result<Response<pb::CosignResponse>, Status> {
        let conn = request.extensions().get::<PeerConnection>().cloned();
        self.node.accept_cosignature(conn, request.get_ref())?;
        Ok(Response::new(pb::CosignResponse {}))
    }

    async fn get_witnessed(
        &self,
        request: Request<pb::GetWitnessedRequest>,
    ) -> Result<Response<pb::CheckpointResponse>, Status> {
        Ok(Response::new(
            self.node.serve_witnessed(&request.get_ref().origin)?,
        ))
    }
}
