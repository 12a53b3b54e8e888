//! Plugins: the versions each tenant runs, and uploads. An upload is compiled and
//! instantiated in the real plugin host before it is accepted, kept in the JetStream object
//! store `postwire_plugins` as `<tenant>/<name>/<sha256>.wasm` (one object per version), and,
//! with `activate=true`, put in the tenant's chain in place of the plugin's older version.
//! Worker nodes fetch a version from the object store the first time they need it.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use postwire_core::bus;
use postwire_core::config::PluginConfig;
use postwire_stages::transform::{TransformSettings, Transformer};
use serde::{Deserialize, Serialize};

use crate::problem::{ApiResult, P, Q};
use crate::{AdminError, Api, Caller, Problem};

/// The largest plugin accepted (Python and JavaScript components are 10–20 MB).
pub const MAX_PLUGIN_BYTES: usize = 64 << 20;

/// The object store of uploaded plugins, made when first needed.
pub async fn store(
    js: &async_nats::jetstream::Context,
    replicas: usize,
) -> Result<async_nats::jetstream::object_store::ObjectStore, AdminError> {
    if let Ok(s) = js.get_object_store(bus::OBJ_PLUGINS).await {
        return Ok(s);
    }
    js.create_object_store(async_nats::jetstream::object_store::Config {
        bucket: bus::OBJ_PLUGINS.into(),
        description: Some("postwire plugins uploaded through the admin API".into()),
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map_err(|e| AdminError::PluginStore(Box::new(e)))
}

/// The API's own plugin host, for checking uploads (started at the first upload).
fn host(a: &Api) -> ApiResult<Arc<Transformer>> {
    a.plugin_host
        .get_or_init(|| {
            Transformer::new(TransformSettings::from_config(&a.base.plugin_host))
                .map(Arc::new)
                .map_err(Arc::new)
        })
        .clone()
        .map_err(|e| {
            let e = AdminError::PluginHost(e);
            Problem::unavailable(format!("the plugin host cannot start: {e}"))
        })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// Put this version in the tenant's chain: in place of the plugin of the same name (an
    /// older upload, or a configured file whose name without `.wasm` is `name`), or
    /// appended last when the chain has none (`activation` in the answer says which).
    activate: Option<bool>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Uploaded {
    tenant: String,
    name: String,
    /// The sha256 of the component: the version.
    version: String,
    size: usize,
    /// Milliseconds the check took (compile or cache load, and one instantiation).
    check_ms: u64,
    activated: bool,
    /// With `activate=true`: `replaced` (the version took the place of the plugin of the same
    /// name, at the same position, keeping its config) or `added` (appended to the chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    activation: Option<Activation>,
    /// The file the new version replaced, when `activation` is `replaced`.
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced: Option<String>,
}

/// What an activation did to the tenant's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Replaced,
    Added,
}

/// Uploads a plugin version (`Content-Type: application/wasm`); refused unless it compiles
/// and instantiates in the plugin host.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/plugins/{name}", tag = "operations",
    params(("tenant" = String, Path), ("name" = String, Path), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The component (`.wasm`); `application/wasm` is accepted too."),
    responses((status = 201, body = Uploaded), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn upload(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    headers: HeaderMap,
    P((tenant, name)): P<(String, String)>,
    Q(q): Q<UploadQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    c.check(&tenant)?;
    if !a.live.get().cfg.tenants.contains_key(&tenant) {
        return Err(Problem::not_found(format!("no tenant {tenant:?}")));
    }
    if !postwire_core::tenant_config::is_valid_name(&name) {
        return Err(Problem::invalid(
            "name",
            "plugin names use a-z, 0-9, - and _ (at most 64)",
        ));
    }
    if !body.starts_with(b"\0asm") {
        return Err(Problem::bad_request(
            "the body is not a WebAssembly component (send the .wasm file)",
        ));
    }
    let version = postwire_core::ids::sha256_hex(&body);
    let path = a.base.plugin_host.uploaded_path(&tenant, &name, &version);
    let (check_path, bytes) = (path.clone(), body.clone());
    let host = host(&a)?;
    let checked = tokio::task::spawn_blocking(move || -> Result<u64, AdminError> {
        if let Some(dir) = check_path.parent() {
            std::fs::create_dir_all(dir).map_err(AdminError::file(dir))?;
        }
        let tmp = check_path.with_extension("tmp");
        std::fs::write(&tmp, &bytes).map_err(AdminError::file(&tmp))?;
        std::fs::rename(&tmp, &check_path).map_err(AdminError::file(&check_path))?;
        let started = std::time::Instant::now();
        match host.check(&check_path) {
            Ok(_) => Ok(started.elapsed().as_millis() as u64),
            Err(e) => {
                let _ = std::fs::remove_file(&check_path);
                Err(AdminError::PluginLoad(e))
            }
        }
    })
    .await
    .map_err(|e| Problem::unavailable(e.to_string()))?;
    let check_ms = checked.map_err(|e| Problem::invalid("body", e.to_string()))?;
    let objects = store(&a.js, a.base.nats.stream_replicas)
        .await
        .map_err(Problem::unavailable)?;
    let object = format!("{tenant}/{name}/{version}.wasm");
    let meta = async_nats::jetstream::object_store::ObjectMetadata {
        name: object.clone(),
        description: Some(format!("plugin {name} of {tenant}")),
        metadata: [
            ("uploaded_by".to_string(), c.name.clone()),
            (
                "uploaded_at".to_string(),
                postwire_core::envelope::now_rfc3339(),
            ),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    objects
        .put(meta, &mut body.as_ref())
        .await
        .map_err(|e| Problem::unavailable(format!("storing the plugin: {e}")))?;
    tracing::info!(tenant, plugin = %name, version, by = %c.name, "A plugin version was uploaded.");
    let activated = q.activate.unwrap_or(false);
    let mut activation = None;
    let mut replaced = None;
    if activated {
        let prefix = format!("{tenant}/{name}/");
        let ph = a.base.plugin_host.clone();
        let what = format!("activate plugin {name} {}", &version[..12]);
        let mut done = (Activation::Added, None);
        crate::tenants::change(&a, &c, &tenant, &what, &headers, |old| {
            let mut t = old.ok_or_else(|| Problem::not_found(format!("no tenant {tenant:?}")))?;
            // The same plugin: an older upload of `name`, or a file from the configuration
            // named `<name>.wasm` (replaced in place, its config kept; never a second copy).
            let same = |p: &PluginConfig| match ph.uploaded_object(&p.path) {
                Some(o) => o.starts_with(&prefix),
                None => postwire_stages::transform::plugin_name(&p.path) == name,
            };
            done = match t.plugins.iter_mut().find(|p| same(p)) {
                Some(p) => {
                    let old = std::mem::replace(&mut p.path, path.clone());
                    (Activation::Replaced, Some(old.display().to_string()))
                }
                None => {
                    t.plugins.push(PluginConfig {
                        path: path.clone(),
                        config: None,
                    });
                    (Activation::Added, None)
                }
            };
            Ok(Some(t))
        })
        .await?;
        (activation, replaced) = (Some(done.0), done.1);
    }
    let out = Uploaded {
        tenant,
        name,
        version,
        size: body.len(),
        check_ms,
        activated,
        activation,
        replaced,
    };
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PluginView {
    tenant: String,
    /// Position in the tenant's chain.
    index: usize,
    /// The component's file name.
    file: String,
    /// The sha256 of the file now (its version); empty when it cannot be read here.
    sha256: String,
    size: u64,
    modified: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UploadedVersion {
    tenant: String,
    name: String,
    version: String,
    size: usize,
    uploaded_at: String,
    uploaded_by: String,
    /// In the tenant's chain now.
    active: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PluginList {
    plugins: Vec<PluginView>,
    uploaded: Vec<UploadedVersion>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantQuery {
    #[param(pattern = "^[a-z0-9_-]{1,64}$")]
    tenant: Option<String>,
}

/// The plugins of each tenant (with the version, the content hash, of each file now) and the
/// uploaded versions.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "operations", params(TenantQuery),
    responses((status = 200, body = PluginList), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn plugins(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    Q(q): Q<TenantQuery>,
) -> ApiResult<Json<PluginList>> {
    let scope = c.scope(q.tenant.as_deref())?;
    let snap = a.live.get();
    let mut out = Vec::new();
    let mut active = std::collections::HashSet::new();
    for (tenant, t) in snap.cfg.tenants.iter().filter(|(n, _)| scope.has(n)) {
        for (index, p) in t.plugins.iter().enumerate() {
            if let Some(o) = a.base.plugin_host.uploaded_object(&p.path) {
                active.insert(o);
            }
            let bytes = std::fs::read(&p.path).ok();
            let meta = std::fs::metadata(&p.path).ok();
            out.push(PluginView {
                tenant: tenant.clone(),
                index,
                file: p
                    .path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                sha256: bytes
                    .as_deref()
                    .map(postwire_core::ids::sha256_hex)
                    .unwrap_or_default(),
                size: meta.as_ref().map_or(0, |m| m.len()),
                modified: meta.and_then(|m| m.modified().ok()).map(|t| {
                    time::OffsetDateTime::from(t)
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                }),
            });
        }
    }
    let mut uploaded = Vec::new();
    if let Ok(objects) = a.js.get_object_store(bus::OBJ_PLUGINS).await {
        let mut list = objects.list().await.map_err(Problem::unavailable)?;
        while let Some(info) = list.next().await {
            let info = info.map_err(Problem::unavailable)?;
            let parts: Vec<&str> = info.name.splitn(3, '/').collect();
            let [tenant, name, file] = parts.as_slice() else {
                continue;
            };
            if !scope.has(tenant) {
                continue;
            }
            let m = |k: &str| info.metadata.get(k).cloned().unwrap_or_default();
            uploaded.push(UploadedVersion {
                tenant: tenant.to_string(),
                name: name.to_string(),
                version: file.trim_end_matches(".wasm").to_string(),
                size: info.size,
                uploaded_at: m("uploaded_at"),
                uploaded_by: m("uploaded_by"),
                active: active.contains(&info.name),
            });
        }
    }
    Ok(Json(PluginList {
        plugins: out,
        uploaded,
    }))
}
