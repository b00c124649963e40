//! A connection's provisioning preferences, PingOne's model: what the host
//! may do to records in the target store. The host enforces them; a plugin
//! never sees an operation they forbid. Here they are read and checked
//! against what the plugin can do, so that a preference the plugin cannot
//! honour is refused when the configuration loads, not at 3 a.m.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::runtime::contract::{Capability, Descriptor};

/// What removal of a person from a rule's scope does to their record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemoveAction {
    Delete,
    Disable,
}

impl RemoveAction {
    fn capability(self) -> Capability {
        match self {
            RemoveAction::Delete => Capability::Delete,
            RemoveAction::Disable => Capability::Disable,
        }
    }
}

/// Why a person's record is to be removed. PingOne keeps apart a user
/// disabled in the source from one deleted or out of scope, and so does a
/// connection here: each cause may have its own remove action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Disabled in the directory.
    Disabled,
    /// Deleted from the directory.
    Deleted,
    /// Live and enabled, but no longer in the rule's scope; also every
    /// person of a rule deleted from the configuration.
    LeftScope,
}

impl Cause {
    pub const ALL: [Cause; 3] = [Cause::Disabled, Cause::Deleted, Cause::LeftScope];

    /// The preference key that sets this cause's action.
    pub fn key(self) -> &'static str {
        match self {
            Cause::Disabled => "remove_action_disabled",
            Cause::Deleted => "remove_action_deleted",
            Cause::LeftScope => "remove_action_left_scope",
        }
    }

    /// What happened to the person, for plans and reasons.
    pub fn describe(self) -> &'static str {
        match self {
            Cause::Disabled => "disabled in the directory",
            Cause::Deleted => "deleted from the directory",
            Cause::LeftScope => "left the rule's scope",
        }
    }
}

/// The remove action for each cause; `None` where the plugin can neither
/// disable nor delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RemoveActions {
    pub disabled: Option<RemoveAction>,
    pub deleted: Option<RemoveAction>,
    pub left_scope: Option<RemoveAction>,
}

impl RemoveActions {
    /// One action for every cause.
    pub fn all(action: Option<RemoveAction>) -> RemoveActions {
        RemoveActions {
            disabled: action,
            deleted: action,
            left_scope: action,
        }
    }

    pub fn of(&self, cause: Cause) -> Option<RemoveAction> {
        match cause {
            Cause::Disabled => self.disabled,
            Cause::Deleted => self.deleted,
            Cause::LeftScope => self.left_scope,
        }
    }

    fn set(&mut self, cause: Cause, action: Option<RemoveAction>) {
        match cause {
            Cause::Disabled => self.disabled = action,
            Cause::Deleted => self.deleted = action,
            Cause::LeftScope => self.left_scope = action,
        }
    }

    fn any(&self) -> bool {
        Cause::ALL.iter().any(|c| self.of(*c).is_some())
    }
}

/// The `[connections.NAME.preferences]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPreferences {
    allow_create: Option<Spanned<bool>>,
    allow_update: Option<Spanned<bool>>,
    allow_disable: Option<Spanned<bool>>,
    allow_deprovision: Option<Spanned<bool>>,
    allow_delete: Option<Spanned<bool>>,
    /// The action for every cause that has none of its own.
    remove_action: Option<Spanned<RemoveAction>>,
    remove_action_disabled: Option<Spanned<RemoveAction>>,
    remove_action_deleted: Option<Spanned<RemoveAction>>,
    remove_action_left_scope: Option<Spanned<RemoveAction>>,
    deprovision_on_rule_deletion: Option<bool>,
}

/// The effective preferences of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preferences {
    pub allow_create: bool,
    pub allow_update: bool,
    pub allow_disable: bool,
    /// Whether removals are carried out at all.
    pub allow_deprovision: bool,
    /// Whether records may be deleted.
    pub allow_delete: bool,
    /// What removal does, by cause.
    pub remove_action: RemoveActions,
    pub deprovision_on_rule_deletion: bool,
}

/// A problem with one preference: where it was written (if it was) and what
/// is wrong.
pub(crate) struct Finding {
    pub span: Option<std::ops::Range<usize>>,
    pub message: String,
    pub warning: bool,
}

