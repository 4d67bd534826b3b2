//! Message templates (minijinja): loaded from `templates/` (and a channel's own folder, which
//! overrides any of them), compiled and test-rendered at start-up so a broken template stops
//! `serve` with its file and line instead of failing mid-incident. Undefined variables are
//! errors, never blanks; HTML is escaped in `.html.j2` templates, and chat templates are also
//! compiled per chat dialect with values escaped for it (`markup.rs`).
//!
//! Names: `<event>/<kind>.<locale>.<part>.j2`, e.g. `incident_updated/sms.fi.txt.j2`;
//! email has three parts (`subject`, `txt`, `html`). Files under `_layouts/` are shared bases
//! that event templates `{% extends %}`.

use super::markup::Markup;
use super::{Context, Event, RenderError, TemplateKind};
use crate::domain::Locale;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Where the holding-statement templates live: `holding_statement/<locale>.txt.j2`.
const HOLDING_DIR: &str = "holding_statement/";

/// Where the double opt-in messages live: `subscribe_confirm/email.<locale>.<part>.j2` (the
/// confirmation link) and `subscribe_confirm/sms.<locale>.txt.j2` (the six-digit code).
const SUBSCRIBE_DIR: &str = "subscribe_confirm/";

/// The context the sign-up confirmation templates are checked with at start-up.
fn subscribe_sample() -> minijinja::Value {
    minijinja::context! {
        org => "Example",
        link => "https://status.example.com/subscribe/confirm/01J0000000000000000000000.abc",
        code => "123456",
        hours => 24,
        minutes => 15,
    }
}

/// The compiled templates.
pub struct Templates {
    env: Environment<'static>,
    names: BTreeSet<String>,
}

/// What a template renders: one text per part (subject/txt/html for email, one for the others).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rendered {
    pub locale: Locale,
    pub subject: Option<String>,
    pub text: String,
    pub html: Option<String>,
}

fn collect(dir: &Path, base: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), RenderError> {
    let entries = std::fs::read_dir(dir).map_err(|e| RenderError::Io {
        path: dir.to_owned(),
        message: e.to_string(),
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| RenderError::Io {
            path: dir.to_owned(),
            message: e.to_string(),
        })?;
        let path = entry.path();
        if path.is_dir() {
            collect(&path, base, out)?;
        } else if path.extension().is_some_and(|e| e == "j2") {
            let rel = path
                .strip_prefix(base)
                .map_err(|_| RenderError::Io {
                    path: path.clone(),
                    message: "outside the templates folder".into(),
                })?
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, path));
        }
    }
    Ok(())
}

fn template_name(
    prefix: Option<&str>,
    event: Event,
    kind: TemplateKind,
    locale: &Locale,
    part: &str,
) -> String {
    let name = format!("{}/{}.{}.{part}.j2", event.as_str(), kind.as_str(), locale);
    match prefix {
        Some(channel) => format!("@{channel}/{name}"),
        None => name,
    }
}

