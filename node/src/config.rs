//! The node directory: configuration file, keys, and `init`.
//!
//! ```text
//! <home>/enlace.toml            configuration (this module)
//! <home>/directory-entry.json   this node's signed directory entry (give it to peers)
//! <home>/keys/signing.key       Ed25519 seed, hex (0600)
//! <home>/keys/tls.crt, tls.key  self-signed TLS certificate and key (0600)
//! <home>/keys/node.secret       HMAC key for hit references (0600)
//! <home>/keys/admin.token       the first operator's Admin API token (0600)
//! <home>/keys/data.key          data keys sealing the store, version:hex lines (0600)
//! <home>/data/                  the sled store (sealed values, hashed index keys)
//! ```
//!
//! `ENLACE_DATA_KEY` (64 hex characters), when set, is the data key instead
//! of `keys/data.key` (docs/architecture.md, "Encryption at rest").

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use enlace_proto::v1 as pb;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{envelope, identity, identity::NodeId, sealing::KeyFile};

/// The environment variable that provides the data key (64 hex characters)
/// instead of `keys/data.key`; it wins when set.
pub const DATA_KEY_ENV: &str = "ENLACE_DATA_KEY";

/// Where a node's data keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// `keys/data.key` (rotatable).
    File(PathBuf),
    /// [`DATA_KEY_ENV`] (one key, version 1; not rotatable by the node).
    Environment,
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::File(p) => write!(f, "{}", p.display()),
            KeySource::Environment => f.write_str(DATA_KEY_ENV),
        }
    }
}

/// Name of the configuration file inside a node directory.
pub const CONFIG_FILE: &str = "enlace.toml";
/// Name of the signed directory entry file.
pub const ENTRY_FILE: &str = "directory-entry.json";

/// Errors loading or creating a node directory.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The configuration is invalid.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Key material problem.
    #[error(transparent)]
    Key(#[from] identity::KeyError),
}

/// Network settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Where the federation (peer) port listens.
    pub peer_listen: String,
    /// Where the Admin port listens (loopback by default).
    pub admin_listen: String,
    /// The peer endpoint published in the directory entry (`host:port`).
    pub endpoint: String,
}

/// Limits and timeouts. Every field has a safe default.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest gRPC message accepted, bytes.
    pub max_message_bytes: usize,
    /// HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// Federation connections open at once.
    pub max_connections: usize,
    /// Federation connections of one peer open at once.
    pub max_connections_per_peer: usize,
    /// Per-request timeout on both ports, ms.
    pub request_timeout_ms: u64,
    /// TLS handshake timeout, ms.
    pub handshake_timeout_ms: u64,
    /// HTTP/2 keepalive ping interval, ms.
    pub keepalive_interval_ms: u64,
    /// Clock skew tolerated on issued/expiry times, ms.
    pub clock_skew_ms: i64,
    /// Longest lifetime (expires - issued) of a request, ms.
    pub max_request_lifetime_ms: i64,
    /// Lifetime given to outbound requests, ms.
    pub outbound_request_lifetime_ms: i64,
    /// Default deadline of an outbound fan-out, ms.
    pub search_deadline_ms: u64,
    /// Most items in one search.
    pub max_query_items: usize,
    /// Most cases in one import call.
    pub max_import_batch: usize,
    /// How often peers' audit logs are witnessed, ms (0: never).
    pub witness_interval_ms: u64,
    /// Recorded refusals of one peer within a minute before its requests are
    /// refused unrecorded for `refusal_throttle_ms` (0: never).
    pub max_refusals_per_minute: u32,
    /// How long such a throttling lasts, ms.
    pub refusal_throttle_ms: u64,
    /// sled's cache, MiB of on-disk page size; the node's memory for it is a
    /// few times this (docs/operations.md).
    pub store_cache_mib: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 256 * 1024,
            max_concurrent_streams: 64,
            max_connections: 512,
            max_connections_per_peer: 16,
            request_timeout_ms: 10_000,
            handshake_timeout_ms: 5_000,
            keepalive_interval_ms: 30_000,
            clock_skew_ms: 60_000,
            max_request_lifetime_ms: 300_000,
            outbound_request_lifetime_ms: 60_000,
            search_deadline_ms: 5_000,
            max_query_items: 64,
            max_import_batch: 10_000,
            witness_interval_ms: 60_000,
            max_refusals_per_minute: 120,
            refusal_throttle_ms: 60_000,
            store_cache_mib: 32,
        }
    }
}

