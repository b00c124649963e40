//! The operator's answers to held and failed work: `retry`,
//! `approve-removals` and `approve-updates`.

use std::process::ExitCode;

use clap::Args;

use super::app::App;

#[derive(Debug, Args)]
pub(super) struct RetryArgs {
    #[arg(long)]
    rule: Option<String>,
    #[arg(long)]
    person: Option<String>,
}

pub(super) async fn retry(app: &App<'_>, args: RetryArgs) -> anyhow::Result<ExitCode> {
    let config = app.config()?;
    let (db, _) = app.state(Some(&config)).await?;
    let count = db
        .retry(args.rule.as_deref(), args.person.as_deref())
        .await?;
    println!("{count} failed link(s) due again at the next pass");
    Ok(ExitCode::SUCCESS)
}

/// What a rule's guard holds.
pub(super) enum Held {
    Removals,
    Updates,
}

/// Lets what a rule's guard holds go at the next pass; exits 1 when
/// nothing is held.
pub(super) async fn approve(app: &App<'_>, rule: &str, held: Held) -> anyhow::Result<ExitCode> {
    let config = app.config()?;
    let (db, _) = app.state(Some(&config)).await?;
    let (what, approved) = match held {
        Held::Removals => ("removals", db.approve_removals(rule).await?),
        Held::Updates => ("updates", db.approve_updates(rule).await?),
    };
    if approved {
        println!("approved: the held {what} of rule {rule} go out at the next pass");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("rule {rule} has no {what} waiting for approval");
        Ok(ExitCode::from(1))
    }
}
