//! `crier templates list | show NAME | add … | edit NAME … | remove NAME`: incident templates,
//! the canned titles and messages per language staff apply when composing. The request bodies
//! are the API's own types ([`NewTemplate`], [`TemplateChange`]) and answers are read as
//! [`IncidentTemplate`].

use super::client::{Body, CliError, Client};
use super::{enc, output};
use crate::api::templates::{NewTemplate, TemplateChange};
use crate::domain::IncidentTemplate;
use clap::{Args, Subcommand};
use reqwest::Method;
use std::collections::BTreeMap;

#[derive(Subcommand, Debug)]
pub enum TemplatesCmd {
    /// List the templates, by name.
    List,
    /// Show one template with its messages.
    Show {
        /// The template's name (in any case) or id.
        name: String,
    },
    /// Add a template (publishers and admins).
    Add {
        /// A unique name, at most 80 characters, e.g. "Check-in slow".
        #[arg(long)]
        name: String,
        /// The incident title it fills in.
        #[arg(long)]
        title: String,
        /// none, minor, major or critical.
        #[arg(long)]
        impact: String,
        /// investigating, identified or monitoring.
        #[arg(long)]
        status: String,
        /// An affected component (repeatable).
        #[arg(long = "component")]
        components: Vec<String>,
        /// The message in a language, LANG=TEXT (repeatable, at least one; en, fi or sv),
        /// e.g. --message "fi=Lähtöselvitys on hidas."
        #[arg(long = "message", required = true)]
        messages: Vec<String>,
    },
    /// Change a template: the options given replace those fields, the rest is kept.
    Edit {
        /// The template's name (in any case) or id.
        template: String,
        #[command(flatten)]
        change: EditArgs,
    },
    /// Remove a template.
    Remove {
        /// The template's name (in any case) or id.
        name: String,
    },
}

#[derive(Args, Debug)]
pub struct EditArgs {
    /// A new name.
    #[arg(long)]
    name: Option<String>,
    /// A new incident title.
    #[arg(long)]
    title: Option<String>,
    /// none, minor, major or critical.
    #[arg(long)]
    impact: Option<String>,
    /// investigating, identified or monitoring.
    #[arg(long)]
    status: Option<String>,
    /// The new list of affected components (repeatable; replaces the old list).
    #[arg(long = "component", conflicts_with = "no_components")]
    components: Vec<String>,
    /// No affected components.
    #[arg(long)]
    no_components: bool,
    /// Set the message in a language, LANG=TEXT (repeatable); `LANG=` removes that language.
    #[arg(long = "message")]
    messages: Vec<String>,
}

/// `--message LANG=TEXT` options as the API's `messages`.
fn messages(raw: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut out = BTreeMap::new();
    for m in raw {
        let (lang, text) = m
            .split_once('=')
            .filter(|(l, _)| !l.trim().is_empty())
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "--message \"{m}\": write LANG=TEXT, e.g. --message \"fi=Lähtöselvitys on hidas.\""
                ))
            })?;
        let lang = lang.trim().to_owned();
        if out.insert(lang.clone(), text.to_owned()).is_some() {
            return Err(CliError::Usage(format!(
                "two --message options for {lang}; give each language once"
            )));
        }
    }
    Ok(out)
}

fn line(t: &IncidentTemplate) -> String {
    let langs: Vec<&str> = t.messages.texts().keys().map(|l| l.as_str()).collect();
    format!(
        "{:<24}  {:<8}  {:<13}  {:<10}  {}",
        t.name.as_str(),
        t.impact.as_str(),
        t.status.as_str(),
        langs.join(","),
        t.title.as_str()
    )
}

fn detail(t: &IncidentTemplate) -> String {
    let mut out = format!(
        "{}  ({})\n  title:      {}\n  impact:     {}\n  status:     {}\n  components: {}\n",
        t.name,
        t.id,
        t.title.as_str(),
        t.impact.as_str(),
        t.status,
        if t.components.is_empty() {
            "(none)".to_owned()
        } else {
            t.components
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    for (l, text) in t.messages.texts() {
        out.push_str(&format!("  message {l}: {text}\n"));
    }
    out.push_str(&format!(
        "  created by {} at {}, last changed by {} at {}",
        t.created_by, t.created_at, t.updated_by, t.updated_at
    ));
    out
}

fn json_body<T: serde::Serialize>(v: &T) -> Result<Body, CliError> {
    serde_json::to_value(v)
        .map(Body::Json)
        .map_err(|e| CliError::Usage(e.to_string()))
}

pub async fn templates(c: &Client, cmd: TemplatesCmd, json_out: bool) -> Result<(), CliError> {
    let (v, shown, verb) = match cmd {
        TemplatesCmd::List => {
            let (v, list) = c
                .call_as::<Vec<IncidentTemplate>>(Method::GET, "/api/v1/templates", None)
                .await?;
            if json_out {
                output::print_json(&v);
            } else if list.is_empty() {
                println!("No templates yet; add one with `crier templates add`.");
            } else {
                println!(
                    "{:<24}  {:<8}  {:<13}  {:<10}  TITLE",
                    "NAME", "IMPACT", "STATUS", "LANGUAGES"
                );
                for t in &list {
                    println!("{}", line(t));
                }
            }
            return Ok(());
        }
        TemplatesCmd::Show { name } => {
            let path = format!("/api/v1/templates/{}", enc(&name));
            let (v, t) = c
                .call_as::<IncidentTemplate>(Method::GET, &path, None)
                .await?;
            (v, t, None)
        }
        TemplatesCmd::Add {
            name,
            title,
            impact,
            status,
            components,
            messages: raw,
        } => {
            let body = NewTemplate {
                name,
                title,
                impact,
                status,
                components,
                messages: messages(&raw)?,
            };
            let (v, t) = c
                .call_as::<IncidentTemplate>(
                    Method::POST,
                    "/api/v1/templates",
                    Some(json_body(&body)?),
                )
                .await?;
            (v, t, Some("Added"))
        }
        TemplatesCmd::Edit { template, change } => {
            let components = if change.no_components {
                Some(Vec::new())
            } else if change.components.is_empty() {
                None
            } else {
                Some(change.components)
            };
            let body = TemplateChange {
                name: change.name,
                title: change.title,
                impact: change.impact,
                status: change.status,
                components,
                messages: if change.messages.is_empty() {
                    None
                } else {
                    Some(messages(&change.messages)?)
                },
            };
            let path = format!("/api/v1/templates/{}", enc(&template));
            let (v, t) = c
                .call_as::<IncidentTemplate>(Method::PATCH, &path, Some(json_body(&body)?))
                .await?;
            (v, t, Some("Changed"))
        }
        TemplatesCmd::Remove { name } => {
            let path = format!("/api/v1/templates/{}", enc(&name));
            let (v, t) = c
                .call_as::<IncidentTemplate>(Method::DELETE, &path, None)
                .await?;
            if json_out {
                output::print_json(&v);
            } else {
                println!("Removed template \"{}\" ({})", t.name, t.id);
            }
            return Ok(());
        }
    };
    if json_out {
        output::print_json(&v);
    } else {
        if let Some(verb) = verb {
            println!("{verb} template \"{}\"", shown.name);
        }
        println!("{}", detail(&shown));
    }
    Ok(())
}
