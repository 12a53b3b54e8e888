//! `POST /api/v1/tenants/{tenant}/plugins/{name}/try`: a dry run of a candidate plugin
//! version over the tenant's last stored raw mails. Each mail becomes its event as the worker
//! builds it, runs through the active chain and through the chain with the candidate in place
//! of the plugin `name` (or added last), and the answer lists, per mail, what the candidate
//! changes. Nothing is delivered, stored or recorded. Raw mail must be in object storage.

use std::path::{Path, PathBuf};

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use postwire_core::envelope::Envelope;
use postwire_core::storage_config::Backend;
use postwire_stages::prepare::preview::{self, Preview};
use postwire_stages::store::BlobStore;
use postwire_stages::transform::trial::{self, Change, Placement};
use postwire_stages::transform::{OwnedTags, TransformSettings, Transformer, plugin_name};
use serde::{Deserialize, Serialize};

use crate::problem::{ApiResult, P, Q};
use crate::{AdminError, Api, Caller, Problem};

/// The most mails one dry run takes.
pub const MAX_LAST: usize = 50;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TryQuery {
    /// How many of the latest stored mails (1–50, default 10).
    #[param(minimum = 1, maximum = 50)]
    last: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TryReport {
    tenant: String,
    name: String,
    /// The sha256 of the candidate.
    version: String,
    /// `replaced` (the candidate took the place of the plugin `name`, keeping its config)
    /// or `added` (appended to the chain, no config).
    placement: String,
    /// The file the candidate stood in for, when `placement` is `replaced`.
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced: Option<String>,
    /// Newest first.
    mails: Vec<MailDiff>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MailDiff {
    /// The raw mail's object key, `<tenant>/<sha256>.eml`.
    key: String,
    stored_at: String,
    subject: String,
    /// The active chain's outcome: `{"outcome":"deliver","payload":…}`, `drop` with
    /// `reason`, `route` with `routes`, or `error` with `kind` and `error`.
    #[schema(value_type = Object)]
    active: serde_json::Value,
    /// The candidate chain's outcome, in the same form.
    #[schema(value_type = Object)]
    candidate: serde_json::Value,
    /// From `active` to `candidate`, as JSON pointers; empty: no change.
    changes: Vec<Change>,
    /// What the candidate chain's plugins wrote to stdout/stderr.
    output: String,
}

fn refused(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "no-raw-mail",
        "No stored raw mail",
        detail,
    )
}

fn storage(e: impl std::error::Error + Send + Sync + 'static) -> Problem {
    let e = AdminError::Storage(Box::new(e));
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "Service unavailable",
        e.to_string(),
    )
}

/// Runs a candidate plugin version (`.wasm` body) against the tenant's last stored mails
/// without delivering anything, and shows per mail the payload diff against the active chain.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/plugins/{name}/try", tag = "operations",
    params(("tenant" = String, Path), ("name" = String, Path), TryQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The candidate component (`.wasm`)."),
    responses((status = 200, body = TryReport), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "Raw mail is not stored (storage off, or none kept for this tenant)."),
        (status = 422, body = Problem), (status = 503, body = Problem)))]