impl Limits {
    /// Per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// Roles of local users.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    /// Runs the node: peers, agreements, cases, everything.
    Operator,
    /// Sends outbound searches and cooperation requests.
    Investigator,
    /// Decides incoming cooperation requests, field by field.
    Approver,
    /// Reads the audit log.
    Auditor,
}

/// A local Admin API user. Only the SHA-256 of the token is kept.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// User name, recorded in the audit log.
    pub name: String,
    /// Role.
    pub role: UserRole,
    /// Hex SHA-256 of the bearer token.
    pub token_sha256: String,
}

/// The content of `enlace.toml`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This node's id.
    pub node_id: NodeId,
    /// Network settings.
    pub network: Network,
    /// National point of contact published in the directory entry.
    pub contact: Contact,
    /// Limits.
    #[serde(default)]
    pub limits: Limits,
    /// Admin API users.
    pub users: Vec<User>,
    /// Band thresholds of the person matcher (docs/matching.md).
    #[serde(default)]
    pub matching: MatchingConfig,
    /// Auditors (e.g. the ministry) whose cosignatures of our checkpoints are kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auditors: Vec<Auditor>,
}

/// Minimum scores of the match bands reported to peers. Precision first:
/// raise `strong` to report fewer, surer matches.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MatchingConfig {
    /// Minimum score of `exact` (also needs identical names and full date of birth).
    pub exact: f64,
    /// Minimum score of `strong`.
    pub strong: f64,
    /// Minimum score of `possible`; below it nothing is reported.
    pub possible: f64,
}

impl Default for MatchingConfig {
    fn default() -> Self {
        let t = crate::matching::Thresholds::default();
        MatchingConfig {
            exact: t.exact,
            strong: t.strong,
            possible: t.possible,
        }
    }
}

impl MatchingConfig {
    /// As the matcher's thresholds.
    pub fn thresholds(&self) -> crate::matching::Thresholds {
        crate::matching::Thresholds {
            exact: self.exact,
            strong: self.strong,
            possible: self.possible,
        }
    }
}

/// An auditor key allowed to cosign this node's checkpoints (`enlace audit cosign`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Auditor {
    /// Cosignature key name, e.g. `ministry.mex/audit`.
    pub name: String,
    /// Hex of the 32-byte Ed25519 public key.
    pub public_key: String,
}

/// The national point of contact.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Authority name.
    pub authority: String,
    /// E-mail.
    #[serde(default)]
    pub email: String,
    /// Phone.
    #[serde(default)]
    pub phone: String,
}

impl From<&Contact> for pb::PointOfContact {
    fn from(c: &Contact) -> Self {
        pb::PointOfContact {
            authority: c.authority.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
        }
    }
}

/// Paths inside a node directory.
#[derive(Clone, Debug)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// A node directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Home { root: root.into() }
    }
    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `enlace.toml`.
    pub fn config(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }
    /// The signed directory entry.
    pub fn entry(&self) -> PathBuf {
        self.root.join(ENTRY_FILE)
    }
    /// The signing key.
    pub fn signing_key(&self) -> PathBuf {
        self.root.join("keys/signing.key")
    }
    /// The TLS certificate.
    pub fn tls_cert(&self) -> PathBuf {
        self.root.join("keys/tls.crt")
    }
    /// The TLS private key.
    pub fn tls_key(&self) -> PathBuf {
        self.root.join("keys/tls.key")
    }
    /// The hit-reference secret.
    pub fn node_secret(&self) -> PathBuf {
        self.root.join("keys/node.secret")
    }
    /// The first operator's token.
    pub fn admin_token(&self) -> PathBuf {
        self.root.join("keys/admin.token")
    }
    /// The data keys that seal the store.
    pub fn data_key(&self) -> PathBuf {
        self.root.join("keys/data.key")
    }
    /// The store directory.
    pub fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Reads and validates `enlace.toml`.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        let path = self.config();
        let text = fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        parse_config(&text).map_err(|reason| ConfigError::Invalid {
            path: path.display().to_string(),
            reason,
        })
    }

    /// Reads the hit-reference secret.
    pub fn read_node_secret(&self) -> Result<[u8; 32], ConfigError> {
        let path = self.node_secret();
        identity::check_private(&path)?;
        let text = fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| ConfigError::Invalid {
                path: path.display().to_string(),
                reason: "expected 64 hex characters".into(),
            })
    }
}

