//! Command-line flags shared by every BFF binary.

use std::ffi::OsString;
use std::path::PathBuf;

/// What the binary was asked to do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    /// `--config PATH`: a TOML file layered over the BFF's defaults.
    pub config: Option<PathBuf>,
    /// `--demo`: start built-in upstreams and print a development token.
    pub demo: bool,
    /// `--print-schema`: print the GraphQL SDL and exit.
    pub print_schema: bool,
    /// `--print-openapi`: print the OpenAPI document and exit.
    pub print_openapi: bool,
    /// `--check`: check the configuration as start-up would, then exit.
    pub check: bool,
    /// `--help`.
    pub help: bool,
}

/// The usage text, for `--help` and for flag errors.
pub fn usage(name: &str) -> String {
    format!(
        "usage: {name} [--config PATH] [--demo] [--check] [--print-schema] [--print-openapi]\n\n\
         --config PATH  TOML file over the built-in defaults; BFF_* environment\n\
         \x20              variables override both (BFF_UPSTREAMS__CATALOG__URL = upstreams.catalog.url)\n\
         --demo         start built-in upstreams with seeded data and print a token\n\
         \x20              (development profile: GraphiQL, introspection)\n\
         --print-schema print the GraphQL schema (SDL) and exit\n\
         --print-openapi print the REST API's OpenAPI document (built-in endpoints) and exit\n\
         --help         this text\n"
    )
}

impl Args {
    /// Parses the flags after the program name.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self, String> {
        let mut parsed = Args::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let arg = arg
                .into_string()
                .map_err(|a| format!("argument {a:?} is not UTF-8"))?;
            match arg.as_str() {
                "--demo" => parsed.demo = true,
                "--print-schema" => parsed.print_schema = true,
                "--print-openapi" => parsed.print_openapi = true,
                "--check" => parsed.check = true,
                "--help" | "-h" => parsed.help = true,
                "--config" => {
                    let path = args.next().ok_or("--config needs a path")?;
                    parsed.config = Some(PathBuf::from(path));
                }
                other => match other.strip_prefix("--config=") {
                    Some(path) => parsed.config = Some(PathBuf::from(path)),
                    None => return Err(format!("unknown argument `{other}`")),
                },
            }
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(OsString::from))
    }

    #[test]
    fn flags_parse() {
        assert_eq!(
            parse(&["--config", "a.toml", "--demo"]),
            Ok(Args {
                config: Some("a.toml".into()),
                demo: true,
                ..Args::default()
            })
        );
        assert_eq!(
            parse(&["--config=b.toml"]).map(|a| a.config),
            Ok(Some("b.toml".into()))
        );
        assert!(parse(&["--config"]).is_err());
        assert!(parse(&["--verbose"]).is_err());
        assert_eq!(parse(&["--print-schema"]).map(|a| a.print_schema), Ok(true));
        assert_eq!(parse(&["--check"]).map(|a| a.check), Ok(true));
    }
}
