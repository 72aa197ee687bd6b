//! `enlace`: the operator, investigator and auditor tool for Enlace nodes, and
//! the local federation demo.
//!
//! Commands that act on a running node talk to its Admin API (address from the
//! node's `enlace.toml`, token from `keys/admin.token` or `--token`).

mod audit;
mod client;
mod cooperation;
mod demo;
mod generate;
mod import;
mod output;
mod records;
mod report;
mod stats;
mod synth;

use std::{path::PathBuf, process::ExitCode};

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use enlace_node::{
    config::{self, Contact, Home, InitOptions},
    identity::NodeId,
    node::now_ms,
};
use enlace_proto::v1 as pb;

/// Enlace: signed, agreement-checked, audited case exchange between national authorities.
#[derive(Parser)]
#[command(name = "enlace", version, about, propagate_version = true)]
struct Cli {
    /// The node directory (created by `enlace init`).
    #[arg(long, global = true, env = "ENLACE_HOME")]
    home: Option<PathBuf>,
    /// Admin token (`user:secret`); defaults to the node's keys/admin.token.
    #[arg(long, global = true, env = "ENLACE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a node directory: keys, TLS certificate, configuration, signed directory entry.
    Init(InitArgs),
    /// Run the node in the foreground (same as `enlace-node --home DIR`).
    Node,
    /// Show the node's status.
    Status,
    /// Pinned peers.
    #[command(subcommand)]
    Peer(PeerCmd),
    /// Local Admin users and their roles.
    #[command(subcommand)]
    User(UserCmd),
    /// Information-sharing agreements: propose, sign, activate, revoke, list, show.
    #[command(subcommand)]
    Agreement(AgreementCmd),
    /// The policy engine: explain what an agreement releases.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Case records.
    #[command(subcommand)]
    Case(CaseCmd),
    /// The store's encryption at rest: rotate the data key.
    #[command(subcommand)]
    Data(DataCmd),
    /// Step-2 cooperation requests: request, list, show, approve, deny, withdraw, fetch.
    #[command(subcommand)]
    Cooperation(cooperation::CooperationCmd),
    /// Federated statistics: protected, disaggregated tables combined across countries.
    #[command(subcommand)]
    Stats(stats::StatsCmd),
    /// Step-1 hit/no-hit search across every peer whose agreement permits it.
    Search(SearchArgs),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Run a local three-country federation (MEX, GTM, COL) end to end.
    Demo(demo::DemoArgs),
    /// Write realistic synthetic case records for a member state (deterministic per seed).
    Generate(generate::GenerateArgs),
}

#[derive(Args)]
struct InitArgs {
    /// Node id: ISO 3166-1 alpha-3, optionally with -AGENCY (MEX, MEX-FGR).
    #[arg(long)]
    node_id: String,
    /// Federation (peer) listen address.
    #[arg(long, default_value = "127.0.0.1:7100")]
    peer_listen: String,
    /// Admin listen address (keep it on loopback).
    #[arg(long, default_value = "127.0.0.1:7101")]
    admin_listen: String,
    /// Endpoint peers dial, published in the directory entry (default: peer-listen).
    #[arg(long)]
    endpoint: Option<String>,
    /// National authority (point of contact).
    #[arg(long, default_value = "")]
    authority: String,
    /// Contact e-mail.
    #[arg(long, default_value = "")]
    email: String,
    /// Contact phone.
    #[arg(long, default_value = "")]
    phone: String,
}

#[derive(Subcommand)]
enum PeerCmd {
    /// Verify a peer's signed directory entry file and pin it.
    Add {
        /// The peer's directory-entry.json.
        entry: PathBuf,
    },
    /// List pinned peers.
    List,
    /// Un-pin a peer (e.g. after its keys were compromised): it can no longer connect.
    Remove {
        /// The peer's node id.
        node_id: String,
    },
}