impl Home {
    /// The data keys: [`DATA_KEY_ENV`] when set, else `keys/data.key`
    /// (refused when group or others may read it).
    pub fn read_data_keys(&self) -> Result<(KeyFile, KeySource), ConfigError> {
        self.read_data_keys_from(std::env::var(DATA_KEY_ENV).ok().as_deref())
    }

    /// [`Home::read_data_keys`] with the environment value given.
    pub fn read_data_keys_from(
        &self,
        env: Option<&str>,
    ) -> Result<(KeyFile, KeySource), ConfigError> {
        if let Some(value) = env {
            let file = KeyFile::from_hex(value).map_err(|reason| ConfigError::Invalid {
                path: DATA_KEY_ENV.into(),
                reason,
            })?;
            return Ok((file, KeySource::Environment));
        }
        let path = self.data_key();
        let shown = path.display().to_string();
        if !path.exists() {
            return Err(ConfigError::Invalid {
                path: shown,
                reason: format!(
                    "no data key: the store is encrypted at rest and this file (or {DATA_KEY_ENV}) \
                     holds its key; restore it from where the node's keys are kept"
                ),
            });
        }
        identity::check_private(&path)?;
        let text = fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            path: shown.clone(),
            source,
        })?;
        let file = KeyFile::parse(&text).map_err(|reason| ConfigError::Invalid {
            path: shown,
            reason,
        })?;
        Ok((file, KeySource::File(path)))
    }

    /// Replaces `keys/data.key` with `file`, atomically and durably (a new
    /// file with mode 0600, synced, renamed over the old one, directory synced).
    pub fn write_data_keys(&self, file: &KeyFile) -> Result<(), ConfigError> {
        let path = self.data_key();
        let tmp = path.with_extension("key.new");
        let io = |p: &Path| {
            let p = p.display().to_string();
            move |source| ConfigError::Io { path: p, source }
        };
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&tmp)(e)),
        }
        identity::write_secret(&tmp, file.render().as_bytes())?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        if let Some(dir) = path.parent() {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        Ok(())
    }
}

/// Parses and validates configuration text.
pub fn parse_config(text: &str) -> Result<Config, String> {
    let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
    for (name, addr) in [
        ("network.peer_listen", &config.network.peer_listen),
        ("network.admin_listen", &config.network.admin_listen),
    ] {
        addr.parse::<std::net::SocketAddr>()
            .map_err(|_| format!("{name}: {addr:?} is not an IP address and port"))?;
    }
    if !config.network.endpoint.contains(':') {
        return Err("network.endpoint must be host:port".into());
    }
    if config.users.is_empty() {
        return Err("at least one [[users]] entry is needed for the Admin API".into());
    }
    let mut names = std::collections::BTreeSet::new();
    for u in &config.users {
        if u.name.is_empty()
            || u.name.contains(':')
            || u.name.len() > 64
            || !names.insert(u.name.as_str())
        {
            return Err(format!(
                "user {:?}: names are 1 to 64 characters, unique, without ':'",
                u.name
            ));
        }
        let lower_hex = u.token_sha256.len() == 64
            && u.token_sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !lower_hex {
            return Err(format!(
                "user {:?}: token_sha256 must be 64 lowercase hex characters",
                u.name
            ));
        }
    }
    let m = &config.matching;
    let ordered =
        0.0 < m.possible && m.possible <= m.strong && m.strong <= m.exact && m.exact <= 1.0;
    if !ordered {
        return Err("matching: need 0 < possible ≤ strong ≤ exact ≤ 1".into());
    }
    for a in &config.auditors {
        let key = hex::decode(&a.public_key)
            .ok()
            .and_then(|k| crate::envelope::parse_public_key(&k).ok());
        if key.is_none()
            || a.name.is_empty()
            || a.name.contains(char::is_whitespace)
            || a.name.contains('+')
        {
            return Err(format!(
                "auditor {:?}: a name without spaces or '+', and a valid Ed25519 public key in hex",
                a.name
            ));
        }
    }
    let l = &config.limits;
    if l.max_message_bytes < 1024
        || l.max_query_items == 0
        || l.max_concurrent_streams == 0
        || l.max_connections == 0
        || l.max_connections_per_peer == 0
        || l.store_cache_mib == 0
        || l.store_cache_mib > 1 << 20
    {
        return Err(
            "limits must be positive (max_message_bytes at least 1024, store_cache_mib at most 1048576)"
                .into(),
        );
    }
    Ok(config)
}

