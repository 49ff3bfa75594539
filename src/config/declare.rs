//! How a setting is declared: one entry per setting (name, type, default, doc) in
//! [`super::declared`], from which the macro below derives everything else — the flag, the
//! environment variable, the key in the configuration file, the default layer and the list the
//! README table is checked against.

use std::path::PathBuf;
use std::time::Duration;

use figment::value::Value;
use secrecy::{ExposeSecret, SecretString};

/// A setting's default, as documented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultValue {
    /// A value written as an operator would write it (`"5s"`, `"300"`, `"false"`); it is parsed
    /// like any other layer's value, so the documented text is the value.
    Text(&'static str),
    /// Computed from other settings or the machine when unset (the text says how).
    Derived(&'static str),
    /// No value unless one is given.
    Unset,
}

impl DefaultValue {
    /// How the README's table shows this default.
    pub fn shown(self) -> String {
        match self {
            Self::Text(text) => format!("`{text}`"),
            Self::Derived(text) => text.to_owned(),
            Self::Unset => "—".to_owned(),
        }
    }
}

/// One declared setting.
#[derive(Clone, Copy, Debug)]
pub struct Declaration {
    /// The name: the key in the configuration file (snake_case).
    pub name: &'static str,
    /// The default.
    pub default: DefaultValue,
    /// The doc comment (also the flag's help).
    pub doc: &'static str,
}

impl Declaration {
    /// The environment variable: `PORTCULLIS_` and the name in upper case.
    pub fn env(&self) -> String {
        env_name(self.name)
    }

    /// The flag: `--` and the name with dashes.
    pub fn flag(&self) -> String {
        format!("--{}", self.name.replace('_', "-"))
    }
}

/// The environment variable of the setting `name`.
pub fn env_name(name: &str) -> String {
    format!("PORTCULLIS_{}", name.to_ascii_uppercase())
}

/// The type of a declared setting: how its flag is typed (`Arg`) and how a flag's value enters
/// the layering. The file, the environment and the defaults are parsed into the declared type
/// itself (`Deserialize`).
pub trait SettingType {
    /// The flag's type (and the field type of [`super::SettingsArgs`]).
    type Arg: Clone + Send + Sync + 'static;

    /// A flag's value as a layer value.
    fn layer_value(arg: &Self::Arg) -> Value;
}

macro_rules! plain_setting_types {
    ($($ty:ty),*) => {$(
        impl SettingType for $ty {
            type Arg = $ty;

            fn layer_value(arg: &$ty) -> Value {
                Value::from(arg.clone())
            }
        }
    )*};
}

plain_setting_types!(String, bool, u32, u64, usize);

impl SettingType for PathBuf {
    type Arg = PathBuf;

    fn layer_value(arg: &PathBuf) -> Value {
        Value::from(arg.to_string_lossy().into_owned())
    }
}

impl SettingType for SecretString {
    type Arg = SecretString;

    fn layer_value(arg: &SecretString) -> Value {
        Value::from(arg.expose_secret().to_owned())
    }
}

/// An optional setting is given like its value.
impl<T: SettingType> SettingType for Option<T> {
    type Arg = T::Arg;

    fn layer_value(arg: &T::Arg) -> Value {
        T::layer_value(arg)
    }
}

/// A duration setting: `500ms`, `5s`, `10m`, `12h`, `30d` (anything `humantime` reads), or a
/// bare number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl SettingType for HumanDuration {
    /// As text, the way an operator writes it (`"5s"`).
    type Arg = String;

    fn layer_value(arg: &String) -> Value {
        Value::from(arg.clone())
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = HumanDuration;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration such as 500ms, 5s, 10m, 12h or 30d")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<HumanDuration, E> {
                parse_duration(text).map(HumanDuration).map_err(E::custom)
            }

            fn visit_u64<E: serde::de::Error>(self, seconds: u64) -> Result<HumanDuration, E> {
                Ok(HumanDuration(Duration::from_secs(seconds)))
            }

            fn visit_i64<E: serde::de::Error>(self, seconds: i64) -> Result<HumanDuration, E> {
                u64::try_from(seconds)
                    .map(|s| HumanDuration(Duration::from_secs(s)))
                    .map_err(|_| E::custom(format!("`{seconds}` is not a duration")))
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

/// Parses `500ms`, `5s`, `10m`, `12h`, `30d` (and whatever else `humantime` reads, such as
/// `1h 30m`), or a bare number of seconds. humantime wants a unit on every number; a bare number
/// was documented as seconds before humantime was used (`PORTCULLIS_KEY_ROTATION_INTERVAL=0`),
/// so that one form is read here.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("`{text}` is too large"));
    }
    humantime::parse_duration(text).map_err(|error| {
        format!("`{text}` is not a duration such as 500ms, 5s, 10m, 12h or 30d ({error})")
    })
}

