//! The command line: clap definitions only; `main.rs` turns them into a running daemon.

use std::path::PathBuf;

use clap::Parser;

/// keywardd serves Keyward's PKCS#11 tokens to local clients over a Unix socket. It runs in
/// the foreground and logs to standard error (journald collects it under systemd).
#[derive(Debug, Parser)]
#[command(name = "keywardd", version, about, long_about = None)]
pub struct Args {
    /// Configuration file (the module's TOML format); default: KEYWARD_CONF, then
    /// ~/.config/keyward/keyward.toml, then /etc/keyward/keyward.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Listen on this socket path instead of the configured one (ignored when systemd passes
    /// a listening socket).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Log level (off, error, warn, info, debug, trace); default: the configuration's
    /// `log_level`.
    #[arg(long, value_name = "LEVEL",
          value_parser = ["off", "error", "warn", "info", "debug", "trace"])]
    pub log_level: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse() {
        let a = Args::try_parse_from([
            "keywardd",
            "--config",
            "/etc/k.toml",
            "--socket",
            "/run/k.sock",
            "--log-level",
            "debug",
        ])
        .unwrap();
        assert_eq!(a.config, Some(PathBuf::from("/etc/k.toml")));
        assert_eq!(a.socket, Some(PathBuf::from("/run/k.sock")));
        assert_eq!(a.log_level.as_deref(), Some("debug"));
        assert!(Args::try_parse_from(["keywardd", "--log-level", "loud"]).is_err());
        assert!(Args::try_parse_from(["keywardd", "extra"]).is_err());
    }

    #[test]
    fn definitions_are_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
