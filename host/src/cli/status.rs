//! `provisioner status` and `provisioner audit`: what the state file
//! says, read as the status page and the API read it.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::app::App;
use super::render;
use crate::directory::Directory;
use crate::status::model;

#[derive(Debug, Args)]
pub(super) struct StatusArgs {
    #[command(subcommand)]
    what: Option<StatusCommand>,
    /// List the failed people: error class, code, message, fields,
    /// attempts, next retry.
    #[arg(long)]
    failures: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub(super) enum StatusCommand {
    /// One person in every rule: in scope or not and why, the link, and the
    /// journal of the last attempts (match, action or the preference that
    /// forbade it, outcome).
    Person {
        /// The person's id or email.
        id_or_email: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One directory group in every rule that pushes it, or did: its
    /// members in the directory, its group in the target, the members the
    /// host last wrote there, and its state and why.
    Group {
        /// The directory group's name.
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(super) struct AuditArgs {
    #[arg(long)]
    person: Option<String>,
    #[arg(long)]
    rule: Option<String>,
    /// Only entries from this long ago, e.g. 15m, 2h, 7d.
    #[arg(long)]
    since: Option<humantime::Duration>,
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// The directory's changes instead of the sync journal: each with who
    /// made it (cli, or scim:TOKEN for the SCIM service provider).
    #[arg(long, conflicts_with = "rule")]
    directory: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub(super) async fn status(app: &App<'_>, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let config = app.config()?;
    let (db, schema) = app.state(Some(&config)).await?;
    let rules = config.rules(&schema);
    match args.what {
        Some(StatusCommand::Person { id_or_email, json }) => {
            let directory = Directory::new(&*db, schema.clone());
            let Some(person) = model::find_person(&directory, &id_or_email).await? else {
                anyhow::bail!("no person with id or email {id_or_email:?}");
            };
            let status = model::person(&*db, &rules, person).await?;
            render::person_status(&status, args.json || json)?;
        }
        Some(StatusCommand::Group { name, json }) => {
            let status = model::group(&*db, &rules, &name).await?;
            render::group_status(&status, args.json || json)?;
        }
        None if args.failures => {
            let failures = model::failures(&*db, &schema, model::FAILURES_LISTED).await?;
            render::failures(&failures, args.json)?;
        }
        None => {
            let overview = model::overview(&*db, &schema, &config, &rules).await?;
            render::overview(&overview, args.json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn audit(app: &App<'_>, args: AuditArgs) -> anyhow::Result<ExitCode> {
    let config = app.config()?;
    let (db, _) = app.state(Some(&config)).await?;
    let since = args
        .since
        .map(|d| crate::state::now_ms() - d.as_millis() as i64);
    if args.directory {
        let changes = db
            .changes(args.person.as_deref(), since, args.limit)
            .await?;
        render::directory_changes(&changes, args.json)?;
        return Ok(ExitCode::SUCCESS);
    }
    let entries = db
        .journal(
            args.person.as_deref(),
            args.rule.as_deref(),
            since,
            args.limit,
        )
        .await?;
    render::audit(&entries, args.json)?;
    Ok(ExitCode::SUCCESS)
}