/// Adds an Admin user of `role` to `enlace.toml` (appended as a
/// `[[users]]` table, so the operator's comments stay) and returns the
/// bearer token `name:secret`, shown once and never stored (only its
/// SHA-256 is). The file is validated whole before it is replaced; the
/// running node reads users at start-up, so restart it to apply.
pub fn add_user(home: &Home, name: &str, role: UserRole) -> Result<String, ConfigError> {
    let path = home.config();
    let invalid = |reason: String| ConfigError::Invalid {
        path: path.display().to_string(),
        reason,
    };
    let io = |source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    };
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(invalid(format!(
            "user {name:?}: names are 1 to 64 letters, digits, '.', '_' or '-'"
        )));
    }
    let text = fs::read_to_string(&path).map_err(io)?;
    let config = parse_config(&text).map_err(invalid)?;
    if config.users.iter().any(|u| u.name == name) {
        return Err(invalid(format!("user {name:?} exists already")));
    }
    let secret = random_hex(24);
    let role_name = match role {
        UserRole::Operator => "operator",
        UserRole::Investigator => "investigator",
        UserRole::Approver => "approver",
        UserRole::Auditor => "auditor",
    };
    let mut updated = text.clone();
    if !updated.ends_with('\n') {
        updated.push('\n');
    }
    updated.push_str(&format!(
        "\n[[users]]\nname = \"{name}\"\nrole = \"{role_name}\"\ntoken_sha256 = \"{}\"\n",
        token_hash(&secret)
    ));
    parse_config(&updated).map_err(invalid)?;
    let tmp = path.with_extension("toml.new");
    fs::write(&tmp, updated).map_err(io)?;
    fs::rename(&tmp, &path).map_err(io)?;
    Ok(format!("{name}:{secret}"))
}

/// Hex SHA-256 of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Options of [`init`].
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// Node id.
    pub node_id: NodeId,
    /// Federation listen address.
    pub peer_listen: String,
    /// Admin listen address.
    pub admin_listen: String,
    /// Published endpoint; defaults to `peer_listen`.
    pub endpoint: Option<String>,
    /// Point of contact.
    pub contact: Contact,
}

