//! Incident templates: Statuspage-style canned messages that staff keep ready ("Check-in
//! systems slow", "Baggage belt stopped") and apply when composing an incident or an update —
//! a title, an impact, a status, the affected components and the message in each language.
//!
//! A template holds the same domain types an incident opening holds ([`Title`], [`Impact`],
//! [`Status`], [`ComponentName`], [`Body`]), validated by the same rules, so whatever a template
//! fills in is something the incident form accepts. [`TemplateFields::validate`] turns what a
//! person typed into those types, with an error naming the field and what to write instead.

use super::{Body, ComponentName, DomainError, Impact, IncidentKind, Locale, Status, Title};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use ulid::Ulid;

/// The longest template name, in characters.
pub const MAX_TEMPLATE_NAME: usize = 80;

/// A template's name: one line of 1–80 printable characters, trimmed; unique among templates
/// regardless of case (see [`TemplateName::key`]).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, min_length = 1, max_length = 80)]
pub struct TemplateName(String);

impl TemplateName {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(DomainError::invalid(
                "name",
                "is empty; name the template for what it is about, e.g. \"Check-in slow\"",
            ));
        }
        let n = t.chars().count();
        if n > MAX_TEMPLATE_NAME {
            return Err(DomainError::invalid(
                "name",
                format!("is {n} characters; keep it at most {MAX_TEMPLATE_NAME} (the title and the messages carry the details)"),
            ));
        }
        super::check_line("name", t)?;
        Ok(TemplateName(t.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What uniqueness is judged on: the name in lower case (`Check-in slow` and
    /// `check-in SLOW` are the same template).
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl TryFrom<String> for TemplateName {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        TemplateName::parse(&s)
    }
}

impl From<TemplateName> for String {
    fn from(n: TemplateName) -> String {
        n.0
    }
}

impl fmt::Display for TemplateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One incident template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IncidentTemplate {
    #[schema(value_type = String)]
    pub id: Ulid,
    pub name: TemplateName,
    pub title: Title,
    pub impact: Impact,
    /// An open incident's status: investigating, identified or monitoring.
    pub status: Status,
    /// The affected components (may be none).
    pub components: Vec<ComponentName>,
    /// The message in each language it was written in (at least one).
    #[schema(value_type = BTreeMap<String, String>)]
    pub messages: Body,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

/// A template's fields as typed (API body, CLI flags, console form), before validation.
#[derive(Debug, Clone, Default)]
pub struct TemplateFields {
    pub name: String,
    pub title: String,
    pub impact: String,
    pub status: String,
    pub components: Vec<String>,
    /// Language tag → text.
    pub messages: BTreeMap<String, String>,
}

/// The validated contents of a template (everything but its id and history).
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateContent {
    pub name: TemplateName,
    pub title: Title,
    pub impact: Impact,
    pub status: Status,
    pub components: Vec<ComponentName>,
    pub messages: Body,
}

impl TemplateFields {
    /// Validates every field: the name, the title, impact and status as an incident opening
    /// takes them, the component names, and the messages — each in one of `languages` (the
    /// configured ones), each held to the rules of an update's message, at least one.
    pub fn validate(self, languages: &[Locale]) -> Result<TemplateContent, DomainError> {
        let name = TemplateName::parse(&self.name)?;
        let title = Title::parse(&self.title)?;
        let impact = parse_impact(&self.impact)?;
        let status = parse_status(&self.status)?;
        let components = parse_components(&self.components)?;
        let messages = parse_messages(self.messages, languages)?;
        Ok(TemplateContent {
            name,
            title,
            impact,
            status,
            components,
            messages,
        })
    }
}

fn parse_impact(s: &str) -> Result<Impact, DomainError> {
    if s.trim().is_empty() {
        return Err(DomainError::invalid(
            "impact",
            "is missing; write none, minor, major or critical",
        ));
    }
    Impact::parse(s)
}

/// An open incident's status: a template starts or continues an incident, so neither a final
/// status nor a maintenance's.
fn parse_status(s: &str) -> Result<Status, DomainError> {
    const OPEN: &str = "write investigating, identified or monitoring";
    if s.trim().is_empty() {
        return Err(DomainError::invalid(
            "status",
            format!("is missing; {OPEN}"),
        ));
    }
    let status = Status::parse(s)?;
    if status.kind() != IncidentKind::Incident || status.is_final() {
        return Err(DomainError::invalid(
            "status",
            format!("\"{status}\" is not a status a template can set; {OPEN}"),
        ));
    }
    Ok(status)
}

fn parse_components(raw: &[String]) -> Result<Vec<ComponentName>, DomainError> {
    let mut out: Vec<ComponentName> = Vec::new();
    for c in raw {
        let name = ComponentName::parse(c).map_err(|e| match e {
            DomainError::Invalid { reason, .. } => DomainError::Invalid {
                field: "components",
                reason,
            },
            other => other,
        })?;
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// The messages by language: a tag that is not a configured language is refused (the
/// console writes, and readers get, only those), and each text passes an update message's
/// checks ([`Body::parse`]).
pub fn parse_messages(
    raw: BTreeMap<String, String>,
    languages: &[Locale],
) -> Result<Body, DomainError> {
    let known = || {
        languages
            .iter()
            .map(Locale::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut texts = BTreeMap::new();
    for (tag, text) in raw {
        let locale = Locale::parse(&tag).map_err(|_| {
            DomainError::invalid(
                "messages",
                format!("\"{tag}\" is not a language tag; write one of {}", known()),
            )
        })?;
        if !languages.contains(&locale) {
            return Err(DomainError::invalid(
                "messages",
                format!(
                    "\"{locale}\" is not one of the configured languages; write one of {}",
                    known()
                ),
            ));
        }
        if texts.insert(locale.clone(), text).is_some() {
            return Err(DomainError::invalid(
                "messages",
                format!("two texts for {locale}; give each language once"),
            ));
        }
    }
    Body::parse(texts).map_err(|e| match e {
        DomainError::Invalid { reason, .. } => DomainError::Invalid {
            field: "messages",
            reason,
        },
        other => other,
    })
}

impl IncidentTemplate {
    /// A new template made by `by` at `now`.
    pub fn new(content: TemplateContent, by: &str, now: DateTime<Utc>) -> Self {
        IncidentTemplate {
            id: Ulid::new(),
            name: content.name,
            title: content.title,
            impact: content.impact,
            status: content.status,
            components: content.components,
            messages: content.messages,
            created_by: by.to_owned(),
            created_at: now,
            updated_by: by.to_owned(),
            updated_at: now,
        }
    }

    /// The fields as typed, to be changed and validated again (an edit).
    pub fn fields(&self) -> TemplateFields {
        TemplateFields {
            name: self.name.to_string(),
            title: self.title.as_str().to_owned(),
            impact: self.impact.as_str().to_owned(),
            status: self.status.as_str().to_owned(),
            components: self.components.iter().map(|c| c.to_string()).collect(),
            messages: self
                .messages
                .texts()
                .iter()
                .map(|(l, t)| (l.to_string(), t.clone()))
                .collect(),
        }
    }

    /// This template with new contents, edited by `by` at `now`.
    pub fn edited(&self, content: TemplateContent, by: &str, now: DateTime<Utc>) -> Self {
        IncidentTemplate {
            name: content.name,
            title: content.title,
            impact: content.impact,
            status: content.status,
            components: content.components,
            messages: content.messages,
            updated_by: by.to_owned(),
            updated_at: now,
            ..self.clone()
        }
    }

    /// One line for the audit log: what the template holds.
    pub fn summary(&self) -> String {
        let langs: Vec<&str> = self.messages.texts().keys().map(Locale::as_str).collect();
        format!(
            "template \"{}\": \"{}\", {} impact, {}, components [{}], messages in {}",
            self.name,
            self.title.as_str(),
            self.impact.as_str(),
            self.status,
            self.components
                .iter()
                .map(ComponentName::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            langs.join(", ")
        )
    }

    /// Before → after, field by field, for the audit log ("nothing changed" when nothing did).
    pub fn changes(before: &IncidentTemplate, after: &IncidentTemplate) -> String {
        let mut out = Vec::new();
        if before.name != after.name {
            out.push(format!("name \"{}\" → \"{}\"", before.name, after.name));
        }
        if before.title != after.title {
            out.push(format!(
                "title \"{}\" → \"{}\"",
                before.title.as_str(),
                after.title.as_str()
            ));
        }
        if before.impact != after.impact {
            out.push(format!(
                "impact {} → {}",
                before.impact.as_str(),
                after.impact.as_str()
            ));
        }
        if before.status != after.status {
            out.push(format!("status {} → {}", before.status, after.status));
        }
        if before.components != after.components {
            let list = |cs: &[ComponentName]| {
                cs.iter()
                    .map(ComponentName::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push(format!(
                "components [{}] → [{}]",
                list(&before.components),
                list(&after.components)
            ));
        }
        let (b, a) = (before.messages.texts(), after.messages.texts());
        let mut langs: Vec<&Locale> = b.keys().chain(a.keys()).collect();
        langs.sort();
        langs.dedup();
        for l in langs {
            match (b.get(l), a.get(l)) {
                (Some(_), None) => out.push(format!("message {l} removed")),
                (None, Some(_)) => out.push(format!("message {l} added")),
                (Some(x), Some(y)) if x != y => out.push(format!("message {l} changed")),
                _ => {}
            }
        }
        if out.is_empty() {
            return format!("template \"{}\": nothing changed", after.name);
        }
        format!("template \"{}\": {}", before.name, out.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn languages() -> Vec<Locale> {
        ["en", "fi", "sv"]
            .iter()
            .map(|l| Locale::parse(l).unwrap())
            .collect()
    }

    fn fields() -> TemplateFields {
        TemplateFields {
            name: "  Check-in slow ".into(),
            title: "Check-in delays at HEL".into(),
            impact: "Major".into(),
            status: "identified".into(),
            components: vec!["Check-in".into(), "Check-in".into()],
            messages: BTreeMap::from([
                ("en".into(), "Check-in is slow.".into()),
                ("FI".into(), "Lähtöselvitys on hidas.".into()),
            ]),
        }
    }

    fn refused(f: TemplateFields) -> (&'static str, String) {
        match f.validate(&languages()) {
            Err(DomainError::Invalid { field, reason }) => (field, reason),
            other => panic!("not refused as invalid: {other:?}"),
        }
    }

    #[test]
    fn a_template_is_validated_into_the_incident_types() {
        let c = fields().validate(&languages()).unwrap();
        assert_eq!(c.name.as_str(), "Check-in slow", "trimmed");
        assert_eq!(c.impact, Impact::Major);
        assert_eq!(c.status, Status::Identified);
        assert_eq!(c.components.len(), 1, "the same component once");
        let langs: Vec<&str> = c.messages.texts().keys().map(Locale::as_str).collect();
        assert_eq!(langs, ["en", "fi"], "tags canonicalised");
    }

    #[test]
    fn names_are_one_trimmed_line_of_at_most_80_characters() {
        assert_eq!(TemplateName::parse(" x ").unwrap().as_str(), "x");
        assert_eq!(
            TemplateName::parse(&"ä".repeat(80)).unwrap().as_str(),
            "ä".repeat(80)
        );
        for (bad, says) in [
            ("   ", "is empty"),
            (
                &"a".repeat(81) as &str,
                "is 81 characters; keep it at most 80",
            ),
            ("two\nlines", "name"),
        ] {
            let e = TemplateName::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("name: ") && e.contains(says), "{bad:?}: {e}");
        }
        assert_eq!(
            TemplateName::parse("Check-In Slow").unwrap().key(),
            TemplateName::parse("check-in slow").unwrap().key()
        );
    }

    #[test]
    fn each_field_is_refused_with_its_name_and_what_to_write() {
        type Change = Box<dyn Fn(&mut TemplateFields)>;
        let cases: Vec<(Change, &str, &str)> = vec![
            (Box::new(|f| f.name = "".into()), "name", "is empty"),
            (Box::new(|f| f.title = " ".into()), "title", "is empty"),
            (
                Box::new(|f| f.impact = "".into()),
                "impact",
                "none, minor, major or critical",
            ),
            (Box::new(|f| f.impact = "huge".into()), "impact", "huge"),
            (
                Box::new(|f| f.status = "".into()),
                "status",
                "write investigating, identified or monitoring",
            ),
            (
                Box::new(|f| f.status = "resolved".into()),
                "status",
                "write investigating, identified or monitoring",
            ),
            (
                Box::new(|f| f.status = "scheduled".into()),
                "status",
                "write investigating, identified or monitoring",
            ),
            (
                Box::new(|f| f.components = vec!["a;b".into()]),
                "components",
                "is not a component name",
            ),
            (
                Box::new(|f| f.messages.clear()),
                "messages",
                "give the message in at least one language",
            ),
            (
                Box::new(|f| {
                    f.messages.insert("sv".into(), "  ".into());
                }),
                "messages",
                "the sv text is blank",
            ),
            (
                Box::new(|f| {
                    f.messages.insert("de".into(), "Hallo".into());
                }),
                "messages",
                "\"de\" is not one of the configured languages; write one of en, fi, sv",
            ),
            (
                Box::new(|f| {
                    f.messages.insert("english".into(), "x".into());
                }),
                "messages",
                "write one of en, fi, sv",
            ),
            (
                Box::new(|f| {
                    f.messages.insert("sv".into(), "x".repeat(25_001));
                }),
                "messages",
                "keep it at most",
            ),
            (
                Box::new(|f| {
                    f.messages.insert("sv".into(), "bell\u{7}".into());
                }),
                "messages",
                "sv text",
            ),
            (
                Box::new(|f| {
                    f.messages.insert("Fi".into(), "kaksi".into());
                }),
                "messages",
                "two texts for fi",
            ),
        ];
        for (change, field, says) in cases {
            let mut f = fields();
            change(&mut f);
            let (got, reason) = refused(f);
            assert_eq!(got, field, "{reason}");
            assert!(reason.contains(says), "{field}: {reason}");
        }
    }

    #[test]
    fn the_audit_summary_says_before_and_after() {
        let by = "anna";
        let t = IncidentTemplate::new(fields().validate(&languages()).unwrap(), by, Utc::now());
        let mut f = t.fields();
        f.impact = "critical".into();
        f.messages.remove("fi");
        f.messages
            .insert("sv".into(), "Incheckningen är långsam.".into());
        let after = t.edited(f.validate(&languages()).unwrap(), "bert", Utc::now());
        assert_eq!(after.id, t.id);
        assert_eq!(after.created_by, "anna");
        assert_eq!(after.updated_by, "bert");
        assert_eq!(
            IncidentTemplate::changes(&t, &after),
            "template \"Check-in slow\": impact major → critical, message fi removed, message sv added"
        );
        assert!(IncidentTemplate::changes(&t, &t).ends_with("nothing changed"));
        assert!(
            t.summary().contains("messages in en, fi"),
            "{}",
            t.summary()
        );
        // Stored and read back as it was.
        let back: IncidentTemplate =
            serde_json::from_slice(&serde_json::to_vec(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }
}