/// Declares the settings: for each, its doc comment, name, type and default. From the list it
/// makes [`super::SettingsArgs`] (the flags: every field optional, typed by
/// [`SettingType::Arg`]), the parsed form read from the merged layers, the layer of the flags,
/// the environment variable names used in messages, and [`super::DECLARED`].
macro_rules! declare_settings {
    ($( $(#[doc = $doc:literal])+ $name:ident : $ty:ty = $default:expr ;)+) => {
        /// The settings given as flags, or by an in-process caller such as a test: every field is
        /// optional. What is not given here comes from the environment (`PORTCULLIS_<NAME>`), the
        /// configuration file or the declared default, in that order (see
        /// [`Settings::load`](crate::config::Settings::load);
        /// [`Settings::from_args`](crate::config::Settings::from_args) reads neither the file nor
        /// the environment).
        /// Deliberately not `Debug`: the database URL may hold a password and the KEK is a secret.
        #[derive(clap::Args, Clone, Default)]
        pub struct SettingsArgs {
            /// A TOML configuration file (`portcullis.toml`) of these settings, under their names
            /// in snake_case (`database_url`); the environment and flags override its values.
            #[arg(long, env = "PORTCULLIS_CONFIG", global = true)]
            pub config: Option<std::path::PathBuf>,
            $(
                $(#[doc = $doc])+
                #[arg(long, global = true)]
                pub $name: Option<<$ty as $crate::config::declare::SettingType>::Arg>,
            )+
        }

        impl SettingsArgs {
            /// The flags that were given, as a layer.
            pub(super) fn layer(&self) -> figment::value::Dict {
                let mut dict = figment::value::Dict::new();
                $(
                    if let Some(value) = &self.$name {
                        dict.insert(
                            stringify!($name).to_owned(),
                            <$ty as $crate::config::declare::SettingType>::layer_value(value),
                        );
                    }
                )+
                dict
            }
        }

        /// Every setting, read from the merged layers.
        #[derive(serde::Deserialize)]
        pub(super) struct Declared {
            $( pub(super) $name: $ty, )+
        }

        /// The environment variable of each setting, for messages that name it.
        pub(super) struct EnvNames {
            $( pub(super) $name: String, )+
        }

        /// The environment variables, derived once from the names.
        pub(super) static ENV: std::sync::LazyLock<EnvNames> = std::sync::LazyLock::new(|| {
            EnvNames {
                $( $name: $crate::config::declare::env_name(stringify!($name)), )+
            }
        });

        /// The environment variable of the setting `name` (`PORTCULLIS_CONFIG` for no setting).
        pub(super) fn env_of(name: &str) -> &'static str {
            match name {
                $( stringify!($name) => ENV.$name.as_str(), )+
                _ => "PORTCULLIS_CONFIG",
            }
        }

        /// Every declared setting, in declaration order.
        pub const DECLARED: &[$crate::config::declare::Declaration] = &[
            $(
                $crate::config::declare::Declaration {
                    name: stringify!($name),
                    default: $default,
                    doc: concat!($($doc, "\n"),+),
                },
            )+
        ];
    };
}

pub(crate) use declare_settings;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_the_readme_shows_still_parses() {
        for (text, seconds) in [
            ("0", 0),
            ("0s", 0),
            ("2s", 2),
            ("12h", 12 * 3600),
            ("7d", 7 * 86_400),
            (" 15m ", 900),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(seconds)),
                "{text}"
            );
        }
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert!(parse_duration("99999999999999999999").is_err());
        assert!(parse_duration("-5s").is_err());
    }
}