impl RawPreferences {
    /// Applies the defaults and checks every explicit choice against the
    /// plugin's capabilities.
    ///
    /// Defaults are safe: whatever the plugin can do, except deleting, is
    /// allowed; records are never deleted unless `allow_delete = true`.
    pub(crate) fn resolve(&self, descriptor: &Descriptor) -> (Preferences, Vec<Finding>) {
        let mut findings = Vec::new();
        let plugin = format!("plugin {} {}", descriptor.name, descriptor.version);
        let mut flag = |value: &Option<Spanned<bool>>,
                        key: &str,
                        capability: Capability,
                        default: bool| {
            match value {
                Some(value) if *value.get_ref() && !descriptor.has(capability) => {
                    findings.push(Finding {
                        span: Some(value.span()),
                        message: format!(
                            "{key} = true, but {plugin} has no {capability} capability (it can: {})",
                            descriptor.capability_list()
                        ),
                        warning: false,
                    });
                    false
                }
                Some(value) => *value.get_ref(),
                None => default,
            }
        };
        let allow_create = flag(
            &self.allow_create,
            "allow_create",
            Capability::Create,
            descriptor.has(Capability::Create),
        );
        let allow_update = flag(
            &self.allow_update,
            "allow_update",
            Capability::Update,
            descriptor.has(Capability::Update),
        );
        let allow_disable = flag(
            &self.allow_disable,
            "allow_disable",
            Capability::Disable,
            descriptor.has(Capability::Disable),
        );
        let allow_delete = flag(
            &self.allow_delete,
            "allow_delete",
            Capability::Delete,
            false,
        );

        let (remove_action, written_any, spans) =
            self.remove_actions(descriptor, &plugin, &mut findings);

        let allow_deprovision = match &self.allow_deprovision {
            Some(value) if *value.get_ref() && !remove_action.any() => {
                if !written_any {
                    findings.push(Finding {
                        span: Some(value.span()),
                        message: format!(
                            "allow_deprovision = true, but {plugin} can neither disable nor delete records"
                        ),
                        warning: false,
                    });
                }
                false
            }
            Some(value) => *value.get_ref(),
            None => remove_action.any(),
        };

        if allow_deprovision
            && let Some(finding) = self.blocked(&remove_action, allow_delete, allow_disable, &spans)
        {
            findings.push(finding);
        }

        let preferences = Preferences {
            allow_create,
            allow_update,
            allow_disable,
            allow_deprovision,
            allow_delete,
            remove_action,
            deprovision_on_rule_deletion: self.deprovision_on_rule_deletion.unwrap_or(false),
        };
        (preferences, findings)
    }

    /// The remove action of each cause: the general one, then each cause's
    /// own where one is written, each checked against the capabilities.
    /// Also whether any was written, and where.
    fn remove_actions(
        &self,
        descriptor: &Descriptor,
        plugin: &str,
        findings: &mut Vec<Finding>,
    ) -> (RemoveActions, bool, Vec<std::ops::Range<usize>>) {
        // The general action, then each cause's own where one is written.
        let check = |action: &Spanned<RemoveAction>, key: &str, findings: &mut Vec<Finding>| {
            let capability = action.get_ref().capability();
            if descriptor.has(capability) {
                return Some(*action.get_ref());
            }
            let alternative = match action.get_ref() {
                RemoveAction::Disable => "\"delete\" (with allow_delete = true)",
                RemoveAction::Delete => "\"disable\"",
            };
            findings.push(Finding {
                span: Some(action.span()),
                message: format!(
                    "{key} = \"{capability}\", but {plugin} cannot {capability} records (it can: {}); use {alternative} or turn deprovisioning off",
                    descriptor.capability_list()
                ),
                warning: false,
            });
            None
        };
        let general = match &self.remove_action {
            Some(action) => check(action, "remove_action", findings),
            None if descriptor.has(Capability::Disable) => Some(RemoveAction::Disable),
            None if descriptor.has(Capability::Delete) => Some(RemoveAction::Delete),
            None => None,
        };
        let mut remove_action = RemoveActions::all(general);
        let written_any = self.remove_action.is_some();
        let mut spans = Vec::new();
        for (cause, raw) in [
            (Cause::Disabled, &self.remove_action_disabled),
            (Cause::Deleted, &self.remove_action_deleted),
            (Cause::LeftScope, &self.remove_action_left_scope),
        ] {
            if let Some(action) = raw {
                remove_action.set(cause, check(action, cause.key(), findings));
                spans.push(action.span());
            }
        }
        let written_any = written_any || !spans.is_empty();
        (remove_action, written_any, spans)
    }