/// What [`init`] created.
#[derive(Clone, Debug)]
pub struct Initialized {
    /// The node directory.
    pub home: Home,
    /// The operator's Admin token (also written to `keys/admin.token`).
    pub admin_token: String,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Creates a node directory: keys, TLS certificate, configuration, signed
/// directory entry and an operator token. Refuses to overwrite an existing one.
pub fn init(root: &Path, opts: &InitOptions, now_ms: i64) -> Result<Initialized, ConfigError> {
    let home = Home::new(root);
    if home.config().exists() {
        return Err(ConfigError::Invalid {
            path: home.config().display().to_string(),
            reason: "already initialised; refusing to overwrite".into(),
        });
    }
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ConfigError::Io { path, source }
    };
    fs::create_dir_all(root.join("keys")).map_err(io(root))?;
    fs::create_dir_all(home.data()).map_err(io(root))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let keys = root.join("keys");
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o700)).map_err(io(&keys))?;
    }

    let signing = identity::generate_signing_key();
    identity::write_secret(
        &home.signing_key(),
        hex::encode(signing.to_bytes()).as_bytes(),
    )?;
    let (cert_pem, key_pem) = identity::generate_tls(&opts.node_id)?;
    fs::write(home.tls_cert(), cert_pem).map_err(io(&home.tls_cert()))?;
    identity::write_secret(&home.tls_key(), key_pem.as_bytes())?;
    identity::write_secret(&home.node_secret(), random_hex(32).as_bytes())?;
    identity::write_secret(&home.data_key(), KeyFile::generate().render().as_bytes())?;
    let token = random_hex(24);
    identity::write_secret(
        &home.admin_token(),
        format!("operator:{token}\n").as_bytes(),
    )?;

    let config = Config {
        node_id: opts.node_id.clone(),
        network: Network {
            peer_listen: opts.peer_listen.clone(),
            admin_listen: opts.admin_listen.clone(),
            endpoint: opts
                .endpoint
                .clone()
                .unwrap_or_else(|| opts.peer_listen.clone()),
        },
        contact: opts.contact.clone(),
        limits: Limits::default(),
        users: vec![User {
            name: "operator".into(),
            role: UserRole::Operator,
            token_sha256: token_hash(&token),
        }],
        matching: MatchingConfig::default(),
        auditors: Vec::new(),
    };
    let text = toml::to_string(&config).map_err(|e| ConfigError::Invalid {
        path: home.config().display().to_string(),
        reason: e.to_string(),
    })?;
    parse_config(&text).map_err(|reason| ConfigError::Invalid {
        path: home.config().display().to_string(),
        reason,
    })?;
    write_entry(&home, &config, now_ms)?;
    fs::write(home.config(), text).map_err(io(&home.config()))?;
    Ok(Initialized {
        home,
        admin_token: format!("operator:{token}"),
    })
}

