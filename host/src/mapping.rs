//! Attribute mappings: how a person's source attributes become a record's
//! attributes. A mapping takes a source attribute, a constant, or a
//! template such as `{given_name} {family_name}`, or (for a list attribute
//! of contract 0.2) one template per element. Templates are parsed once,
//! and a template that does not parse is refused with the position of the
//! problem.
//!
//! Sources give text; [`typed`] then gives each mapping the type and case
//! rule its connector declares for the target, so that a boolean target
//! receives `true` rather than `"true"` and a case-blind one compares
//! without case.

use std::collections::BTreeMap;
use std::fmt;

use crate::runtime::contract::{
    Attribute, AttributeType, Descriptor, Mapping, MappingSource, Value,
};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Text(String),
    Attribute(String),
}

/// Why a template does not parse; `position` is the 1-based character.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {template:?}, character {position}: {reason}")]
pub struct TemplateError {
    pub template: String,
    pub position: usize,
    pub reason: String,
}

/// A parsed template. `{{` and `}}` stand for literal braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

fn is_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

impl Template {
    pub fn parse(template: &str) -> Result<Template, TemplateError> {
        let error = |position: usize, reason: &str| TemplateError {
            template: template.to_string(),
            position,
            reason: reason.to_string(),
        };
        let chars: Vec<char> = template.chars().collect();
        let mut segments = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '{' if chars.get(i + 1) == Some(&'{') => {
                    text.push('{');
                    i += 2;
                }
                '}' if chars.get(i + 1) == Some(&'}') => {
                    text.push('}');
                    i += 2;
                }
                '{' => {
                    let start = i;
                    let Some(end) = chars[i + 1..].iter().position(|c| *c == '}') else {
                        return Err(error(
                            start + 1,
                            "unterminated {: add } or write {{ for a brace",
                        ));
                    };
                    let name: String = chars[i + 1..i + 1 + end].iter().collect();
                    let name = name.trim().to_string();
                    if name.is_empty() {
                        return Err(error(start + 1, "empty {} names no attribute"));
                    }
                    if !is_attribute_name(&name) {
                        return Err(error(
                            start + 2,
                            &format!("{name:?} is not an attribute name (letters, digits, _ - .)"),
                        ));
                    }
                    if !text.is_empty() {
                        segments.push(Segment::Text(std::mem::take(&mut text)));
                    }
                    segments.push(Segment::Attribute(name));
                    i += end + 2;
                }
                '}' => return Err(error(i + 1, "stray }: write }} for a brace")),
                c => {
                    text.push(c);
                    i += 1;
                }
            }
        }
        if !text.is_empty() {
            segments.push(Segment::Text(text));
        }
        Ok(Template { segments })
    }

    /// The template as it would be written: what parses back to it.
    pub fn text(&self) -> String {
        self.segments
            .iter()
            .map(|segment| match segment {
                Segment::Text(text) => text.replace('{', "{{").replace('}', "}}"),
                Segment::Attribute(name) => format!("{{{name}}}"),
            })
            .collect()
    }

    /// The source attributes the template reads.
    pub fn attributes(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Attribute(name) => Some(name.as_str()),
            Segment::Text(_) => None,
        })
    }

    /// Fills the template. Missing attributes render as nothing; if every
    /// attribute it reads is missing, the result is `Null`, so that a
    /// template never writes a lone separator such as `" "`.
    pub fn render(&self, person: &BTreeMap<String, String>) -> Value {
        let mut out = String::new();
        let mut any = false;
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Attribute(name) => {
                    if let Some(value) = person.get(name).filter(|v| !v.is_empty()) {
                        any = true;
                        out.push_str(value);
                    }
                }
            }
        }
        let reads_attributes = self.attributes().next().is_some();
        let out = out.trim();
        if (reads_attributes && !any) || out.is_empty() {
            Value::Null
        } else {
            Value::Text(out.to_string())
        }
    }
}

