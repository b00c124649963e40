//! `provisioner people ...` and `provisioner groups ...`: the source
//! directory from the command line.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

use crate::directory::import::{self, Format};
use crate::directory::{Directory, PersonChange};

#[derive(Debug, Subcommand)]
pub(super) enum PeopleCommand {
    /// Import people from a JSON array or a CSV file (with a header row).
    /// Each row is a whole person: id, enabled, population, groups and
    /// attributes. Every row is checked first; if any is bad, each is
    /// reported with its line number and nothing is imported, unless
    /// --skip-invalid is given.
    Import {
        file: PathBuf,
        /// The file's format; by default from its extension.
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
        /// Import the good rows even if some are bad.
        #[arg(long)]
        skip_invalid: bool,
    },
    /// Add one person.
    Add {
        id: String,
        #[command(flatten)]
        fields: Fields,
        /// Add them disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// Change one person's attributes, groups or population.
    Set {
        id: String,
        #[command(flatten)]
        fields: Fields,
        /// Remove an attribute (repeatable).
        #[arg(long = "unset", value_name = "NAME")]
        unset: Vec<String>,
        /// Take the person out of their population.
        #[arg(long, conflicts_with = "population")]
        no_population: bool,
    },
    /// Disable a person: their records are removed as the preferences say.
    Disable { id: String },
    /// Enable a disabled person.
    Enable { id: String },
    /// Delete a person: their records are removed as the preferences say.
    Delete { id: String },
    /// List everyone.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one person.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum FormatArg {
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub(super) struct Fields {
    /// An attribute, as NAME=VALUE (repeatable).
    #[arg(long = "attr", value_name = "NAME=VALUE")]
    attributes: Vec<String>,
    /// Put the person in a group (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// The person's population.
    #[arg(long)]
    population: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(super) enum GroupsCommand {
    /// Add a person to a group.
    AddMember { group: String, person: String },
    /// Remove a person from a group.
    RemoveMember { group: String, person: String },
    /// List groups and their members.
    List {
        #[arg(long)]
        json: bool,
    },
}

fn attributes(fields: &Fields) -> anyhow::Result<BTreeMap<String, Option<String>>> {
    fields
        .attributes
        .iter()
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--attr {pair:?}: expected NAME=VALUE"))?;
            Ok((name.trim().to_string(), Some(value.to_string())))
        })
        .collect()
}

pub(super) async fn people(
    directory: &Directory<'_>,
    command: PeopleCommand,
) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match command {
        PeopleCommand::Import {
            file,
            format,
            skip_invalid,
        } => import(directory, &file, format, skip_invalid, &mut out).await,
        PeopleCommand::Add {
            id,
            fields,
            disabled,
        } => {
            if directory.person(&id).await?.is_some_and(|p| !p.deleted) {
                anyhow::bail!("person {id:?} already exists; use `provisioner people set`");
            }
            let change = PersonChange {
                id: id.clone(),
                enabled: Some(!disabled),
                population: Some(fields.population.clone()),
                groups: Some(fields.groups.iter().cloned().collect()),
                attributes: attributes(&fields)?,
                replace_attributes: true,
            };
            directory.upsert(&[change]).await?;
            writeln!(out, "added {id}")?;
            Ok(ExitCode::SUCCESS)
        }
        PeopleCommand::Set {
            id,
            fields,
            unset,
            no_population,
        } => set(directory, &id, &fields, unset, no_population, &mut out).await,
        PeopleCommand::Disable { id } => {
            let changed = directory.set_enabled(&id, false).await?;
            writeln!(
                out,
                "{} {id}",
                if changed {
                    "disabled"
                } else {
                    "already disabled:"
                }
            )?;
            Ok(ExitCode::SUCCESS)
        }
        PeopleCommand::Enable { id } => {
            let changed = directory.set_enabled(&id, true).await?;
            writeln!(
                out,
                "{} {id}",
                if changed {
                    "enabled"
                } else {
                    "already enabled:"
                }
            )?;
            Ok(ExitCode::SUCCESS)
        }
        PeopleCommand::Delete { id } => {
            directory.delete(&id).await?;
            writeln!(
                out,
                "deleted {id}; their records are removed at the next sync, as the preferences allow"
            )?;
            Ok(ExitCode::SUCCESS)
        }
        PeopleCommand::List { json } => list(directory, json, &mut out).await,
        PeopleCommand::Show { id, json } => show(directory, &id, json, &mut out).await,
    }
}