/// (Re)writes the signed directory entry from the configuration and keys.
pub fn write_entry(
    home: &Home,
    config: &Config,
    now_ms: i64,
) -> Result<pb::SignedEnvelope, ConfigError> {
    let signer = envelope::Signer::new(identity::read_signing_key(&home.signing_key())?);
    let tls = identity::read_tls(&home.tls_cert(), &home.tls_key())?;
    let entry = identity::sign_entry(
        &signer,
        &config.node_id,
        &config.network.endpoint,
        tls.pin,
        (&config.contact).into(),
        now_ms,
    );
    fs::write(home.entry(), envelope::to_json(&entry)).map_err(|source| ConfigError::Io {
        path: home.entry().display().to_string(),
        source,
    })?;
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_creates_a_loadable_home_and_refuses_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let opts = InitOptions {
            node_id: NodeId::parse("MEX").unwrap(),
            peer_listen: "127.0.0.1:7100".into(),
            admin_listen: "127.0.0.1:7101".into(),
            endpoint: None,
            contact: Contact {
                authority: "Fiscalía".into(),
                ..Default::default()
            },
        };
        let done = init(dir.path(), &opts, 1).unwrap();
        let config = done.home.load_config().unwrap();
        assert_eq!(config.node_id.as_str(), "MEX");
        assert_eq!(config.network.endpoint, "127.0.0.1:7100");
        let entry = envelope::from_json(&fs::read_to_string(done.home.entry()).unwrap()).unwrap();
        let peer = identity::verify_entry(&entry).unwrap();
        assert_eq!(peer.node_id.as_str(), "MEX");
        assert!(init(dir.path(), &opts, 1).is_err());
        let token = done.admin_token.split_once(':').unwrap().1;
        assert_eq!(config.users[0].token_sha256, token_hash(token));
    }

    proptest::proptest! {
        /// `enlace.toml` parsing never panics: arbitrary text, and the example
        /// with one byte replaced anywhere.
        #[test]
        fn config_parser_never_panics(text in "\\PC{0,300}", at in 0usize..4096, byte in proptest::num::u8::ANY) {
            let _ = parse_config(&text);
            let example = include_str!("../../docs/examples/enlace.toml");
            let mut bytes = example.as_bytes().to_vec();
            let i = at % bytes.len();
            bytes[i] = byte;
            if let Ok(t) = std::str::from_utf8(&bytes) {
                let _ = parse_config(t);
            }
        }
    }

    #[test]
    fn limits_are_checked() {
        let text = include_str!("../../docs/examples/enlace.toml");
        assert!(text.contains("store_cache_mib = 32"));
        let cache =
            |v: &str| text.replace("store_cache_mib = 32", &format!("store_cache_mib = {v}"));
        assert_eq!(
            parse_config(&cache("256")).unwrap().limits.store_cache_mib,
            256
        );
        for bad in ["0", "1048577"] {
            assert!(parse_config(&cache(bad))
                .unwrap_err()
                .contains("store_cache_mib"));
        }
        let items = text.replace("max_query_items = 64", "max_query_items = 0");
        assert!(parse_config(&items).unwrap_err().contains("positive"));
        let without = text.replace("store_cache_mib = 32\n", "");
        assert_eq!(
            parse_config(&without).unwrap().limits.store_cache_mib,
            Limits::default().store_cache_mib
        );
    }

    #[test]
    fn users_are_checked() {
        let text = include_str!("../../docs/examples/enlace.toml");
        let upper = text.replace(
            "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
            &"A".repeat(64),
        );
        assert!(parse_config(&upper).unwrap_err().contains("lowercase"));
        let dup = text.replace("investigator-1", "operator");
        assert!(parse_config(&dup).unwrap_err().contains("unique"));
        let colon = text.replace("investigator-1", "inv:1");
        assert!(parse_config(&colon).is_err());
    }

    #[test]
    #[cfg(unix)]
    fn world_readable_keys_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let opts = InitOptions {
            node_id: NodeId::parse("COL").unwrap(),
            peer_listen: "127.0.0.1:7100".into(),
            admin_listen: "127.0.0.1:7101".into(),
            endpoint: None,
            contact: Contact::default(),
        };
        let done = init(dir.path(), &opts, 1).unwrap();
        for key in [
            done.home.signing_key(),
            done.home.tls_key(),
            done.home.node_secret(),
            done.home.data_key(),
        ] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = match key == done.home.node_secret() {
                true => done.home.read_node_secret().unwrap_err().to_string(),
                false if key == done.home.data_key() => {
                    done.home.read_data_keys_from(None).unwrap_err().to_string()
                }
                false if key == done.home.signing_key() => {
                    identity::read_signing_key(&key).unwrap_err().to_string()
                }
                false => identity::read_tls(&done.home.tls_cert(), &key)
                    .unwrap_err()
                    .to_string(),
            };
            assert!(err.contains("chmod 600"), "{err}");
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }

    #[test]
    fn data_keys_come_from_the_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let opts = InitOptions {
            node_id: NodeId::parse("GTM").unwrap(),
            peer_listen: "127.0.0.1:7100".into(),
            admin_listen: "127.0.0.1:7101".into(),
            endpoint: None,
            contact: Contact::default(),
        };
        let done = init(dir.path(), &opts, 1).unwrap();
        let home = &done.home;
        let (file, source) = home.read_data_keys_from(None).unwrap();
        assert_eq!(source, KeySource::File(home.data_key()));
        assert_eq!(file.current(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(home.data_key()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Rotation rewrites the file in place, still private.
        let rotated = file.rotated().unwrap();
        home.write_data_keys(&rotated).unwrap();
        assert_eq!(home.read_data_keys_from(None).unwrap().0, rotated);
        // The environment wins.
        let env = "42".repeat(32);
        let (from_env, source) = home.read_data_keys_from(Some(&env)).unwrap();
        assert_eq!(source, KeySource::Environment);
        assert_eq!(from_env.keys, vec![(1, [0x42; 32])]);
        let err = home.read_data_keys_from(Some("nope")).unwrap_err();
        assert!(err.to_string().contains(DATA_KEY_ENV), "{err}");
        // Without the file nor the variable: a clear refusal naming the file.
        fs::remove_file(home.data_key()).unwrap();
        let err = home.read_data_keys_from(None).unwrap_err().to_string();
        assert!(err.contains("keys/data.key"), "{err}");
        assert!(err.contains(DATA_KEY_ENV), "{err}");
    }

    #[test]
    fn example_config_parses() {
        let text = include_str!("../../docs/examples/enlace.toml");
        let config = parse_config(text).unwrap();
        assert_eq!(config.node_id.as_str(), "GTM");
    }
}
