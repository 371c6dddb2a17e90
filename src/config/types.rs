//! The vocabulary every subsystem's config is written in: values that
//! validate themselves as they are parsed (byte sizes, ratios, URLs,
//! positive durations), secrets that never print, and the error that names
//! the key. Non-zero counts are the standard library's `NonZero*`, which
//! serde already refuses to read as zero.
//!
//! A value that is wrong on its own is refused here, with the key it was
//! read at; `Config::validate` keeps only the rules that span several keys.

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

/// A configuration problem, naming the key it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
    /// A declared endpoint's file: which file, which key in it (none for
    /// a file that is not valid TOML of the format: the parser's message
    /// shows the line and the key).
    #[error("endpoint file {file}{}: {message}", if key.is_empty() { String::new() } else { format!(", key `{key}`") })]
    Endpoint {
        file: String,
        key: String,
        message: String,
    },
    /// Every problem found at once, one per line.
    #[error("{0}")]
    Several(String),
}

impl ConfigError {
    pub fn invalid(key: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// All of `errors` as one: `Ok` when there are none, the error itself
    /// when there is one, every line of them otherwise.
    pub fn all(errors: Vec<Self>) -> Result<(), Self> {
        let mut errors = errors.into_iter();
        let Some(first) = errors.next() else {
            return Ok(());
        };
        let rest: Vec<Self> = errors.collect();
        if rest.is_empty() {
            return Err(first);
        }
        let lines: Vec<String> = std::iter::once(first)
            .chain(rest)
            .map(|e| e.to_string())
            .collect();
        Err(Self::Several(lines.join("\n")))
    }
}

/// How much the BFF reveals about itself to clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// No introspection, no "did you mean" suggestions, no IDE, only
    /// trusted documents where `graphql.documents = "trusted"`.
    #[default]
    Production,
    /// Introspection, suggestions and GraphiQL on; any document accepted.
    Development,
}

/// A secret string: usable, but never printed by `Debug`, in an error or
/// when the config is serialized.
#[derive(Clone, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

/// A size in bytes: an integer, or a string with a unit, `64KiB`, `32MiB`,
/// `1GiB` (powers of 1024) or `500kB`, `2MB` (powers of 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ByteSize(usize);

impl ByteSize {
    pub const fn bytes(n: usize) -> Self {
        Self(n)
    }

    pub const fn kib(n: usize) -> Self {
        Self(n * 1024)
    }

    pub const fn mib(n: usize) -> Self {
        Self(n * 1024 * 1024)
    }

    pub const fn get(self) -> usize {
        self.0
    }

    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (number, unit) = text.split_at(digits);
        let number: usize = number
            .parse()
            .map_err(|_| format!("`{text}` is not a byte size like 65536, 64KiB or 32MiB"))?;
        let factor: usize = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "kB" | "KB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            other => {
                return Err(format!(
                    "`{other}` is not a unit: use B, KiB, MiB, GiB, kB, MB or GB"
                ));
            }
        };
        number
            .checked_mul(factor)
            .map(Self)
            .ok_or_else(|| format!("`{text}` is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => usize::try_from(n)
                .map(Self)
                .map_err(|_| serde::de::Error::custom("too large a byte size")),
            Raw::Text(text) => Self::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

/// A share between 0 and 1, both included.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Ratio(f64);

impl Ratio {
    /// `value`, when it is between 0 and 1.
    pub fn new(value: f64) -> Option<Self> {
        (0.0..=1.0).contains(&value).then_some(Self(value))
    }

    pub const fn get(self) -> f64 {
        self.0
    }

    /// A constant known to be in range.
    pub const fn of(value: f64) -> Self {
        assert!(value >= 0.0 && value <= 1.0, "a ratio is between 0 and 1");
        Self(value)
    }
}

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        Self::new(value).ok_or_else(|| serde::de::Error::custom("must be between 0 and 1"))
    }
}

/// An absolute `http` or `https` URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct HttpUrl(Url);

