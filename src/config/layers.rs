//! The layers a setting's value can come from, merged by figment, lowest first: the declared
//! default, `DATABASE_URL` (for `database_url` only), the configuration file, the environment
//! (`PORTCULLIS_<NAME>`) and the flags. A bad value is reported naming where it came from.
//!
//! Figment merges the layers, reads each value into its declared type and remembers which layer
//! gave it. The file and the environment are read here rather than by figment's `Toml` and `Env`
//! providers: its `Env` parses values (`12345` becomes a number, `[…]` an array), while an
//! operator's text must stay text; and a TOML error must stay one line.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::ConfigError;
use super::declare::DefaultValue;
use super::declared::{DECLARED, Declared, SettingsArgs};

/// One layer of values, all at the top level.
struct Layer {
    /// Where the values come from, for figment's metadata.
    name: &'static str,
    /// The configuration file, for the file layer.
    file: Option<PathBuf>,
    values: Dict,
}

impl Layer {
    fn new(name: &'static str, values: Dict) -> Self {
        Self {
            name,
            file: None,
            values,
        }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        match &self.file {
            Some(path) => Metadata::from(self.name, path.as_path()),
            None => Metadata::named(self.name),
        }
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

/// The declared defaults that are values (not derived from other settings).
fn defaults() -> Layer {
    let values = DECLARED
        .iter()
        .filter_map(|setting| match setting.default {
            DefaultValue::Text(text) => Some((setting.name.to_owned(), Value::from(text))),
            DefaultValue::Derived(_) | DefaultValue::Unset => None,
        })
        .collect();
    Layer::new("default", values)
}

/// `DATABASE_URL`, the variable other tools share, below `PORTCULLIS_DATABASE_URL` and the file.
fn database_url_fallback() -> Layer {
    let values = std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .map(|url| ("database_url".to_owned(), Value::from(url)))
        .into_iter()
        .collect();
    Layer::new("DATABASE_URL", values)
}

/// The declared settings among `vars` (`PORTCULLIS_<NAME>`), each value kept as its text.
fn environment(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Layer {
    let mut values = Dict::new();
    for (key, value) in vars {
        let Some(key) = key.to_str() else { continue };
        if let Some(setting) = DECLARED.iter().find(|s| s.env() == key) {
            values.insert(
                setting.name.to_owned(),
                Value::from(value.to_string_lossy().into_owned()),
            );
        }
    }
    Layer::new("environment", values)
}

/// The configuration file, refused when unreadable, malformed or holding an undeclared key.
fn file(path: &Path) -> Result<Layer, ConfigError> {
    let fail = |reason: String| ConfigError::file(path, reason);
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| fail(e.message().to_owned()))?;
    if let Some(unknown) = table
        .keys()
        .find(|key| !DECLARED.iter().any(|s| s.name == key.as_str()))
    {
        return Err(fail(format!(
            "unknown setting `{unknown}` (the settings are the flags' names in snake_case, such as database_url)"
        )));
    }
    let values = match Value::serialize(&table) {
        Ok(Value::Dict(_, values)) => values,
        Ok(_) => Dict::new(),
        Err(error) => return Err(fail(error.to_string())),
    };
    Ok(Layer {
        name: "configuration file",
        file: Some(path.to_owned()),
        values,
    })
}

/// Where [`read`] takes values from, besides the defaults and the arguments.
pub(super) struct Sources {
    /// Read the configuration file named by the arguments (`--config`, `PORTCULLIS_CONFIG`).
    pub file: bool,
    /// The environment's variables, if it is read.
    pub environment: Option<Vec<(OsString, OsString)>>,
}

/// Reads every setting from the layers.
pub(super) fn read(args: &SettingsArgs, sources: Sources) -> Result<Declared, ConfigError> {
    let mut figment = Figment::new()
        .merge(defaults())
        .merge(database_url_fallback());
    if let (true, Some(path)) = (sources.file, &args.config) {
        figment = figment.merge(file(path)?);
    }
    if let Some(vars) = sources.environment {
        figment = figment.merge(environment(vars));
    }
    figment = figment.merge(Layer::new("flag", args.layer()));
    // Lossy: the text `"300"` reads as a number and `"true"` as a boolean, as the environment
    // and the defaults give them.
    figment.extract_lossy().map_err(named)
}

/// A figment error as a [`ConfigError`] naming the setting (its environment variable), or the
/// file when the value came from there.
fn named(error: figment::Error) -> ConfigError {
    let key = error.path.first().map(String::as_str);
    let reason = error.kind.to_string();
    let file = error
        .metadata
        .as_ref()
        .and_then(|m| m.source.as_ref())
        .and_then(|source| source.file_path());
    match (file, key) {
        (Some(path), Some(key)) => ConfigError::file(path, format!("{key}: {reason}")),
        (Some(path), None) => ConfigError::file(path, reason),
        (None, Some(key)) => ConfigError::new(super::declared::env_of(key), reason),
        (None, None) => ConfigError::new("PORTCULLIS_CONFIG", reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_values_stay_text() {
        let layer = environment([
            ("PORTCULLIS_ACCESS_TOKEN_AUDIENCE".into(), "12345".into()),
            ("PORTCULLIS_ADMIN_BIND".into(), "[::1]:8081".into()),
            ("PORTCULLIS_LOG_FORMAT".into(), "json".into()),
            ("PORTCULLIS_CONFIG".into(), "x.toml".into()),
            ("HOME".into(), "/root".into()),
        ]);
        assert_eq!(
            layer.values.get("access_token_audience"),
            Some(&Value::from("12345"))
        );
        assert_eq!(
            layer.values.get("admin_bind"),
            Some(&Value::from("[::1]:8081"))
        );
        assert_eq!(layer.values.len(), 2, "only declared settings are read");
    }
}