#[derive(Subcommand)]
enum AgreementCmd {
    /// Validate agreement terms (JSON, docs/agreements.md) and sign them as the
    /// first party; send the signed file to the other party.
    Propose {
        /// The terms.
        file: PathBuf,
        /// Where to write the signed agreement (default: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Add this node's signature to an agreement the other party proposed.
    Sign {
        /// The signed agreement received.
        file: PathBuf,
        /// Where to write the agreement signed by both (default: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Hold an agreement signed by both parties: it governs answers from now on.
    Activate {
        /// The agreement signed by both.
        file: PathBuf,
    },
    /// Revoke an agreement (every version, or one): refused for new requests at once.
    Revoke {
        /// Agreement id.
        id: String,
        /// Only this version (default: every version held).
        #[arg(
            id = "agreement_version",
            long = "agreement-version",
            default_value_t = 0
        )]
        version: u32,
        /// Why (recorded; no personal data).
        #[arg(long)]
        reason: String,
    },
    /// List agreements held, with their status.
    List,
    /// Show one agreement: terms, signatures, status.
    Show {
        /// Agreement id.
        id: String,
        /// Version (default: the highest held).
        #[arg(
            id = "agreement_version",
            long = "agreement-version",
            default_value_t = 0
        )]
        version: u32,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user to enlace.toml and print its token once (restart the node to apply).
    Add {
        /// User name (recorded in the audit log).
        name: String,
        /// operator, investigator, approver or auditor.
        #[arg(long)]
        role: String,
    },
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// What a peer would get from this node for a purpose and query kinds (or,
    /// with --remote, what this node would get from the peer), field by field.
    /// No data is involved; the explanation is signed and audited.
    Explain {
        /// The peer.
        #[arg(long)]
        peer: String,
        /// Purpose code.
        #[arg(long)]
        purpose: String,
        /// Query kinds (identifier, name_dob); repeatable.
        #[arg(long = "kind")]
        kinds: Vec<String>,
        /// Agreement id (default: the one this node would cite).
        #[arg(long, default_value = "")]
        agreement: String,
        /// Ask the peer (a signed Exchange.Explain) instead of deciding locally.
        #[arg(long)]
        remote: bool,
    },
}

#[derive(Subcommand)]
enum CaseCmd {
    /// Add one case (a JSON document, see docs/data-model.md; `-` reads stdin).
    Add {
        /// The case file.
        file: PathBuf,
    },
    /// Import cases from a CSV or JSON-lines file (docs/data-model.md).
    ///
    /// The whole file is validated first; with any problem nothing is imported
    /// (unless --skip-invalid). Valid cases are sent in atomic batches; importing
    /// the same file again is harmless (cases are replaced by id).
    Import {
        /// The file: .csv (one row per person in a case) or .jsonl (one case per line).
        file: PathBuf,
        /// Cases per durable batch (1 to 10000).
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Import the valid cases even if some are invalid; the invalid ones go to a rejects file.
        #[arg(long)]
        skip_invalid: bool,
        /// Validate only, offline (no node needed); exit non-zero on any problem.
        #[arg(long)]
        check: bool,
        /// The file format (default: from the extension, else from the content).
        #[arg(long, value_enum)]
        format: Option<records::Format>,
        /// Convert from this encoding (files saved by spreadsheets as Latin-1 / Windows-1252).
        #[arg(long, value_enum, default_value = "utf8")]
        encoding: records::Encoding,
        /// Where --skip-invalid writes the refused cases (default: FILE.rejects.csv|jsonl).
        #[arg(long)]
        rejects: Option<PathBuf>,
    },
    /// Export every stored case as CSV or JSON lines (the import formats).
    Export {
        /// The output file (`-` for standard output).
        file: PathBuf,
        /// The format (default: from the extension, else JSON lines).
        #[arg(long, value_enum)]
        format: Option<records::Format>,
    },
}

#[derive(Subcommand)]
enum DataCmd {
    /// Seal with a new data key from now on, re-encrypt every stored value in
    /// the background (searches go on), then retire the old key from
    /// keys/data.key. Operator only; audited. `enlace status` shows progress.
    RotateKey {
        /// Wait until the re-encryption has finished and the old key is retired.
        #[arg(long)]
        wait: bool,
    },
    /// Rewrite the store into fresh files, dropping the stale copies sled keeps
    /// of rewritten values (e.g. copies sealed under a retired key). Offline:
    /// stop the node first.
    Compact,
}