impl HttpUrl {
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = Url::parse(text).map_err(|e| format!("is not a URL ({e})"))?;
        Self::try_from(url)
    }

    pub fn into_url(self) -> Url {
        self.0
    }
}

impl TryFrom<Url> for HttpUrl {
    type Error = String;

    fn try_from(url: Url) -> Result<Self, String> {
        if matches!(url.scheme(), "http" | "https") && url.has_host() {
            Ok(Self(url))
        } else {
            Err(format!("`{url}` must be an http or https URL"))
        }
    }
}

impl Deref for HttpUrl {
    type Target = Url;
    fn deref(&self) -> &Url {
        &self.0
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// An [`HttpUrl`] a path is appended to: no query, no fragment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct BaseUrl(HttpUrl);

impl BaseUrl {
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::try_from(HttpUrl::parse(text)?)
    }
}

impl TryFrom<HttpUrl> for BaseUrl {
    type Error = String;

    fn try_from(url: HttpUrl) -> Result<Self, String> {
        if url.query().is_some() || url.fragment().is_some() {
            Err(format!(
                "`{}` must be a base URL, without query or fragment",
                *url
            ))
        } else {
            Ok(Self(url))
        }
    }
}

impl Deref for BaseUrl {
    type Target = Url;
    fn deref(&self) -> &Url {
        &self.0
    }
}

impl<'de> Deserialize<'de> for BaseUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "positive_duration")]`: a human duration (`800ms`,
/// `5s`) that must be above zero.
pub mod positive_duration {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let value: Duration = humantime_serde::deserialize(deserializer)?;
        if value.is_zero() {
            return Err(serde::de::Error::custom("must be above zero"));
        }
        Ok(value)
    }

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        humantime_serde::serialize(value, serializer)
    }

    /// The same, for an optional key.
    pub mod option {
        use super::*;

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Duration>, D::Error> {
            let value: Option<Duration> = humantime_serde::deserialize(deserializer)?;
            if value.is_some_and(|d| d.is_zero()) {
                return Err(serde::de::Error::custom("must be above zero"));
            }
            Ok(value)
        }

        pub fn serialize<S: Serializer>(
            value: &Option<Duration>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            humantime_serde::serialize(value, serializer)
        }
    }
}

/// `#[serde(with = "positive_bytes")]`: a [`ByteSize`] above zero.
pub mod positive_bytes {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ByteSize, D::Error> {
        let value = ByteSize::deserialize(deserializer)?;
        if value.get() == 0 {
            return Err(serde::de::Error::custom("must be above zero"));
        }
        Ok(value)
    }

    pub fn serialize<S: Serializer>(value: &ByteSize, serializer: S) -> Result<S::Ok, S::Error> {
        value.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_take_integers_and_units() {
        for (text, bytes) in [
            ("65536", 65_536),
            ("64KiB", 65_536),
            ("32MiB", 32 * 1024 * 1024),
            ("1 GiB", 1 << 30),
            ("500kB", 500_000),
            ("2MB", 2_000_000),
            ("12B", 12),
        ] {
            assert_eq!(ByteSize::parse(text), Ok(ByteSize(bytes)), "{text}");
        }
        for bad in [
            "",
            "KiB",
            "64 KB/s",
            "1.5MiB",
            "64kib",
            "99999999999999999999GiB",
        ] {
            assert!(ByteSize::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ratios_and_urls_refuse_what_cannot_be_right() {
        assert!(Ratio::new(0.0).is_some() && Ratio::new(1.0).is_some());
        assert!(Ratio::new(1.01).is_none() && Ratio::new(-0.1).is_none());
        assert!(Ratio::new(f64::NAN).is_none());
        assert!(HttpUrl::parse("https://idp.example.com/jwks").is_ok());
        assert!(HttpUrl::parse("ftp://example.com").is_err());
        assert!(HttpUrl::parse("mailto:a@b.c").is_err());
        assert!(BaseUrl::parse("http://inventory:8080/api/").is_ok());
        assert!(BaseUrl::parse("http://inventory:8080/?x=1").is_err());
    }
}