    /// A warning when deprovisioning is on but a cause's removals can never
    /// be sent, because its action is not allowed.
    fn blocked(
        &self,
        remove_action: &RemoveActions,
        allow_delete: bool,
        allow_disable: bool,
        spans: &[std::ops::Range<usize>],
    ) -> Option<Finding> {
        let blocked: Vec<String> = Cause::ALL
            .iter()
            .filter_map(|cause| {
                let why = match remove_action.of(*cause) {
                    Some(RemoveAction::Delete) if !allow_delete => {
                        "its remove action is \"delete\" but allow_delete is false"
                    }
                    Some(RemoveAction::Disable) if !allow_disable => {
                        "its remove action is \"disable\" but allow_disable is false"
                    }
                    _ => return None,
                };
                Some(format!("a person {}: {why}", cause.describe()))
            })
            .collect();
        (!blocked.is_empty()).then(|| Finding {
            span: self
                .remove_action
                .as_ref()
                .map(|a| a.span())
                .or_else(|| spans.first().cloned()),
            message: format!(
                "removals will be reported but never sent for {}; set allow_deprovision = false to make that explicit",
                blocked.join("; ")
            ),
            warning: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::contract::AuthScheme;

    fn descriptor(capabilities: &[Capability]) -> Descriptor {
        Descriptor::for_tests(capabilities, AuthScheme::None)
    }

    fn raw(toml_text: &str) -> RawPreferences {
        toml::from_str(toml_text).unwrap()
    }

    const LEADS: &[Capability] = &[
        Capability::Create,
        Capability::Update,
        Capability::Delete,
        Capability::Lookup,
        Capability::List,
    ];

    #[test]
    fn defaults_follow_the_capabilities_and_never_delete() {
        let (prefs, findings) = raw("").resolve(&descriptor(LEADS));
        assert!(prefs.allow_create && prefs.allow_update);
        assert!(!prefs.allow_disable && !prefs.allow_delete);
        assert_eq!(
            prefs.remove_action,
            RemoveActions::all(Some(RemoveAction::Delete))
        );
        assert!(prefs.allow_deprovision);
        assert!(!prefs.deprovision_on_rule_deletion);
        // Removal is blocked by default, and the operator is told.
        assert_eq!(findings.len(), 1);
        assert!(findings[0].warning);
        assert!(findings[0].message.contains("allow_delete is false"));
    }

    #[test]
    fn disable_without_the_capability_is_refused() {
        let (prefs, findings) = raw("remove_action = \"disable\"").resolve(&descriptor(LEADS));
        assert_eq!(prefs.remove_action, RemoveActions::all(None));
        assert_eq!(findings.len(), 1);
        assert!(!findings[0].warning);
        assert!(
            findings[0].message.contains("cannot disable records"),
            "{}",
            findings[0].message
        );
        assert!(findings[0].message.contains("store 1.2.3"));
        assert!(findings[0].span.is_some());

        let (_, findings) = raw("allow_disable = true").resolve(&descriptor(LEADS));
        assert!(
            findings
                .iter()
                .any(|f| !f.warning && f.message.contains("no disable capability"))
        );
    }

    #[test]
    fn explicit_choices_are_kept() {
        let (prefs, findings) = raw(
            "allow_create = false\nallow_delete = true\nremove_action = \"delete\"\ndeprovision_on_rule_deletion = true",
        )
        .resolve(&descriptor(LEADS));
        assert!(
            findings.is_empty(),
            "{:?}",
            findings.iter().map(|f| &f.message).collect::<Vec<_>>()
        );
        assert!(!prefs.allow_create && prefs.allow_delete && prefs.deprovision_on_rule_deletion);
    }

    #[test]
    fn deprovisioning_needs_a_way_to_remove() {
        let (prefs, findings) =
            raw("allow_deprovision = true").resolve(&descriptor(&[Capability::Create]));
        assert!(!prefs.allow_deprovision);
        assert!(findings[0].message.contains("neither disable nor delete"));
        let (prefs, findings) = raw("").resolve(&descriptor(&[Capability::Create]));
        assert!(!prefs.allow_deprovision && !prefs.remove_action.any() && findings.is_empty());
    }

    const STORE: &[Capability] = &[
        Capability::Create,
        Capability::Disable,
        Capability::Delete,
        Capability::Lookup,
    ];

    #[test]
    fn each_cause_may_have_its_own_remove_action() {
        let (prefs, findings) = raw(
            "allow_delete = true\nremove_action = \"disable\"\nremove_action_deleted = \"delete\"",
        )
        .resolve(&descriptor(STORE));
        assert!(
            findings.is_empty(),
            "{:?}",
            findings.iter().map(|f| &f.message).collect::<Vec<_>>()
        );
        assert_eq!(
            prefs.remove_action.of(Cause::Disabled),
            Some(RemoveAction::Disable)
        );
        assert_eq!(
            prefs.remove_action.of(Cause::Deleted),
            Some(RemoveAction::Delete)
        );
        assert_eq!(
            prefs.remove_action.of(Cause::LeftScope),
            Some(RemoveAction::Disable)
        );

        // A cause's own action is checked like the general one, by its key.
        let (prefs, findings) =
            raw("remove_action_left_scope = \"disable\"").resolve(&descriptor(LEADS));
        assert_eq!(prefs.remove_action.of(Cause::LeftScope), None);
        assert!(
            findings.iter().any(|f| !f.warning
                && f.message
                    .starts_with("remove_action_left_scope = \"disable\"")
                && f.span.is_some()),
            "{:?}",
            findings.iter().map(|f| &f.message).collect::<Vec<_>>()
        );

        // The warning for a blocked removal names the causes it blocks.
        let (_, findings) = raw("remove_action_deleted = \"delete\"").resolve(&descriptor(STORE));
        let warning = findings.iter().find(|f| f.warning).expect("a warning");
        assert!(
            warning
                .message
                .contains("a person deleted from the directory")
                && !warning.message.contains("disabled in the directory"),
            "{}",
            warning.message
        );
    }

    #[test]
    fn unknown_preferences_are_refused() {
        let error = toml::from_str::<RawPreferences>("allow_everything = true").unwrap_err();
        assert!(
            error.message().contains("allow_everything"),
            "{}",
            error.message()
        );
    }
}
