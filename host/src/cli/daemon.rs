//! `provisioner run`: the daemon and its status server.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use super::app::App;
use crate::status::http::StatusState;
use crate::sync::daemon::{Schedule, Shutdown};

#[derive(Debug, Args)]
pub(super) struct RunArgs {
    /// Where to serve status; overrides [status] listen.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Reload the plugins on SIGHUP only, not on file changes.
    #[arg(long)]
    no_watch: bool,
}

pub(super) async fn run(app: &App<'_>, args: RunArgs) -> anyhow::Result<ExitCode> {
    // Listen for signals first, so that none meets the default action
    // while the plugins load.
    let shutdown = Shutdown::listen().context("listening for signals")?;
    let engine = Arc::new(app.engine().await?);
    let config = engine.config();
    let secrets = app.secrets(&config)?;
    let diagnostic = |d: crate::config::Diagnostic| anyhow::anyhow!(d.to_string());
    let token = config.status_token(&secrets).map_err(diagnostic)?;
    let listen = match args.listen {
        Some(listen) => listen,
        None => config.status_listen().map_err(diagnostic)?,
    };
    let kick = Arc::new(tokio::sync::Notify::new());
    let written = Arc::new(tokio::sync::Notify::new());
    let state = Arc::new(StatusState {
        db: engine.shared_db(),
        config: config.clone(),
        rules: Arc::new(engine.rules().clone()),
        schema: engine.schema().clone(),
        token,
        kick: kick.clone(),
    });
    let hosts = config.status_hosts().map_err(diagnostic)?;
    let (bound, _server) = crate::status::http::serve(listen, state, hosts)
        .await
        .with_context(|| format!("serving status on {listen}"))?;
    tracing::info!("serving status at http://{bound}/");
    let mut announcement = serde_json::json!({ "status": format!("http://{bound}/") });
    let scim = match config.scim_listen().map_err(diagnostic)? {
        Some(listen) => {
            let tokens = config.scim_tokens(&secrets).map_err(diagnostic)?;
            let public = config.scim_base_url().map_err(diagnostic)?;
            let tls = config.scim_tls();
            let max_scan = config
                .scim_max_scan()
                .map_err(diagnostic)?
                .unwrap_or(crate::scim::DEFAULT_MAX_SCAN);
            let scheme = if tls.is_some() { "https" } else { "http" };
            let (db, schema, written) =
                (engine.shared_db(), engine.schema().clone(), written.clone());
            let (scim_bound, task) = crate::scim::serve(listen, tls, move |bound| {
                let base = public.unwrap_or_else(|| format!("{scheme}://{bound}/scim/v2"));
                crate::scim::ScimState::new(db, schema, tokens, written, base)
                    .scanning_at_most(max_scan)
            })
            .await
            .with_context(|| format!("serving SCIM on {listen}"))?;
            let url = format!("{scheme}://{scim_bound}/scim/v2");
            tracing::info!("serving SCIM 2.0 at {url}");
            announcement["scim"] = url.into();
            Some(task)
        }
        None => None,
    };
    // For scripts and supervisors: where status (and SCIM) is served, as
    // the one line the daemon writes on standard output, in JSON.
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{announcement}")
            .and_then(|()| out.flush())
            .context("announcing the status address on standard output")?;
    }
    let settings = engine.settings().clone();
    let schedule = Schedule {
        interval: settings.interval,
        drift_interval: settings.drift_interval,
        watch_plugins: !args.no_watch,
    };
    crate::sync::daemon::run(engine, schedule, kick, written, shutdown).await?;
    if let Some(scim) = scim {
        scim.abort();
    }
    Ok(ExitCode::SUCCESS)
}
