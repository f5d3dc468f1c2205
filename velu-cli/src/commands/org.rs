//! `velu-cli org ...`

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;
use velu_core::bootstrap::{Bootstrap, BootstrapOrg, bootstrap_org};
use velu_core::orgs::{self, CreateOrg, OrgFilter, OrgRef};
use velu_core::{CoreError, CoreResult, Principal};

use super::PageArgs;
use crate::context::Global;
use crate::twin::{HttpCall, Verb};
use crate::values::{PlanArg, offer};

/// Organizations.
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization.
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Unique slug: ^[a-z0-9][a-z0-9-]{1,62}$ (refused, never rewritten).
        #[arg(long)]
        slug: String,
        /// Plan [default: base].
        #[arg(long, value_parser = offer::<PlanArg>())]
        plan: Option<String>,
    },
    /// Create an organization with its viewer, builder and admin keys (printed once).
    Bootstrap(BootstrapArgs),
    /// List organizations, newest first.
    List {
        /// Only orgs whose name or slug contains this text (case-insensitive).
        #[arg(long)]
        q: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show an organization.
    Show {
        /// Org id or slug.
        org: String,
    },
    /// Change an organization's plan (effective on the next request).
    SetPlan {
        /// Org id or slug.
        org: String,
        /// The new plan.
        #[arg(value_parser = offer::<PlanArg>())]
        plan: String,
    },
}

/// Flags of `org bootstrap`.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Display name.
    #[arg(long)]
    name: String,
    /// Unique slug.
    #[arg(long)]
    slug: String,
    /// Plan [default: base].
    #[arg(long, value_parser = offer::<PlanArg>())]
    plan: Option<String>,
    /// Also write VELU_ORG (the slug, which `--org` defaults to) and the three keys to
    /// this new file (0600). The file is checked before anything is created and written after the commit; if writing it
    /// fails then, the keys are still printed (and the exit code says it failed).
    #[arg(long, value_name = "PATH")]
    env_file: Option<PathBuf>,
    /// Replace the --env-file if it exists.
    #[arg(long, requires = "env_file")]
    force: bool,
    /// If the org exists, re-issue its three keys instead of failing.
    #[arg(long)]
    rotate: bool,
}

impl OrgCommand {
    /// The HTTP twin (remote mode, `--print-http`).
    pub fn http_twin(&self) -> CoreResult<HttpCall> {
        Ok(match self {
            OrgCommand::Create { name, slug, plan } => HttpCall::post(
                ["v1", "orgs"],
                Some(json!({"name": name, "slug": slug, "plan": plan})),
            ),
            OrgCommand::Bootstrap(args) => {
                if args.env_file.is_some() {
                    return Err(super::local_only(
                        "org bootstrap --env-file",
                        "it writes a local file; save the printed keys instead",
                    ));
                }
                HttpCall::post(
                    ["v1", "orgs", "bootstrap"],
                    Some(
                        json!({"name": args.name, "slug": args.slug, "plan": args.plan,
                                "rotate": args.rotate}),
                    ),
                )
            }
            OrgCommand::List { q, page } => {
                page.twin(HttpCall::get(["v1", "orgs"]).query("q", q.clone()))
            }
            OrgCommand::Show { org } => HttpCall::get(["v1", "orgs", org]),
            OrgCommand::SetPlan { org, plan } => HttpCall {
                body: Some(json!({ "plan": plan })),
                ..HttpCall::new(Verb::Put, ["v1", "orgs", org, "plan"])
            },
        })
    }

    pub async fn run(self, g: &Global) -> CoreResult<String> {
        let velu = g.open_without_tasks().await?;
        let who = Principal::operator();
        match self {
            OrgCommand::Create { name, slug, plan } => {
                g.render(&orgs::create_org(&velu, &who, &CreateOrg { name, slug, plan }).await?)
            }
            OrgCommand::Bootstrap(args) => {
                let input = BootstrapOrg {
                    name: args.name,
                    slug: args.slug,
                    plan: args.plan,
                    rotate: args.rotate,
                };
                // Checked (and the temporary file created) before anything is committed:
                // an unwritable or existing path fails here and loses nothing.
                let env_file = match &args.env_file {
                    Some(path) => Some(EnvFile::prepare(path, args.force)?),
                    None => None,
                };
                let done = bootstrap_org(&velu, &who, &input).await?;
                if let Some(file) = env_file
                    && let Err(e) = file.finish(&done)
                {
                    g.fail_after_output(e);
                }
                g.render(&done)
            }
            OrgCommand::List { q, page } => {
                let filter = OrgFilter { q };
                let list = page
                    .collect(|p| {
                        let (velu, who, filter) = (&velu, &who, &filter);
                        async move { orgs::list_orgs(velu, who, filter, &p).await }
                    })
                    .await?;
                g.render(&list)
            }
            OrgCommand::Show { org } => {
                g.render(&orgs::show_org(&velu, &who, &OrgRef::new(org)).await?)
            }
            OrgCommand::SetPlan { org, plan } => {
                g.render(&orgs::set_plan(&velu, &who, &OrgRef::new(org), &plan).await?)
            }
        }
    }
}

/// The `--env-file` of a bootstrap: a temporary 0600 file beside the target, created
/// before the commit, renamed onto the target after it.
struct EnvFile {
    path: PathBuf,
    tmp: tempfile::NamedTempFile,
    force: bool,
}

impl EnvFile {
    fn fail(path: &Path) -> impl Fn(std::io::Error) -> CoreError + '_ {
        move |e| CoreError::Config(format!("env file {}: {e}", path.display()))
    }

    /// Refuses an existing target (unless `force`) and creates the temporary file.
    fn prepare(path: &Path, force: bool) -> CoreResult<EnvFile> {
        if !force && std::fs::symlink_metadata(path).is_ok() {
            return Err(CoreError::conflict(format!(
                "env file {} exists; pass --force to replace it",
                path.display()
            )));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        // tempfile creates the file with mode 0600.
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(Self::fail(path))?;
        Ok(EnvFile {
            path: path.to_owned(),
            tmp,
            force,
        })
    }

    /// Writes the keys as `KEY="value"` lines and moves the file into place.
    fn finish(mut self, done: &Bootstrap) -> CoreResult<()> {
        let fail = Self::fail(&self.path);
        let body = format!(
            "VELU_ORG=\"{}\"\nVELU_VIEWER_KEY=\"{}\"\nVELU_BUILDER_KEY=\"{}\"\nVELU_ADMIN_KEY=\"{}\"\n",
            done.org.slug, done.keys.viewer.token, done.keys.builder.token, done.keys.admin.token
        );
        self.tmp.write_all(body.as_bytes()).map_err(&fail)?;
        self.tmp.as_file().sync_all().map_err(&fail)?;
        let placed = if self.force {
            self.tmp.persist(&self.path).map(drop)
        } else {
            self.tmp.persist_noclobber(&self.path).map(drop)
        };
        placed.map_err(|e| {
            CoreError::Config(format!(
                "env file {}: {}; the keys are printed on stdout: store them now",
                self.path.display(),
                e.error
            ))
        })
    }
}