impl Templates {
    /// Loads every `*.j2` under `dir`, plus each channel's override folder (its files take
    /// precedence for that channel), and checks them all by rendering each with a sample context.
    pub fn load(dir: &Path, overrides: &[(String, PathBuf)]) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Chat dialects (see `markup.rs`): every template is also compiled as `slack:<name>` and
        // `teams:<name>`; those escape interpolated values for their platform, and a variant's
        // `extends`/`include` resolve to the same dialect's variant.
        env.set_auto_escape_callback(|name| {
            match name
                .split_once(':')
                .and_then(|(p, _)| Markup::from_prefix(p))
            {
                Some(m) => AutoEscape::Custom(m.prefix().unwrap_or_default()),
                None if name.ends_with(".html.j2") => AutoEscape::Html,
                None => AutoEscape::None,
            }
        });
        env.set_formatter(|out, state, value| match state.auto_escape() {
            AutoEscape::Custom(p) => {
                let markup = Markup::from_prefix(p).unwrap_or(Markup::AsWritten);
                let text = value.to_string();
                if value.is_safe() {
                    out.write_str(&text)?;
                } else {
                    out.write_str(&markup.escape(&text))?;
                }
                Ok(())
            }
            _ => minijinja::escape_formatter(out, state, value),
        });
        env.set_path_join_callback(
            |name, parent| match parent.split_once(':').map(|(p, _)| p) {
                Some(p) if Markup::from_prefix(p).is_some() && !name.contains(':') => {
                    format!("{p}:{name}").into()
                }
                _ => name.into(),
            },
        );
        let mut files = Vec::new();
        collect(dir, dir, &mut files)?;
        if files.is_empty() {
            return Err(RenderError::Io {
                path: dir.to_owned(),
                message: "no *.j2 templates found; point --templates at crier's templates folder"
                    .into(),
            });
        }
        let mut names = BTreeSet::new();
        let mut add = |name: String, path: &Path| -> Result<(), RenderError> {
            let source = std::fs::read_to_string(path).map_err(|e| RenderError::Io {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
            for m in Markup::VARIANTS {
                let prefix = m.prefix().unwrap_or_default();
                env.add_template_owned(format!("{prefix}:{name}"), m.translate_source(&source))
                    .map_err(|e| RenderError::template(path, &e))?;
            }
            env.add_template_owned(name.clone(), source)
                .map_err(|e| RenderError::template(path, &e))?;
            names.insert(name);
            Ok(())
        };
        for (rel, path) in &files {
            add(rel.clone(), path)?;
        }
        for (channel, odir) in overrides {
            let mut ofiles = Vec::new();
            collect(odir, odir, &mut ofiles)?;
            for (rel, path) in &ofiles {
                add(format!("@{channel}/{rel}"), path)?;
            }
        }
        let t = Templates { env, names };
        t.check(dir, overrides)?;
        Ok(t)
    }

    /// Renders every event template with a sample context for its event, so undefined
    /// variables and runtime errors surface at start-up with the file name.
    fn check(&self, dir: &Path, overrides: &[(String, PathBuf)]) -> Result<(), RenderError> {
        for name in &self.names {
            let (path, rel) = match name.strip_prefix('@') {
                Some(rest) => {
                    let (channel, rel) = rest.split_once('/').unwrap_or((rest, ""));
                    let base = overrides
                        .iter()
                        .find(|(c, _)| c == channel)
                        .map(|(_, d)| d.clone())
                        .unwrap_or_default();
                    (base.join(rel), rel)
                }
                None => (dir.join(name), name.as_str()),
            };
            if rel.starts_with('_') {
                continue; // layouts are checked through the templates that extend them
            }
            if let Some(file) = rel.strip_prefix(SUBSCRIBE_DIR) {
                let ok = matches!(
                    file.split('.').collect::<Vec<_>>().as_slice(),
                    ["email", l, "subject" | "txt" | "html", "j2"] | ["sms", l, "txt", "j2"]
                        if Locale::parse(l).is_ok()
                );
                if !ok {
                    return Err(RenderError::Name {
                        path: path.clone(),
                        message: "expected subscribe_confirm/email.<locale>.<subject|txt|html>.j2 or subscribe_confirm/sms.<locale>.txt.j2".into(),
                    });
                }
                self.env
                    .get_template(name)
                    .and_then(|t| t.render(subscribe_sample()))
                    .map_err(|e| RenderError::template(&path, &e))?;
                continue;
            }
            if let Some(file) = rel.strip_prefix(HOLDING_DIR) {
                let locale = file
                    .strip_suffix(".txt.j2")
                    .and_then(|l| Locale::parse(l).ok())
                    .ok_or_else(|| RenderError::Name {
                        path: path.clone(),
                        message: "expected holding_statement/<locale>.txt.j2".into(),
                    })?;
                let ctx = Context::sample(Event::IncidentUpdated, &locale)?;
                self.env
                    .get_template(name)
                    .and_then(|t| t.render(&ctx))
                    .map_err(|e| RenderError::template(&path, &e))?;
                continue;
            }
            let bad_name = || {
                RenderError::Name {
                path: path.clone(),
                message: format!(
                    "expected <event>/<kind>.<locale>.<part>.j2 with event one of {}, kind one of sms, email, social, chat",
                    Event::ALL.map(|e| e.as_str()).join(", ")
                ),
            }
            };
            let (event_dir, file) = rel.split_once('/').ok_or_else(bad_name)?;
            let event = Event::parse(event_dir).ok_or_else(bad_name)?;
            let mut pieces = file.split('.');
            let (kind, locale) = match (pieces.next(), pieces.next()) {
                (Some(k), Some(l)) if TemplateKind::parse(k).is_some() => (k, l),
                _ => return Err(bad_name()),
            };
            let locale = Locale::parse(locale).map_err(|_| bad_name())?;
            let ctx = Context::sample(event, &locale)?;
            self.env
                .get_template(name)
                .and_then(|t| t.render(&ctx))
                .map_err(|e| RenderError::template(&path, &e))?;
            if TemplateKind::parse(kind) == Some(TemplateKind::Chat) {
                for m in Markup::VARIANTS {
                    let variant = format!("{}:{name}", m.prefix().unwrap_or_default());
                    self.env
                        .get_template(&variant)
                        .and_then(|t| t.render(&ctx))
                        .map_err(|e| RenderError::template(&path, &e))?;
                }
            }
        }
        Ok(())
    }

    /// The holding statement in `locale`, when there is a template for it: the text of the
    /// automatic update posted when a next-update promise is missed.
    pub fn holding_statement(
        &self,
        locale: &Locale,
        ctx: &Context,
    ) -> Result<Option<String>, RenderError> {
        let name = format!("{HOLDING_DIR}{locale}.txt.j2");
        if !self.names.contains(&name) {
            return Ok(None);
        }
        self.env
            .get_template(&name)
            .and_then(|t| t.render(ctx))
            .map(|t| Some(t.trim().to_owned()))
            .map_err(|e| RenderError::template(Path::new(&name), &e))
    }

    /// The sign-up confirmation (`kind` email or SMS) in `locale`, else in English, with `ctx`
    /// (`org`, `link` or `code`, `hours`/`minutes` of validity).
    pub fn subscribe_confirm(
        &self,
        kind: TemplateKind,
        locale: &Locale,
        ctx: &minijinja::Value,
    ) -> Result<Rendered, RenderError> {
        let name =
            |l: &Locale, part: &str| format!("{SUBSCRIBE_DIR}{}.{l}.{part}.j2", kind.as_str());
        let locale = [locale.clone(), Locale::english()]
            .into_iter()
            .find(|l| {
                kind.parts()
                    .iter()
                    .all(|p| self.names.contains(&name(l, p)))
            })
            .ok_or_else(|| RenderError::Missing {
                name: name(&Locale::english(), kind.parts()[0]),
            })?;
        let part = |part: &str| -> Result<String, RenderError> {
            let n = name(&locale, part);
            self.env
                .get_template(&n)
                .and_then(|t| t.render(ctx))
                .map(|s| s.trim_end().to_owned())
                .map_err(|e| RenderError::template(Path::new(&n), &e))
        };
        Ok(match kind {
            TemplateKind::Email => Rendered {
                subject: Some(part("subject")?.lines().next().unwrap_or("").to_owned()),
                text: part("txt")?,
                html: Some(part("html")?),
                locale,
            },
            _ => Rendered {
                subject: None,
                text: part("txt")?,
                html: None,
                locale,
            },
        })
    }

    /// Whether every part of (event, kind, locale) exists, for the channel or globally.
    fn has(
        &self,
        channel: Option<&str>,
        event: Event,
        kind: TemplateKind,
        locale: &Locale,
    ) -> bool {
        kind.parts().iter().all(|part| {
            channel.is_some_and(|c| {
                self.names
                    .contains(&template_name(Some(c), event, kind, locale, part))
            }) || self
                .names
                .contains(&template_name(None, event, kind, locale, part))
        })
    }

    /// The locale to render in: the first of `chain` (then `en`) that has templates and text,
    /// else the first that has templates. Mixing a Finnish frame with English text is the last resort.
    pub fn choose_locale(
        &self,
        channel: Option<&str>,
        event: Event,
        kind: TemplateKind,
        chain: &[Locale],
        has_text: impl Fn(&Locale) -> bool,
    ) -> Result<Locale, RenderError> {
        let mut candidates: Vec<Locale> = chain.to_vec();
        // A regional locale (sv-FI) falls back to its language (sv) before English.
        for l in chain {
            if let Some((lang, _)) = l.as_str().split_once('-') {
                if let Ok(l) = Locale::parse(lang) {
                    candidates.push(l);
                }
            }
        }
        candidates.push(Locale::english());
        let with_templates: Vec<&Locale> = candidates
            .iter()
            .filter(|l| self.has(channel, event, kind, l))
            .collect();
        with_templates
            .iter()
            .find(|l| has_text(l))
            .or(with_templates.first())
            .map(|l| (*l).clone())
            .ok_or_else(|| RenderError::Missing {
                name: template_name(None, event, kind, &Locale::english(), kind.parts()[0]),
            })
    }

    /// Renders (event, kind) in `locale` with `ctx`, preferring the channel's own templates.
    pub fn render(
        &self,
        channel: Option<&str>,
        event: Event,
        kind: TemplateKind,
        locale: &Locale,
        ctx: &Context,
    ) -> Result<Rendered, RenderError> {
        self.render_as(channel, event, kind, Markup::AsWritten, locale, ctx)
    }

    /// [`Templates::render`] in a platform's markup dialect (see `markup.rs`).
    pub fn render_as(
        &self,
        channel: Option<&str>,
        event: Event,
        kind: TemplateKind,
        markup: Markup,
        locale: &Locale,
        ctx: &Context,
    ) -> Result<Rendered, RenderError> {
        let part = |part: &str| -> Result<String, RenderError> {
            let own = channel.map(|c| template_name(Some(c), event, kind, locale, part));
            let name = match own {
                Some(n) if self.names.contains(&n) => n,
                _ => template_name(None, event, kind, locale, part),
            };
            let name = match markup.prefix() {
                Some(p) => format!("{p}:{name}"),
                None => name,
            };
            let t = self
                .env
                .get_template(&name)
                .map_err(|_| RenderError::Missing { name: name.clone() })?;
            let out = t
                .render(ctx)
                .map_err(|e| RenderError::template(Path::new(&name), &e))?;
            Ok(out.trim_end().to_owned())
        };
        Ok(match kind {
            TemplateKind::Email => Rendered {
                locale: locale.clone(),
                subject: Some(part("subject")?.lines().next().unwrap_or("").to_owned()),
                text: part("txt")?,
                html: Some(part("html")?),
            },
            k => Rendered {
                locale: locale.clone(),
                subject: None,
                text: part(k.parts()[0])?,
                html: None,
            },
        })
    }
}