/// A mapping ready to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledMapping {
    pub target: String,
    source: Source,
    pub apply_on_update: bool,
    /// The type the target takes (text unless the connector says).
    pub kind: AttributeType,
    /// False when the store compares the target without case.
    pub case_exact: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Attribute(String),
    Constant(String),
    Template(Template),
    Templates(Vec<Template>),
}

impl fmt::Display for CompiledMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.target)
    }
}

impl CompiledMapping {
    pub fn compile(mapping: &Mapping) -> Result<CompiledMapping, TemplateError> {
        let source = match &mapping.source {
            MappingSource::Attribute(name) => Source::Attribute(name.clone()),
            MappingSource::Constant(value) => Source::Constant(value.clone()),
            MappingSource::Template(text) => Source::Template(Template::parse(text)?),
            MappingSource::Templates(texts) => Source::Templates(
                texts
                    .iter()
                    .map(|text| Template::parse(text))
                    .collect::<Result<_, _>>()?,
            ),
        };
        let kind = match source {
            Source::Templates(_) => AttributeType::TextList,
            _ => AttributeType::Text,
        };
        Ok(CompiledMapping {
            target: mapping.target.clone(),
            source,
            apply_on_update: mapping.apply_on_update,
            kind,
            case_exact: true,
        })
    }

    /// The value for one person, of the target's type. A missing source
    /// attribute is `Null`. Text that does not read as the target's type
    /// (`yes` for a boolean) stays text, and the store's answer says what
    /// it makes of it; constants are checked before any pass (see
    /// [`typed`]).
    pub fn value(&self, person: &BTreeMap<String, String>) -> Value {
        let text = match &self.source {
            Source::Attribute(name) => person
                .get(name)
                .filter(|v| !v.is_empty())
                .map(|v| Value::Text(v.clone()))
                .unwrap_or(Value::Null),
            Source::Constant(value) => Value::Text(value.clone()),
            Source::Template(template) => template.render(person),
            Source::Templates(templates) => {
                return Value::TextList(
                    templates
                        .iter()
                        .filter_map(|t| match t.render(person) {
                            Value::Text(text) => Some(text),
                            _ => None,
                        })
                        .collect(),
                );
            }
        };
        match (self.kind, text) {
            (AttributeType::Boolean, Value::Text(text)) => boolean(&text)
                .map(Value::Boolean)
                .unwrap_or(Value::Text(text)),
            (AttributeType::Integer, Value::Text(text)) => integer(&text)
                .map(Value::Integer)
                .unwrap_or(Value::Text(text)),
            (AttributeType::TextList, Value::Text(text)) => Value::TextList(vec![text]),
            (_, value) => value,
        }
    }
}

/// Text that says a boolean: `true` or `false`, in any case.
pub(crate) fn boolean(text: &str) -> Option<bool> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// An integer written plainly: what `i64`'s own form gives back.
pub(crate) fn integer(text: &str) -> Option<i64> {
    let text = text.trim();
    text.parse::<i64>()
        .ok()
        .filter(|number| number.to_string() == text)
}

/// The connector's default mappings, compiled and typed.
pub fn defaults(descriptor: &Descriptor) -> Result<Vec<CompiledMapping>, String> {
    let mut mappings = compile(&descriptor.default_mappings)?;
    typed(&mut mappings, descriptor)?;
    Ok(mappings)
}

