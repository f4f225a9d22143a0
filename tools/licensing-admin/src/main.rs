//! `licensing-admin`: the operator's command line.
//!
//! - `infra up --prefix P`: create the table, queues and secrets (local runs;
//!   in AWS the SAM template owns them) and print the settings as `KEY=value`.
//! - `tenant create ...`: create an active tenant with its first admin and
//!   integration keys, through the same code the provisioning pipeline uses.
//! - `routes`: the function/route/setting table, as JSON (for template checks).
//! - `queue redrive`: move the provisioning DLQ's messages back to the queue.
//! - `backfill-search`: give licenses issued before the search index existed
//!   their index keys (one Scan of the table; safe to repeat).
//! - `billing close-period --period YYYY-MM [--tenant T]`: close an ended
//!   billing month (one `invoice.ready` per license with commercial terms).
//! - `conformance [--check]`: write (or check) `clients/conformance/cases.json`,
//!   the signed answers and license files every client library must judge alike.

mod conformance;

use clap::{Parser, Subcommand};
use shared::app::App;
use shared::aws::{Clients, Secrets};
use shared::config::Config;
use shared::domain::Plan;
use shared::functions::{Function, ROUTES};
use shared::usecases::tenants::{bootstrap, TenantRequest};
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "licensing-admin",
    about = "Operator tasks for the licensing service"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Local resources.
    Infra {
        #[command(subcommand)]
        cmd: InfraCmd,
    },
    /// Tenants.
    Tenant {
        #[command(subcommand)]
        cmd: TenantCmd,
    },
    /// Print every function with its routes and settings as JSON.
    Routes,
    /// The provisioning queue.
    Queue {
        #[command(subcommand)]
        cmd: QueueCmd,
    },
    /// Index licenses issued before license search existed (GSI2): one Scan
    /// of the table, one conditional update per license found; safe to repeat.
    BackfillSearch,
    /// Write clients/conformance/cases.json: signed answers and license
    /// files, valid and tampered, from fixed seeds (deterministic).
    Conformance {
        /// Where to write it (the workspace's file by default).
        #[arg(long, default_value = conformance::PATH)]
        out: std::path::PathBuf,
        /// Do not write: exit 1 if the file differs from what would be written.
        #[arg(long)]
        check: bool,
    },
    /// Offline license files.
    License {
        #[command(subcommand)]
        cmd: LicenseCmd,
    },
    /// Billing (docs/billing.md).
    Billing {
        #[command(subcommand)]
        cmd: BillingCmd,
    },
}

#[derive(Subcommand)]
enum BillingCmd {
    /// Close an ended month: one invoice.ready per license with commercial
    /// terms, for every tenant (or one). Safe to repeat: a closed license
    /// and month emits nothing more.
    ClosePeriod {
        /// The month, YYYY-MM.
        #[arg(long)]
        period: String,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Subcommand)]
enum LicenseCmd {
    /// Verify an offline license file against pinned public keys, offline,
    /// with the client crate's own code; print its payload as JSON.
    Verify {
        /// The license file (the armored text checkout answered).
        file: std::path::PathBuf,
        /// A public key, as `KID=BASE64` (from GET /v1/public/tenants/{id}/signing-keys); repeat for several.
        #[arg(long = "public-key", required = true)]
        public_keys: Vec<String>,
        /// The tenant the file must be for.
        #[arg(long)]
        tenant: String,
        /// The machine it must be bound to, if it is bound.
        #[arg(long)]
        fingerprint: Option<String>,
    },
}

#[derive(Subcommand)]
enum QueueCmd {
    /// Move every message from the DLQ back to the queue (after fixing the cause).
    Redrive {
        #[arg(long, env = "PROVISIONING_DLQ_URL")]
        dlq_url: String,
        #[arg(long, env = "PROVISIONING_QUEUE_URL")]
        queue_url: String,
    },
}

