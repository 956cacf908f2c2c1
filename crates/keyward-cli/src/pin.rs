//! PINs and passwords: from a file (`--pin-source FILE`, first line), an environment
//! variable, the URI's pin-value or pin-source, else a prompt on the terminal that does not
//! echo. Never from a command-line argument, and always held in zeroizing memory.

use std::io::{BufRead, IsTerminal};
use std::path::Path;

use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::error::{Error, Exit, Result};

/// The user PIN's environment variable.
pub const ENV_USER: &str = "KEYWARD_PIN";
/// The SO PIN's environment variable.
pub const ENV_SO: &str = "KEYWARD_SO_PIN";
/// The new PIN's environment variable (`pin set`, `pin change`, `pin unlock`).
pub const ENV_NEW: &str = "KEYWARD_NEW_PIN";
/// The password of an encrypted PKCS#8 key or a PKCS#12 bundle.
pub const ENV_IMPORT: &str = "KEYWARD_IMPORT_PASSWORD";

/// A secret the tool reads: a PIN or an import password.
pub type Secret = Zeroizing<String>;

/// Where one secret may come from, in priority order.
#[derive(Debug, Clone, Default)]
pub struct Sources<'a> {
    /// A file whose first line is the secret.
    pub file: Option<&'a Path>,
    /// An environment variable.
    pub env: Option<&'static str>,
    /// The URI's `pin-value`.
    pub uri_value: Option<&'a str>,
    /// The URI's `pin-source` (a file path or `file:` URI).
    pub uri_source: Option<&'a str>,
    /// The prompt text; the terminal is asked only when nothing above gives the secret.
    pub prompt: &'a str,
    /// Ask twice on the terminal (new PINs).
    pub confirm: bool,
}

impl Sources<'_> {
    /// The secret from the first source that has one.
    pub fn get(&self) -> Result<Secret> {
        if let Some(f) = self.file {
            return first_line(f);
        }
        if let Some((var, v)) = self.env.and_then(|var| Some((var, std::env::var_os(var)?))) {
            let v = Zeroizing::new(
                v.into_string()
                    .map_err(|_| Error::pin(format!("{var} is not valid UTF-8")))?,
            );
            return nonempty(v, var);
        }
        if let Some(v) = self.uri_value {
            return nonempty(Zeroizing::new(v.to_owned()), "the URI's pin-value");
        }
        if let Some(src) = self.uri_source {
            let path = src
                .strip_prefix("file://")
                .or_else(|| src.strip_prefix("file:"));
            return first_line(Path::new(path.unwrap_or(src)));
        }
        self.prompt_terminal()
    }

    fn prompt_terminal(&self) -> Result<Secret> {
        // A script without a PIN source must fail, not wait on a terminal it does not watch.
        if !std::io::stdin().is_terminal() {
            return Err(
                Error::pin("no PIN given and standard input is not a terminal")
                    .hint(hint_for(self.env)),
            );
        }
        let ask = |p: &str| -> Result<Secret> {
            rpassword::prompt_password(p)
                .map(Zeroizing::new)
                .map_err(|e| {
                    Error::new(
                        Exit::Pin,
                        format!("cannot prompt for a PIN on the terminal: {e}"),
                    )
                    .hint(hint_for(self.env))
                })
        };
        let first = ask(self.prompt)?;
        if self.confirm {
            let again = ask("Repeat it: ")?;
            if *again != *first {
                return Err(Error::pin("the two entries differ"));
            }
        }
        nonempty(first, "the prompt")
    }
}

fn hint_for(env: Option<&str>) -> String {
    match env {
        Some(v) => format!("give it with a --*-source FILE option or the {v} environment variable"),
        None => "give it with a --*-source FILE option".to_owned(),
    }
}

fn nonempty(s: Secret, from: &str) -> Result<Secret> {
    if s.is_empty() {
        Err(Error::pin(format!("empty PIN from {from}")))
    } else {
        Ok(s)
    }
}

/// The first line of a file, without its line ending.
pub fn first_line(path: &Path) -> Result<Secret> {
    let f = std::fs::File::open(path).map_err(|e| Error::io("reading the PIN file", path, e))?;
    let mut line = Zeroizing::new(String::new());
    std::io::BufReader::new(f)
        .read_line(&mut line)
        .map_err(|e| Error::io("reading the PIN file", path, e))?;
    let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    nonempty(trimmed, &path.display().to_string())
}

/// The secret as cryptoki wants it (a `SecretString`, zeroized on drop).
pub fn auth(s: &Secret) -> AuthPin {
    AuthPin::from(s.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_first_line_of_a_file_is_the_pin() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "1234-secret\nignored").unwrap();
        let s = Sources {
            file: Some(f.path()),
            prompt: "PIN: ",
            ..Default::default()
        };
        assert_eq!(s.get().unwrap().as_str(), "1234-secret");
    }

    #[test]
    fn an_empty_pin_file_is_refused() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let e = first_line(f.path()).unwrap_err();
        assert_eq!(e.exit, Exit::Pin);
    }

    #[test]
    fn the_uri_pin_value_is_used() {
        let s = Sources {
            uri_value: Some("from-uri"),
            prompt: "PIN: ",
            ..Default::default()
        };
        assert_eq!(s.get().unwrap().as_str(), "from-uri");
    }
}
