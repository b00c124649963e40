//! `provisioner sync`: one pass, with a progress bar at a terminal.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::app::App;
use super::render;
use crate::sync::engine::{Action, PassOptions, RuleStatus};

#[derive(Debug, Args)]
pub(super) struct SyncArgs {
    /// Only this rule.
    #[arg(long)]
    rule: Option<String>,
    /// Only this person.
    #[arg(long)]
    person: Option<String>,
    /// Re-read linked records through lookup to repair drift.
    #[arg(long)]
    full: bool,
    /// Print the plan and send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(app: &App<'_>, args: SyncArgs) -> anyhow::Result<ExitCode> {
    let engine = app.engine().await?;
    if !args.dry_run {
        crate::sync::daemon::record_plugins(&engine).await;
    }
    let bar = render::progress_bar(args.json);
    if let Some(bar) = bar.clone() {
        engine.on_progress(Arc::new(move |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }));
    }
    let report = engine
        .pass(&PassOptions {
            rule: args.rule,
            people: args.person.map(|p| BTreeSet::from([p])),
            full: args.full,
            dry_run: args.dry_run,
        })
        .await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let buckets = engine.buckets().await?;
    render::sync_report(&report, &buckets, args.json)?;
    let troubled = report.rules.iter().any(|r| {
        matches!(
            r.status,
            Some(RuleStatus::Failed(_)) | Some(RuleStatus::Quarantined(_))
        ) || r.counted(Action::Failed) > 0
    });
    Ok(if troubled {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