/// `people import`: every row checked first; nothing imported if any is
/// bad, unless told to skip them.
async fn import(
    directory: &Directory<'_>,
    file: &std::path::Path,
    format: Option<FormatArg>,
    skip_invalid: bool,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let format = match format {
        Some(FormatArg::Json) => Format::Json,
        Some(FormatArg::Csv) => Format::Csv,
        None => Format::of(file),
    };
    let (rows, errors) = import::read(file, format, directory)?;
    for error in &errors {
        eprintln!("{error}");
    }
    if !errors.is_empty() && !skip_invalid {
        writeln!(
            out,
            "nothing imported: {} bad row(s) in {}; fix them, or pass --skip-invalid to import the {} good one(s)",
            errors.len(),
            file.display(),
            rows.len()
        )?;
        return Ok(ExitCode::from(1));
    }
    let changes: Vec<PersonChange> = rows.into_iter().map(|r| r.change).collect();
    let report = directory.upsert(&changes).await?;
    writeln!(
        out,
        "imported {}: {} created, {} changed, {} unchanged{}",
        file.display(),
        report.created,
        report.changed,
        report.unchanged,
        if errors.is_empty() {
            String::new()
        } else {
            format!(", {} bad row(s) skipped", errors.len())
        }
    )?;
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `people set`: changes some attributes, adds groups, sets or clears the
/// population; what it does not name stays.
async fn set(
    directory: &Directory<'_>,
    id: &str,
    fields: &Fields,
    unset: Vec<String>,
    no_population: bool,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let Some(person) = directory.person(id).await?.filter(|p| !p.deleted) else {
        anyhow::bail!("no person {id:?} in the directory");
    };
    let mut attributes = attributes(fields)?;
    for name in unset {
        attributes.insert(name, None);
    }
    let mut groups: Option<BTreeSet<String>> = None;
    if !fields.groups.is_empty() {
        let mut all = person.groups.clone();
        all.extend(fields.groups.iter().cloned());
        groups = Some(all);
    }
    let population = if no_population {
        Some(None)
    } else {
        fields.population.clone().map(Some)
    };
    let report = directory
        .upsert(&[PersonChange {
            id: id.to_string(),
            enabled: None,
            population,
            groups,
            attributes,
            replace_attributes: false,
        }])
        .await?;
    writeln!(
        out,
        "{} {id}",
        if report.changed > 0 {
            "changed"
        } else {
            "no change to"
        }
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `people list`: everyone not deleted, one line each, or JSON.
async fn list(
    directory: &Directory<'_>,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let people: Vec<_> = directory
        .people()
        .await?
        .into_iter()
        .filter(|p| !p.deleted)
        .collect();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&people)?)?;
    } else {
        for person in &people {
            writeln!(
                out,
                "{}  {}{}  {}  [{}]",
                person.id,
                if person.enabled { "" } else { "(disabled) " },
                person
                    .attributes
                    .get("email")
                    .map(String::as_str)
                    .unwrap_or("-"),
                person.population.as_deref().unwrap_or("-"),
                person.groups.iter().cloned().collect::<Vec<_>>().join(", ")
            )?;
        }
        writeln!(out, "{} people", people.len())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `people show`: one person, every attribute.
async fn show(
    directory: &Directory<'_>,
    id: &str,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let Some(person) = directory.person(id).await?.filter(|p| !p.deleted) else {
        anyhow::bail!("no person {id:?} in the directory");
    };
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&person)?)?;
    } else {
        writeln!(
            out,
            "{}{}",
            person.id,
            if person.enabled { "" } else { " (disabled)" }
        )?;
        writeln!(
            out,
            "  population: {}",
            person.population.as_deref().unwrap_or("-")
        )?;
        writeln!(
            out,
            "  groups: {}",
            person.groups.iter().cloned().collect::<Vec<_>>().join(", ")
        )?;
        for (name, value) in &person.attributes {
            writeln!(out, "  {name}: {value}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn groups(
    directory: &Directory<'_>,
    command: GroupsCommand,
) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match command {
        GroupsCommand::AddMember { group, person } => {
            let changed = directory.add_member(&group, &person).await?;
            writeln!(
                out,
                "{} {person} {} {group}",
                if changed { "added" } else { "already:" },
                if changed { "to" } else { "in" }
            )?;
        }
        GroupsCommand::RemoveMember { group, person } => {
            let changed = directory.remove_member(&group, &person).await?;
            writeln!(
                out,
                "{} {person} {} {group}",
                if changed { "removed" } else { "not a member:" },
                if changed { "from" } else { "of" }
            )?;
        }
        GroupsCommand::List { json } => {
            let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for person in directory.people().await?.into_iter().filter(|p| !p.deleted) {
                for group in &person.groups {
                    groups
                        .entry(group.clone())
                        .or_default()
                        .push(person.id.clone());
                }
            }
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&groups)?)?;
            } else {
                for (group, members) in &groups {
                    writeln!(out, "{group}  {} member(s)", members.len())?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
