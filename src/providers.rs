//! The providers the engine talks to, by name, their resource schemas by type, and the
//! configuration they are given before anything else ([`ProviderConfig`]).

use crate::model::{Configuration, Target};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use weir_provider_sdk::{CredentialsSource, Endpoints, Provider, ProviderConfig, ResourceSchema};

pub struct Providers {
    by_name: HashMap<String, Arc<dyn Provider>>,
    schemas: HashMap<String, ResourceSchema>,
    /// What every provider is configured with; [`Providers::configure`] adds the lineage.
    config: ProviderConfig,
}

impl Providers {
    pub fn new(providers: Vec<Arc<dyn Provider>>) -> Providers {
        let mut by_name = HashMap::new();
        let mut schemas = HashMap::new();
        for p in providers {
            for s in p.schemas() {
                schemas.insert(s.type_name.clone(), s);
            }
            by_name.insert(p.name().to_string(), p);
        }
        Providers {
            by_name,
            schemas,
            config: ProviderConfig::default(),
        }
    }

    /// The same providers, to be configured with `config`.
    pub fn with_config(mut self, config: ProviderConfig) -> Providers {
        self.config = config;
        self
    }

    /// The providers of a configuration in `dir`.
    pub fn for_config(dir: &Path, config: ProviderConfig) -> Providers {
        let base = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        Providers::new(vec![
            Arc::new(weir_provider_mage::MageProvider::new(base)),
            Arc::new(weir_provider_google::GoogleProvider::new()),
            Arc::new(crate::release::ReleaseProvider::default()),
        ])
        .with_config(config)
    }

    pub fn get(&self, name: &str) -> Result<&Arc<dyn Provider>, String> {
        self.by_name
            .get(name)
            .ok_or_else(|| format!("no provider named `{name}` in this build of weir"))
    }

    /// Configures every provider for the state of `lineage` (`None`: no state yet), before it
    /// plans, reads or applies.
    pub async fn configure(&self, lineage: Option<&str>) -> Result<(), String> {
        let config = ProviderConfig {
            state_lineage: lineage.map(str::to_string),
            ..self.config.clone()
        };
        let mut names: Vec<&String> = self.by_name.keys().collect();
        names.sort();
        for name in names {
            self.by_name[name]
                .configure(&config)
                .await
                .map_err(|e| format!("provider `{name}`: {e}"))?;
        }
        Ok(())
    }

    pub fn schema(&self, type_name: &str) -> Option<&ResourceSchema> {
        self.schemas.get(type_name)
    }
}

/// The environment variable that sends every Google API call but Cloud Storage's to another
/// endpoint (a sandbox).
pub const GOOGLE_ENDPOINT_VAR: &str = "WEIR_GOOGLE_ENDPOINT";
/// The environment variable that sends Cloud Storage calls to an emulator (the convention of
/// Google's client libraries: a host and port, or a URL).
pub const STORAGE_EMULATOR_VAR: &str = "STORAGE_EMULATOR_HOST";
/// The environment variable naming a Google credentials file.
pub const CREDENTIALS_FILE_VAR: &str = "GOOGLE_APPLICATION_CREDENTIALS";
/// The environment variable naming gcloud's configuration directory, when not the default.
pub const GCLOUD_CONFIG_VAR: &str = "CLOUDSDK_CONFIG";
/// The environment variable naming the metadata server's host, when not Google Cloud's own.
pub const METADATA_HOST_VAR: &str = "GCE_METADATA_HOST";

