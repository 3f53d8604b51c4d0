//! Command-line arguments: a few flags and positional files, shared by every command.

use std::path::PathBuf;

#[derive(Debug, Default)]
pub struct Args {
    pub policies: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub json: bool,
    /// schema-from-mcp, schema-from-a2a: the server a single file belongs to.
    pub server: Option<String>,
    /// schema-from-mcp: `sensitivity` of generated Tool entities.
    pub sensitivity: Option<String>,
    /// schema-from-mcp, schema-from-a2a: where to write the catalog entities.
    pub entities: Option<PathBuf>,
    /// schema-from-a2a: tags of the generated agent (`--tag`, repeatable).
    pub tags: Vec<String>,
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
                "--server" => args.server = Some(value("--server")?.display().to_string()),
                "--sensitivity" => {
                    args.sensitivity = Some(value("--sensitivity")?.display().to_string())
                }
                "--entities" => args.entities = Some(value("--entities")?),
                "--tag" => args.tags.push(value("--tag")?.display().to_string()),
                "-h" | "--help" => args.help = true,
                flag if flag.starts_with("--") => {
                    return Err(format!("unknown option {flag} (see toolgate --help)"))
                }
                file => args.files.push(PathBuf::from(file)),
            }
        }
        Ok(args)
    }

    /// The server (or agent) each input file of a schema command belongs to, in order:
    /// `--server` for a single file, else each file's name without its extension.
    /// `what` names the files (`tools/list file`, `agent card`) in errors.
    pub fn servers_of_files(
        &self,
        command: &str,
        what: &str,
    ) -> Result<Vec<(String, &PathBuf)>, String> {
        if self.files.is_empty() {
            return Err(format!("{command} needs at least one {what} file"));
        }
        if self.server.is_some() && self.files.len() > 1 {
            return Err(format!(
                "--server names the server of a single {what}; with several, name each file after its server"
            ));
        }
        self.files
            .iter()
            .map(|file| {
                let server = match &self.server {
                    Some(server) => server.clone(),
                    None => file
                        .file_stem()
                        .and_then(|stem| stem.to_str())
                        .ok_or_else(|| {
                            format!("{}: name the server with --server", file.display())
                        })?
                        .to_owned(),
                };
                Ok((server, file))
            })
            .collect()
    }

    /// The policy folder: `--policies`, else `./policies`.
    pub fn policy_dir(&self) -> PathBuf {
        self.policies
            .clone()
            .unwrap_or_else(|| PathBuf::from("policies"))
    }
}