/// Gives each mapping the type and case rule that `descriptor` declares for
/// its target, and refuses what cannot be written: a list of templates to
/// a target that is not a list, a list to a 0.1 connector (which has no
/// list values), or a constant that is not of the target's type.
pub fn typed(mappings: &mut [CompiledMapping], descriptor: &Descriptor) -> Result<(), String> {
    for mapping in mappings.iter_mut() {
        let declared = descriptor.attribute(&mapping.target);
        let kind = declared.map(|a| a.kind).unwrap_or(AttributeType::Text);
        if let Source::Templates(_) = mapping.source
            && kind != AttributeType::TextList
        {
            return Err(match declared {
                Some(_) => format!(
                    "mapping for {}: a list of templates needs a text-list target, and plugin {} declares {} as {kind}",
                    mapping.target, descriptor.name, mapping.target
                ),
                None => format!(
                    "mapping for {}: a list of templates needs a text-list target, and plugin {} does not declare {} as one",
                    mapping.target, descriptor.name, mapping.target
                ),
            });
        }
        if let Source::Constant(value) = &mapping.source {
            let fits = match kind {
                AttributeType::Boolean => boolean(value).is_some(),
                AttributeType::Integer => integer(value).is_some(),
                AttributeType::Text | AttributeType::TextList => true,
            };
            if !fits {
                return Err(format!(
                    "mapping for {}: constant {value:?} is not a {kind}, which plugin {} declares {} to be",
                    mapping.target, descriptor.name, mapping.target
                ));
            }
        }
        mapping.kind = kind;
        mapping.case_exact = declared.is_none_or(|a| a.case_exact);
    }
    Ok(())
}