/// The providers' configuration for `model`, reading the environment through `env`. Where
/// Google's credentials and endpoints are read only for a `gcp` deployment: another target has
/// no use for them, and a stray variable must not stop it.
pub fn provider_config(
    model: &Configuration,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ProviderConfig, String> {
    let (credentials, endpoints) = match model.deployment.target {
        Target::Gcp => google_access(env)?,
        _ => (CredentialsSource::default(), Endpoints::default()),
    };
    Ok(ProviderConfig {
        state_lineage: None,
        project: model.deployment.project.clone(),
        region: model.deployment.region.clone(),
        credentials,
        endpoints,
    })
}

/// Where Google's credentials are and which endpoints replace Google's APIs, from the
/// environment (an empty variable counts as unset). Refuses an endpoint that is not a plain
/// `http(s)://host[:port]` base URL.
pub(crate) fn google_access(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(CredentialsSource, Endpoints), String> {
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let credentials = CredentialsSource {
        file: var(CREDENTIALS_FILE_VAR).map(PathBuf::from),
        gcloud_file: gcloud_credentials_file(&var),
        metadata_host: var(METADATA_HOST_VAR),
    };
    let google = var(GOOGLE_ENDPOINT_VAR)
        .map(|v| endpoint(GOOGLE_ENDPOINT_VAR, &v, false))
        .transpose()?;
    let storage = var(STORAGE_EMULATOR_VAR)
        .map(|v| endpoint(STORAGE_EMULATOR_VAR, &v, true))
        .transpose()?;
    Ok((credentials, Endpoints { google, storage }))
}

/// Where `gcloud auth application-default login` writes its credentials: in `CLOUDSDK_CONFIG`
/// when set, else in gcloud's configuration directory under the home directory.
fn gcloud_credentials_file(var: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let dir = match var(GCLOUD_CONFIG_VAR) {
        Some(dir) => PathBuf::from(dir),
        None if cfg!(windows) => PathBuf::from(var("APPDATA")?).join("gcloud"),
        None => PathBuf::from(var("HOME")?).join(".config").join("gcloud"),
    };
    Some(dir.join("application_default_credentials.json"))
}

/// `value` as a base URL without a trailing slash. With `bare_host`, a value without a scheme
/// (`localhost:4443`) means `http://` (as Google's client libraries read
/// `STORAGE_EMULATOR_HOST`).
fn endpoint(var: &str, value: &str, bare_host: bool) -> Result<String, String> {
    let value = value.trim();
    let (scheme, rest) = match value.split_once("://") {
        Some((scheme, rest)) => (scheme, rest),
        None if bare_host => ("http", value),
        None => ("", value),
    };
    let authority = rest.trim_end_matches('/');
    let bad = |why: &str| {
        format!(
            "{var}: `{value}` is not an endpoint: {why} (expected e.g. `http://127.0.0.1:8080`)"
        )
    };
    if scheme != "http" && scheme != "https" {
        return Err(bad("it must start with http:// or https://"));
    }
    if authority.is_empty() {
        return Err(bad("it names no host"));
    }
    if authority.contains('@') {
        // Not echoed: the value holds a secret.
        return Err(format!(
            "{var}: the endpoint must not carry credentials (expected e.g. `http://127.0.0.1:8080`)"
        ));
    }
    if authority.contains(['/', '?', '#']) || authority.chars().any(char::is_whitespace) {
        return Err(bad("it must be a host and port only, with no path"));
    }
    Ok(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn google_credentials_and_endpoints_come_from_the_environment() {
        let (credentials, endpoints) = google_access(&env(&[
            (CREDENTIALS_FILE_VAR, "/keys/sa.json"),
            (GOOGLE_ENDPOINT_VAR, "http://127.0.0.1:8080"),
            (STORAGE_EMULATOR_VAR, "localhost:4443"),
            ("HOME", "/home/ci"),
            (METADATA_HOST_VAR, "127.0.0.1:8081"),
        ]))
        .unwrap();
        assert_eq!(
            credentials,
            CredentialsSource {
                file: Some("/keys/sa.json".into()),
                gcloud_file: Some(
                    "/home/ci/.config/gcloud/application_default_credentials.json".into()
                ),
                metadata_host: Some("127.0.0.1:8081".into()),
            }
        );
        assert_eq!(endpoints.google.as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(endpoints.storage.as_deref(), Some("http://localhost:4443"));
        // Unset or empty: the default credentials chain and Google's own endpoints.
        let (credentials, endpoints) = google_access(&env(&[
            (GOOGLE_ENDPOINT_VAR, " "),
            (CREDENTIALS_FILE_VAR, ""),
        ]))
        .unwrap();
        assert_eq!(credentials, CredentialsSource::default());
        assert_eq!(endpoints, Endpoints::default());
        // gcloud's own configuration directory, when it is moved.
        let (credentials, _) = google_access(&env(&[
            ("HOME", "/home/ci"),
            (GCLOUD_CONFIG_VAR, "/etc/gcloud"),
        ]))
        .unwrap();
        assert_eq!(
            credentials.gcloud_file,
            Some("/etc/gcloud/application_default_credentials.json".into())
        );
        let err = google_access(&env(&[(STORAGE_EMULATOR_VAR, "ftp://x")])).unwrap_err();
        assert!(err.starts_with(STORAGE_EMULATOR_VAR), "{err}");
    }

    #[test]
    fn endpoints_are_normalised_base_urls_and_anything_else_is_refused() {
        assert_eq!(
            endpoint(GOOGLE_ENDPOINT_VAR, "http://127.0.0.1:8080/", false),
            Ok("http://127.0.0.1:8080".into())
        );
        assert_eq!(
            endpoint(STORAGE_EMULATOR_VAR, "localhost:4443", true),
            Ok("http://localhost:4443".into())
        );
        for (value, why) in [
            ("127.0.0.1:8080", "http:// or https://"),
            ("ftp://host", "http:// or https://"),
            ("http://user:secret@host", "must not carry credentials"),
            ("http://host/v1", "no path"),
            ("http://", "no host"),
        ] {
            let err = endpoint(GOOGLE_ENDPOINT_VAR, value, false).unwrap_err();
            assert!(
                err.contains(why) && err.contains(GOOGLE_ENDPOINT_VAR),
                "{err}"
            );
            assert!(!err.contains("secret"), "{err}");
        }
    }
}
