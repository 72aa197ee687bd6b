//! Admin API calls with clear errors.

use std::path::Path;

use anyhow::{anyhow, bail, Context as _};
use enlace_node::{config::Home, envelope, error::code_name};
use enlace_proto::v1::{self as pb, admin_client::AdminClient};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

/// Adds the bearer token to every call.
#[derive(Clone)]
pub(crate) struct Token(String);

impl tonic::service::Interceptor for Token {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let v = format!("Bearer {}", self.0)
            .parse()
            .map_err(|_| tonic::Status::invalid_argument("token is not valid header text"))?;
        req.metadata_mut().insert("authorization", v);
        Ok(req)
    }
}

/// An authenticated Admin client.
pub(crate) type Admin = AdminClient<InterceptedService<Channel, Token>>;

/// Connects to the Admin API of the node in `home`.
pub(crate) async fn connect(home: &Home, token: Option<&str>) -> anyhow::Result<Admin> {
    let config = home.load_config()?;
    let token = match token {
        Some(t) => t.to_owned(),
        None => std::fs::read_to_string(home.admin_token())
            .with_context(|| {
                format!(
                    "reading the Admin token {} (or pass --token)",
                    home.admin_token().display()
                )
            })?
            .trim()
            .to_owned(),
    };
    let addr = config.network.admin_listen.replace("0.0.0.0", "127.0.0.1");
    connect_addr(&addr, token).await
}

/// Connects to an Admin API at `addr` with `token`.
pub(crate) async fn connect_addr(addr: &str, token: String) -> anyhow::Result<Admin> {
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect_timeout(std::time::Duration::from_secs(3))
        .connect()
        .await
        .with_context(|| {
            format!(
                "cannot reach the node's Admin API at {addr}: is the node running (enlace node)?"
            )
        })?;
    Ok(AdminClient::with_interceptor(channel, Token(token))
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024))
}

pub(crate) fn refused(s: tonic::Status) -> anyhow::Error {
    anyhow!(
        "the node refused: {} ({})",
        s.message(),
        code_name(s.code())
    )
}

pub(crate) async fn status(admin: &mut Admin) -> anyhow::Result<pb::StatusResponse> {
    Ok(admin
        .status(pb::StatusRequest {})
        .await
        .map_err(refused)?
        .into_inner())
}

pub(crate) async fn rotate_data_key(admin: &mut Admin) -> anyhow::Result<u32> {
    Ok(admin
        .rotate_data_key(pb::RotateDataKeyRequest {})
        .await
        .map_err(refused)?
        .into_inner()
        .version)
}

pub(crate) async fn add_peer(
    admin: &mut Admin,
    entry_json: &str,
) -> anyhow::Result<pb::PeerSummary> {
    let entry = envelope::from_json(entry_json).map_err(|e| anyhow!("directory entry: {e}"))?;
    Ok(admin
        .add_peer(pb::AddPeerRequest { entry: Some(entry) })
        .await
        .map_err(refused)?
        .into_inner())
}

pub(crate) async fn list_peers(admin: &mut Admin) -> anyhow::Result<Vec<pb::PeerSummary>> {
    Ok(admin
        .list_peers(pb::ListPeersRequest {})
        .await
        .map_err(refused)?
        .into_inner()
        .peers)
}

pub(crate) async fn propose_agreement(admin: &mut Admin, json: &str) -> anyhow::Result<String> {
    Ok(admin
        .propose_agreement(pb::ProposeAgreementRequest {
            agreement_json: json.to_owned(),
        })
        .await
        .map_err(refused)?
        .into_inner()
        .envelope_json)
}

pub(crate) async fn sign_agreement(admin: &mut Admin, json: &str) -> anyhow::Result<String> {
    Ok(admin
        .sign_agreement(pb::SignedAgreement {
            envelope_json: json.to_owned(),
        })
        .await
        .map_err(refused)?
        .into_inner()
        .envelope_json)
}

pub(crate) async fn activate_agreement(
    admin: &mut Admin,
    json: &str,
) -> anyhow::Result<pb::AgreementSummary> {
    Ok(admin
        .activate_agreement(pb::SignedAgreement {
            envelope_json: json.to_owned(),
        })
        .await
        .map_err(refused)?
        .into_inner())
}

pub(crate) async fn revoke_agreement(
    admin: &mut Admin,
    id: &str,
    version: u32,
    reason: &str,
) -> anyhow::Result<Vec<pb::AgreementSummary>> {
    Ok(admin
        .revoke_agreement(pb::RevokeAgreementRequest {
            id: id.to_owned(),
            version,
            reason: reason.to_owned(),
        })
        .await
        .map_err(refused)?
        .into_inner()
        .agreements)
}

pub(crate) async fn show_agreement(
    admin: &mut Admin,
    id: &str,
    version: u32,
) -> anyhow::Result<pb::ShowAgreementResponse> {
    Ok(admin
        .show_agreement(pb::ShowAgreementRequest {
            id: id.to_owned(),
            version,
        })
        .await
        .map_err(refused)?
        .into_inner())
}

pub(crate) async fn explain(
    admin: &mut Admin,
    request: pb::AdminExplainRequest,
) -> anyhow::Result<pb::AdminExplainResponse> {
    Ok(admin.explain(request).await.map_err(refused)?.into_inner())
}