impl CompiledMapping {
    /// Where the value comes from, as the configuration would say it.
    fn source_text(&self) -> String {
        let source = match &self.source {
            Source::Attribute(name) => format!("source {name:?}"),
            Source::Constant(value) => format!("constant {value:?}"),
            Source::Template(template) => format!("template {:?}", template.text()),
            Source::Templates(templates) => format!(
                "templates [{}]",
                templates
                    .iter()
                    .map(|t| format!("{:?}", t.text()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        if self.apply_on_update {
            source
        } else {
            format!("{source}, on create only")
        }
    }
}

/// What a rule writes, target by target (keyed by the target in lower
/// case, so that order does not matter; a change of a target's case still
/// reads as a change, since the records remember what was written under
/// each name): recorded after a pass, so that the next one can tell a
/// change of mappings, from a plugin upgrade or from the configuration,
/// and hold the updates it causes for review.
pub fn fingerprint(mappings: &[CompiledMapping]) -> String {
    let map: BTreeMap<String, String> = mappings
        .iter()
        .map(|m| {
            (
                m.target.to_ascii_lowercase(),
                format!("{}: {}", m.target, m.source_text()),
            )
        })
        .collect();
    serde_json::to_string(&map).unwrap_or_default()
}

/// What changed between two fingerprints, in words: "added X; changed Y
/// (from … to …); removed Z". An unreadable old fingerprint reads as no
/// mappings at all.
pub fn changes(before: &str, now: &str) -> String {
    let read =
        |text: &str| -> BTreeMap<String, String> { serde_json::from_str(text).unwrap_or_default() };
    let (before, now) = (read(before), read(now));
    let mut parts = Vec::new();
    for (target, mapping) in &now {
        match before.get(target) {
            None => parts.push(format!("added {mapping}")),
            Some(old) if old != mapping => parts.push(format!("changed {old} to {mapping}")),
            Some(_) => {}
        }
    }
    for (target, mapping) in &before {
        if !now.contains_key(target) {
            parts.push(format!("removed {mapping}"));
        }
    }
    parts.join("; ")
}

/// Compiles a set of mappings; the error names the mapping's target.
pub fn compile(mappings: &[Mapping]) -> Result<Vec<CompiledMapping>, String> {
    mappings
        .iter()
        .map(|m| CompiledMapping::compile(m).map_err(|e| format!("mapping for {}: {e}", m.target)))
        .collect()
}

/// The attributes a person maps to. On update, only mappings with
/// `apply_on_update`.
pub fn attributes(
    mappings: &[CompiledMapping],
    person: &BTreeMap<String, String>,
    for_update: bool,
) -> Vec<Attribute> {
    mappings
        .iter()
        .filter(|m| !for_update || m.apply_on_update)
        .map(|m| Attribute {
            name: m.target.clone(),
            value: m.value(person),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(target: &str, source: MappingSource, apply_on_update: bool) -> CompiledMapping {
        CompiledMapping::compile(&Mapping {
            target: target.into(),
            source,
            apply_on_update,
        })
        .unwrap()
    }

    #[test]
    fn a_fingerprint_tells_what_changed_target_by_target() {
        let before = fingerprint(&[
            compiled("Title", MappingSource::Attribute("title".into()), true),
            compiled("Company", MappingSource::Constant("Acme".into()), true),
            compiled(
                "Description",
                MappingSource::Template("{a} {{x}}".into()),
                false,
            ),
        ]);
        // Order does not matter; the case of a target does, as the links
        // remember what was written under each name.
        let same = fingerprint(&[
            compiled(
                "Description",
                MappingSource::Template("{a} {{x}}".into()),
                false,
            ),
            compiled("company", MappingSource::Constant("Acme".into()), true),
            compiled("Title", MappingSource::Attribute("title".into()), true),
        ]);
        assert_eq!(
            changes(&before, &same),
            "changed Company: constant \"Acme\" to company: constant \"Acme\""
        );
        let now = fingerprint(&[
            compiled("Title", MappingSource::Attribute("job_title".into()), true),
            compiled(
                "Description",
                MappingSource::Template("{a} {{x}}".into()),
                false,
            ),
            compiled("Phone", MappingSource::Attribute("phone".into()), true),
        ]);
        assert_eq!(
            changes(&before, &now),
            "added Phone: source \"phone\"; changed Title: source \"title\" to Title: source \"job_title\"; removed Company: constant \"Acme\""
        );
        assert!(
            before.contains("template \\\"{a} {{x}}\\\", on create only"),
            "{before}"
        );
        assert_eq!(changes(&now, &now), "");
    }

    fn person(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn templates_render_and_escape() {
        let t = Template::parse("{given_name} {family_name}").unwrap();
        assert_eq!(
            t.render(&person(&[
                ("given_name", "Ada"),
                ("family_name", "Lovelace")
            ])),
            Value::Text("Ada Lovelace".into())
        );
        assert_eq!(
            t.render(&person(&[("family_name", "Lovelace")])),
            Value::Text("Lovelace".into())
        );
        assert_eq!(t.render(&person(&[])), Value::Null);
        let braces = Template::parse("{{literal}} {x}").unwrap();
        assert_eq!(
            braces.render(&person(&[("x", "1")])),
            Value::Text("{literal} 1".into())
        );
        assert_eq!(
            Template::parse("constant").unwrap().render(&person(&[])),
            Value::Text("constant".into())
        );
    }

    #[test]
    fn bad_templates_say_where() {
        for (template, position, needle) in [
            ("{given_name", 1, "unterminated"),
            ("Dear {}", 6, "empty"),
            ("a } b", 3, "stray }"),
            ("{first name}", 2, "not an attribute name"),
        ] {
            let error = Template::parse(template).unwrap_err();
            assert_eq!(error.position, position, "{template}: {error}");
            assert!(error.reason.contains(needle), "{template}: {error}");
        }
    }

    #[test]
    fn mappings_pick_what_updates_send() {
        let mappings = compile(&[
            Mapping {
                target: "Email".into(),
                source: MappingSource::Attribute("email".into()),
                apply_on_update: true,
            },
            Mapping {
                target: "LeadSource".into(),
                source: MappingSource::Constant("provisioner".into()),
                apply_on_update: false,
            },
        ])
        .unwrap();
        let p = person(&[("email", "a@x.test")]);
        assert_eq!(attributes(&mappings, &p, false).len(), 2);
        let update = attributes(&mappings, &p, true);
        assert_eq!(update.len(), 1);
        assert_eq!(update[0].value, Value::Text("a@x.test".into()));
        let error = compile(&[Mapping {
            target: "Name".into(),
            source: MappingSource::Template("{x".into()),
            apply_on_update: true,
        }])
        .unwrap_err();
        assert!(error.starts_with("mapping for Name: template"), "{error}");
    }
}
