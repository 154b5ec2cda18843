//! Configuration: `kreislauf.toml` < `KREISLAUF_*` environment variables < command-line flags.
//! With nothing set, Kreislauf runs on the embedded store in `./kreislauf-data` on 127.0.0.1:8080.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// The settings file, every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Folder of the embedded store.
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` to use PostgreSQL instead of the embedded store.
    pub database_url: Option<String>,
    /// Address the server listens on.
    pub listen: Option<SocketAddr>,
    /// Log filter, e.g. `info` or `kreislauf=debug`.
    pub log: Option<String>,
    /// Events that may wait for the writer before clients get 429.
    pub max_queued_events: Option<usize>,
}

/// Settings after precedence is applied.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub listen: SocketAddr,
    pub log: String,
    pub max_queued_events: usize,
}

/// Values from flags or the environment (clap merges those two: a flag beats its variable).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub listen: Option<SocketAddr>,
    pub log: Option<String>,
}

impl Settings {
    pub fn resolve(o: &Overrides) -> anyhow::Result<Settings> {
        let file = match &o.config {
            Some(path) => read_file(path)?,
            None if Path::new("kreislauf.toml").exists() => read_file(Path::new("kreislauf.toml"))?,
            None => FileConfig::default(),
        };
        Ok(Settings {
            data_dir: o
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("kreislauf-data")),
            database_url: o
                .database_url
                .clone()
                .or(file.database_url)
                .filter(|u| !u.is_empty()),
            listen: o
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            log: o.log.clone().or(file.log).unwrap_or_else(|| "info".into()),
            max_queued_events: file.max_queued_events.unwrap_or(200_000),
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_and_defaults_fill_in() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("k.toml");
        std::fs::write(
            &path,
            "data_dir = \"/srv/k\"\nlisten = \"127.0.0.1:9000\"\n",
        )
        .expect("write");
        let from_file = Settings::resolve(&Overrides {
            config: Some(path.clone()),
            ..Default::default()
        })
        .expect("settings");
        assert_eq!(from_file.data_dir, PathBuf::from("/srv/k"));
        assert_eq!(from_file.listen.port(), 9000);
        let flagged = Settings::resolve(&Overrides {
            config: Some(path),
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9100))),
            ..Default::default()
        })
        .expect("settings");
        assert_eq!(flagged.listen.port(), 9100);
        assert_eq!(flagged.data_dir, PathBuf::from("/srv/k"));
    }

    #[test]
    fn unknown_keys_are_an_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("k.toml");
        std::fs::write(&path, "listn = \"127.0.0.1:9000\"\n").expect("write");
        let err = Settings::resolve(&Overrides {
            config: Some(path),
            ..Default::default()
        })
        .err()
        .map(|e| format!("{e:#}"));
        assert!(err.is_some_and(|e| e.contains("listn")));
    }
}
