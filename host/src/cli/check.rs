//! `provisioner check`: the configuration and the plugins, validated
//! without contacting any store.

use std::process::ExitCode;

use super::app::{App, print_diagnostics};
use crate::config::Severity;
use crate::config::secrets::SecretStore;

pub(super) async fn run(app: &App<'_>) -> anyhow::Result<ExitCode> {
    let config = app.config()?;
    let (_runtime, plugins) = app.plugins(Some(&config)).await?;
    let mut diagnostics = Vec::new();
    let secrets = match config.secret_store() {
        Ok(store) => store,
        Err(diagnostic) => {
            diagnostics.push(diagnostic);
            SecretStore::env_only()
        }
    };
    diagnostics.extend(config.check(&plugins, &secrets));
    diagnostics.extend(config.status_diagnostics(&secrets));
    diagnostics.extend(config.scim_diagnostics(&secrets));
    match config.attribute_schema() {
        Ok(schema) => {
            let rules = config.rules(&schema);
            diagnostics.extend(config.rule_diagnostics(&rules, &plugins, &schema));
            diagnostics.extend(rules.diagnostics);
        }
        Err(diagnostic) => diagnostics.push(diagnostic),
    }
    print_diagnostics(&diagnostics);
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count()
        + plugins.refused.len();
    if errors > 0 {
        println!(
            "{errors} error(s) in {} and {}",
            config.path().display(),
            app.plugin_dir(Some(&config)).display()
        );
        return Ok(ExitCode::from(1));
    }
    println!(
        "ok: {} plugin(s), {} connection(s), {} warning(s)",
        plugins.plugins.len(),
        config.connection_names().count(),
        diagnostics.len()
    );
    Ok(ExitCode::SUCCESS)
}
