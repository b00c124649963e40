//! A contract 0.2 connector, on the SDK, that needs no store: it answers
//! from what the host sent it, so that the host's tests see exactly what
//! crossed the boundary (typed values, lists, versions, group operations)
//! and what the per-connection cache keeps, including when the connector
//! pushes against the cache's limits.

use std::time::Duration;

use provisioner_connector::{
    AttributeSpec, AttributeType, Capability, ConnectionReport, Connector, Descriptor,
    DescriptorBuilder, Group, GroupOperation, GroupPage, Match, Operation, Outcome, Source,
    StoreError, cache, json, settings,
};

struct Probe;

/// Keys the test connection tries to keep; more than the host's cap.
const KEYS: usize = 40;

impl Connector for Probe {
    fn describe() -> Descriptor {
        use Capability::*;
        DescriptorBuilder::new("probe", "0.2.0", "Answers from what the host sends")
            .text_setting("label", "Shown in reports", false)
            .capabilities([Create, Update, Disable, Enable, Lookup, Groups, Schema])
            .match_attribute("email")
            .attribute("email", AttributeType::Text, false)
            .attribute("tags", AttributeType::TextList, true)
            .attribute("vip", AttributeType::Boolean, true)
            .attribute("level", AttributeType::Integer, true)
            .map("email", Source::attribute("email"))
            .map("tags", Source::templates(["{team}", "{role}"]))
            .map("vip", Source::attribute("vip"))
            .map("level", Source::attribute("level"))
            .build()
    }

    fn connect() -> Result<Self, StoreError> {
        Ok(Probe)
    }

    /// Says what the cache held before, then fills it past its limits.
    fn test_connection(&self) -> Result<ConnectionReport, StoreError> {
        let hour = Duration::from_secs(3600);
        let before = cache::get("seen").unwrap_or_else(|| "nothing".into());
        let me = settings::text("label").unwrap_or_default();
        cache::set("seen", &me, hour).map_err(|e| StoreError::transient(e, None))?;
        let oversized = cache::set("big", &"x".repeat(64 * 1024 + 1), hour)
            .err()
            .unwrap_or_else(|| "stored".into());
        for i in 0..KEYS {
            // Shorter lives than `seen`, and longer for later keys: the
            // host evicts the entry that expires first.
            let ttl = hour / 2 + Duration::from_secs(i as u64);
            let _ = cache::set(&format!("k{i}"), "v", ttl);
        }
        let kept = (0..KEYS)
            .filter(|i| cache::get(&format!("k{i}")).is_some())
            .count();
        Ok(ConnectionReport::new(format!("seen before: {before}"))
            .detail("oversized", oversized)
            .detail("kept", kept.to_string())
            .detail("seen-kept", cache::get("seen").is_some().to_string()))
    }

    /// Each record's id is what arrived, as JSON; versions echo back.
    fn apply(&self, operations: Vec<Operation>) -> Vec<Result<Outcome, StoreError>> {
        let outcome = |id: String, version: Option<String>| Ok(Outcome { id, version });
        operations
            .into_iter()
            .map(|operation| match operation {
                Operation::Create(attributes) => outcome(
                    format!(
                        "probe:{}",
                        serde_json::Value::Object(json::object(&attributes))
                    ),
                    None,
                ),
                Operation::Update(u) => outcome(
                    u.id,
                    Some(format!("after-{}", u.version.unwrap_or_default())),
                ),
                Operation::Enable(u) => outcome(format!("enabled:{}", u.id), None),
                Operation::Disable(id) => outcome(id, None),
                other => Err(StoreError::Unsupported(format!("{other:?}"))),
            })
            .collect()
    }

    fn lookup(&self, _attribute: String, _values: Vec<String>) -> Result<Vec<Match>, StoreError> {
        Ok(Vec::new())
    }

    fn apply_groups(&self, operations: Vec<GroupOperation>) -> Vec<Result<Outcome, StoreError>> {
        operations
            .into_iter()
            .map(|operation| {
                let id = match operation {
                    GroupOperation::Create(g) => {
                        format!("group:{}:{}", g.display_name, g.members.join("+"))
                    }
                    GroupOperation::Rename(r) => format!(
                        "{}:{}:{}",
                        r.id,
                        r.display_name,
                        r.version.unwrap_or_default()
                    ),
                    GroupOperation::Delete(id) => format!("deleted:{id}"),
                    GroupOperation::AddMembers(m) => format!("{}+{}", m.id, m.members.join("+")),
                    GroupOperation::RemoveMembers(m) => format!("{}-{}", m.id, m.members.join("-")),
                };
                Ok(Outcome { id, version: None })
            })
            .collect()
    }

    fn lookup_groups(&self, display_names: Vec<String>) -> Result<Vec<Group>, StoreError> {
        Ok(display_names
            .into_iter()
            .filter(|name| name != "absent")
            .map(|name| Group {
                id: format!("group:{name}"),
                display_name: name,
                members: vec!["m1".into(), "m2".into()],
                version: Some("g1".into()),
            })
            .collect())
    }

    fn list_groups(&self, cursor: Option<String>) -> Result<GroupPage, StoreError> {
        let name = cursor.clone().unwrap_or_else(|| "first".into());
        Ok(GroupPage {
            groups: self.lookup_groups(vec![name])?,
            next_cursor: cursor.is_none().then(|| "second".into()),
        })
    }

    fn discover_schema(&self) -> Result<Vec<AttributeSpec>, StoreError> {
        let spec = |name: &str, type_| AttributeSpec {
            name: name.into(),
            type_,
            case_exact: true,
            description: String::new(),
        };
        Ok(vec![
            spec("email", AttributeType::Text),
            spec("tags", AttributeType::TextList),
            // The store says text where the connector declares boolean.
            spec("vip", AttributeType::Text),
            spec("level", AttributeType::Integer),
        ])
    }
}

provisioner_connector::export_connector!(Probe);
