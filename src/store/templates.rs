//! Incident templates (see [`crate::domain::IncidentTemplate`]).
//!
//! Tree:
//! - `templates`: template ULID → JSON [`IncidentTemplate`]
//!
//! A handful of records a team keeps by hand, so names are checked for uniqueness by reading
//! them all, under one write lock (no second index tree that a crash could leave out of step
//! with the records). Every write is durable when it returns.

use super::port::Templates;
use super::{decode, encode, SledStore, StoreError};
use crate::domain::IncidentTemplate;
use ulid::Ulid;

/// The write lock every template write takes (one stripe of the store's write locks): the
/// name check and the write it guards are one step.
const TEMPLATE_LOCK: Ulid = Ulid::nil();

fn not_found(id: impl ToString) -> StoreError {
    StoreError::NotFound {
        what: "template",
        id: id.to_string(),
    }
}

impl Templates for SledStore {
    /// Saves a template, new or changed (by id). Refused when another template has the same
    /// name (in any case). Durable when it returns.
    async fn put_template(&self, tpl: &IncidentTemplate) -> Result<(), StoreError> {
        let t = self.t()?;
        {
            let _w = self.lock(TEMPLATE_LOCK).await;
            for v in t.templates.iter().values() {
                let other: IncidentTemplate = decode(&v?)?;
                if other.id != tpl.id && other.name.key() == tpl.name.key() {
                    return Err(StoreError::Conflict(format!(
                        "name: a template named \"{}\" exists already; choose another name, or edit that one (`crier templates edit \"{}\" …`)",
                        other.name, other.name
                    )));
                }
            }
            t.templates.insert(tpl.id.to_bytes(), encode(tpl)?)?;
        }
        t.durable().await
    }

    /// Changes a template with `change` (given the stored one) and saves the result, as
    /// [`SledStore::put_template`] does; returns (before, after). Durable when it returns.
    async fn change_template(
        &self,
        id: Ulid,
        change: impl FnOnce(&IncidentTemplate) -> Result<IncidentTemplate, StoreError> + Send,
    ) -> Result<(IncidentTemplate, IncidentTemplate), StoreError> {
        let t = self.t()?;
        let pair = {
            let _w = self.lock(TEMPLATE_LOCK).await;
            let raw = t
                .templates
                .get(id.to_bytes())?
                .ok_or_else(|| not_found(id))?;
            let before: IncidentTemplate = decode(&raw)?;
            let mut after = change(&before)?;
            after.id = before.id;
            for v in t.templates.iter().values() {
                let other: IncidentTemplate = decode(&v?)?;
                if other.id != id && other.name.key() == after.name.key() {
                    return Err(StoreError::Conflict(format!(
                        "name: a template named \"{}\" exists already; choose another name",
                        other.name
                    )));
                }
            }
            t.templates.insert(id.to_bytes(), encode(&after)?)?;
            (before, after)
        };
        t.durable().await?;
        Ok(pair)
    }

    /// One template by id.
    async fn template(&self, id: Ulid) -> Result<IncidentTemplate, StoreError> {
        let t = self.t()?;
        let raw = t
            .templates
            .get(id.to_bytes())?
            .ok_or_else(|| not_found(id))?;
        decode(&raw)
    }

    /// One template by its id or its name (in any case).
    async fn template_by_key(&self, key: &str) -> Result<IncidentTemplate, StoreError> {
        let t = self.t()?;
        let key = key.trim();
        if let Ok(id) = Ulid::from_string(key) {
            if let Some(raw) = t.templates.get(id.to_bytes())? {
                return decode(&raw);
            }
        }
        let wanted = key.to_lowercase();
        for v in t.templates.iter().values() {
            let tpl: IncidentTemplate = decode(&v?)?;
            if tpl.name.key() == wanted {
                return Ok(tpl);
            }
        }
        Err(not_found(format!(
            "\"{key}\" (see `crier templates list` for the names)"
        )))
    }

    /// Every template, by name.
    async fn templates(&self) -> Result<Vec<IncidentTemplate>, StoreError> {
        let t = self.t()?;
        let mut all: Vec<IncidentTemplate> = t
            .templates
            .iter()
            .values()
            .map(|v| decode(&v?))
            .collect::<Result<_, _>>()?;
        all.sort_by_key(|t| t.name.key());
        Ok(all)
    }

    /// Removes a template; returns it. Durable when it returns.
    async fn remove_template(&self, id: Ulid) -> Result<IncidentTemplate, StoreError> {
        let t = self.t()?;
        let removed = {
            let _w = self.lock(TEMPLATE_LOCK).await;
            let raw = t
                .templates
                .remove(id.to_bytes())?
                .ok_or_else(|| not_found(id))?;
            decode(&raw)?
        };
        t.durable().await?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Locale, TemplateFields};
    use chrono::Utc;
    use std::collections::BTreeMap;

    fn template(name: &str) -> IncidentTemplate {
        let fields = TemplateFields {
            name: name.into(),
            title: "Check-in delays".into(),
            impact: "major".into(),
            status: "investigating".into(),
            components: vec![],
            messages: BTreeMap::from([("en".into(), "Check-in is slow.".into())]),
        };
        let content = fields.validate(&[Locale::english()]).unwrap();
        IncidentTemplate::new(content, "anna", Utc::now())
    }

    #[tokio::test]
    async fn templates_are_put_listed_found_changed_and_removed_with_unique_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let slow = template("Check-in slow");
        store.put_template(&slow).await.unwrap();
        store.put_template(&template("Baggage belt")).await.unwrap();
        let names: Vec<String> = store
            .templates()
            .await
            .unwrap()
            .iter()
            .map(|t| t.name.to_string())
            .collect();
        assert_eq!(names, ["Baggage belt", "Check-in slow"], "by name");
        assert_eq!(store.template(slow.id).await.unwrap(), slow);
        assert_eq!(store.template_by_key("CHECK-IN SLOW").await.unwrap(), slow);
        assert_eq!(
            store.template_by_key(&slow.id.to_string()).await.unwrap(),
            slow
        );

        // The same name in another case is refused, and nothing is written.
        let before = store.checksum().unwrap();
        let e = store
            .put_template(&template("check-in SLOW"))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, StoreError::Conflict(m) if m.contains("exists already")),
            "{e}"
        );
        let e = store
            .change_template(slow.id, |t| {
                let mut t = t.clone();
                t.name = crate::domain::TemplateName::parse("baggage BELT")?;
                Ok(t)
            })
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e}");
        assert_eq!(store.checksum().unwrap(), before);

        // Its own name again (an edit of other fields) is fine.
        let (b, a) = store
            .change_template(slow.id, |t| {
                let mut t = t.clone();
                t.impact = crate::domain::Impact::Critical;
                Ok(t)
            })
            .await
            .unwrap();
        assert_eq!(b, slow);
        assert_eq!(store.template(slow.id).await.unwrap(), a);

        assert_eq!(store.remove_template(slow.id).await.unwrap(), a);
        assert!(matches!(
            store.template(slow.id).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            store.remove_template(slow.id).await,
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(store.templates().await.unwrap().len(), 1);
    }
}
