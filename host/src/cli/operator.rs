//! The operator's answers to held and failed work: `retry`,
//! `approve-removals` and `approve-updates`.

use std::process::ExitCode;

use clap::Args;

use super::app::App;
use crate::state::StateError;
use crate::sync::links::Links;

#[derive(Debug, Args)]
pub(super) struct RetryArgs {
    #[arg(long)]
    rule: Option<String>,
    #[arg(long)]
    person: Option<String>,
}

pub(super) fn retry(app: &App<'_>, args: RetryArgs) -> anyhow::Result<ExitCode> {
    let config = app.config()?;
    let (db, _) = app.state(Some(&config))?;
    let count = Links::new(&db).retry(args.rule.as_deref(), args.person.as_deref())?;
    println!("{count} failed link(s) due again at the next pass");
    Ok(ExitCode::SUCCESS)
}

/// Lets what a rule's guard holds (`what`: removals or updates) go at the
/// next pass; exits 1 when nothing is held.
pub(super) fn approve(
    app: &App<'_>,
    rule: &str,
    what: &str,
    approve: impl Fn(&Links<'_>, &str) -> Result<bool, StateError>,
) -> anyhow::Result<ExitCode> {
    let config = app.config()?;
    let (db, _) = app.state(Some(&config))?;
    if approve(&Links::new(&db), rule)? {
        println!("approved: the held {what} of rule {rule} go out at the next pass");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("rule {rule} has no {what} waiting for approval");
        Ok(ExitCode::from(1))
    }
}