#[derive(Subcommand)]
enum InfraCmd {
    /// Create the table, queues and secrets for a prefix; print KEY=value settings.
    Up {
        #[arg(long)]
        prefix: String,
        /// Receives before a provisioning message moves to the DLQ.
        #[arg(long, default_value_t = 3)]
        max_receives: u32,
    },
    /// Delete the table of a prefix (queues and secrets are left).
    Down {
        #[arg(long)]
        prefix: String,
    },
}

#[derive(Subcommand)]
enum TenantCmd {
    /// Create an active tenant with an admin and an integration key (printed once, as JSON).
    Create {
        #[arg(long)]
        tenant_id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin_email: String,
        #[arg(long, default_value = "growth")]
        plan: String,
    },
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Conformance { out, check } => {
            let text = conformance::cases_json();
            if check {
                if std::fs::read_to_string(&out).ok().as_deref() != Some(text.as_str()) {
                    eprintln!(
                        "{} is stale: run `licensing-admin conformance`",
                        out.display()
                    );
                    std::process::exit(1);
                }
                println!("{} is up to date", out.display());
            } else {
                if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(&out, &text)?;
                println!("wrote {} ({} bytes)", out.display(), text.len());
            }
        }
        Cmd::License {
            cmd:
                LicenseCmd::Verify {
                    file,
                    public_keys,
                    tenant,
                    fingerprint,
                },
        } => {
            let mut keys = licensing_client::PinnedKeys::new();
            for k in &public_keys {
                let (kid, b64) = k.split_once('=').ok_or("--public-key takes KID=BASE64")?;
                keys.pin(kid, b64)
                    .map_err(|e| format!("--public-key {kid}: {e}"))?;
            }
            let text = std::fs::read_to_string(&file)?;
            use time::format_description::well_known::Rfc3339;
            let now = time::OffsetDateTime::now_utc();
            let fp = fingerprint.as_deref();
            match licensing_client::verify_license_file(&text, &keys, &tenant, fp, now) {
                Ok(f) => {
                    let summary = serde_json::json!({
                        "verified": true,
                        "tenant_id": f.tenant_id,
                        "kid": f.kid,
                        "license_id": f.license.id,
                        "status": format!("{:?}", f.license.status).to_lowercase(),
                        "activation": f.activation.as_ref().map(|a| &a.fingerprint),
                        "issued_at": f.issued_at.format(&Rfc3339)?,
                        "expires_at": f.expires_at.format(&Rfc3339)?,
                    });
                    println!("{}", serde_json::to_string_pretty(&summary)?);
                }
                Err(e) => {
                    eprintln!("license file refused: {e}");
                    std::process::exit(1);
                }
            }
        }
        Cmd::Routes => {
            let functions: Vec<_> = Function::ALL
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "function": f.name(),
                        "settings": f.settings().iter().map(|s| s.env_var()).collect::<Vec<_>>(),
                        "routes": ROUTES
                            .iter()
                            .filter(|r| r.function == Some(*f))
                            .map(|r| format!("{} {}", r.method, r.path))
                            .collect::<Vec<_>>(),
                    })
                })
                .collect();
            let dev_only: Vec<_> = ROUTES
                .iter()
                .filter(|r| r.function.is_none())
                .map(|r| format!("{} {}", r.method, r.path))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({ "functions": functions, "dev_server_only": dev_only })
                )?
            );
        }
        Cmd::Infra {
            cmd: InfraCmd::Up {
                prefix,
                max_receives,
            },
        } => {
            let clients = Clients::new(&shared::aws::sdk_config().await);
            let names = shared::infra::Names::for_prefix(&prefix);
            shared::infra::create_table(&clients.dynamodb, &names.table, shared::infra::Stream::On)
                .await?;
            let (queue, dlq) =
                shared::infra::create_queues(&clients.sqs, &names, max_receives).await?;
            let (wh_queue, wh_dlq) =
                shared::infra::create_webhook_queues(&clients.sqs, &names).await?;
            let token =
                shared::infra::create_secrets(&Secrets::new(clients.secrets.clone()), &names)
                    .await?;
            shared::infra::create_sender(&clients.ses, &names.portal_sender).await?;
            println!("TABLE_NAME={}", names.table);
            println!("PEPPER_SECRET_ID={}", names.pepper_secret);
            println!("SIGNING_KEY_SECRET_ID={}", names.signing_key_secret);
            println!("SIGNING_MASTER_SECRET_ID={}", names.signing_master_secret);
            println!("OPERATOR_TOKEN_SECRET_ID={}", names.operator_token_secret);
            println!("SECRETS_PREFIX={}", names.secrets_prefix);
            println!("PROVISIONING_QUEUE_URL={queue}");
            println!("PROVISIONING_DLQ_URL={dlq}");
            println!("WEBHOOK_MASTER_SECRET_ID={}", names.webhook_master_secret);
            println!("WEBHOOK_QUEUE_URL={wh_queue}");
            println!("WEBHOOK_DLQ_URL={wh_dlq}");
            println!("PORTAL_SENDER={}", names.portal_sender);
            println!("LICENSING_OPERATOR_TOKEN={token}");
        }
        Cmd::Billing {
            cmd: BillingCmd::ClosePeriod { period, tenant },
        } => {
            let config = Config::from_env_for(&[shared::config::Setting::TableName])?;
            let clients = Clients::new(&shared::aws::sdk_config().await);
            let store = shared::store::Store::new(clients.dynamodb, config.table_name);
            let period = shared::domain::billing::Period::parse(&period)?;
            let now = time::OffsetDateTime::now_utc();
            let rid = format!("cli_{}", ulid::Ulid::new());
            let summary = match tenant {
                Some(t) => {
                    let t = shared::ids::TenantId::parse(&t)?;
                    shared::usecases::billing::close_tenant_period(
                        &store.tenant(&t),
                        period,
                        "operator",
                        &rid,
                        now,
                    )
                    .await?
                }
                None => {
                    shared::usecases::billing::close_period(&store, period, "operator", &rid, now)
                        .await?
                }
            };
            println!("{}", serde_json::json!(summary));
        }
        Cmd::BackfillSearch => {
            let config = Config::from_env_for(&[shared::config::Setting::TableName])?;
            let clients = Clients::new(&shared::aws::sdk_config().await);
            let store = shared::store::Store::new(clients.dynamodb, config.table_name);
            let done = store.backfill_search_index().await?;
            println!(
                "{}",
                serde_json::json!({ "scanned": done.scanned, "indexed": done.indexed })
            );
        }
        Cmd::Queue {
            cmd: QueueCmd::Redrive { dlq_url, queue_url },
        } => {
            let clients = Clients::new(&shared::aws::sdk_config().await);
            let moved = shared::sqs::redrive(&clients.sqs, &dlq_url, &queue_url).await?;
            println!("moved {moved} message(s) from the DLQ back to the queue");
        }
        Cmd::Infra {
            cmd: InfraCmd::Down { prefix },
        } => {
            let clients = Clients::new(&shared::aws::sdk_config().await);
            shared::infra::delete_table(
                &clients.dynamodb,
                &shared::infra::Names::for_prefix(&prefix).table,
            )
            .await?;
        }
        Cmd::Tenant {
            cmd:
                TenantCmd::Create {
                    tenant_id,
                    name,
                    admin_email,
                    plan,
                },
        } => {
            let req: TenantRequest = serde_json::from_value(serde_json::json!({
                "tenant_id": tenant_id,
                "name": name,
                "admin_email": admin_email.to_lowercase(),
                "plan": plan,
            }))
            .map_err(|e| format!("invalid tenant: {e}"))?;
            let _: Plan = req.plan;
            let config = Config::from_env_for(&[
                shared::config::Setting::TableName,
                shared::config::Setting::PepperSecretId,
            ])?;
            let clients = Clients::new(&shared::aws::sdk_config().await);
            let app = App::build(config, clients, Arc::new(shared::clock::SystemClock)).await?;
            let b = bootstrap(&app.store, app.pepper()?, req, app.now()).await?;
            println!(
                "{}",
                serde_json::json!({
                    "tenant_id": b.tenant.tenant_id, "status": b.tenant.status.as_str(),
                    "admin_api_key": b.admin_key, "integration_api_key": b.integration_key,
                })
            );
        }
    }
    Ok(())
}
