//! Command-line arguments: a few flags and positional files, shared by every command.

use std::path::PathBuf;

#[derive(Debug, Default)]
pub struct Args {
    pub policies: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub json: bool,
    /// schema-from-mcp: the server a single tools/list file belongs to.
    pub server: Option<String>,
    /// schema-from-mcp: `sensitivity` of generated Tool entities.
    pub sensitivity: Option<String>,
    /// schema-from-mcp: where to write the tool catalog entities.
    pub entities: Option<PathBuf>,
    /// schema-from-mcp: pin each tool's definition digest in the catalog.
    pub pin: bool,
    pub help: bool,
    pub files: Vec<PathBuf>,
}

impl Args {
    pub fn parse(argv: &[String]) -> Result<Self, String> {
        let mut args = Self::default();
        let mut rest = argv.iter();
        while let Some(arg) = rest.next() {
            let mut value = |flag: &str| {
                rest.next()
                    .map(PathBuf::from)
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match arg.as_str() {
                "--policies" => args.policies = Some(value("--policies")?),
                "--config" => args.config = Some(value("--config")?),
                "--json" => args.json = true,
                "--pin" => args.pin = true,
                "--server" => args.server = Some(value("--server")?.display().to_string()),
                "--sensitivity" => {
                    args.sensitivity = Some(value("--sensitivity")?.display().to_string())
                }
                "--entities" => args.entities = Some(value("--entities")?),
                "-h" | "--help" => args.help = true,
                flag if flag.starts_with("--") => {
                    return Err(format!("unknown option {flag} (see toolgate --help)"))
                }
                file => args.files.push(PathBuf::from(file)),
            }
        }
        Ok(args)
    }

    /// The policy folder: `--policies`, else `./policies`.
    pub fn policy_dir(&self) -> PathBuf {
        self.policies
            .clone()
            .unwrap_or_else(|| PathBuf::from("policies"))
    }
}