pub(crate) async fn list_agreements(
    admin: &mut Admin,
) -> anyhow::Result<Vec<pb::AgreementSummary>> {
    Ok(admin
        .list_agreements(pb::ListAgreementsRequest {})
        .await
        .map_err(refused)?
        .into_inner()
        .agreements)
}

pub(crate) async fn import(
    admin: &mut Admin,
    docs: Vec<String>,
) -> anyhow::Result<pb::ImportCasesResponse> {
    Ok(admin
        .import_cases(pb::ImportCasesRequest { case_json: docs })
        .await
        .map_err(refused)?
        .into_inner())
}

/// One page of stored cases: the documents and whether more follow.
pub(crate) async fn export_page(
    admin: &mut Admin,
    offset: u64,
    limit: u32,
) -> anyhow::Result<(Vec<String>, bool)> {
    let r = admin
        .export_cases(pb::ExportCasesRequest { offset, limit })
        .await
        .map_err(refused)?
        .into_inner();
    Ok((r.case_json, r.more))
}

pub(crate) async fn search(
    admin: &mut Admin,
    request: pb::OutboundSearchRequest,
) -> anyhow::Result<pb::OutboundSearchResponse> {
    Ok(admin.search(request).await.map_err(refused)?.into_inner())
}

pub(crate) async fn audit_tail(
    admin: &mut Admin,
    limit: u32,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let records = admin
        .audit_tail(pb::AuditTailRequest { limit })
        .await
        .map_err(refused)?
        .into_inner()
        .records_json;
    records
        .iter()
        .map(|r| serde_json::from_str(r).context("the node sent an unreadable audit record"))
        .collect()
}

/// Starts streaming the whole audit log (leaves, then checkpoints and keys).
pub(crate) async fn export_audit(
    admin: &mut Admin,
) -> anyhow::Result<tonic::Streaming<pb::AuditChunk>> {
    Ok(admin
        .export_audit(pb::ExportAuditRequest {})
        .await
        .map_err(refused)?
        .into_inner())
}

/// The node's latest checkpoint note with its cosignatures (empty when none).
pub(crate) async fn latest_checkpoint(admin: &mut Admin) -> anyhow::Result<String> {
    Ok(admin
        .latest_checkpoint(pb::LatestCheckpointRequest {})
        .await
        .map_err(refused)?
        .into_inner()
        .note)
}

/// Hands an auditor's cosignature of one of the node's checkpoints to the node.
pub(crate) async fn add_cosignature(
    admin: &mut Admin,
    body: &str,
    line: &str,
    name: &str,
) -> anyhow::Result<()> {
    admin
        .add_cosignature(pb::AddCosignatureRequest {
            checkpoint: body.to_owned(),
            cosignature: line.to_owned(),
            name: name.to_owned(),
        })
        .await
        .map_err(refused)?;
    Ok(())
}

/// What the node witnessed of its peers' logs, and its alarms.
pub(crate) async fn witness_status(admin: &mut Admin) -> anyhow::Result<pb::WitnessStatusResponse> {
    Ok(admin
        .witness_status(pb::WitnessStatusRequest {})
        .await
        .map_err(refused)?
        .into_inner())
}

/// Reads a file, or stdin for `-`.
pub(crate) fn read_input(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    }
}

/// Builds query items from the search flags.
pub(crate) fn items(
    documents: &[String],
    phones: &[String],
    emails: &[String],
    names: &[String],
) -> anyhow::Result<Vec<pb::QueryItem>> {
    use pb::query_item::Kind;
    let mut items = Vec::new();
    let mut push = |prefix: &str, i: usize, kind: Kind| {
        items.push(pb::QueryItem {
            item_id: format!("{prefix}{}", i + 1),
            kind: Some(kind),
        })
    };
    for (i, d) in documents.iter().enumerate() {
        let (issuer, number) = d.split_once(':').ok_or_else(|| {
            anyhow!("--document {d:?}: expected ISSUER:NUMBER, e.g. GTM:A1234567")
        })?;
        push(
            "document",
            i,
            Kind::Identifier(pb::Identifier {
                kind: pb::IdentifierKind::Document as i32,
                value: number.to_owned(),
                document_type: String::new(),
                issuing_country: issuer.to_owned(),
            }),
        );
    }
    for (i, p) in phones.iter().enumerate() {
        push(
            "phone",
            i,
            Kind::Identifier(pb::Identifier {
                kind: pb::IdentifierKind::Phone as i32,
                value: p.clone(),
                ..Default::default()
            }),
        );
    }
    for (i, e) in emails.iter().enumerate() {
        push(
            "email",
            i,
            Kind::Identifier(pb::Identifier {
                kind: pb::IdentifierKind::Email as i32,
                value: e.clone(),
                ..Default::default()
            }),
        );
    }
    for (i, n) in names.iter().enumerate() {
        let parts: Vec<&str> = n.split('/').collect();
        let [given, surnames, dob] = parts.as_slice() else {
            bail!("--name {n:?}: expected \"GIVEN NAMES/SURNAMES/YYYY-MM-DD\"");
        };
        push(
            "name",
            i,
            Kind::Name(pb::NameAndBirth {
                given_names: given.split_whitespace().map(str::to_owned).collect(),
                surnames: surnames.split_whitespace().map(str::to_owned).collect(),
                date_of_birth: dob.trim().to_owned(),
            }),
        );
    }
    if items.is_empty() {
        bail!("nothing to search: give --document, --phone, --email or --name");
    }
    Ok(items)
}
