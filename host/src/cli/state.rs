//! `provisioner state`: moving the state to PostgreSQL, and checking it.

use std::process::ExitCode;

use clap::Subcommand;

use super::app::App;
use crate::state::transfer::{self, CheckReport};
use crate::state::{Location, PgState, StateDb};

#[derive(Debug, Subcommand)]
pub(super) enum StateCommand {
    /// Copy the state file (--state, or `state` in the configuration) into
    /// an empty PostgreSQL database, then compare every table's row count
    /// and checksum on both sides. The password comes from PGPASSWORD.
    /// Stop the daemon first: writes made during the copy are not copied.
    Migrate {
        /// The database: postgres://user@host:port/db.
        #[arg(long)]
        to: String,
        /// Empty the database first if it already holds a state.
        #[arg(long)]
        replace: bool,
    },
    /// Verify the state, file or database: its schema version, its
    /// integrity and its row counts. Exits 1 if anything is wrong.
    Check {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn run(app: &App<'_>, command: StateCommand) -> anyhow::Result<ExitCode> {
    let config = app.config_if_any()?;
    let location = app.state_location(config.as_ref())?;
    match command {
        StateCommand::Migrate { to, replace } => {
            let Location::File(path) = &location else {
                anyhow::bail!(
                    "the state is already in PostgreSQL ({location}); migrate copies a state file"
                );
            };
            let Some(from) = StateDb::open_existing(path)? else {
                anyhow::bail!("no state file at {}", path.display());
            };
            let target = match Location::parse(to.as_ref(), std::path::Path::new(""))
                .map_err(|e| anyhow::anyhow!("--to: {e}"))?
            {
                Location::Postgres(url) => PgState::open(&url).await?,
                Location::File(_) => {
                    anyhow::bail!("--to takes a postgres://user@host:port/db URL")
                }
            };
            let report = transfer::migrate(&from, &target, replace).await?;
            println!("copied {} into {}:", path.display(), target.name());
            for (table, summary) in &report.tables {
                println!(
                    "  {table:<18} {:>9} rows  sha256 {}",
                    summary.rows,
                    &summary.checksum[..16]
                );
            }
            println!("every table's rows and checksum match the file");
            Ok(ExitCode::SUCCESS)
        }
        StateCommand::Check { json } => {
            let report = match &location {
                Location::File(path) => {
                    let Some(db) = StateDb::open_existing(path)? else {
                        anyhow::bail!("no state file at {}", path.display());
                    };
                    transfer::check_file(&db)?
                }
                Location::Postgres(url) => {
                    transfer::check_database(&PgState::open(url).await?).await?
                }
            };
            print_check(&report, json)?;
            Ok(if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn print_check(report: &CheckReport, json: bool) -> anyhow::Result<()> {
    if json {
        let value = serde_json::json!({
            "backend": report.backend,
            "location": report.location,
            "schema_version": report.version,
            "known_version": report.known,
            "counts": report.counts,
            "problems": report.problems,
            "ok": report.problems.is_empty(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("{} state at {}", report.backend, report.location);
    println!(
        "  schema version {} (this binary writes {})",
        report.version, report.known
    );
    for (table, rows) in &report.counts {
        println!("  {table:<18} {rows:>9} rows");
    }
    if report.problems.is_empty() {
        println!("ok");
    } else {
        for problem in &report.problems {
            println!("problem: {}", crate::inert::inert(problem));
        }
    }
    Ok(())
}