pub async fn try_plugin(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    P((tenant, name)): P<(String, String)>,
    Q(q): Q<TryQuery>,
    body: Bytes,
) -> ApiResult<Json<TryReport>> {
    c.check(&tenant)?;
    let cfg = a.live.get().cfg.clone();
    let Some(t) = cfg.tenants.get(&tenant) else {
        return Err(Problem::not_found(format!("no tenant {tenant:?}")));
    };
    if !postwire_core::tenant_config::is_valid_name(&name) {
        return Err(Problem::invalid(
            "name",
            "plugin names use a-z, 0-9, - and _ (at most 64)",
        ));
    }
    let last = q.last.unwrap_or(10);
    if !(1..=MAX_LAST as u64).contains(&last) {
        return Err(Problem::bad_request(format!(
            "last must be between 1 and {MAX_LAST}"
        )));
    }
    if !body.starts_with(b"\0asm") {
        return Err(Problem::bad_request(
            "the body is not a WebAssembly component (send the .wasm file)",
        ));
    }
    if a.base.storage.backend == Backend::None {
        return Err(refused(
            "raw mail is not stored: storage.backend is \"none\", so there is no mail to try \
             a plugin on (set [storage] backend = \"fs\" or \"s3\"; see docs/configuration.md)",
        ));
    }
    // Only read here: the URL signing key is never used.
    let blobs = BlobStore::from_config(&a.base.storage, Some(vec![0; 32]))
        .map_err(storage)?
        .ok_or_else(|| refused("raw mail is not stored: storage.backend is \"none\""))?;
    let mails = blobs
        .recent_raw(&tenant, last as usize)
        .await
        .map_err(storage)?;
    if mails.is_empty() {
        return Err(refused(format!(
            "no raw mail of tenant {tenant:?} is stored (none received since storage was \
             turned on, or all older than storage.raw_retention_days = {})",
            a.base.storage.raw_retention_days
        )));
    }
    postwire_stages::transform::uploads::fetch_missing(&a.js, &cfg, &tenant).await;
    let route = t.routes.first().map(|r| r.name.clone()).unwrap_or_default();
    let active = postwire_stages::transform::stage::chain(&cfg, &tenant);
    let version = postwire_core::ids::sha256_hex(&body);
    let prefix = format!("{tenant}/{name}/");
    let (ph, wanted) = (a.base.plugin_host.clone(), name.clone());
    let same = move |p: &Path| match ph.uploaded_object(p) {
        Some(o) => o.starts_with(&prefix),
        None => plugin_name(p) == wanted,
    };
    // A fresh host per dry run: the candidate's compiled code is not kept in memory after.
    let settings = TransformSettings::from_config(&a.base.plugin_host);
    // One folder per request: two dry runs of the same version never share a file.
    let dir = std::env::temp_dir().join(format!(
        "postwire-try-{}-{}",
        &version[..12],
        postwire_core::ids::new_mail_id()
    ));
    let file = dir.join(format!("{name}.wasm"));
    let job = Job {
        tenant: tenant.clone(),
        route,
        dir: dir.clone(),
        file,
    };
    let run = tokio::task::spawn_blocking(move || job.run(settings, &body, &active, same, mails));
    let out = run
        .await
        .map_err(|e| Problem::unavailable(format!("the plugin thread failed: {e}")));
    let _ = std::fs::remove_dir_all(&dir);
    let (placement, mails) = out?.map_err(|e| match e {
        AdminError::PluginLoad(_) => Problem::invalid("body", e.to_string()),
        e => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            e.to_string(),
        ),
    })?;
    let (placement, replaced) = match placement {
        Placement::Replaced { file, .. } => ("replaced", Some(file.display().to_string())),
        Placement::Added => ("added", None),
    };
    Ok(Json(TryReport {
        tenant,
        name,
        version,
        placement: placement.into(),
        replaced,
        mails,
    }))
}

/// One dry run, on a blocking thread (plugins writing to stdout/stderr need one).
struct Job {
    tenant: String,
    route: String,
    dir: PathBuf,
    /// The candidate's file, `<dir>/<name>.wasm` (errors and logs name it `name`).
    file: PathBuf,
}

impl Job {
    fn run(
        self,
        settings: TransformSettings,
        wasm: &[u8],
        active: &[postwire_stages::transform::PluginSpec],
        same: impl Fn(&Path) -> bool,
        mails: Vec<postwire_stages::store::recent::StoredRaw>,
    ) -> Result<(Placement, Vec<MailDiff>), AdminError> {
        std::fs::create_dir_all(&self.dir).map_err(AdminError::file(&self.dir))?;
        std::fs::write(&self.file, wasm).map_err(AdminError::file(&self.file))?;
        let host = Transformer::new(settings)
            .map_err(|e| AdminError::PluginHost(std::sync::Arc::new(e)))?;
        host.check(&self.file).map_err(AdminError::PluginLoad)?;
        let (candidate, placement) = trial::candidate_chain(active, same, &self.file);
        let mut out = Vec::new();
        for m in mails {
            let sha = m.key.rsplit('/').next().unwrap_or_default();
            let p = Preview {
                id: String::new(),
                mail_id: format!("try-{}", sha.trim_end_matches(".eml")),
                tenant: self.tenant.clone(),
                route: self.route.clone(),
                // The envelope is not stored with the raw mail.
                envelope: Envelope {
                    received_at: m.stored_at.clone(),
                    ..Default::default()
                },
            };
            let event =
                serde_json::to_value(preview::event(&m.bytes, &p)).map_err(AdminError::Encode)?;
            let subject = event["message"]["subject"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let tags = OwnedTags {
                tenant: self.tenant.clone(),
                route: self.route.clone(),
                mail_id: p.mail_id.clone(),
            };
            let t = trial::try_chains(&host, active, &candidate, &event, &tags.borrow());
            out.push(MailDiff {
                key: m.key,
                stored_at: m.stored_at,
                subject,
                active: t.active,
                candidate: t.candidate,
                changes: t.changes,
                output: t.output,
            });
        }
        Ok((placement, out))
    }
}