#[derive(Args)]
struct SearchArgs {
    /// Purpose code (investigation, prosecution, victim_identification, missing_persons).
    #[arg(long, default_value = "investigation")]
    purpose: String,
    /// Your case reference.
    #[arg(long, default_value = "")]
    case_ref: String,
    /// Your pseudonymous official reference.
    #[arg(long, default_value = "")]
    official: String,
    /// Document as ISSUER:NUMBER (e.g. GTM:A1234567); repeatable.
    #[arg(long)]
    document: Vec<String>,
    /// Phone in international form; repeatable.
    #[arg(long)]
    phone: Vec<String>,
    /// E-mail; repeatable.
    #[arg(long)]
    email: Vec<String>,
    /// Name and birth date as "GIVEN NAMES/SURNAMES/YYYY-MM-DD"; repeatable.
    #[arg(long)]
    name: Vec<String>,
    /// Only these peers (default: every peer with an agreement).
    #[arg(long)]
    peer: Vec<String>,
    /// Deadline for the whole fan-out, milliseconds.
    #[arg(long, default_value_t = 5000)]
    deadline_ms: u32,
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Show the newest audit records (no personal data is ever recorded).
    Tail {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: u32,
    },
    /// Export the whole audit log into a self-contained bundle (leaves, checkpoints, cosignatures, keys).
    Export {
        /// The bundle file to write (replaced atomically).
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify an audit bundle offline: every leaf, the tree, every signature and cosignature.
    ///
    /// Names the first bad leaf (or the first checkpoint that fails) and exits
    /// non-zero on any problem.
    Verify {
        /// The bundle (from `enlace audit export`).
        bundle: PathBuf,
        /// A checkpoint note you hold from elsewhere (a receipt, an earlier
        /// export, a witness); the bundle must be consistent with it. Repeatable.
        #[arg(long = "checkpoint", value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
        /// The log's public key you expect (hex); the bundle's must be the same.
        #[arg(long, value_name = "HEX")]
        log_key: Option<String>,
    },
    /// Report disclosures and denials of a period from a verified bundle (HTML with charts, CSV or JSON).
    Report {
        /// The bundle (from `enlace audit export`).
        bundle: PathBuf,
        /// First day of the period (YYYY-MM-DD, UTC, included).
        #[arg(long)]
        from: String,
        /// Last day of the period (YYYY-MM-DD, UTC, included).
        #[arg(long)]
        to: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "html")]
        format: report::ReportFormat,
        /// The report file to write.
        #[arg(long)]
        out: PathBuf,
        /// A checkpoint note held from elsewhere the bundle must be consistent with. Repeatable.
        #[arg(long = "checkpoint", value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
        /// The log's public key you expect (hex).
        #[arg(long, value_name = "HEX")]
        log_key: Option<String>,
        /// Write the report even if the bundle does not verify (it is then marked NOT VERIFIED).
        #[arg(long)]
        allow_unverified: bool,
    },
    /// Create an auditor key (e.g. the ministry's) that can cosign the node's checkpoints.
    Keygen {
        /// The key file to create (mode 0600; never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// The cosignature key name, as it will be configured in the `[[auditors]]` table.
        #[arg(long, default_value = "enlace.auditor")]
        name: String,
    },
    /// Verify the node's latest checkpoint and cosign it with an auditor key.
    Cosign {
        /// The auditor key file (from `enlace audit keygen`).
        #[arg(long)]
        key: PathBuf,
        /// The auditor name configured in the node's `[[auditors]]` table.
        #[arg(long)]
        name: String,
        /// The node's signed directory entry, obtained independently (default: the one in --home).
        #[arg(long, value_name = "FILE")]
        entry: Option<PathBuf>,
    },
    /// What this node witnessed of its peers' logs; exits non-zero if any alarm was raised.
    Witness,
    /// Write a synthetic signed and cosigned bundle (benchmarks, report previews).
    #[command(hide = true)]
    BenchBundle {
        /// Number of leaves.
        #[arg(long)]
        leaves: u64,
        /// The bundle file to write.
        #[arg(long)]
        out: PathBuf,
        /// Months of activity (ending now) the leaves are spread over.
        #[arg(long, default_value_t = 12)]
        months: u32,
        /// Seed of the synthetic records.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// A text file, with its name in the error.
fn read_file(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn home(cli: &Cli) -> anyhow::Result<Home> {
    match &cli.home {
        Some(h) => Ok(Home::new(h)),
        None => bail!("no node directory: pass --home DIR or set ENLACE_HOME"),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Init(a) => {
            let root = home(&cli)?;
            let opts = InitOptions {
                node_id: NodeId::parse(&a.node_id)?,
                peer_listen: a.peer_listen.clone(),
                admin_listen: a.admin_listen.clone(),
                endpoint: a.endpoint.clone(),
                contact: Contact {
                    authority: a.authority.clone(),
                    email: a.email.clone(),
                    phone: a.phone.clone(),
                },
            };
            let done = config::init(root.root(), &opts, now_ms())?;
            output::init(&cli_out(&cli), &done)?;
            Ok(())
        }
        Command::Node => {
            enlace_node::init_tracing();
            enlace_node::serve_home(&home(&cli)?).await
        }
        Command::Demo(args) => {
            // Node logs only on request: the demo's own output is the story.
            if std::env::var_os("RUST_LOG").is_some() {
                enlace_node::init_tracing();
            }
            demo::run(args.clone(), cli.json).await
        }
        Command::Audit(AuditCmd::Verify {
            bundle,
            checkpoints,
            log_key,
        }) => audit::run_verify(
            bundle,
            &audit::VerifyOptions {
                held: checkpoints.clone(),
                log_key: log_key.clone(),
                progress: import::show_progress(cli.json),
            },
            cli.json,
        ),
        Command::Audit(AuditCmd::Report {
            bundle,
            from,
            to,
            format,
            out,
            checkpoints,
            log_key,
            allow_unverified,
        }) => {
            let written = report::run(&report::ReportOptions {
                bundle: bundle.clone(),
                from: from.clone(),
                to: to.clone(),
                format: *format,
                out: out.clone(),
                verify: audit::VerifyOptions {
                    held: checkpoints.clone(),
                    log_key: log_key.clone(),
                    progress: import::show_progress(cli.json),
                },
                allow_unverified: *allow_unverified,
            })?;
            report::print_written(cli.json, &written, *format)
        }
        Command::Audit(AuditCmd::Keygen { out, name }) => audit::keygen(out, name, cli.json),
        Command::Audit(AuditCmd::BenchBundle {
            leaves,
            out,
            months,
            seed,
        }) => {
            let s = audit::synthetic_bundle(out, *leaves, *months, *seed)?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!(
                    "wrote a synthetic bundle of {} leaves and {} checkpoints ({}) to {} ({:.1} MB in {:.1} s)",
                    s.leaves,
                    s.checkpoints,
                    s.origin,
                    s.file.display(),
                    s.bytes as f64 / 1e6,
                    s.seconds
                );
            }
            Ok(())
        }
        Command::Generate(args) => generate::run(args),
        Command::User(UserCmd::Add { name, role }) => {
            let role = match role.as_str() {
                "operator" => config::UserRole::Operator,
                "investigator" => config::UserRole::Investigator,
                "approver" => config::UserRole::Approver,
                "auditor" => config::UserRole::Auditor,
                other => {
                    bail!("unknown role {other:?}: operator, investigator, approver or auditor")
                }
            };
            let token = config::add_user(&home(&cli)?, name, role)?;
            if cli.json {
                println!("{}", serde_json::json!({"user": name, "token": token}));
            } else {
                println!("{token}");
                eprintln!("user {name} added to enlace.toml; restart the node to apply. The token is shown only now: pass it with --token.");
            }
            Ok(())
        }
        Command::Data(DataCmd::Compact) => {
            let data = home(&cli)?.data();
            let done = enlace_node::store::compact(&data)
                .with_context(|| format!("compacting {} (is the node stopped?)", data.display()))?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"entries": done.entries, "bytes_before": done.bytes_before, "bytes_after": done.bytes_after})
                );
            } else {
                println!(
                    "compacted {}: {} entries, {:.1} MB → {:.1} MB",
                    data.display(),
                    done.entries,
                    done.bytes_before as f64 / 1e6,
                    done.bytes_after as f64 / 1e6
                );
            }
            Ok(())
        }
        Command::Case(CaseCmd::Import {
            file,
            check: true,
            format,
            encoding,
            ..
        }) => {
            let summary = import::run_check(&import::ImportOptions {
                path: file.clone(),
                format: *format,
                encoding: *encoding,
                batch: 0,
                skip_invalid: false,
                rejects: None,
                progress: import::show_progress(cli.json),
            })?;
            import::print_summary(cli.json, &summary, true)
        }
        _ => {
            let home = home(&cli)?;
            let mut admin = client::connect(&home, cli.token.as_deref()).await?;
            let out = cli_out(&cli);
            match &cli.command {
                Command::Status => output::status(&out, &client::status(&mut admin).await?),
                Command::Peer(PeerCmd::Add { entry }) => {
                    let text = std::fs::read_to_string(entry)
                        .with_context(|| format!("reading {}", entry.display()))?;
                    output::peer(&out, &client::add_peer(&mut admin, &text).await?)
                }
                Command::Peer(PeerCmd::Remove { node_id }) => {
                    admin
                        .remove_peer(enlace_proto::v1::RemovePeerRequest {
                            node_id: node_id.clone(),
                        })
                        .await
                        .map_err(client::refused)?;
                    if cli.json {
                        println!("{}", serde_json::json!({"removed": node_id}));
                    } else {
                        println!("peer {node_id} removed: it can no longer connect or sign requests here");
                    }
                    Ok(())
                }
                Command::Peer(PeerCmd::List) => {
                    output::peers(&out, &client::list_peers(&mut admin).await?)
                }
                Command::Agreement(AgreementCmd::Propose { file, out: to }) => {
                    let text = read_file(file)?;
                    let signed = client::propose_agreement(&mut admin, &text).await?;
                    output::signed_agreement(
                        to.as_deref(),
                        &signed,
                        "proposed (signed by this node)",
                    )
                }
                Command::Agreement(AgreementCmd::Sign { file, out: to }) => {
                    let text = read_file(file)?;
                    let signed = client::sign_agreement(&mut admin, &text).await?;
                    output::signed_agreement(to.as_deref(), &signed, "signed by both parties")
                }
                Command::Agreement(AgreementCmd::Activate { file }) => {
                    let text = read_file(file)?;
                    output::agreement(&out, &client::activate_agreement(&mut admin, &text).await?)
                }
                Command::Agreement(AgreementCmd::Revoke {
                    id,
                    version,
                    reason,
                }) => output::agreements(
                    &out,
                    &client::revoke_agreement(&mut admin, id, *version, reason).await?,
                ),
                Command::Agreement(AgreementCmd::List) => {
                    output::agreements(&out, &client::list_agreements(&mut admin).await?)
                }
                Command::Agreement(AgreementCmd::Show { id, version }) => output::agreement_detail(
                    &out,
                    &client::show_agreement(&mut admin, id, *version).await?,
                ),
                Command::Policy(PolicyCmd::Explain {
                    peer,
                    purpose,
                    kinds,
                    agreement,
                    remote,
                }) => output::explanation(
                    &out,
                    &client::explain(
                        &mut admin,
                        pb::AdminExplainRequest {
                            peer: peer.clone(),
                            purpose: purpose.clone(),
                            query_kinds: kinds.clone(),
                            agreement_id: agreement.clone(),
                            remote: *remote,
                        },
                    )
                    .await?,
                ),
                Command::Case(CaseCmd::Add { file }) => {
                    let text = client::read_input(file)?;
                    let r = client::import(&mut admin, vec![text]).await?;
                    output::imported(&out, r.cases, r.persons, 0)
                }
                Command::Case(CaseCmd::Import {
                    file,
                    batch,
                    skip_invalid,
                    check: _,
                    format,
                    encoding,
                    rejects,
                }) => {
                    let summary = import::run_import(
                        &mut admin,
                        import::ImportOptions {
                            path: file.clone(),
                            format: *format,
                            encoding: *encoding,
                            batch: *batch,
                            skip_invalid: *skip_invalid,
                            rejects: rejects.clone(),
                            progress: import::show_progress(cli.json),
                        },
                    )
                    .await?;
                    import::print_summary(cli.json, &summary, false)
                }
                Command::Case(CaseCmd::Export { file, format }) => {
                    let format = format.unwrap_or_else(|| {
                        if file
                            .extension()
                            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
                        {
                            records::Format::Csv
                        } else {
                            records::Format::Jsonl
                        }
                    });
                    let (cases, persons) = import::run_export(&mut admin, file, format).await?;
                    if file.as_path() != std::path::Path::new("-") {
                        if cli.json {
                            println!(
                                "{}",
                                serde_json::json!({"cases": cases, "persons": persons, "file": file})
                            );
                        } else {
                            println!(
                                "exported {cases} cases ({persons} persons) to {}",
                                file.display()
                            );
                        }
                    }
                    Ok(())
                }
                Command::Cooperation(c) => cooperation::run(&mut admin, &out, c).await,
                Command::Stats(c) => stats::run(&mut admin, cli.json, c).await,
                Command::Data(DataCmd::RotateKey { wait }) => {
                    let version = client::rotate_data_key(&mut admin).await?;
                    let mut status = client::status(&mut admin).await?;
                    while *wait && status.data_key_rotating {
                        if !status.serving {
                            bail!("the node stopped serving during the re-encryption (storage failure, see its log); after a restart it resumes");
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        status = client::status(&mut admin).await?;
                    }
                    if cli.json {
                        println!(
                            "{}",
                            serde_json::json!({"version": version, "rotating": status.data_key_rotating,
                                               "resealed": status.data_values_resealed})
                        );
                    } else if status.data_key_rotating {
                        println!("data key version {version} seals from now on; stored values are being re-encrypted in the background (enlace status shows progress)");
                    } else {
                        println!("data key version {version} seals every stored value; older keys retired from keys/data.key");
                    }
                    Ok(())
                }
                Command::Search(a) => {
                    let items = client::items(&a.document, &a.phone, &a.email, &a.name)?;
                    let r = client::search(
                        &mut admin,
                        enlace_proto::v1::OutboundSearchRequest {
                            purpose: a.purpose.clone(),
                            case_reference: a.case_ref.clone(),
                            official_reference: a.official.clone(),
                            items: items.clone(),
                            deadline_ms: a.deadline_ms,
                            peers: a.peer.clone(),
                        },
                    )
                    .await?;
                    output::search(&out, &items, &r)
                }
                Command::Audit(AuditCmd::Tail { limit }) => {
                    output::audit(&out, &client::audit_tail(&mut admin, *limit).await?)
                }
                Command::Audit(AuditCmd::Export { out: file }) => {
                    let e =
                        audit::export(&mut admin, file, import::show_progress(cli.json)).await?;
                    audit::print_exported(cli.json, &e)
                }
                Command::Audit(AuditCmd::Cosign { key, name, entry }) => {
                    let entry = entry.clone().unwrap_or_else(|| home.entry());
                    audit::cosign(&entry, &mut admin, key, name, cli.json).await
                }
                Command::Audit(AuditCmd::Witness) => audit::witness(&mut admin, cli.json).await,
                Command::Init(_)
                | Command::Node
                | Command::Demo(_)
                | Command::Generate(_)
                | Command::User(_)
                | Command::Data(DataCmd::Compact)
                | Command::Audit(
                    AuditCmd::Verify { .. }
                    | AuditCmd::Report { .. }
                    | AuditCmd::Keygen { .. }
                    | AuditCmd::BenchBundle { .. },
                ) => {
                    unreachable!("handled above")
                }
            }
        }
    }
}

fn cli_out(cli: &Cli) -> output::Out {
    output::Out { json: cli.json }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("enlace: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("enlace: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_definition_is_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
